#!/usr/bin/env python3
"""Architecture and unsafe-discipline checks for alloc-core, run by CI.

1. Layers: every module of alloc-core/src has a rank (LAYERS below); a
   module may use only modules of a lower rank. So dependencies point one
   way and no cycle can form. Inside heap/, the files must not form a
   cycle either. A new module must be given a rank here.
2. Unsafe: every `unsafe fn` has a `# Safety` section in its doc comment,
   every `unsafe` block or impl has a `// SAFETY:` comment right above it,
   and no SAFETY comment defers to another ("as above", "forwarded", ...).
3. System calls: `libc::` functions are called from os.rs only.

Written in plain Python (no dependency) because the rules are ours: a
generic cycle finder would not know the intended order of the layers.
Usage: scripts/check_arch.py   (exit 1 and one line per problem on failure)
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORE = ROOT / "alloc-core" / "src"

# Higher uses lower. Equal ranks may not use each other.
LAYERS = {
    "cabi": 14,
    "pool": 13,
    "sampler": 12,
    "stats": 11,
    "reclaim": 10,
    "background": 0,
    "heap": 9,
    "large": 8,
    "slab": 7,
    "segment": 6,
    "limits": 5,
    "profile": 4,
    "config": 3,
    "counters": 3,
    "extent": 3,
    "pages": 3,
    "remote": 2,
    "slots": 2,
    "unwind": 2,
    "cache": 2,
    "handoff": 2,
    "pressure": 2,
    "os": 1,
    "hardening": 1,
    "size_class": 1,
    "valgrind": 1,
    "sync": 0,
    "loom_tests": 20,  # tests may use anything
    "lib": 21,  # the crate root declares and re-exports
}

UNSAFE_DIRS = [ROOT / "alloc-core" / "src", ROOT / "alloc-stats" / "src", ROOT / "src"]
DEFERRING = re.compile(r"SAFETY:\s*(as above|see above|forwarded|same as|as before)", re.I)

problems = []


def module_of(path):
    rel = path.relative_to(CORE).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts.pop()
    return parts


def code_lines(text):
    """Lines with comments and string literals blanked (good enough here)."""
    out = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("//"):
            out.append("")
            continue
        line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
        line = line.split("//")[0]
        out.append(line)
    return out


def crate_refs(lines):
    """Top-level modules named through `crate::`, with line numbers."""
    refs = []
    text = "\n".join(lines)
    # use crate::{a, b::c, d::{e, f}};
    for m in re.finditer(r"crate::\{", text):
        depth, i = 1, m.end()
        start = i
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        inner = text[start : i - 1]
        top, depth = [], 0
        token = ""
        for ch in inner:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                top.append(token)
                token = ""
                continue
            if depth == 0 and ch not in "{}":
                token += ch
        top.append(token)
        lineno = text.count("\n", 0, m.start()) + 1
        for t in top:
            name = t.strip().split("::")[0].strip()
            if name:
                refs.append((name, lineno))
    for m in re.finditer(r"crate::([a-z_][a-z0-9_]*)", text):
        lineno = text.count("\n", 0, m.start()) + 1
        refs.append((m.group(1), lineno))
    return refs


def check_layers():
    heap_edges = {}
    for path in sorted(CORE.rglob("*.rs")):
        parts = module_of(path)
        top = parts[0]
        if top not in LAYERS:
            problems.append(f"{path.relative_to(ROOT)}: module `{top}` has no layer in scripts/check_arch.py")
            continue
        lines = code_lines(path.read_text())
        for name, lineno in crate_refs(lines):
            if name == top or name not in LAYERS:
                continue  # self, or a re-exported item of the crate root
            if LAYERS[name] >= LAYERS[top]:
                problems.append(
                    f"{path.relative_to(ROOT)}:{lineno}: `{top}` (layer {LAYERS[top]}) uses "
                    f"`{name}` (layer {LAYERS[name]}): dependencies must point down"
                )
        if top == "heap":
            me = "::".join(parts)
            text = "\n".join(lines)
            for m in re.finditer(r"(?:super|crate::heap)::(\{[^}]*\}|[a-z_]+)", text):
                names = re.findall(r"[a-z_]+", m.group(1))
                for n in names:
                    target = f"heap::{n}"
                    if (CORE / "heap" / f"{n}.rs").exists() and target != me:
                        heap_edges.setdefault(me, set()).add(target)
    # Cycles inside heap/ (its files are one layer; they must still be a DAG).
    state = {}

    def visit(n, stack):
        state[n] = 1
        for m in sorted(heap_edges.get(n, ())):
            if state.get(m) == 1:
                cyc = stack[stack.index(m) :] + [m]
                problems.append("alloc-core/src/heap: module cycle " + " -> ".join(cyc))
            elif m not in state:
                visit(m, stack + [m])
        state[n] = 2

    for n in sorted(heap_edges):
        if n not in state:
            visit(n, [n])


def check_unsafe():
    for d in UNSAFE_DIRS:
        for path in sorted(d.rglob("*.rs")):
            raw = path.read_text().splitlines()
            code = code_lines(path.read_text())
            for i, line in enumerate(code):
                where = f"{path.relative_to(ROOT)}:{i + 1}"
                if DEFERRING.search(raw[i]):
                    problems.append(f"{where}: a SAFETY comment must say why, not defer to another")
                if re.search(r"\bunsafe\s+(extern\s+\"[A-Za-z]*\"\s+)?fn\s+[A-Za-z_]", line):
                    # Walk up over attributes and doc comments.
                    j, doc = i - 1, []
                    while j >= 0 and (raw[j].strip().startswith(("///", "#[", "//!")) or raw[j].strip() == ""):
                        if raw[j].strip().startswith("///"):
                            doc.append(raw[j])
                        if raw[j].strip() == "" and not doc:
                            break
                        j -= 1
                    if not any("# Safety" in l for l in doc):
                        problems.append(f"{where}: `unsafe fn` without a `# Safety` doc section")
                elif re.search(r"\bunsafe\s*(\{|impl\b)", line):
                    j, found = i, False
                    # The comment may sit on the line itself or a few lines up
                    # (a `let x = unsafe {` after a multi-line comment).
                    while j >= 0 and i - j <= 12:
                        if "SAFETY:" in raw[j]:
                            found = True
                            break
                        prev = raw[j].strip()
                        if j < i and prev and not prev.startswith("//") and prev.endswith((";", "{", "}")):
                            break  # an earlier statement: the comment is missing
                        j -= 1
                    if not found:
                        problems.append(f"{where}: `unsafe` block without a `// SAFETY:` comment above it")


def check_syscalls():
    for path in sorted(CORE.rglob("*.rs")):
        if path.name == "os.rs":
            continue
        for i, line in enumerate(code_lines(path.read_text())):
            for m in re.finditer(r"libc::([a-z_][a-z0-9_]*)\s*\(", line):
                problems.append(
                    f"{path.relative_to(ROOT)}:{i + 1}: system call `libc::{m.group(1)}` outside os.rs"
                )


check_layers()
check_unsafe()
check_syscalls()
for p in problems:
    print(p)
if problems:
    print(f"check_arch: {len(problems)} problem(s)")
    sys.exit(1)
print("check_arch: layers point down, no cycle; unsafe documented; system calls in os.rs only")
