import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent } from 'undici';

/**
 * The outbound policy: the one place that decides where the hub may send an HTTP request (webhook deliveries, issuers'
 * real-time authorizations). A participant chooses those URLs, so without it a participant could make the hub call
 * its own network (SSRF): the cloud metadata service, an admin port on loopback, a database on a private address.
 *
 * - At registration `checkUrl` parses the URL, refuses credentials and schemes other than http(s) (http only in demo
 *   mode), and refuses hosts that are, or resolve to, addresses the hub must not reach. It answers early; it is not
 *   the guard, since DNS can change after registration.
 * - At call time `fetch` checks the URL again, resolves the host once through the injectable resolver, refuses the
 *   call if ANY resolved address is disallowed, and connects only to the addresses it checked (the lookup of the
 *   connection is the checked one, so DNS rebinding between a check and the connect cannot happen). Redirects are
 *   never followed: a 3xx comes back to the caller as it is, and callers treat it as a failure.
 *
 * Demo mode (`config.demo`) lets http and loopback/private addresses through (the demo's banks and webhook receivers
 * run on this machine); cloud metadata, link-local, CGNAT, unspecified, multicast and reserved addresses stay refused
 * in every mode.
 */

/** One address a host name resolved to. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Resolves a host name to every address it has (the default is the system resolver, getaddrinfo, like any client). */
export type HostResolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/** What the hub's outbound calls send; `typeof fetch` fits it, so tests can inject a plain fetch. */
export interface OutboundRequest {
  readonly method: 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Redirects are never followed: a 3xx is answered to the caller. */
  readonly redirect: 'manual';
  readonly signal: AbortSignal;
}

/** What the hub reads of an answer (a fetch `Response` has all of it, so tests can inject a plain fetch). */
export interface OutboundResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
  /** The body, to discard unread. */
  readonly body: { cancel(): Promise<void> } | null;
}

export type OutboundFetch = (url: string, init: OutboundRequest) => Promise<OutboundResponse>;

export type OutboundRefusalReason =
  | 'malformed_url'
  | 'scheme_not_allowed'
  | 'credentials_in_url'
  | 'metadata_address'
  | 'address_not_allowed';

export type OutboundVerdict = { readonly allowed: true; readonly url: URL } | { readonly allowed: false; readonly reason: OutboundRefusalReason; readonly message: string };

/** Thrown by the guarded fetch (directly, or as the `cause` of undici's "fetch failed") when the policy refuses a call. */
export class OutboundRefusedError extends Error {
  override readonly name = 'OutboundRefusedError';
  constructor(
    readonly reason: OutboundRefusalReason,
    message: string,
  ) {
    super(message);
  }
}

export type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

export interface OutboundPolicy {
  readonly demo: boolean;
  /** Registration-time check: the URL's form and every address its host resolves to now. */
  checkUrl(url: string): Promise<OutboundVerdict>;
  /** The same check without DNS (the URL's form, literal addresses, well-known names); cheap enough for a transaction. */
  checkUrlForm(url: string): OutboundVerdict;
  /** A fetch that applies the policy at call time, pins the checked addresses and never follows redirects. */
  readonly fetch: OutboundFetch;
  /**
   * The lookup of every connection `fetch` opens (net.connect's `lookup`): one resolution, refused if any address is
   * disallowed, answering only the checked addresses.
   */
  readonly lookup: (hostname: string, options: LookupOptions, callback: LookupCallback) => void;
  close(): Promise<void>;
}

export const OUTBOUND_LIMITS = {
  /** A host name that takes longer than this to resolve is refused (call time) or left to the call-time check (registration). */
  resolveTimeoutMs: 3_000,
  /** Open connections per origin; further calls to the same origin wait for one. */
  connectionsPerOrigin: 32,
  connectTimeoutMs: 5_000,
} as const;

