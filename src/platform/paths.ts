import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package's root directory (package.json, migrations/, web/dist/), found by walking up from this module, so that
 * the same code finds its files whether it runs from the sources (src/platform/paths.ts, through tsx) or from the
 * build (dist/platform/paths.js, or a build made elsewhere under the package, as the build test does).
 */
export function findPackageRoot(from: string): string {
  for (let dir = from; ; ) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'migrations'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package root (a directory with package.json and migrations/) above ${from}`);
    dir = up;
  }
}

export const PACKAGE_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
