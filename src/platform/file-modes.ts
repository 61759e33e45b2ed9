import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';

/**
 * The hub's files are private to the user it runs as: the data directory (the embedded database, the generated
 * operator credential) and the key directory are 0700, the files in them 0600 (or at least not readable by group or
 * others). The hub creates them so and warns at start about any it finds looser.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
/** Group and other permission bits: none of them may be set on a private file or directory. */
const GROUP_OTHER_BITS = 0o077;

/** Creates a directory (and missing parents) with mode 0700; an existing directory is left as it is. */
export function ensurePrivateDir(path: string): void {
  if (existsSync(path)) return;
  // mkdir's mode is masked by the process umask, which can only remove bits: the result is 0700 at most.
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * Makes every file the process creates from now on private (umask 077). PGlite writes its files through Emscripten's
 * node filesystem with mode 0777 masked by the umask (so 0755 data files under the usual 022). Process-wide by
 * nature, which is what a hub process wants; a worker thread may not change it, and then only the start-time
 * tightening below applies.
 */
export function restrictUmask(): void {
  try {
    process.umask(GROUP_OTHER_BITS);
  } catch {
    // ERR_WORKER_UNSUPPORTED_OPERATION in a worker thread: tightenTree still fixes what exists at each start.
  }
}

/**
 * Removes group and other permissions from everything under `root` (not following symbolic links). PGlite's first
 * start copies its initial database into the directory with explicit chmod 0666 (ignoring the umask), and rewrites a
 * few files on every start with 0644; this runs after it opened. Returns how many entries it changed.
 */
export function tightenTree(root: string): number {
  let changed = 0;
  const visit = (path: string) => {
    const stats = lstatSync(path);
    if (stats.isSymbolicLink()) return;
    if ((stats.mode & GROUP_OTHER_BITS) !== 0) {
      chmodSync(path, stats.mode & 0o7777 & ~GROUP_OTHER_BITS);
      changed++;
    }
    if (stats.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  if (existsSync(root)) visit(root);
  return changed;
}

/** The permission bits of a path when group or others have any access to it; undefined when private or absent. */
export function looseMode(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const mode = statSync(path).mode & 0o777;
  return (mode & GROUP_OTHER_BITS) !== 0 ? mode : undefined;
}

export const octal = (mode: number) => `0${mode.toString(8).padStart(3, '0')}`;

/** Whether `path` is `dir` or lies inside it (symbolic links resolved where the paths exist). */
export function isInside(path: string, dir: string): boolean {
  const real = (p: string) => {
    const absolute = resolve(p);
    return existsSync(absolute) ? realpathSync(absolute) : absolute;
  };
  const rel = relative(real(dir), real(path));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * What the hub says at start about its files, one line each: the data directory, the key directory or the key file
 * accessible to other users, and a key file inside the data directory (a copy or backup of the data then carries the
 * key that decrypts its secrets). Paths that do not exist are not reported.
 */
export function privateFileWarnings(paths: { readonly dataDir: string; readonly keyFile?: string | undefined }): string[] {
  const warnings: string[] = [];
  const loose = (what: string, path: string, wanted: number) => {
    const mode = looseMode(path);
    if (mode !== undefined) warnings.push(`${what} ${path} is accessible to other users (mode ${octal(mode)}): chmod ${wanted.toString(8)} ${path}`);
  };
  loose('the data directory', paths.dataDir, PRIVATE_DIR_MODE);
  if (paths.keyFile !== undefined) {
    const keyDir = resolve(paths.keyFile, '..');
    loose('the key directory', keyDir, PRIVATE_DIR_MODE);
    loose('the key file', paths.keyFile, PRIVATE_FILE_MODE);
    if (isInside(paths.keyFile, paths.dataDir)) {
      warnings.push(`the key file ${paths.keyFile} is inside the data directory ${paths.dataDir}: a copy of the data would carry the key that decrypts it; set HUTONG_KEY_DIR to a directory outside it`);
    }
  }
  return warnings;
}
