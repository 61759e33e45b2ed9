/**
 * `hutong qr ...`: decode merchant-presented (MPM) or consumer-presented (CPM) QR payloads and encode the hub's own
 * MPM codes. Exit codes follow sysexits: 0 ok, 2 invalid payload, 64 usage error.
 */
import { parseArgs } from 'node:util';
import { berTlvToJson } from './ber-tlv.ts';
import { decodeCpm } from './cpm.ts';
import { decodeMpm, describeMpm, encodeMpm, type MpmEncodeInput } from './mpm.ts';

export interface CliOutput {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

const EXIT_OK = 0;
const EXIT_INVALID_PAYLOAD = 2;
const EXIT_USAGE = 64;
const DEFAULT_GUI = 'cn.hutong.pay';

const USAGE = `usage:
  qr decode [--cpm] <payload>
  qr encode --merchant-id ID --name NAME --city CITY --mcc 5812 --currency 156 --country CN
            [--amount 12.30] [--bill BILL] [--name-zh 名字] [--city-zh 城市] [--gui GUID] [--tag 26]
`;

function usage(out: CliOutput, problem: string): number {
  out.stderr(`${problem}\n${USAGE}`);
  return EXIT_USAGE;
}

function toJson(value: unknown): string {
  // Amounts are bigint in the CPM view; JSON has no bigint, and a string keeps every digit.
  return `${JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function decodeCommand(args: string[], out: CliOutput): number {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { cpm: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  } catch (error) {
    return usage(out, errorMessage(error));
  }
  const [payload, ...extra] = parsed.positionals;
  if (payload === undefined || extra.length > 0) return usage(out, 'decode takes exactly one payload');
  // 'hQ' is base64 for a leading 0x85 byte, the CPM payload format indicator tag.
  if (parsed.values.cpm === true || payload.startsWith('hQ')) return printCpm(payload, out);
  const decoded = decodeMpm(payload);
  if (!decoded.ok) {
    out.stderr(`${decoded.error.code}: ${decoded.error.message} (reason: ${decoded.error.details.reason})\n`);
    return EXIT_INVALID_PAYLOAD;
  }
  out.stdout(toJson({ mode: 'mpm', fields: decoded.value.fields, view: describeMpm(decoded.value) }));
  return EXIT_OK;
}

function printCpm(payload: string, out: CliOutput): number {
  const decoded = decodeCpm(payload);
  if (!decoded.ok) {
    out.stderr(`${decoded.error.code}: ${decoded.error.message} (reason: ${decoded.error.details.reason})\n`);
    return EXIT_INVALID_PAYLOAD;
  }
  const { tlv, ...view } = decoded.value;
  out.stdout(toJson({ mode: 'cpm', tlv: berTlvToJson(tlv), view }));
  return EXIT_OK;
}

const ENCODE_OPTIONS = {
  'merchant-id': { type: 'string' },
  name: { type: 'string' },
  city: { type: 'string' },
  mcc: { type: 'string' },
  currency: { type: 'string' },
  country: { type: 'string' },
  amount: { type: 'string' },
  bill: { type: 'string' },
  'name-zh': { type: 'string' },
  'city-zh': { type: 'string' },
  gui: { type: 'string' },
  tag: { type: 'string' },
} as const;

type EncodeValues = ReturnType<typeof parseArgs<{ options: typeof ENCODE_OPTIONS }>>['values'];

const REQUIRED_ENCODE_OPTIONS = ['merchant-id', 'name', 'city', 'mcc', 'currency', 'country'] as const;

function alternateLanguage(values: EncodeValues): MpmEncodeInput['alternateLanguage'] | string {
  const nameZh = values['name-zh'];
  const cityZh = values['city-zh'];
  if (nameZh === undefined) return cityZh === undefined ? undefined : '--city-zh needs --name-zh';
  return cityZh === undefined ? { language: 'ZH', merchantName: nameZh } : { language: 'ZH', merchantName: nameZh, merchantCity: cityZh };
}

/** Builds the encoder input, or returns the usage problem as a string. */
function encodeInput(values: EncodeValues): MpmEncodeInput | string {
  const missing = REQUIRED_ENCODE_OPTIONS.filter((name) => values[name] === undefined);
  if (missing.length > 0) return `missing ${missing.map((m) => `--${m}`).join(', ')}`;
  const tagText = values.tag ?? '26';
  if (!/^[0-9]{2}$/.test(tagText)) return `--tag must be two digits (26–51), got "${tagText}"`;
  const alt = alternateLanguage(values);
  if (typeof alt === 'string') return alt;
  return {
    pointOfInitiation: values.amount === undefined ? 'static' : 'dynamic',
    merchantAccount: { tag: Number(tagText), globallyUniqueId: values.gui ?? DEFAULT_GUI, merchantId: values['merchant-id'] ?? '' },
    mcc: values.mcc ?? '',
    currencyNumeric: values.currency ?? '',
    country: values.country ?? '',
    merchantName: values.name ?? '',
    merchantCity: values.city ?? '',
    ...(values.amount === undefined ? {} : { amount: values.amount }),
    ...(values.bill === undefined ? {} : { billNumber: values.bill }),
    ...(alt === undefined ? {} : { alternateLanguage: alt }),
  };
}

function encodeCommand(args: string[], out: CliOutput): number {
  let values: EncodeValues;
  try {
    values = parseArgs({ args, options: ENCODE_OPTIONS, allowPositionals: false, strict: true }).values;
  } catch (error) {
    return usage(out, errorMessage(error));
  }
  const input = encodeInput(values);
  if (typeof input === 'string') return usage(out, input);
  const encoded = encodeMpm(input);
  if (!encoded.ok) {
    const tag = encoded.error.details.tag === undefined ? '' : ` (tag ${encoded.error.details.tag})`;
    return usage(out, `cannot encode${tag}: ${encoded.error.message}`);
  }
  out.stdout(`${encoded.value}\n`);
  return EXIT_OK;
}

/** `args` excludes the leading "qr", e.g. ['decode', payload]. */
export async function runQrCommand(args: string[], out: CliOutput): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case 'decode':
      return decodeCommand(rest, out);
    case 'encode':
      return encodeCommand(rest, out);
    default:
      return usage(out, command === undefined ? 'missing command' : `unknown command "${command}"`);
  }
}
