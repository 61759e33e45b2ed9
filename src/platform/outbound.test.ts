import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OutboundRefusedError,
  checkUrlForm,
  classifyAddress,
  createOutboundPolicy,
  describeOutboundFailure,
  outboundRefusalOf,
  type HostResolver,
  type OutboundRequest,
  type ResolvedAddress,
} from './outbound.ts';

const family = (address: string): 4 | 6 => (address.includes(':') ? 6 : 4);

/** A resolver from a fixed table, counting its calls; names not in the table do not resolve. */
function tableResolver(table: Record<string, string[]>): HostResolver & { calls: string[] } {
  const calls: string[] = [];
  const resolve = async (hostname: string): Promise<readonly ResolvedAddress[]> => {
    calls.push(hostname);
    const addresses = table[hostname];
    if (addresses === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: family(address) }));
  };
  return Object.assign(resolve, { calls });
}

describe('classifyAddress: every form of an address the hub must not call', () => {
  const cases: [string, 'public' | 'demo_only' | 'never'][] = [
    ['8.8.8.8', 'public'],
    ['93.184.216.34', 'public'],
    ['127.0.0.1', 'demo_only'],
    ['127.255.255.254', 'demo_only'],
    ['10.0.0.5', 'demo_only'],
    ['172.16.0.1', 'demo_only'],
    ['172.31.255.255', 'demo_only'],
    ['192.168.1.1', 'demo_only'],
    ['172.32.0.1', 'public'],
    ['0.0.0.0', 'never'],
    ['0.1.2.3', 'never'],
    ['169.254.169.254', 'never'],
    ['169.254.1.1', 'never'],
    ['169.254.170.2', 'never'],
    ['100.64.0.1', 'never'],
    ['100.127.255.254', 'never'],
    ['100.100.100.200', 'never'],
    ['100.128.0.1', 'public'],
    ['224.0.0.1', 'never'],
    ['239.255.255.250', 'never'],
    ['255.255.255.255', 'never'],
    ['240.0.0.1', 'never'],
    ['192.0.2.1', 'never'],
    ['198.18.0.1', 'never'],
    // IPv6
    ['2001:4860:4860::8888', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['::1', 'demo_only'],
    ['0:0:0:0:0:0:0:1', 'demo_only'],
    ['::', 'never'],
    ['fc00::1', 'demo_only'],
    ['fd12:3456::1', 'demo_only'],
    ['fd00:ec2::254', 'never'],
    ['fe80::1', 'never'],
    ['fe80::1%eth0', 'never'],
    ['febf::1', 'never'],
    ['fec0::1', 'never'],
    ['ff02::1', 'never'],
    ['2001:db8::1', 'never'],
    ['2001::1', 'never'],
    // IPv4 inside IPv6: mapped, SIIT, compatible, NAT64, 6to4 are judged by the IPv4 address they carry
    ['::ffff:127.0.0.1', 'demo_only'],
    ['::ffff:7f00:1', 'demo_only'],
    ['0:0:0:0:0:ffff:7f00:1', 'demo_only'],
    ['::ffff:10.0.0.5', 'demo_only'],
    ['::ffff:169.254.169.254', 'never'],
    ['::ffff:a9fe:a9fe', 'never'],
    ['::ffff:0.0.0.0', 'never'],
    ['::ffff:100.64.0.1', 'never'],
    ['::ffff:8.8.8.8', 'public'],
    ['::ffff:0:127.0.0.1', 'demo_only'],
    ['::ffff:0:169.254.169.254', 'never'],
    ['::127.0.0.1', 'demo_only'],
    ['::169.254.169.254', 'never'],
    ['::8.8.8.8', 'public'],
    ['64:ff9b::127.0.0.1', 'demo_only'],
    ['64:ff9b::169.254.169.254', 'never'],
    ['64:ff9b::8.8.8.8', 'public'],
    ['64:ff9b:1::1', 'never'],
    ['2002:7f00:1::1', 'demo_only'],
    ['2002:a9fe:a9fe::1', 'never'],
    ['2002:808:808::1', 'public'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'never'],
    ['[::1]', 'demo_only'],
    ['not-an-address', 'never'],
    ['', 'never'],
  ];
  it.each(cases)('%s → %s', (address, use) => {
    expect(classifyAddress(address).use).toBe(use);
  });

  it('names cloud metadata addresses as such, in every form', () => {
    for (const a of ['169.254.169.254', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '64:ff9b::a9fe:a9fe', 'fd00:ec2::254', '100.100.100.200']) {
      expect(classifyAddress(a)).toMatchObject({ use: 'never', metadata: true });
    }
  });
});

describe('checkUrlForm: what a URL may be before any DNS', () => {
  const refusedEverywhere: [string, string][] = [
    ['not a url', 'malformed_url'],
    ['/relative/path', 'malformed_url'],
    ['ftp://files.bank.example/', 'scheme_not_allowed'],
    ['file:///etc/passwd', 'scheme_not_allowed'],
    ['gopher://bank.example:70/', 'scheme_not_allowed'],
    ['ws://bank.example/', 'scheme_not_allowed'],
    ['javascript:alert(1)', 'scheme_not_allowed'],
    ['https://user:pass@hooks.bank.example/', 'credentials_in_url'],
    ['https://user@hooks.bank.example/', 'credentials_in_url'],
    ['https://169.254.169.254/latest/meta-data/', 'metadata_address'],
    ['https://[fd00:ec2::254]/', 'metadata_address'],
    ['https://[::ffff:169.254.169.254]/', 'metadata_address'],
    ['https://2852039166/', 'metadata_address'], // 169.254.169.254 as one number
    ['https://metadata.google.internal/computeMetadata/v1/', 'metadata_address'],
    ['https://METADATA.GOOGLE.INTERNAL./', 'metadata_address'],
    ['https://metadata/', 'metadata_address'],
    ['https://100.100.100.200/', 'metadata_address'],
    ['https://0.0.0.0/', 'address_not_allowed'],
    ['https://0/', 'address_not_allowed'],
    ['https://[::]/', 'address_not_allowed'],
    ['https://169.254.1.1/', 'address_not_allowed'],
    ['https://[fe80::1]/', 'address_not_allowed'],
    ['https://100.64.0.1/', 'address_not_allowed'],
    ['https://224.0.0.1/', 'address_not_allowed'],
    ['https://255.255.255.255/', 'address_not_allowed'],
    ['https://[ff02::1]/', 'address_not_allowed'],
  ];
  it.each(refusedEverywhere)('%s is refused in every mode (%s)', (url, reason) => {
    expect(checkUrlForm(url, false)).toMatchObject({ allowed: false, reason });
    expect(checkUrlForm(url, true)).toMatchObject({ allowed: false, reason });
  });

  it('refuses metadata addresses over plain http in demo mode too', () => {
    expect(checkUrlForm('http://169.254.169.254/latest/meta-data/', true)).toMatchObject({ allowed: false, reason: 'metadata_address' });
    expect(checkUrlForm('http://[::ffff:a9fe:a9fe]/', true)).toMatchObject({ allowed: false, reason: 'metadata_address' });
    expect(checkUrlForm('http://metadata.google.internal/', true)).toMatchObject({ allowed: false, reason: 'metadata_address' });
  });

  const demoOnly = [
    'http://hooks.bank.example/',
    'https://127.0.0.1/',
    'https://127.1/',
    'https://2130706433/',
    'https://0x7f000001/',
    'https://0177.0.0.1/',
    'https://[::1]/',
    'https://[::ffff:127.0.0.1]/',
    'https://[::ffff:7f00:1]/',
    'https://[::127.0.0.1]/',
    'https://10.0.0.5/',
    'https://192.168.0.10:8443/',
    'https://[fd12::1]/',
    'https://localhost/',
    'https://LocalHost./',
    'https://api.localhost/',
  ];
  it.each(demoOnly)('%s is refused outside demo mode and accepted in it', (url) => {
    const outside = checkUrlForm(url, false);
    expect(outside.allowed).toBe(false);
    if (!outside.allowed) expect(outside.message).toMatch(/https|demo mode/);
    expect(checkUrlForm(url, true).allowed).toBe(true);
  });

  it('accepts https URLs to names and public addresses in both modes', () => {
    for (const url of ['https://hooks.bank.example/hutong', 'https://8.8.8.8/', 'https://[2001:4860:4860::8888]:8443/x', 'https://hooks.bank.example:8443/a?b=c']) {
      expect(checkUrlForm(url, false).allowed).toBe(true);
      expect(checkUrlForm(url, true).allowed).toBe(true);
    }
  });

  it('says why without repeating the credentials of a URL', () => {
    const verdict = checkUrlForm('https://alice:s3cr3t-pass@hooks.bank.example/', false);
    expect(verdict).toMatchObject({ allowed: false, reason: 'credentials_in_url', message: expect.stringContaining('credentials') });
    expect(JSON.stringify(verdict)).not.toContain('s3cr3t-pass');
  });
});

describe('checkUrl: registration resolves the host and refuses it when any address is disallowed', () => {
  const resolver = tableResolver({
    'hooks.bank.example': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
    'loopback.bank.example': ['127.0.0.1'],
    'private.bank.example': ['10.0.0.5'],
    'metadata.bank.example': ['169.254.169.254'],
    'v6loopback.bank.example': ['::1'],
    'mapped.bank.example': ['::ffff:127.0.0.1'],
    'mapped-metadata.bank.example': ['::ffff:169.254.169.254'],
    'ula.bank.example': ['fd12:3456::1'],
    'cgnat.bank.example': ['100.64.0.7'],
    'zero.bank.example': ['0.0.0.0'],
    'mixed.bank.example': ['93.184.216.34', '10.0.0.5'],
  });
  const outside = createOutboundPolicy({ demo: false, resolver });
  const demo = createOutboundPolicy({ demo: true, resolver });
  afterAll(async () => {
    await outside.close();
    await demo.close();
  });

  it.each([
    ['loopback.bank.example', 'address_not_allowed', /loopback/],
    ['private.bank.example', 'address_not_allowed', /private/],
    ['metadata.bank.example', 'metadata_address', /metadata/],
    ['v6loopback.bank.example', 'address_not_allowed', /loopback/],
    ['mapped.bank.example', 'address_not_allowed', /loopback address in IPv6 form/],
    ['mapped-metadata.bank.example', 'metadata_address', /metadata/],
    ['ula.bank.example', 'address_not_allowed', /unique-local/],
    ['cgnat.bank.example', 'address_not_allowed', /carrier-grade/],
    ['zero.bank.example', 'address_not_allowed', /unspecified/],
    ['mixed.bank.example', 'address_not_allowed', /private/],
  ])('outside demo mode, a host resolving to %s is refused (%s)', async (host, reason, message) => {
    const verdict = await outside.checkUrl(`https://${host}/hooks`);
    expect(verdict).toMatchObject({ allowed: false, reason, message: expect.stringMatching(message) });
    // The answer names the kind of address, not the address (no DNS oracle for the caller).
    if (!verdict.allowed) expect(verdict.message).not.toMatch(/\d+\.\d+\.\d+\.\d+|::/);
  });

  it('accepts a host whose every address is public, and a name that does not resolve (the call checks it again)', async () => {
    expect((await outside.checkUrl('https://hooks.bank.example/hooks')).allowed).toBe(true);
    expect((await outside.checkUrl('https://not-yet.bank.example/hooks')).allowed).toBe(true);
  });

  it('in demo mode lets loopback and private hosts through but never metadata, link-local or CGNAT', async () => {
    for (const host of ['loopback.bank.example', 'private.bank.example', 'v6loopback.bank.example', 'mapped.bank.example', 'ula.bank.example', 'mixed.bank.example']) {
      expect((await demo.checkUrl(`http://${host}/hooks`)).allowed).toBe(true);
    }
    expect(await demo.checkUrl('http://metadata.bank.example/')).toMatchObject({ allowed: false, reason: 'metadata_address' });
    expect(await demo.checkUrl('http://mapped-metadata.bank.example/')).toMatchObject({ allowed: false, reason: 'metadata_address' });
    expect(await demo.checkUrl('http://cgnat.bank.example/')).toMatchObject({ allowed: false, reason: 'address_not_allowed' });
  });

  it('does not wait for DNS longer than its bound', async () => {
    const slow = createOutboundPolicy({ demo: false, resolver: () => new Promise(() => undefined), resolveTimeoutMs: 50 });
    const started = Date.now();
    expect((await slow.checkUrl('https://slow.bank.example/')).allowed).toBe(true);
    expect(Date.now() - started).toBeLessThan(1_000);
    await slow.close();
  });
});

describe('the connection lookup: one resolution, every address checked, only checked addresses answered', () => {
  const lookup = (policy: ReturnType<typeof createOutboundPolicy>, host: string, options: { all?: boolean; family?: number }) =>
    new Promise<{ error: Error | null; address: unknown; family?: number | undefined }>((resolve) => {
      policy.lookup(host, options, (error, address, fam) => resolve({ error, address, family: fam }));
    });
  const resolver = tableResolver({
    'private.bank.example': ['10.0.0.5'],
    'metadata.bank.example': ['169.254.169.254'],
    'mixed.bank.example': ['127.0.0.1', '169.254.169.254'],
    'dual.bank.example': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
  });
  const outside = createOutboundPolicy({ demo: false, resolver });
  const demo = createOutboundPolicy({ demo: true, resolver });
  afterAll(async () => {
    await outside.close();
    await demo.close();
  });

  it('refuses a private or metadata answer with the policy error, before any connection exists', async () => {
    for (const host of ['private.bank.example', 'metadata.bank.example']) {
      const { error } = await lookup(outside, host, { all: true });
      expect(error).toBeInstanceOf(OutboundRefusedError);
    }
    const { error } = await lookup(demo, 'metadata.bank.example', { all: true });
    expect(error).toMatchObject({ reason: 'metadata_address' });
    // One disallowed address among allowed ones is enough to refuse.
    expect((await lookup(demo, 'mixed.bank.example', { all: true })).error).toMatchObject({ reason: 'metadata_address' });
    expect((await lookup(demo, 'private.bank.example', { all: true })).address).toEqual([{ address: '10.0.0.5', family: 4 }]);
  });

  it('answers the checked addresses in the form net.connect asked for', async () => {
    expect((await lookup(outside, 'dual.bank.example', { all: true })).address).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
    ]);
    expect(await lookup(outside, 'dual.bank.example', { family: 6 })).toMatchObject({ error: null, address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 });
    expect(await lookup(outside, 'dual.bank.example', {})).toMatchObject({ error: null, address: '93.184.216.34', family: 4 });
    expect((await lookup(outside, 'nowhere.bank.example', {})).error?.message).toContain('ENOTFOUND');
  });
});

