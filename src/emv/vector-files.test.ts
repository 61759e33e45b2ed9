import { describe, expect, it } from 'vitest';
import { dataLines, readSharedVectorFile } from './vector-files.ts';

describe('shared vector loading', () => {
  it('throws a clear error instead of skipping when a file is missing', () => {
    expect(() => readSharedVectorFile('emv-qr/does-not-exist.txt')).toThrow(/shared test vectors not found at .*does-not-exist\.txt/);
  });

  it('drops comments and blank lines', () => {
    expect(dataLines('# c\n\nVALID|x\r\n  \nINVALID|y')).toEqual(['VALID|x', 'INVALID|y']);
  });
});
