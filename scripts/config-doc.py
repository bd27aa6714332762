#!/usr/bin/env python3
"""Keep the README's configuration table equal to the key table in base/config.c.

  scripts/config-doc.py          rewrite the table between the CONFIG_TABLE markers
  scripts/config-doc.py --check  exit 1 when the README is out of date (run by ctest)
"""
import re
import sys
from pathlib import Path

root = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).resolve().parent.parent)
src = (root / "base/config.c").read_text()
body = src[src.index("static const struct cfg_key keys[]"):src.index("#define N_KEYS")]
entry = re.compile(r'\{\s*"([a-z_0-9]+)",\s*CT_(\w+),\s*"([^"]*)",\s*(\d),\s*(NULL|"[^"]*"),'
                   r'\s*([-\d]+),\s*([-\d]+),\s*((?:"[^"]*"\s*)+)\}')
rows = ["| key | environment | default | meaning |", "| --- | --- | --- | --- |"]
for name, typ, default, secret, choices, lo, hi, doc in entry.findall(body):
    doc = "".join(re.findall(r'"([^"]*)"', doc)).replace("|", "\\|")
    if choices != "NULL":
        doc += " (" + choices.strip('"').replace("|", ", ") + ")"
    if typ == "INT":
        doc += f" ({lo}–{hi})"
    if secret == "1":
        doc += "; secret: shown as `***`"
    rows.append(f"| `{name}` | `ASSENT_{name.upper()}` | `{default}` | {doc} |" if default
                else f"| `{name}` | `ASSENT_{name.upper()}` | | {doc} |")
table = "\n".join(rows)

readme_path = root / "README.md"
readme = readme_path.read_text()
start, end = "<!-- CONFIG_TABLE -->", "<!-- /CONFIG_TABLE -->"
if start not in readme:
    sys.exit("README.md has no CONFIG_TABLE marker")
pre = readme[:readme.index(start) + len(start)]
rest = readme[readme.index(start) + len(start):]
post = rest[rest.index(end):] if end in rest else end + rest
new = pre + "\n" + table + "\n" + post
if len(sys.argv) > 1 and sys.argv[1] == "--check":
    if new != readme:
        sys.exit("README.md's configuration table is out of date: run scripts/config-doc.py")
    print(f"README documents all {len(rows) - 2} configuration keys")
else:
    readme_path.write_text(new)
