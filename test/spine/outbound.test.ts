import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoParticipantId } from '../../src/demo/seed.ts';
import { createFakeClock } from '../../src/platform/clock.ts';
import type { HostResolver, ResolvedAddress } from '../../src/platform/outbound.ts';
import { WEBHOOK_LIMITS } from '../../src/webhooks/dispatcher.ts';
import type { IssuerAuthorizationRequest } from '../../src/webhooks/catalogue.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

/**
 * The hub's resolver in these tests. Names answer from `table` while registering; `rebind` then makes every name
 * answer loopback, as a DNS rebinding would, so that no call of these tests can leave this machine: a public answer
 * is only ever used by registration checks, which never connect.
 */
function testResolver(table: Record<string, string[]>) {
  let rebound: string[] | undefined;
  const calls: string[] = [];
  const resolve: HostResolver = async (hostname) => {
    calls.push(hostname);
    const addresses = rebound ?? table[hostname];
    if (addresses === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address): ResolvedAddress => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return {
    resolve,
    calls,
    rebind(addresses: string[] | undefined) {
      rebound = addresses;
    },
  };
}

const REGISTRATION_TABLE = {
  'hooks.bank.example': ['93.184.216.34'],
  'loopback.bank.example': ['127.0.0.1'],
  'private.bank.example': ['10.0.0.5'],
  'metadata.bank.example': ['169.254.169.254'],
  'v6loopback.bank.example': ['::1'],
  'mapped.bank.example': ['::ffff:127.0.0.1'],
  'mixed.bank.example': ['93.184.216.34', '10.0.0.5'],
};

/** Every URL that registration must refuse outside demo mode, with the reason it gives. */
const REFUSED_OUTSIDE_DEMO: [string, string][] = [
  ['http://hooks.bank.example/hutong', 'scheme_not_allowed'],
  ['ftp://hooks.bank.example/hutong', 'scheme_not_allowed'],
  ['https://user:hunter2@hooks.bank.example/hutong', 'credentials_in_url'],
  ['https://127.0.0.1/hutong', 'address_not_allowed'],
  ['https://2130706433/hutong', 'address_not_allowed'],
  ['https://[::1]/hutong', 'address_not_allowed'],
  ['https://[::ffff:127.0.0.1]/hutong', 'address_not_allowed'],
  ['https://0.0.0.0/hutong', 'address_not_allowed'],
  ['https://[::]/hutong', 'address_not_allowed'],
  ['https://10.0.0.5/hutong', 'address_not_allowed'],
  ['https://192.168.1.20/hutong', 'address_not_allowed'],
  ['https://100.64.0.1/hutong', 'address_not_allowed'],
  ['https://[fe80::1]/hutong', 'address_not_allowed'],
  ['https://[fd12::1]/hutong', 'address_not_allowed'],
  ['https://localhost/hutong', 'address_not_allowed'],
  ['https://169.254.169.254/latest/meta-data/', 'metadata_address'],
  ['https://[fd00:ec2::254]/', 'metadata_address'],
  ['https://metadata.google.internal/computeMetadata/v1/', 'metadata_address'],
  ['https://loopback.bank.example/hutong', 'address_not_allowed'],
  ['https://private.bank.example/hutong', 'address_not_allowed'],
  ['https://metadata.bank.example/hutong', 'metadata_address'],
  ['https://v6loopback.bank.example/hutong', 'address_not_allowed'],
  ['https://mapped.bank.example/hutong', 'address_not_allowed'],
  ['https://mixed.bank.example/hutong', 'address_not_allowed'],
];

/** A receiver on loopback that counts connections, so a test can show that nothing reached it. */
async function startReceiver(respond: (path: string) => { status: number; headers?: Record<string, string>; body?: string }) {
  const seen = { connections: 0, paths: [] as string[] };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.paths.push(req.url ?? '');
      const answer = respond(req.url ?? '');
      res.writeHead(answer.status, answer.headers).end(answer.body ?? '');
    });
  });
  server.on('connection', () => seen.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, seen, port: (server.address() as AddressInfo).port };
}

const newParticipant = (webhookUrl: string) => ({ kind: 'wallet', name: 'Hooked wallet', country: 'CN', currencies: ['CNY'], webhookUrl });
/** An authorization request of `amount` CNY (what the endpoint is sent does not matter here, only whether it is). */
const askFor = (amount: string): IssuerAuthorizationRequest => ({
  authorizationId: 'pay_outbound_test',
  cardId: 'crd_outbound_test',
  customerId: 'cus_outbound_test',
  tokenId: null,
  walletParticipantId: null,
  amount: { amount, currency: 'CNY' },
  merchantAmount: { amount, currency: 'CNY' },
  fx: null,
  merchant: { id: 'mer_outbound_test', name: 'Test', mcc: '5812', country: 'CN', city: 'Shanghai' },
  channel: 'tap',
  riskScore: 0,
});
const webhookSettings = (authUrl: string) => ({ mode: 'webhook', authUrl, deadlineMs: 1_000, standIn: { action: 'approve', maxAmountMinor: '10000' } });

