#!/usr/bin/env python3
"""Code metrics of the workspace's non-test Rust code (issue 10's table).

Usage: python3 scripts/code_metrics.py [ROOT] [--list N]

Scans `crates/*/src/**/*.rs` (not `crates/overrides-py`, not `tests/`, `benches/`, `examples/`),
skipping files named `tests.rs` or under a `tests/` directory and `#[cfg(test)]` items. A function's
length is its lines from the `fn` keyword to its closing brace; its parameters are the top-level
entries of its parameter list (`self` included, as clippy's `too_many_arguments` counts). A public
item is a `pub` (not `pub(crate)`/`pub(super)`) fn, struct, enum, trait, type, const, static, mod,
field or macro; it is documented when a `///`/`#[doc` precedes it (attributes in between allowed),
or, for `pub mod name;`, when the module's file opens with `//!`.
"""
import os, re, statistics, sys


def blank_code(text):
    """Comments, strings and char literals replaced by spaces (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j): depth += 1; j += 2
                elif text.startswith("*/", j): depth -= 1; j += 2
                else: j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif re.match(r'(b?r#*")', text[i:i + 8]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(" " * m.end()); i += m.end()
            else:
                out.append(c); i += 1  # a lifetime
        else:
            out.append(c); i += 1
    return "".join(out)


def matching(code, i, open_c, close_c):
    depth = 0
    for j in range(i, len(code)):
        if code[j] == open_c: depth += 1
        elif code[j] == close_c:
            depth -= 1
            if depth == 0: return j
    return len(code) - 1


def test_spans(code):
    """Character spans of `#[cfg(test)]` items."""
    spans = []
    for m in re.finditer(r"#\[cfg\(test\)\]", code):
        k = m.end()
        brace, semi = code.find("{", k), code.find(";", k)
        if semi != -1 and (brace == -1 or semi < brace):
            spans.append((m.start(), semi)); continue
        spans.append((m.start(), matching(code, brace, "{", "}")))
    return spans


def count_params(plist):
    depth, parts, cur = 0, [], ""
    for c in plist:
        if c in "(<[{": depth += 1
        elif c in ")>]}": depth -= 1
        if c == "," and depth == 0:
            parts.append(cur); cur = ""
        else:
            cur += c
    parts.append(cur)
    return sum(1 for p in parts if p.strip())


def functions(path, code):
    skip = test_spans(code)
    for m in re.finditer(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)", code):
        if any(a <= m.start() <= b for a, b in skip): continue
        k = m.end()
        if code[k] == "<": k = matching(code, k, "<", ">") + 1
        while k < len(code) and code[k] != "(": k += 1
        close = matching(code, k, "(", ")")
        params = count_params(code[k + 1:close].replace("->", "  "))
        brace, semi = code.find("{", close), code.find(";", close)
        if brace == -1 or (semi != -1 and semi < brace): continue  # a declaration
        end = matching(code, brace, "{", "}")
        first = code.count("\n", 0, m.start()) + 1
        last = code.count("\n", 0, end) + 1
        yield dict(file=path, name=m.group(1), line=first, length=last - first + 1, params=params)


PUB_ITEM = re.compile(r"^\s*pub\s+(?:(?:unsafe|async|const|extern\s+\"C\")\s+)*(fn|struct|enum|trait|type|const|static|mod|union)\b|^\s*pub\s+[a-z_][a-z0-9_]*\s*:")


def public_items(path, text, code):
    lines, code_lines = text.split("\n"), code.split("\n")
    skip = test_spans(code)
    skip_lines = [(code.count("\n", 0, a), code.count("\n", 0, b)) for a, b in skip]
    for idx, line in enumerate(code_lines):
        if not PUB_ITEM.match(line) or any(a <= idx <= b for a, b in skip_lines): continue
        j, documented = idx - 1, False
        while j >= 0:
            prev = lines[j].strip()
            if prev.startswith("///") or prev.startswith("#[doc"):
                documented = True; break
            if prev.startswith("#[") or prev.startswith("#!") or (prev.endswith(")]") and not prev.startswith("//")) or prev.startswith("//") and not prev.startswith("///"):
                j -= 1; continue
            break
        m = re.match(r"^\s*pub\s+mod\s+([a-z_0-9]+)\s*;", line)
        if m and not documented:
            base = os.path.dirname(path)
            stem = os.path.splitext(os.path.basename(path))[0]
            parent = base if stem in ("lib", "mod", "main") else os.path.join(base, stem)
            for cand in (os.path.join(parent, m.group(1) + ".rs"), os.path.join(parent, m.group(1), "mod.rs")):
                if os.path.exists(cand):
                    documented = open(cand, encoding="utf-8").read().lstrip().startswith("//!")
        yield dict(file=path, line=idx + 1, documented=documented, text=line.strip())


def source_files(root):
    crates = os.path.join(root, "crates")
    for crate in sorted(os.listdir(crates)):
        if crate == "overrides-py": continue
        src = os.path.join(crates, crate, "src")
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames[:] = sorted(d for d in dirnames if d != "tests")
            for f in sorted(filenames):
                if f.endswith(".rs") and f != "tests.rs":
                    yield os.path.join(dirpath, f)


def main():
    args = sys.argv[1:]
    show = 4
    if "--list" in args:
        i = args.index("--list"); show = int(args[i + 1]); del args[i:i + 2]
    root = args[0] if args else "."
    fns, items = [], []
    for path in source_files(root):
        text = open(path, encoding="utf-8").read()
        code = blank_code(text)
        rel = os.path.relpath(path, root)
        fns.extend(functions(rel, code))
        items.extend(public_items(path, text, code))
    lengths = [f["length"] for f in fns]
    long_fns = sorted((f for f in fns if f["length"] > 100), key=lambda f: -f["length"])
    many = sorted((f for f in fns if f["params"] >= 6), key=lambda f: -f["params"])
    documented = sum(1 for i in items if i["documented"])
    lib_items = [i for i in items if "/crates/cli/" not in i["file"]]
    lib_documented = sum(1 for i in lib_items if i["documented"])
    print(f"functions: {len(fns)}")
    print(f"median / mean function length: {statistics.median(lengths):g} / {statistics.mean(lengths):.1f} lines")
    print(f"functions over 100 lines: {len(long_fns)}")
    for f in long_fns[:show]:
        print(f"  {f['length']:4d}  {f['name']}  {f['file']}:{f['line']}")
    print(f"functions with >= 6 parameters: {len(many)}")
    for f in many[:show]:
        print(f"  {f['params']:4d}  {f['name']}  {f['file']}:{f['line']}")
    print(f"public items with a doc comment: {documented}/{len(items)} = {100 * documented / max(1, len(items)):.0f} %")
    print(f"  library crates (all but the cli binary): {lib_documented}/{len(lib_items)} = {100 * lib_documented / max(1, len(lib_items)):.0f} %")


if __name__ == "__main__":
    main()