/** Cloud instance-metadata endpoints: refused in every mode, demo included. */
const METADATA_ADDRESSES = new Set([
  '169.254.169.254', // AWS, GCP, Azure, OCI, DigitalOcean, OpenStack
  '169.254.170.2', // AWS ECS task metadata
  '169.254.170.23', // AWS EKS pod identity
  '100.100.100.200', // Alibaba Cloud
  'fd00:ec2::254', // AWS IMDS over IPv6
  'fd00:ec2::23', // AWS EKS pod identity over IPv6
].map((a) => ipaddr.parse(a).toNormalizedString()));

const METADATA_HOSTNAMES = new Set(['metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal', 'metadata.tencentyun.com']);

/** How an address may be used: anywhere, only in demo mode (this machine, private networks), or never. */
export type AddressClass =
  | { readonly use: 'public' }
  | { readonly use: 'demo_only'; readonly kind: string }
  | { readonly use: 'never'; readonly kind: string; readonly metadata: boolean };

const DEMO_ONLY_V4 = new Map<string, string>([
  ['loopback', 'a loopback address'],
  ['private', 'a private address'],
]);
const DEMO_ONLY_V6 = new Map<string, string>([
  ['loopback', 'a loopback address'],
  ['uniqueLocal', 'a unique-local (private) address'],
]);
const NEVER_KINDS: Readonly<Record<string, string>> = {
  unspecified: 'an unspecified address',
  linkLocal: 'a link-local address',
  carrierGradeNat: 'a carrier-grade NAT (shared) address',
  multicast: 'a multicast address',
  broadcast: 'the broadcast address',
};

function classifyV4(address: ipaddr.IPv4): AddressClass {
  if (METADATA_ADDRESSES.has(address.toNormalizedString())) return { use: 'never', kind: 'a cloud metadata address', metadata: true };
  const range = address.range();
  if (range === 'unicast') return { use: 'public' };
  const demoOnly = DEMO_ONLY_V4.get(range);
  if (demoOnly !== undefined) return { use: 'demo_only', kind: demoOnly };
  return { use: 'never', kind: NEVER_KINDS[range] ?? 'a reserved address', metadata: false };
}

/** The IPv4 address an IPv6 form carries, for the forms that reach an IPv4 host: mapped, compatible, NAT64, 6to4. */
function embeddedV4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = address.parts;
  const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const range = address.range();
  if (range === 'ipv4Mapped' || range === 'rfc6145') return v4(p[6] ?? 0, p[7] ?? 0);
  // IPv4-compatible (::a.b.c.d, deprecated but still parsed by stacks): the first 96 bits are zero.
  if (p.slice(0, 6).every((x) => x === 0)) return v4(p[6] ?? 0, p[7] ?? 0);
  // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): the last 32 bits are the IPv4 host.
  if (address.match(ipaddr.IPv6.parseCIDR('64:ff9b::/96'))) return v4(p[6] ?? 0, p[7] ?? 0);
  // 6to4 (2002::/16): bits 16–48 are the IPv4 host.
  if (range === '6to4') return v4(p[1] ?? 0, p[2] ?? 0);
  return undefined;
}

/** Classifies one IP address (v4, v6, or any IPv6 form of a v4 address); an unparseable string is never allowed. */
export function classifyAddress(text: string): AddressClass {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (!ipaddr.isValid(bare)) return { use: 'never', kind: 'not an IP address', metadata: false };
  const address = ipaddr.parse(bare);
  if (address.kind() === 'ipv4') return classifyV4(ipaddr.IPv4.parse(bare));
  const v6 = ipaddr.IPv6.parse(bare);
  if (METADATA_ADDRESSES.has(v6.toNormalizedString())) return { use: 'never', kind: 'a cloud metadata address', metadata: true };
  const range = v6.range();
  // ::1 and :: first: they also have the all-zero prefix of IPv4-compatible forms.
  if (range === 'loopback') return { use: 'demo_only', kind: 'a loopback address' };
  if (range === 'unspecified') return { use: 'never', kind: 'an unspecified address', metadata: false };
  const v4 = embeddedV4(v6);
  if (v4 !== undefined) {
    const inner = classifyV4(v4);
    return inner.use === 'public' ? inner : { ...inner, kind: `${inner.kind} in IPv6 form` };
  }
  if (range === 'unicast') return { use: 'public' };
  const demoOnly = DEMO_ONLY_V6.get(range);
  if (demoOnly !== undefined) return { use: 'demo_only', kind: demoOnly };
  // Teredo, the local-use NAT64 prefix and other tunnels carry addresses we do not unwrap: refused.
  return { use: 'never', kind: NEVER_KINDS[range] ?? 'a reserved or tunnelled IPv6 address', metadata: false };
}

