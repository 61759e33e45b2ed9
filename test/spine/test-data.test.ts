import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const DATA = join(ROOT, 'test', 'data');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)).split(sep).join('/'))
    .sort();
}

/**
 * `npm test` must pass on a fresh clone: every file a test reads is in the repository, and test/data/SOURCES.md says
 * where each one comes from (a known answer nobody can trace proves little).
 */
describe('test data', () => {
  const sources = readFileSync(join(DATA, 'SOURCES.md'), 'utf8');
  const listed = new Map([...sources.matchAll(/^([0-9a-f]{64}) {2}(\S+)$/gm)].map((m) => [m[2] ?? '', m[1] ?? '']));

  it('lists every file of test/data in SOURCES.md, with its origin and its SHA-256', () => {
    const files = filesUnder(DATA).filter((f) => f !== 'SOURCES.md');
    expect(files.length).toBeGreaterThanOrEqual(6);
    expect([...listed.keys()].sort()).toEqual(files);
    for (const file of files) {
      expect(sources, `${file} has a row in the table`).toContain(`| \`${file}\` |`);
      expect(createHash('sha256').update(readFileSync(join(DATA, file))).digest('hex'), `${file} is the copy SOURCES.md names`).toBe(listed.get(file));
    }
  });

  it('no test or source file reads anything outside the repository (the ../shared folder of our machines)', () => {
    const outside = /\.\.\/shared\b|shared\/vectors|\/work\/shared/;
    const offenders: string[] = [];
    for (const dir of ['src', 'test', 'bin', 'bench']) {
      for (const file of filesUnder(join(ROOT, dir))) {
        const path = `${dir}/${file}`;
        if (!/\.(ts|tsx|js|mjs|json)$/.test(file) || path === 'test/spine/test-data.test.ts') continue;
        if (outside.test(readFileSync(join(ROOT, path), 'utf8'))) offenders.push(path);
      }
    }
    for (const file of ['package.json', 'vitest.config.ts']) if (outside.test(readFileSync(join(ROOT, file), 'utf8'))) offenders.push(file);
    expect(offenders).toEqual([]);
  });
});
