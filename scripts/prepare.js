#!/usr/bin/env node
// `prepare` (run by `npm install`, `npm ci`, and by `npx hutong` the first time, which links the package into npx's
// cache): runs `npm run build` unless the build in dist/ and web/dist/ is newer than everything it is made from, so
// that a repeated install or the first `npx hutong` does not rebuild for nothing. `npm run build` always builds.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');

function buildStartedAt() {
  try {
    const stamp = JSON.parse(readFileSync(join(root, 'dist', 'build.json'), 'utf8'));
    return typeof stamp.startedAt === 'number' && stamp.checked === true ? stamp.startedAt : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a file the build reads changed after the build began. */
function changedSince(time) {
  const files = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build-server.js'].map((f) => join(root, f));
  for (const dir of ['src', 'web']) {
    for (const entry of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
      const path = join(entry.parentPath, entry.name);
      if (entry.isFile() && !path.startsWith(join(root, 'web', 'dist'))) files.push(path);
    }
  }
  return files.some((f) => existsSync(f) && statSync(f).mtimeMs > time);
}

const startedAt = buildStartedAt();
if (startedAt !== undefined && existsSync(join(root, 'dist', 'cli', 'cli.js')) && existsSync(join(root, 'web', 'dist', 'wallet', 'index.html')) && !changedSince(startedAt)) {
  process.stdout.write('hutong: the build in dist/ and web/dist/ is current (npm run build rebuilds)\n');
} else {
  const npm = process.env.npm_execpath;
  const built = npm !== undefined ? spawnSync(process.execPath, [npm, 'run', 'build'], { stdio: 'inherit', cwd: root }) : spawnSync('npm', ['run', 'build'], { stdio: 'inherit', cwd: root, shell: process.platform === 'win32' });
  process.exitCode = built.status ?? 1;
}
