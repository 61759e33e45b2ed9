#!/usr/bin/env node
// The CLI runs the compiled hub in dist/ (`npm run build`, which `npm install` and `npm ci` run through `prepare`).
// In a development checkout whose sources changed after that build, it runs the sources through tsx instead (a
// devDependency), so that what runs is always what is in src/; HUTONG_RUN=dist or HUTONG_RUN=source forces one.
// An image or install without src/ (the Dockerfile's) runs dist/ only.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const built = join(root, 'dist', 'cli', 'cli.js');
const sources = join(root, 'src');

/** When the build in dist/ began (dist/build.json), or undefined when there is no complete build. */
function buildStartedAt() {
  try {
    const stamp = JSON.parse(readFileSync(join(root, 'dist', 'build.json'), 'utf8'));
    return existsSync(built) && typeof stamp.startedAt === 'number' ? stamp.startedAt : undefined;
  } catch {
    return undefined;
  }
}

/** True when some source file changed after the build began (a few ms for the few hundred files of src/). */
function sourcesNewerThan(time) {
  for (const entry of readdirSync(sources, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && statSync(join(entry.parentPath, entry.name)).mtimeMs > time) return true;
  }
  return false;
}

async function fromSource() {
  try {
    const { register } = await import('tsx/esm/api');
    register();
  } catch {
    return false;
  }
  return true;
}

const mode = process.env.HUTONG_RUN;
const startedAt = buildStartedAt();
let entry;
if (mode === 'source' || (mode !== 'dist' && existsSync(sources) && (startedAt === undefined || sourcesNewerThan(startedAt)))) {
  if (await fromSource()) entry = '../src/cli/cli.ts';
  else if (startedAt !== undefined) {
    process.stderr.write('hutong: the sources changed after the build in dist/ and tsx is not installed; running the build (npm run build updates it)\n');
    entry = '../dist/cli/cli.js';
  }
} else if (startedAt !== undefined) entry = '../dist/cli/cli.js';

if (entry === undefined) {
  process.stderr.write('hutong: no build in dist/: run `npm run build` (npm install runs it), or install the dev dependencies to run the sources\n');
  process.exitCode = 1;
} else {
  const { runCli } = await import(entry);
  process.exitCode = await runCli(process.argv.slice(2));
}
