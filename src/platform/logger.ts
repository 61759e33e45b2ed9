import pino, { type Logger } from 'pino';

/**
 * Structured logs that never contain secrets. Layers, each catching what the one before may miss:
 * 1. what is logged about a request is its method, its path WITHOUT the query string (a query may carry a customer id,
 *    an alias or worse) and its status: never headers (credentials) or bodies (card data, codes, secrets);
 * 2. errors are logged as type, message, code, stack and cause only: a database error's parameters, query and detail
 *    (which can quote the values of a statement) are dropped;
 * 3. any field whose name says it holds a secret (authorization, password, secret, token, cvv, otp, code, pan, card
 *    number, cryptogram, key…) is censored at any depth of the logged object, and pino redacts the known paths;
 * 4. every string of the final line is scrubbed: card-number-shaped digit runs (13–19 digits passing Luhn) are masked
 *    to first 6 / last 4, query strings of paths are cut, and JWTs and the hub's own secret formats (`sk_…`,
 *    `whsec_…`, `op_…`) are replaced, so a secret that reaches a message by accident still does not reach the log.
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

// Digit runs not part of a longer one (a letter next to them does not hide them: `id4111…` is still masked).
const PAN_LIKE = /(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])/g;

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

/** A path's query string (`/v1/x?customerId=…` → `/v1/x`), inside any text. */
const QUERY_STRING = /(\/[^\s?#"'\\]*)\?[^\s#"'\\]*/g;
// The next two start where no letter or digit is just before, unless that letter ends an escape (`\n…` in a line).
/** A JWT (header.payload.signature, base64url; headers start with `{"` = `eyJ`). */
const JWT_LIKE = /(?<!(?<!\\)[A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}/g;
/** The hub's own secret formats: client secrets, webhook signing secrets, operator credentials. */
const HUB_SECRET_LIKE = /(?<!(?<!\\)[A-Za-z0-9])(sk|whsec|op)_[A-Za-z0-9+/=_-]{16,}/g;

/**
 * The scrubbing that is safe on a whole serialized line: what it matches holds no quote or backslash and cannot occur
 * outside a JSON string (it starts with `/` or a letter), so the line stays valid JSON.
 */
function scrubSecretsAndQueries(text: string): string {
  let out = text;
  if (out.includes('?')) out = out.replace(QUERY_STRING, '$1');
  if (out.includes('eyJ')) out = out.replace(JWT_LIKE, '[redacted-jwt]');
  if (out.includes('_')) out = out.replace(HUB_SECRET_LIKE, '$1_[redacted]');
  return out;
}

/** What every string of a log line goes through (see layer 4 above). */
export function scrubText(text: string): string {
  return scrubSecretsAndQueries(maskPans(text));
}

/** A JSON string token (with its quotes), escapes included. */
const JSON_STRING = /"(?:[^"\\]|\\.)*"/g;
/** A digit run as long as a card number, other than pino's `time` (epoch milliseconds). */
const LONG_DIGITS = /(?<!"time":)(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])/;

/**
 * Scrubs every string of a serialized line, never its numbers or structure. Card numbers are masked string by string
 * (a number field is left alone), and only in the few lines with a digit run that long: a token without escapes is
 * its string, masked in place; a token with escapes is decoded first, so that an escape next to a number cannot hide
 * it, and encoded again. The rest goes over the whole line at once (see scrubSecretsAndQueries).
 */
function scrubLine(line: string): string {
  const masked = !LONG_DIGITS.test(line)
    ? line
    : line.replace(JSON_STRING, (token) => {
        if (!token.includes('\\')) return maskPans(token);
        try {
          return JSON.stringify(maskPans(JSON.parse(token) as string));
        } catch {
          return maskPans(token); // not JSON after all (never seen): mask the raw text
        }
      });
  return scrubSecretsAndQueries(masked);
}

/** Field names that hold secrets, compared lower case without `_` and `-`. */
const SECRET_FIELD = /secret|password|passphrase|cryptogram|authorization|cookie|token$|^(pan|cvv|cvc|cvv2|otp|pin|code|codesealed|cardnumber|tokennumber|tokenkey|kek|key|masterkey|privatekey|apikey)$/;
const isSecretField = (name: string) => SECRET_FIELD.test(name.toLowerCase().replace(/[_-]/g, ''));

const MAX_SCRUB_DEPTH = 6;
const MAX_CAUSE_DEPTH = 3;

interface SerializedError {
  readonly type: string;
  readonly message: string;
  readonly code?: string;
  readonly stack?: string;
  readonly cause?: SerializedError;
}

/** An error as logged: type, message, code, stack and cause; nothing else it carries (parameters, query, detail). */
export function serializeError(error: Error, depth = 0): SerializedError {
  const code = (error as { code?: unknown }).code;
  const cause = error.cause instanceof Error && depth < MAX_CAUSE_DEPTH ? serializeError(error.cause, depth + 1) : undefined;
  return {
    type: error.constructor.name === 'Error' ? error.name : error.constructor.name,
    message: error.message,
    ...(typeof code === 'string' ? { code } : {}),
    ...(error.stack !== undefined ? { stack: error.stack } : {}),
    ...(cause !== undefined ? { cause } : {}),
  };
}

function scrub(value: unknown, depth: number): unknown {
  if (value instanceof Error) return serializeError(value);
  if (depth >= MAX_SCRUB_DEPTH || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isSecretField(k) ? '[redacted]' : scrub(v, depth + 1);
  return out;
}

/** The request as logged: method and path (no query string, no headers, no body). */
function serializeRequest(req: { method?: string; url?: string; ip?: string }) {
  const url = req.url ?? '';
  const queryAt = url.indexOf('?');
  return { method: req.method, url: queryAt === -1 ? url : url.slice(0, queryAt), remoteAddress: req.ip };
}

export function createLogger(options: { level: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: {
        req: serializeRequest,
        res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
        // Errors reach here already serialized by scrub() (the formatter runs first); anything else is left as it is.
        err: (err: unknown) => (err instanceof Error ? serializeError(err) : err),
      },
      formatters: {
        log: (object) => {
          const { req, res, ...rest } = object;
          return { ...(req !== undefined ? { req } : {}), ...(res !== undefined ? { res } : {}), ...(scrub(rest, 0) as Record<string, unknown>) };
        },
      },
      hooks: {
        // The last layer: every string of the finished line, message and bindings included.
        streamWrite: scrubLine,
      },
    },
    options.destination,
  );
}

export type { Logger };
