import pino, { type Logger } from 'pino';

/**
 * Structured logs that never contain secrets. Two layers: pino's redaction of the paths known to carry credentials,
 * and a scrubber that masks anything shaped like a card number (13–19 digits passing Luhn) in every string logged,
 * so a card number that reaches a log line by accident still appears only as first 6 / last 4.
 */
const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-operator-token"]',
  'headers.authorization',
  'authorization',
  'password',
  'secret',
  'clientSecret',
  'client_secret',
  'cvv',
  'otp',
  'code',
  'pan',
  'cardNumber',
  '*.cardNumber',
  '*.pan',
  '*.cvv',
  '*.secret',
  '*.otp',
];

const PAN_LIKE = /\b\d(?:[ -]?\d){12,18}\b/g;

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** Masks card-number-shaped digit runs: first 6 and last 4 at most stay visible. */
export function maskPans(text: string): string {
  return text.replace(PAN_LIKE, (match) => {
    const digits = match.replace(/[ -]/g, '');
    if (digits.length < 13 || digits.length > 19 || !luhnValid(digits)) return match;
    return `${digits.slice(0, 6)}${'*'.repeat(digits.length - 10)}${digits.slice(-4)}`;
  });
}

const MAX_SCRUB_DEPTH = 6;

function scrub(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return maskPans(value);
  if (depth >= MAX_SCRUB_DEPTH || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { type: value.name, message: maskPans(value.message) };
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1);
  return out;
}

export function createLogger(options: { level: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Request lines carry the method and path only: never headers (credentials) or bodies (card data).
      serializers: {
        req: (req: { method?: string; url?: string; ip?: string }) => ({ method: req.method, url: maskPans(req.url ?? ''), remoteAddress: req.ip }),
        res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
        err: pino.stdSerializers.err,
      },
      formatters: {
        log: (object) => {
          const { req, res, ...rest } = object;
          return { ...(req !== undefined ? { req } : {}), ...(res !== undefined ? { res } : {}), ...(scrub(rest, 0) as Record<string, unknown>) };
        },
      },
      hooks: {
        logMethod(args, method) {
          // Scrub the message string too (the formatter sees only the merged object).
          method.apply(this, args.map((a) => (typeof a === 'string' ? maskPans(a) : a)) as Parameters<typeof method>);
        },
      },
    },
    options.destination,
  );
}

export type { Logger };
