/**
 * Test support: reads the public known-answer files kept in the repository under test/data (their origins are in
 * test/data/SOURCES.md). A missing file throws instead of skipping, because a suite that silently passes without its
 * vectors proves nothing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** `relativeToTestData`: a path under test/data, e.g. "emv-qr/mpm-vectors.txt". */
export function readTestDataFile(relativeToTestData: string): string {
  const path = fileURLToPath(new URL(`../../test/data/${relativeToTestData}`, import.meta.url));
  if (!existsSync(path)) {
    throw new Error(`test data not found at ${path}: every file the tests read lives in test/data (see test/data/SOURCES.md)`);
  }
  return readFileSync(path, 'utf8');
}

/** Non-empty, non-comment lines. */
export function dataLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trimEnd())
    .filter((line) => line.length > 0 && !line.startsWith('#'));
}
