import { describe, expect, it } from 'vitest';
import { decodeCpm } from './cpm.ts';
import { decodeMpm, describeMpm } from './mpm.ts';
import { runCli } from '../cli/cli.ts';
import { runQrCommand } from './qr-cli.ts';
import { dataLines, readTestDataFile } from './vector-files.ts';

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runQrCommand(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

const mpmLines = dataLines(readTestDataFile('emv-qr/mpm-vectors.txt'));
const emvcoSample = mpmLines.find((l) => l.includes('BEST TRANSPORT'))?.replace(/^VALID\|/, '') ?? '';
const cpmSample = dataLines(readTestDataFile('emv-cpm/cpm-vectors.txt')).find((l) => l.startsWith('BASE64|'))?.slice('BASE64|'.length) ?? '';

const ENCODE_ARGS = ['encode', '--merchant-id', 'M0001', '--name', 'BEST TRANSPORT', '--city', 'BEIJING', '--mcc', '5812', '--currency', '156', '--country', 'CN'];

describe('qr decode', () => {
  it('prints raw fields and the friendly view of an MPM payload', async () => {
    const result = await run(['decode', emvcoSample]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const printed = JSON.parse(result.stdout) as { mode: string; fields: unknown; view: unknown };
    const decoded = decodeMpm(emvcoSample);
    if (!decoded.ok) throw new Error('sample must decode');
    expect(printed.mode).toBe('mpm');
    expect(printed.fields).toEqual(JSON.parse(JSON.stringify(decoded.value.fields)));
    expect(printed.view).toEqual(JSON.parse(JSON.stringify(describeMpm(decoded.value))));
  });

  it('exits 2 with the reason on stderr for an invalid payload', async () => {
    const corrupted = emvcoSample.slice(0, -4) + '0000';
    const result = await run(['decode', corrupted]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('qr_invalid');
    expect(result.stderr).toContain('crc_mismatch');
  });

  it('decodes a CPM payload recognised by its hQ prefix, and with --cpm', async () => {
    for (const args of [['decode', cpmSample], ['decode', '--cpm', cpmSample]]) {
      const result = await run(args);
      expect(result.code).toBe(0);
      const printed = JSON.parse(result.stdout) as { mode: string; view: { token: string; cryptogram: string }; tlv: { tag: string }[] };
      const decoded = decodeCpm(cpmSample);
      if (!decoded.ok) throw new Error('sample must decode');
      expect(printed.mode).toBe('cpm');
      expect(printed.view.token).toBe(decoded.value.token);
      expect(printed.view.cryptogram).toBe(decoded.value.cryptogram);
      expect(printed.tlv.map((t) => t.tag)).toEqual(['85', '61', '61', '62']);
    }
  });

  it('exits 2 for a broken CPM payload forced with --cpm', async () => {
    const result = await run(['decode', '--cpm', 'AAAA']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('cpm_invalid');
  });

  it('exits 64 on usage errors', async () => {
    expect((await run([])).code).toBe(64);
    expect((await run(['decode'])).code).toBe(64);
    expect((await run(['decode', 'a', 'b'])).code).toBe(64);
    expect((await run(['decode', '--bogus', 'a'])).code).toBe(64);
    expect((await run(['frobnicate'])).code).toBe(64);
  });
});

describe('qr help', () => {
  it.each([[['--help']], [['help']], [['-h']], [['encode', '--help']], [['decode', '--help']], [['encode', '--merchant-id', 'M1', '--help']]])('%j prints the usage on stdout and exits 0', async (args) => {
    const result = await run(args);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('hutong qr encode --merchant-id ID');
    expect(result.stdout).toContain('--gui GUID');
  });

  it('answers `hutong qr encode --help` through the hub’s CLI the same way', async () => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(['qr', 'encode', '--help'], { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain('hutong qr decode [--cpm] <payload>');
    expect(stdout).not.toContain('Unknown option');
  });
});

describe('qr encode', () => {
  it('prints a payload that decodes to the given fields', async () => {
    const result = await run([...ENCODE_ARGS, '--amount', '12.30', '--bill', 'INV-7', '--name-zh', '最佳运输', '--city-zh', '北京', '--tag', '29', '--gui', 'cn.example']);
    expect(result.code).toBe(0);
    const payload = result.stdout.trim();
    const decoded = decodeMpm(payload, { requireEmvcoMandatory: true });
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
    expect(describeMpm(decoded.value)).toMatchObject({
      pointOfInitiation: 'dynamic',
      merchantAccounts: [{ tag: '29', globallyUniqueId: 'cn.example', fields: { '01': 'M0001' } }],
      mcc: '5812',
      currencyNumeric: '156',
      amount: '12.30',
      country: 'CN',
      merchantName: 'BEST TRANSPORT',
      merchantCity: 'BEIJING',
      additionalData: { billNumber: 'INV-7' },
      alternateLanguage: { language: 'ZH', merchantName: '最佳运输', merchantCity: '北京' },
    });
  });

  it('makes a static code without an amount', async () => {
    const result = await run(ENCODE_ARGS);
    const decoded = decodeMpm(result.stdout.trim());
    expect(decoded.ok && describeMpm(decoded.value).pointOfInitiation).toBe('static');
  });

  it.each([
    ['a missing required option', ENCODE_ARGS.slice(0, -2), '--country'],
    ['an unknown option', [...ENCODE_ARGS, '--colour', 'red'], 'colour'],
    ['a bad tag', [...ENCODE_ARGS, '--tag', '99'], 'merchant account tag'],
    ['a bad amount', [...ENCODE_ARGS, '--amount', '12,30'], 'amount'],
    ['a name above 99 characters', [...ENCODE_ARGS.slice(0, 4), 'N'.repeat(100), ...ENCODE_ARGS.slice(5)], 'tag 59'],
    ['--city-zh without --name-zh', [...ENCODE_ARGS, '--city-zh', '北京'], '--name-zh'],
  ])('exits 64 for %s', async (_name, args, mention) => {
    const result = await run(args);
    expect(result.code).toBe(64);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(mention);
  });
});