describe.each(engines)('outside demo mode on %s: the hub calls no address it should not', (engine) => {
  let t: TestHub;
  const clock = createFakeClock(Date.now());
  const resolver = testResolver(REGISTRATION_TABLE);
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    receiver = await startReceiver(() => ({ status: 204 }));
    t = await startTestHub(engine, { clock, config: { demo: false }, resolveHost: resolver.resolve });
  });
  afterAll(async () => {
    await t?.close();
    receiver?.server.close();
  });

  it.each(REFUSED_OUTSIDE_DEMO)('registration refuses %s (%s) for webhooks and issuer authorizations', async (url, reason) => {
    resolver.rebind(undefined);
    const created = await t.api('operator').post('/v1/operator/participants', newParticipant(url));
    expect(created.status).toBe(400);
    expect(created.body.error).toMatchObject({ code: 'invalid_webhook_url', message: expect.stringMatching(/^webhookUrl /), details: { reason } });
    const patched = await t.api('wallet-a').patch('/v1/me', { webhookUrl: url });
    expect(patched.status).toBe(400);
    expect(patched.body.error).toMatchObject({ code: 'invalid_webhook_url', details: { reason } });
    const settings = await t.api('bank-a').post('/v1/issuer/authorization-settings', webhookSettings(url));
    expect(settings.status).toBe(400);
    expect(settings.body.error).toMatchObject({ code: 'invalid_authorization_url', message: expect.stringMatching(/^authUrl /), details: { reason } });
    // The answer never repeats a credential of the URL.
    expect(JSON.stringify([created.body, patched.body, settings.body])).not.toContain('hunter2');
  });

  it('stored nothing for the refused URLs', async () => {
    const [{ n } = { n: -1n }] = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from participants where webhook_url is not null`);
    expect(n).toBe(0n);
    expect((await t.api('bank-a').get('/v1/issuer/authorization-settings')).body).toMatchObject({ mode: 'hosted', authUrl: null });
  });

  it('accepts an https URL whose host resolves to public addresses', async () => {
    resolver.rebind(undefined);
    const url = 'https://hooks.bank.example/hutong';
    const created = await t.api('operator').post('/v1/operator/participants', newParticipant(url));
    expect(created.status).toBe(201);
    expect(created.body.participant.webhookUrl).toBe(url);
    const patched = await t.api('wallet-a').patch('/v1/me', { webhookUrl: url });
    expect(patched.status).toBe(200);
    expect((await t.api('wallet-a').patch('/v1/me', { webhookUrl: null })).status).toBe(200);
    const settings = await t.api('bank-a').post('/v1/issuer/authorization-settings', webhookSettings(url));
    expect(settings.status).toBe(200);
    expect(settings.body.authUrl).toBe(url);
    expect((await t.api('bank-a').post('/v1/issuer/authorization-settings', { mode: 'hosted' })).status).toBe(200);
    // No delivery may go to that public address from this test: park them.
    await t.hub.db.query(`update webhook_deliveries set status = 'failed' where url = $1`, [url]);
  });

  it('refuses a delivery whose host resolves to loopback at call time (DNS rebinding): a failed attempt with the reason, nothing sent', async () => {
    resolver.rebind(undefined);
    const url = `https://hooks.bank.example:${receiver.port}/rebind`;
    const created = await t.api('operator').post('/v1/operator/participants', newParticipant(url));
    expect(created.status).toBe(201);
    const participantId = created.body.participant.id as string;
    const secret = (created.body.webhookSecret as string).slice('whsec_'.length);

    for (const [attempt, answer] of [
      [1, ['127.0.0.1']],
      [2, ['::ffff:127.0.0.1']],
      [3, ['::1']],
    ] as const) {
      resolver.rebind([...answer]);
      expect(await t.hub.webhooks.runOnce()).toBe(1);
      const [delivery] = await t.hub.db.query<{ status: string; attempts: number; last_status_code: number | null; last_error: string | null }>(
        'select status, attempts, last_status_code, last_error from webhook_deliveries where participant_id = $1',
        [participantId],
      );
      expect(delivery).toMatchObject({ status: 'pending', attempts: attempt, last_status_code: null });
      expect(delivery?.last_error).toMatch(/^refused by the outbound policy: the URL has a host that resolves to a loopback address/);
      expect(delivery?.last_error).not.toContain(secret);
      clock.advance(WEBHOOK_LIMITS.maxBackoffMs);
    }
    expect(receiver.seen.connections).toBe(0);
    // The participant sees the reason too.
    const login = await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: created.body.credential.clientId, client_secret: created.body.credential.clientSecret });
    const listed = await t.api('anonymous').get('/v1/webhooks/deliveries', { authorization: `Bearer ${login.body.access_token}` });
    expect(listed.body.items).toEqual([expect.objectContaining({ attempts: 3, lastError: expect.stringContaining('refused by the outbound policy') })]);
    await t.hub.db.query(`update webhook_deliveries set status = 'failed' where participant_id = $1`, [participantId]);
  });

  it("refuses an issuer authorization whose host resolves to loopback at call time: the issuer's stand-in rules decide", async () => {
    resolver.rebind(undefined);
    const url = `https://hooks.bank.example:${receiver.port}/authorize`;
    expect((await t.api('bank-a').post('/v1/issuer/authorization-settings', webhookSettings(url))).status).toBe(200);
    try {
      resolver.rebind(['127.0.0.1']);
      const settings = await t.hub.payments.issuers.get(demoParticipantId('bank-a'));
      expect(await t.hub.payments.issuers.ask(settings, askFor('5.00'), 500n, t.hub.db)).toEqual({ by: 'stand_in', approved: true, reason: 'address_not_allowed' });
      expect(await t.hub.payments.issuers.ask(settings, askFor('500.00'), 50_000n, t.hub.db)).toEqual({ by: 'stand_in', approved: false, reason: 'address_not_allowed' });
      expect(receiver.seen.connections).toBe(0);
    } finally {
      resolver.rebind(undefined);
      await t.api('bank-a').post('/v1/issuer/authorization-settings', { mode: 'hosted' });
    }
  });
});

