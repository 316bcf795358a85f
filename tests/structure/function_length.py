#!/usr/bin/env python3
"""No function in tsync's public headers is longer than a limit (issue: long
functions cannot be tested by parts). Scans every header under include/,
strips comments and string/char literals, tracks what each brace opens
(namespace, class, enum, function, other) and measures every function defined
at namespace or class scope, from the line of its opening brace's declaration
to its closing brace.

Usage: function_length.py INCLUDE_DIR [LIMIT [KNOWN...]]

KNOWN entries (`path:function`, path relative to INCLUDE_DIR) are functions
already over the limit that are still to be split: they are listed but do not
fail the check; any other function over the limit does, and so does a KNOWN
entry that no longer exists (so the list only shrinks).
"""
import os
import re
import sys

KEYWORDS_NOT_FUNCTIONS = ("if", "for", "while", "switch", "catch", "do", "else", "return")


def strip(text):
    """Comments and literals become spaces; newlines are kept."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == 'R' and text.startswith('R"', i):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = ")" + m.group(1) + '"'
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            # a digit separator (1'000) is not a literal
            if c == "'" and i > 0 and text[i - 1].isalnum() and i + 1 < n and text[i + 1].isalnum() and \
                    re.match(r"[0-9a-fA-FxXbB]", text[i - 1]):
                out.append(" ")
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(" " * (min(j + 1, n) - i))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_template_heads(h):
    """Remove leading `template <...>` heads (balanced angle brackets)."""
    while True:
        m = re.match(r"\s*template\s*<", h)
        if not m:
            return h
        depth, i = 1, m.end()
        while i < len(h) and depth:
            depth += {"<": 1, ">": -1}.get(h[i], 0)
            i += 1
        h = h[i:]


def functions(text):
    """Yield (name, first_line, last_line) of functions at namespace/class scope."""
    s = strip(text)
    # preprocessor lines (and their continuations) become blank
    s = re.sub(r"\{\s*\}", lambda m: " " * len(m.group(0)), s)  # empty braces open no scope
    s = re.sub(r"(?m)^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", lambda m: re.sub(r"[^\n]", " ", m.group(0)), s)
    stack = []  # kinds of open braces
    header_start = 0
    line_of = [0] * (len(s) + 1)
    ln = 1
    for i, ch in enumerate(s):
        line_of[i] = ln
        if ch == "\n":
            ln += 1
    opened = []  # (kind, start offset of header)
    last = 0
    for i, ch in enumerate(s):
        if ch in ";":
            last = i + 1
        elif ch == "{":
            header = s[last:i]
            h = " ".join(header.split())
            scope_ok = all(k in ("namespace", "class") for k, _ in opened)
            if re.search(r"\bnamespace\b", h) and "(" not in h:
                kind = "namespace"
            elif re.search(r"\b(class|struct|union)\b", h) and not h.rstrip().endswith(")") and \
                    "(" not in h.split("{")[0].replace("alignas(", "")[:0] + h.split(":")[0] and \
                    not re.search(r"\)\s*(const|noexcept|override|final|->|$)", h):
                kind = "class"
            elif re.search(r"\benum\b", h):
                kind = "enum"
            elif scope_ok and ")" in h and not re.match(r"^(%s)\b" % "|".join(KEYWORDS_NOT_FUNCTIONS), h) \
                    and not h.endswith("=") and not re.search(r"=\s*$", h):
                kind = "function"
            else:
                kind = "other"
            start = last
            # skip leading blank/whitespace to the first real character
            while start < i and s[start].isspace():
                start += 1
            opened.append((kind, start))
            last = i + 1
        elif ch == "}":
            if opened:
                kind, start = opened.pop()
                if kind == "function" and all(k in ("namespace", "class") for k, _ in opened):
                    h = " ".join(s[start:s.find("{", start)].split())
                    h = drop_template_heads(h)
                    names = [x for x in re.findall(r"([~\w:]+(?:<[^()]*>)?)\s*\(", h)
                             if x not in ("requires", "noexcept", "decltype", "alignas", "sizeof")]
                    name = names[0] if names else h[:60]
                    yield name, line_of[start], line_of[i]
            last = i + 1


def main():
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    root = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 80
    known = set(sys.argv[3:])
    long_ones = []
    count = 0
    for dirpath, _, files in os.walk(root):
        for f in sorted(files):
            if not f.endswith(".hpp"):
                continue
            p = os.path.join(dirpath, f)
            with open(p, encoding="utf-8") as fh:
                text = fh.read()
            for name, a, b in functions(text):
                count += 1
                if b - a + 1 > limit:
                    long_ones.append((b - a + 1, os.path.relpath(p, root), a, name))
    seen = set()
    new = 0
    for n, p, a, name in sorted(long_ones, reverse=True):
        key = "%s:%s" % (p, name)
        seen.add(key)
        is_known = key in known
        new += 0 if is_known else 1
        print("%4d lines  %s:%d  %s%s" % (n, p, a, name, "  (known, still to split)" if is_known else "  << NEW"))
    stale = sorted(known - seen)
    for k in stale:
        print("known entry %s is no longer over the limit: remove it from the list" % k)
    print("%d functions measured, %d over %d lines (%d known)" % (count, len(long_ones), limit, len(long_ones) - new))
    return 1 if new or stale else 0


if __name__ == "__main__":
    sys.exit(main())
