#!/usr/bin/env node
// `npm run build:server`: compiles src/ to dist/ with tsc (tsconfig.build.json: the strict options of tsconfig.json,
// .ts import extensions rewritten to .js) and copies the non-TypeScript files the code reads beside it (the demo FX
// rates), then writes dist/build.json, whose `startedAt` bin/hutong.js compares with the sources' times.
// Options: --out-dir <dir> (default dist), --no-check (emit without type checking: the build test; `npm run typecheck`
// and the default build check types).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out-dir');
const outDir = resolve(root, outIndex >= 0 && args[outIndex + 1] !== undefined ? args[outIndex + 1] : 'dist');
const noCheck = args.includes('--no-check');
const startedAt = Date.now();

rmSync(outDir, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const compiled = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', outDir, ...(noCheck ? ['--noCheck'] : [])], { stdio: 'inherit' });
if (compiled.status !== 0) process.exit(compiled.status ?? 1);

// Data files under src/ (not TypeScript, not documentation) go where the compiled modules look for them.
const src = join(root, 'src');
for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || /\.(ts|tsx|md)$/.test(entry.name)) continue;
  const from = join(entry.parentPath, entry.name);
  const to = join(outDir, relative(src, from));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
}
writeFileSync(join(outDir, 'build.json'), `${JSON.stringify({ startedAt, checked: !noCheck }, null, 2)}\n`);