/** Whether an address may be called in this mode; the refusal says why, without naming the address. */
export function addressVerdict(address: string, demo: boolean): { allowed: true } | { allowed: false; reason: OutboundRefusalReason; kind: string } {
  const c = classifyAddress(address);
  if (c.use === 'public' || (c.use === 'demo_only' && demo)) return { allowed: true };
  return { allowed: false, reason: c.use === 'never' && c.metadata ? 'metadata_address' : 'address_not_allowed', kind: c.kind };
}

type OutboundRefusal = Extract<OutboundVerdict, { allowed: false }>;

const refuse = (reason: OutboundRefusalReason, message: string): OutboundRefusal => ({ allowed: false, reason, message });

const normalizeHostname = (hostname: string) => hostname.toLowerCase().replace(/\.+$/, '');

/** The host to connect to as an address, or undefined for a host name (brackets stripped from IPv6 literals). */
const literalAddress = (hostname: string): string | undefined => {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(bare) !== 0 ? bare : undefined;
};

/** The checks that need no DNS. The WHATWG URL parser has already turned 2130706433, 0x7f.1 and the like into dotted form. */
export function checkUrlForm(text: string, demo: boolean): OutboundVerdict {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return refuse('malformed_url', 'is not a valid absolute URL');
  }
  if (url.protocol !== 'https:' && !(demo && url.protocol === 'http:')) {
    return refuse('scheme_not_allowed', demo ? 'must be an http(s) URL' : 'must be an https URL (http is accepted only in demo mode)');
  }
  if (url.username !== '' || url.password !== '') return refuse('credentials_in_url', 'must not carry credentials (user:password@): authenticate with the webhook signature');
  const hostname = normalizeHostname(url.hostname);
  if (hostname === '') return refuse('malformed_url', 'has no host');
  if (METADATA_HOSTNAMES.has(hostname)) return refuse('metadata_address', 'points at a cloud metadata service');
  const literal = literalAddress(hostname);
  if (literal !== undefined) {
    const verdict = addressVerdict(literal, demo);
    if (!verdict.allowed) return refuse(verdict.reason, `points at ${verdict.kind}, which the hub does not call${verdict.reason === 'address_not_allowed' && !demo ? ' outside demo mode' : ''}`);
  } else if ((hostname === 'localhost' || hostname.endsWith('.localhost')) && !demo) {
    // RFC 6761: these names are loopback whatever DNS says.
    return refuse('address_not_allowed', 'points at this machine (localhost), which the hub does not call outside demo mode');
  }
  return { allowed: true, url };
}

/** Every address the resolver gave must be allowed; the message names the kind of address, not the address. */
function checkResolved(addresses: readonly ResolvedAddress[], demo: boolean): OutboundRefusal | undefined {
  for (const { address } of addresses) {
    const verdict = addressVerdict(address, demo);
    if (!verdict.allowed) return refuse(verdict.reason, `has a host that resolves to ${verdict.kind}, which the hub does not call${verdict.reason === 'address_not_allowed' && !demo ? ' outside demo mode' : ''}`);
  }
  return undefined;
}

export const systemResolver: HostResolver = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => {
      if (error !== null) reject(error);
      else resolve(addresses.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 })));
    });
  });

