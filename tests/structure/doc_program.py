#!/usr/bin/env python3
"""Extract the complete program of a documentation page: every ```cpp block
after the marker line `<!-- program -->` and before `<!-- end of program -->`,
concatenated in order, written to OUT.cpp (only when it changed).

Usage: doc_program.py PAGE.md OUT.cpp
"""
import re
import sys


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    text = open(sys.argv[1], encoding="utf-8").read()
    m = re.search(r"<!-- program -->(.*?)<!-- end of program -->", text, re.S)
    if not m:
        sys.stderr.write("%s: no '<!-- program -->' ... '<!-- end of program -->' section\n" % sys.argv[1])
        return 1
    blocks = re.findall(r"```cpp\n(.*?)```", m.group(1), re.S)
    if not blocks:
        sys.stderr.write("%s: the program section has no ```cpp block\n" % sys.argv[1])
        return 1
    out = "// Generated from %s: the complete program of the page.\n" % sys.argv[1].split("/")[-1] + "".join(blocks)
    try:
        if open(sys.argv[2], encoding="utf-8").read() == out:
            return 0
    except OSError:
        pass
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
