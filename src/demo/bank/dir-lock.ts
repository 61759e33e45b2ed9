import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { StartupError } from '../../platform/startup-error.ts';

/**
 * Holds a reference bank's data directory for one opener at a time. PGlite has no lock of its own: two processes (or
 * two banks in one process) on one directory each keep their own copy of the books in memory and overwrite each
 * other's files, so payments the hub saw completed vanish from the bank after a restart. The lock is a file beside the
 * directory (PGlite initialises a directory only while it is empty), holding the opener's pid; a lock whose process is
 * gone is stale and taken over.
 */
export interface DirLock {
  release(): void;
}

const lockPath = (dataDir: string) => `${resolve(dataDir)}.lock`;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

export function lockDataDir(dataDir: string): DirLock {
  const path = lockPath(dataDir);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          rmSync(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
      if (Number.isInteger(holder) && holder > 0 && alive(holder)) {
        throw new StartupError(
          `the bank's data directory ${resolve(dataDir)} is in use by process ${holder}${holder === process.pid ? ' (this one)' : ''}: ` +
            'two banks on one directory would lose each other\'s books. Pass another --data-dir, or stop the other one ' +
            `(a hub started with --demo holds its connected bank's directory while it runs; ${path} names the holder)`,
        );
      }
      rmSync(path, { force: true });
    }
  }
  throw new StartupError(`could not lock the bank's data directory ${resolve(dataDir)} (${path})`);
}
