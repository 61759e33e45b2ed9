import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * Capabilities stand alone: the folders under src/ (one per capability, plus platform, the composition root main.ts,
 * the command line and the demo network) import each other without a cycle, so that each can be read, tested and
 * replaced from the ones below it. Counted are the imports that load code — static value imports, re-exports and
 * dynamic import() — not `import type`, which the compiler erases. The layering this allows: platform at the bottom;
 * capabilities above it; main.ts (the one composition root) above them; the demo network and its stories above main;
 * the command line on top.
 */
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name) ? [path] : [];
  });
}

/** The folder a file belongs to: its first path segment under src/, or '(root)' for src/main.ts. */
function folderOf(file: string): string {
  const parts = relative(SRC, file).split(sep);
  return parts.length === 1 ? '(root)' : (parts[0] ?? '(root)');
}

/** Relative module specifiers a file loads at run time. */
export function runtimeImports(text: string): string[] {
  const source = ts.createSourceFile('x.ts', text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined && clause.namedBindings !== undefined && ts.isNamedImports(clause.namedBindings) && clause.namedBindings.elements.length > 0 && clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      if (!typeOnly) found.push(node.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      const typeOnly = node.isTypeOnly || (node.exportClause !== undefined && ts.isNamedExports(node.exportClause) && node.exportClause.elements.every((e) => e.isTypeOnly));
      if (!typeOnly) found.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg !== undefined && ts.isStringLiteralLike(arg)) found.push(arg.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.filter((s) => s.startsWith('.'));
}

/** Every relative module specifier a file names, type-only imports included. */
function importSpecifiers(text: string): string[] {
  const source = ts.createSourceFile('x.ts', text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) found.push(node.moduleSpecifier.text);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg !== undefined && ts.isStringLiteralLike(arg)) found.push(arg.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.filter((s) => s.startsWith('.'));
}

/** Folder → folders it loads, with one example import per edge. */
function folderGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    for (const spec of runtimeImports(readFileSync(file, 'utf8'))) {
      const to = folderOf(resolve(dirname(file), spec));
      if (to === from) continue;
      const edges = graph.get(from) ?? new Map<string, string>();
      if (!edges.has(to)) edges.set(to, `${relative(SRC, file)} → ${spec}`);
      graph.set(from, edges);
    }
  }
  return graph;
}

/** Strongly connected components with more than one folder (Tarjan). */
function cycles(graph: Map<string, Map<string, string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const nodes = new Set([...graph.keys(), ...[...graph.values()].flatMap((e) => [...e.keys()])]);
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      for (let w = stack.pop(); w !== undefined; w = w === v ? undefined : stack.pop()) {
        onStack.delete(w);
        component.push(w);
      }
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of nodes) if (!index.has(v)) connect(v);
  return found;
}

describe('capability folders', () => {
  const graph = folderGraph();

  it('load each other without a cycle', () => {
    const described = cycles(graph).map((component) =>
      component
        .flatMap((a) => component.filter((b) => graph.get(a)?.has(b)).map((b) => `${a} → ${b} (${graph.get(a)?.get(b) ?? ''})`))
        .join('\n'),
    );
    expect(described, `import cycles between folders under src/:\n${described.join('\n\n')}`).toEqual([]);
  });

  it('keep the layering: platform loads no capability, no capability loads main.ts, only the command line and the demo network load the demo network', () => {
    const offending: string[] = [];
    for (const [from, edges] of graph) {
      for (const [to, example] of edges) {
        if (from === 'platform') offending.push(`platform → ${to} (${example})`);
        if (to === '(root)' && from !== 'demo' && from !== 'cli') offending.push(`${from} → main.ts (${example})`);
        if (to === 'demo' && from !== 'cli') offending.push(`${from} → demo (${example})`);
        if (to === 'cli') offending.push(`${from} → cli (${example})`);
      }
    }
    expect(offending).toEqual([]);
  });

  it('use each other only through the public module: an import into another folder names its index.ts (platform, the shared toolbox, excepted)', () => {
    const deep: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const from = folderOf(file);
      for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
        const target = resolve(dirname(file), spec);
        const to = folderOf(target);
        if (to === from || to === '(root)' || to === 'platform') continue;
        if (relative(join(SRC, to), target) !== 'index.ts') deep.push(`${relative(SRC, file)} → ${spec}`);
      }
    }
    expect(deep, `imports past another capability's index.ts (python3 scripts/capability-index.py rewrites them):\n${deep.join('\n')}`).toEqual([]);
  });

  it('the check sees what it must: value imports and dynamic imports count, type-only imports do not', () => {
    expect(runtimeImports(`import { a } from './a.ts'; import type { B } from '../b.ts'; import { type C } from '../c.ts'; export { d } from './d.ts'; export type { E } from './e.ts'; const f = await import('../f.ts');`)).toEqual([
      './a.ts',
      './d.ts',
      '../f.ts',
    ]);
  });
});
