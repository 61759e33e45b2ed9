import { describe, expect, it } from 'vitest';
import { dataLines, readTestDataFile } from './vector-files.ts';

describe('test data loading', () => {
  it('reads a file from the repository’s test/data', () => {
    expect(readTestDataFile('emv-qr/mpm-vectors.txt')).toContain('VALID|');
  });

  it('throws a clear error instead of skipping when a file is missing', () => {
    expect(() => readTestDataFile('emv-qr/does-not-exist.txt')).toThrow(/test data not found at .*test\/data\/emv-qr\/does-not-exist\.txt/);
  });

  it('drops comments and blank lines', () => {
    expect(dataLines('# c\n\nVALID|x\r\n  \nINVALID|y')).toEqual(['VALID|x', 'INVALID|y']);
  });
});
