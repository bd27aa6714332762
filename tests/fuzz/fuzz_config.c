/* fuzz_config.c - configuration files: config_load on any bytes (from a
 * memfd, mode 0600) gives a configuration or an error naming the file; a
 * loaded configuration dumps with its secret redacted. */
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        /* Keys must come from the file only. */
        unsetenv("ASSENT_CONFIG");
        fd = memfd_create("assent-fuzz-config", MFD_CLOEXEC);
        FUZZ_ASSERT(fd >= 0 && fchmod(fd, 0600) == 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    FUZZ_ASSERT(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
    FUZZ_ASSERT(size == 0 || write(fd, data, size) == (ssize_t)size);
    struct config *cfg = NULL;
    struct as_err err = {0};
    if (config_load(path, &cfg, &err) != AS_OK) {
        FUZZ_ASSERT(!cfg);
        FUZZ_ASSERT(strstr(err.msg, path));
        return 0;
    }
    json_t *dump = config_dump(cfg);
    FUZZ_ASSERT(dump);
    const char *secret = config_str(cfg, "client_secret");
    json_t *shown = json_object_get(json_object_get(dump, "client_secret"), "value");
    if (!shown)
        shown = json_object_get(dump, "client_secret");
    if (*secret && json_is_string(shown))
        FUZZ_ASSERT(strcmp(json_string_value(shown), secret) != 0 || strcmp(secret, "***") == 0);
    json_decref(dump);
    config_free(cfg);
    return 0;
}