async function resolveWithin(resolver: HostResolver, hostname: string, timeoutMs: number): Promise<readonly ResolvedAddress[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`resolving the host took longer than ${timeoutMs} ms`), { code: 'ETIMEOUT' })), timeoutMs);
  });
  try {
    return await Promise.race([resolver(hostname), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function createOutboundPolicy(deps: { demo: boolean; resolver?: HostResolver; resolveTimeoutMs?: number }): OutboundPolicy {
  const { demo } = deps;
  const resolver = deps.resolver ?? systemResolver;
  const resolveTimeoutMs = deps.resolveTimeoutMs ?? OUTBOUND_LIMITS.resolveTimeoutMs;

  /**
   * The lookup of every connection the guarded fetch opens: one resolution, every address checked, and the connection
   * made to those addresses only (net.connect does no lookup of its own when given one).
   */
  const pinnedLookup = (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    resolveWithin(resolver, hostname, resolveTimeoutMs).then(
      (addresses) => {
        const refused = checkResolved(addresses, demo);
        if (refused !== undefined) return callback(new OutboundRefusedError(refused.reason, `refused by the outbound policy: the URL ${refused.message}`), []);
        const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
        const first = wanted[0];
        if (first === undefined) return callback(Object.assign(new Error(`the host has no IPv${String(options.family)} address`), { code: 'ENOTFOUND' }), []);
        if (options.all === true) return callback(null, wanted.map((a) => ({ address: a.address, family: a.family })));
        return callback(null, first.address, first.family);
      },
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)), []),
    );
  };

  const agent = new Agent({
    connect: { lookup: pinnedLookup, timeout: OUTBOUND_LIMITS.connectTimeoutMs },
    connections: OUTBOUND_LIMITS.connectionsPerOrigin,
  });

  const guardedFetch: OutboundFetch = async (url, init) => {
    const verdict = checkUrlForm(url, demo);
    if (!verdict.allowed) throw new OutboundRefusedError(verdict.reason, `refused by the outbound policy: the URL ${verdict.message}`);
    // The dispatcher's own request (no redirects followed: the agent has no redirect handling), not WHATWG fetch: a
    // fetch builds Request, Headers and web streams around every call, which made the connected banks' two calls per
    // payment a visible share of the hub's CPU.
    const res = await agent.request({ origin: verdict.url.origin, path: `${verdict.url.pathname}${verdict.url.search}`, method: init.method, headers: init.headers, body: init.body, signal: init.signal });
    return {
      status: res.statusCode,
      ok: res.statusCode >= 200 && res.statusCode < 300,
      headers: {
        get(name) {
          const value = res.headers[name.toLowerCase()];
          return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
        },
      },
      text: () => res.body.text(),
      body: { cancel: () => res.body.dump().then(() => undefined) },
    };
  };

  return {
    demo,
    checkUrlForm: (url) => checkUrlForm(url, demo),
    async checkUrl(url) {
      const form = checkUrlForm(url, demo);
      if (!form.allowed) return form;
      const hostname = normalizeHostname(form.url.hostname);
      if (literalAddress(hostname) !== undefined) return form;
      let addresses: readonly ResolvedAddress[];
      try {
        addresses = await resolveWithin(resolver, hostname, resolveTimeoutMs);
      } catch {
        // A name that does not resolve yet is accepted: every call checks it again when it resolves.
        return form;
      }
      return checkResolved(addresses, demo) ?? form;
    },
    fetch: guardedFetch,
    lookup: pinnedLookup,
    close: () => agent.close(),
  };
}

/** The policy's refusal behind an error thrown by a fetch (undici wraps connect errors as the `cause` of "fetch failed"). */
export function outboundRefusalOf(error: unknown): OutboundRefusedError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current instanceof OutboundRefusedError) return current;
    current = current.cause;
  }
  return undefined;
}

/**
 * A short reason for a failed outbound call, fit for a delivery's `last_error`: the policy's refusal, a timeout, or
 * the innermost cause (undici's "fetch failed" says nothing by itself). Never the URL, which could carry a secret.
 */
export function describeOutboundFailure(error: unknown): string {
  const refusal = outboundRefusalOf(error);
  if (refusal !== undefined) return refusal.message;
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'timed out';
  let innermost: unknown = error;
  for (let depth = 0; depth < 5 && innermost instanceof Error && innermost.cause instanceof Error; depth++) innermost = innermost.cause;
  return innermost instanceof Error ? innermost.message : String(innermost);
}
