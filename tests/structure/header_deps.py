#!/usr/bin/env python3
"""Which system headers a tsync header pulls in: the umbrella must pull no
Eigen header, no socket header, no <filesystem> and no intrinsics header; the
families that need them must (so the check itself is shown to work).

Usage: header_deps.py CXX -I... -- CHECK...
CHECK is HEADER!PATTERN (must not appear) or HEADER=PATTERN (must appear);
PATTERN is a regular expression matched against every included file path.
"""
import re
import subprocess
import sys
import tempfile


def deps(cxx, flags, header):
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as f:
        f.write('#include "%s"\n' % header)
        src = f.name
    r = subprocess.run([cxx, "-std=c++20", *flags, "-M", src], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        sys.exit(1)
    return [p for p in r.stdout.replace("\\\n", " ").split() if not p.endswith(":")]


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.stderr.write(__doc__)
        return 2
    sep = argv.index("--")
    cxx, flags, checks = argv[0], argv[1:sep], argv[sep + 1:]
    bad = 0
    cache = {}
    for c in checks:
        must = "=" in c and ("!" not in c or c.index("=") < c.index("!"))
        header, pattern = c.split("=" if must else "!", 1)
        if header not in cache:
            cache[header] = deps(cxx, flags, header)
        hits = [p for p in cache[header] if re.search(pattern, p)]
        if must and not hits:
            print("FAIL %s should include a file matching %s but does not" % (header, pattern))
            bad += 1
        elif not must and hits:
            print("FAIL %s must not include %s, but pulls in: %s" % (header, pattern, ", ".join(hits[:5])))
            bad += 1
        else:
            print("ok   %s %s %s" % (header, "includes" if must else "does not include", pattern))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
