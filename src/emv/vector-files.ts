/**
 * Test support: reads the shared known-answer files at ../shared/vectors. A missing file throws instead of skipping,
 * because a suite that silently passes without its vectors proves nothing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function readSharedVectorFile(relativeToRepoRoot: string): string {
  const url = new URL(`../../../shared/vectors/${relativeToRepoRoot}`, import.meta.url);
  const path = fileURLToPath(url);
  if (!existsSync(path)) {
    throw new Error(`shared test vectors not found at ${path}: the ../shared folder must be present next to the repository (see ../shared/README.md)`);
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
