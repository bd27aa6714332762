# Turns <backend>/migrations/NNN_name.sql into a C array of {version, name, sql}.
# The version is the file's numeric prefix; migrations apply in that order.
#   OUT    the .c file to write
#   FILES  the .sql files, sorted
#   HEADER the header declaring the array (e.g. db/sqlite/migrations.h)
#   ARRAY  the array's name (e.g. db_migrations)
separate_arguments(FILES)
set(body "/* Generated from the .sql files of ${HEADER}'s folder; do not edit. */\n#include \"${HEADER}\"\n\nconst struct db_migration ${ARRAY}[] = {\n")
foreach(f ${FILES})
  get_filename_component(name ${f} NAME_WE)
  string(REGEX MATCH "^[0-9]+" ver ${name})
  math(EXPR ver "${ver}")
  file(READ ${f} sql)
  string(REPLACE "\\" "\\\\" sql "${sql}")
  string(REPLACE "\"" "\\\"" sql "${sql}")
  string(REPLACE "\n" "\\n\"\n\"" sql "${sql}")
  string(APPEND body "  {${ver}, \"${name}\",\n\"${sql}\"},\n")
endforeach()
string(APPEND body "  {0, 0, 0}\n};\n")
file(WRITE ${OUT}.tmp "${body}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.tmp ${OUT})
