#!/usr/bin/env python3
"""Capabilities stand alone: every import from one capability folder into another names that folder's index.ts.

Run from the repository root: writes src/<capability>/index.ts (re-exporting each module other folders use) and
rewrites cross-folder imports to it. platform/ is the toolbox every capability shares and is imported by file.
Idempotent: run it again after adding an import across folders (test/spine/capabilities.test.ts says when)."""
import os, re, sys
SRC = os.path.abspath('src')
TOOLBOX = {'platform'}
SPEC = re.compile(r"""((?:from|import)\s*\(?\s*)'(\.{1,2}/[^']+)'""")

def folder_of(path):
    rel = os.path.relpath(path, SRC).split(os.sep)
    return rel[0] if len(rel) > 1 else None

def sources():
    for root, _, files in os.walk(SRC):
        for f in files:
            if re.search(r'\.tsx?$', f) and '.test.' not in f:
                yield os.path.join(root, f)

used = {}  # capability -> set of module files used from outside
rewrites = []
for path in sources():
    frm = folder_of(path)
    text = open(path).read()
    for m in SPEC.finditer(text):
        target = os.path.normpath(os.path.join(os.path.dirname(path), m.group(2)))
        to = folder_of(target)
        if to is None or to == frm or to in TOOLBOX:
            continue
        rel_in = os.path.relpath(target, os.path.join(SRC, to))
        if rel_in == 'index.ts':
            continue
        used.setdefault(to, set()).add(rel_in)
        rewrites.append(path)

for cap, files in used.items():
    index = os.path.join(SRC, cap, 'index.ts')
    existing = open(index).read() if os.path.exists(index) else None
    if existing is not None and not existing.startswith('// The public interface of'):
        # A hand-written index (emv/): add what is missing.
        lines = existing.rstrip('\n').split('\n')
        for f in sorted(files):
            line = f"export * from './{f}';"
            if line not in lines:
                lines.append(line)
        open(index, 'w').write('\n'.join(lines) + '\n')
        continue
    prior = set()
    if existing is not None:
        prior = set(re.findall(r"export \* from '\./([^']+)';", existing))
    all_files = sorted(files | prior)
    body = f"// The public interface of {cap}/: what other folders may use (scripts/capability-index.py keeps it).\n"
    body += ''.join(f"export * from './{f}';\n" for f in all_files)
    open(index, 'w').write(body)

for path in sorted(set(rewrites)):
    frm = folder_of(path)
    text = open(path).read()
    def repl(m):
        target = os.path.normpath(os.path.join(os.path.dirname(path), m.group(2)))
        to = folder_of(target)
        if to is None or to == frm or to in TOOLBOX:
            return m.group(0)
        rel = os.path.relpath(os.path.join(SRC, to, 'index.ts'), os.path.dirname(path))
        if not rel.startswith('.'):
            rel = './' + rel
        return f"{m.group(1)}'{rel}'"
    new = SPEC.sub(repl, text)
    if new != text:
        open(path, 'w').write(new)
print(f"{len(set(rewrites))} files rewritten; index.ts for {', '.join(sorted(used))}")