describe.each(engines)('in demo mode on %s: receivers on this machine, but never metadata and never a redirect', (engine) => {
  let t: TestHub;
  const clock = createFakeClock(Date.now());
  const resolver = testResolver({ 'metadata.bank.example': ['169.254.169.254'], 'mixed.bank.example': ['127.0.0.1', '169.254.169.254'] });
  let target: Awaited<ReturnType<typeof startReceiver>>;
  let redirecting: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    target = await startReceiver(() => ({ status: 200, body: '{"decision":"approve"}', headers: { 'content-type': 'application/json' } }));
    redirecting = await startReceiver(() => ({ status: 307, headers: { location: `http://127.0.0.1:${target.port}/followed` } }));
    t = await startTestHub(engine, { clock, resolveHost: resolver.resolve });
  });
  afterAll(async () => {
    await t?.close();
    target?.server.close();
    redirecting?.server.close();
  });

  it('registration accepts http and loopback receivers and refuses metadata addresses and names', async () => {
    expect((await t.api('wallet-a').patch('/v1/me', { webhookUrl: `http://127.0.0.1:${target.port}/hooks` })).status).toBe(200);
    expect((await t.api('wallet-a').patch('/v1/me', { webhookUrl: null })).status).toBe(200);
    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://metadata.google.internal/', 'http://metadata.bank.example/', 'http://mixed.bank.example/', 'http://0.0.0.0:8080/']) {
      const patched = await t.api('wallet-a').patch('/v1/me', { webhookUrl: url });
      expect(patched.status).toBe(400);
      expect(patched.body.error.code).toBe('invalid_webhook_url');
      const settings = await t.api('bank-a').post('/v1/issuer/authorization-settings', webhookSettings(url));
      expect(settings.body.error.code).toBe('invalid_authorization_url');
    }
  });

  it('does not follow a redirect from a webhook receiver: a failed attempt that says so, the target never called', async () => {
    const created = await t.api('operator').post('/v1/operator/participants', newParticipant(`http://127.0.0.1:${redirecting.port}/hooks`));
    expect(created.status).toBe(201);
    expect(await t.hub.webhooks.runOnce()).toBe(1);
    const [delivery] = await t.hub.db.query<{ status: string; attempts: number; last_status_code: number | null; last_error: string | null }>(
      'select status, attempts, last_status_code, last_error from webhook_deliveries where participant_id = $1',
      [created.body.participant.id],
    );
    expect(delivery).toMatchObject({ status: 'pending', attempts: 1, last_status_code: 307, last_error: expect.stringContaining('redirect not followed') });
    expect(redirecting.seen.paths).toEqual(['/hooks']);
    expect(target.seen.connections).toBe(0);
    await t.hub.db.query(`update webhook_deliveries set status = 'failed' where participant_id = $1`, [created.body.participant.id]);
  });

  it("does not follow a redirect from an issuer's authorization endpoint: stand-in rules decide", async () => {
    expect((await t.api('bank-a').post('/v1/issuer/authorization-settings', webhookSettings(`http://127.0.0.1:${redirecting.port}/authorize`))).status).toBe(200);
    try {
      const settings = await t.hub.payments.issuers.get(demoParticipantId('bank-a'));
      expect(await t.hub.payments.issuers.ask(settings, askFor('5.00'), 500n, t.hub.db)).toEqual({ by: 'stand_in', approved: true, reason: 'redirect_not_followed' });
      expect(target.seen.connections).toBe(0);
      // The same endpoint without the redirect decides itself.
      expect((await t.api('bank-a').post('/v1/issuer/authorization-settings', webhookSettings(`http://127.0.0.1:${target.port}/authorize`))).status).toBe(200);
      expect(await t.hub.payments.issuers.ask(await t.hub.payments.issuers.get(demoParticipantId('bank-a')), askFor('5.00'), 500n, t.hub.db)).toEqual({ by: 'issuer', approved: true });
    } finally {
      await t.api('bank-a').post('/v1/issuer/authorization-settings', { mode: 'hosted' });
    }
  });
});
