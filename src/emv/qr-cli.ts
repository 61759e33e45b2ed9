/**
 * `hutong qr ...`: decode merchant-presented (MPM) or consumer-presented (CPM) QR payloads and encode the hub's own
 * MPM codes. Exit codes follow sysexits: 0 ok (and for --help), 2 invalid payload, 64 usage error.
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
  hutong qr decode [--cpm] <payload>
      Decode an EMV QR payload to JSON: merchant-presented (MPM) text, or consumer-presented (CPM) base64, recognised
      by its "hQ" start or forced with --cpm. Exit 2 names the reason when the payload is invalid. Accepted departures
      from the specification (a code longer than 512 characters, a lowercase CRC) are listed under "warnings".

  hutong qr encode --merchant-id ID --name NAME --city CITY --mcc 5812 --currency 156 --country CN [options]
      Encode a merchant-presented payload (uppercase CRC, at most 512 characters).
      --merchant-id ID     the merchant's id in the scheme (sub-field 01 of the merchant account template)
      --name, --city       merchant name and city (tags 59, 60)
      --mcc                merchant category code, 4 digits (tag 52)
      --currency           ISO 4217 numeric currency, e.g. 156 for CNY (tag 53)
      --country            ISO 3166-1 alpha-2 country, e.g. CN (tag 58)
      --amount 12.30       an amount makes the code dynamic (point of initiation 12); without, static (11)
      --bill BILL          bill number (tag 62, sub-field 01)
      --name-zh, --city-zh name and city in Chinese (alternate language template 64)
      --gui GUID           the scheme's globally unique identifier (default ${DEFAULT_GUI})
      --tag 26             the merchant account template to use, 26–51 (default 26)

  hutong qr --help | hutong qr <decode|encode> --help
      Print this help.
`;

function usage(out: CliOutput, problem: string): number {
  out.stderr(`${problem}\n${USAGE}`);
  return EXIT_USAGE;
}

function help(out: CliOutput): number {
  out.stdout(USAGE);
  return EXIT_OK;
}

const HELP_FLAGS = new Set(['--help', '-h', 'help']);

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
  out.stdout(toJson({ mode: 'mpm', fields: decoded.value.fields, view: describeMpm(decoded.value), warnings: decoded.value.warnings }));
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
  // Asking for help is not a usage error, whatever comes with it.
  if (command === undefined ? false : HELP_FLAGS.has(command) || rest.some((arg) => arg === '--help' || arg === '-h')) return help(out);
  switch (command) {
    case 'decode':
      return decodeCommand(rest, out);
    case 'encode':
      return encodeCommand(rest, out);
    default:
      return usage(out, command === undefined ? 'missing command' : `unknown command "${command}"`);
  }
}