/** A local receiver (loopback only) that records every connection and request. */
async function startServer(handler: (path: string) => { status: number; headers?: Record<string, string>; body?: string }) {
  const seen = { connections: 0, requests: [] as { path: string; body: string }[] };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      seen.requests.push({ path: req.url ?? '', body });
      const answer = handler(req.url ?? '');
      res.writeHead(answer.status, answer.headers).end(answer.body ?? '');
    });
  });
  server.on('connection', () => seen.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, seen, port: (server.address() as AddressInfo).port };
}

describe('the guarded fetch (real connections to this machine only)', () => {
  let receiver: Awaited<ReturnType<typeof startServer>>;
  let target: Awaited<ReturnType<typeof startServer>>;
  const resolver = tableResolver({
    'receiver.bank.example': ['127.0.0.1'],
    'v6.bank.example': ['::1'],
    'mapped.bank.example': ['::ffff:127.0.0.1'],
    'mixed.bank.example': ['127.0.0.1', '169.254.169.254'],
  });
  const demo = createOutboundPolicy({ demo: true, resolver });
  const outside = createOutboundPolicy({ demo: false, resolver });
  const post = (body = '{"hello":"world"}'): OutboundRequest => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body, redirect: 'manual', signal: AbortSignal.timeout(5_000) });

  beforeAll(async () => {
    target = await startServer(() => ({ status: 200, body: 'redirected here' }));
    receiver = await startServer((path) => (path === '/redirect' ? { status: 302, headers: { location: `http://127.0.0.1:${target.port}/stolen` } } : { status: 204 }));
  });
  afterAll(async () => {
    await demo.close();
    await outside.close();
    receiver?.server.close();
    target?.server.close();
  });

  it('in demo mode reaches a receiver on this machine through the resolved, checked address (resolved once)', async () => {
    resolver.calls.length = 0;
    const res = await demo.fetch(`http://receiver.bank.example:${receiver.port}/hooks`, post());
    expect(res.status).toBe(204);
    expect(receiver.seen.requests.at(-1)).toEqual({ path: '/hooks', body: '{"hello":"world"}' });
    // The name exists only in the injected resolver: the connection used its answer, no second (system) lookup.
    expect(resolver.calls).toEqual(['receiver.bank.example']);
  });

  it('outside demo mode refuses, after resolution, a name that resolves to loopback in any form, and never connects', async () => {
    const before = receiver.seen.connections;
    for (const host of ['receiver.bank.example', 'v6.bank.example', 'mapped.bank.example']) {
      const failure = await outside.fetch(`https://${host}:${receiver.port}/hooks`, post()).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(outboundRefusalOf(failure)).toMatchObject({ reason: 'address_not_allowed' });
      expect(describeOutboundFailure(failure)).toMatch(/^refused by the outbound policy: .*loopback/);
    }
    expect(receiver.seen.connections).toBe(before);
  });

  it('refuses a host with one disallowed address among allowed ones, even in demo mode', async () => {
    const before = receiver.seen.connections;
    const failure = await demo.fetch(`http://mixed.bank.example:${receiver.port}/hooks`, post()).catch((error: unknown) => error);
    expect(outboundRefusalOf(failure)).toMatchObject({ reason: 'metadata_address' });
    expect(receiver.seen.connections).toBe(before);
  });

  it('refuses literal addresses and plain http outside demo mode without connecting', async () => {
    const before = receiver.seen.connections;
    for (const url of [`https://127.0.0.1:${receiver.port}/`, `https://[::ffff:127.0.0.1]:${receiver.port}/`, `http://receiver.bank.example:${receiver.port}/`, `https://localhost:${receiver.port}/`]) {
      await expect(outside.fetch(url, post())).rejects.toBeInstanceOf(OutboundRefusedError);
    }
    await expect(demo.fetch(`http://169.254.169.254:${receiver.port}/latest/meta-data/`, post())).rejects.toMatchObject({ reason: 'metadata_address' });
    expect(receiver.seen.connections).toBe(before);
  });

  it('never follows a redirect: the 3xx comes back to the caller and its target is not called', async () => {
    const res = await demo.fetch(`http://receiver.bank.example:${receiver.port}/redirect`, post());
    expect(res.status).toBe(302);
    await res.body?.cancel();
    expect(target.seen.requests).toEqual([]);
  });

  it('describes other failures by their innermost cause, never by the URL', async () => {
    const closed = await startServer(() => ({ status: 204 }));
    await new Promise<void>((resolve) => closed.server.close(() => resolve()));
    const failure = await demo.fetch(`http://receiver.bank.example:${closed.port}/x?token=secret-value`, post()).catch((error: unknown) => error);
    expect(describeOutboundFailure(failure)).toMatch(/ECONNREFUSED/);
    expect(describeOutboundFailure(failure)).not.toContain('secret-value');
  });
});
