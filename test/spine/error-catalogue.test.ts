import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, errorCatalogue } from '../../src/api/errors.ts';

/**
 * The one error catalogue (src/api/errors.ts). The compiler already refuses a code defined twice (one object literal)
 * or missing (`satisfies Record<ErrorCode, …>`); this checks what types cannot see: codes written at call sites behind
 * a cast or a string, and entries without a usable status or message.
 */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.test.ts') ? [path] : [];
  });
}

describe('error catalogue', () => {
  it('gives every code an HTTP error status and a default message', () => {
    for (const [code, entry] of Object.entries(errorCatalogue)) {
      expect(code, code).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(entry.status, code).toBeGreaterThanOrEqual(400);
      expect(entry.status, code).toBeLessThan(600);
      expect(entry.message.length, code).toBeGreaterThan(5);
    }
  });

  it('defines each code once (the literal, read as text: a duplicate key would also fail to compile)', () => {
    const text = readFileSync(new URL('../../src/api/errors.ts', import.meta.url), 'utf8');
    const keys = [...text.matchAll(/^ {2}([a-z][a-z0-9_]*): \{ status: /gm)].map((m) => m[1]);
    expect(keys.length).toBe(ERROR_CODES.length);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('knows every code a call site answers', () => {
    const used = new Map<string, string>();
    const patterns = [/\berr\(\s*'([a-z][a-z0-9_]*)'/g, /\bcode:\s*'([a-z][a-z0-9_]*)'(?:\s+as const)?\s*,\s*message:/g, /\bfail\(\s*\{\s*code:\s*'([a-z][a-z0-9_]*)'/g];
    // Findings of `hutong audit verify` and the QR decoder's warnings share the { code, message } shape but are reports,
    // not answers of the API.
    const reports = ['/audit/verify.ts', '/emv/mpm.ts'];
    for (const file of sourceFiles(new URL('../../src', import.meta.url).pathname).filter((f) => !reports.some((r) => f.endsWith(r)))) {
      const text = readFileSync(file, 'utf8');
      for (const pattern of patterns) for (const m of text.matchAll(pattern)) if (m[1] !== undefined && !used.has(m[1])) used.set(m[1], file);
    }
    expect(used.size).toBeGreaterThan(100);
    const unknown = [...used].filter(([code]) => !(code in errorCatalogue)).map(([code, file]) => `${code} (${file})`);
    expect(unknown).toEqual([]);
  });
});
