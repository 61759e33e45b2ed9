import { generateSync } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERASED_NAME } from '../../src/customers/data-rights.ts';
import { demoParticipantId } from '../../src/demo/seed.ts';
import { openSentCode } from '../../src/platform/sent-codes.ts';
import { createFakeClock } from '../../src/platform/clock.ts';
import type { Db } from '../../src/platform/db.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { newDevice } from '../../src/demo/device.ts';

const engines = await availableEngines();

/** One person, a customer of a wallet (wallet-a) and of a bank (bank-a), with the same name and phone at both. */
const NAME = 'Quentin Erasable';
const PHONE = '+8613912345678';
const HANDLE = 'quentin.erasable';

let n = 0;
const key = () => ({ 'idempotency-key': `gdpr-${Date.now()}-${++n}` });

/** Every text, JSON or array column of every table: where a value could be stored. */
async function findEverywhere(db: Db, needle: string): Promise<string[]> {
  const columns = await db.query<{ table_name: string; column_name: string }>(
    `select table_name, column_name from information_schema.columns
      where table_schema = 'public' and data_type in ('text', 'character varying', 'character', 'jsonb', 'json', 'ARRAY')
      order by table_name, column_name`,
  );
  expect(columns.length).toBeGreaterThan(50);
  const found: string[] = [];
  for (const c of columns) {
    const [row] = await db.query<{ n: bigint }>(`select count(*) as n from "${c.table_name}" where "${c.column_name}"::text like $1`, [`%${needle}%`]);
    if ((row?.n ?? 0n) > 0n) found.push(`${c.table_name}.${c.column_name}`);
  }
  return found;
}

/** Property names that would carry a secret, anywhere in a JSON document. */
function secretKeys(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => secretKeys(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [...(/sealed|secret|hash|hmac|cvv|^pan|tokenNumber|tokenKey|^code$/i.test(k) ? [`${path}.${k}`] : []), ...secretKeys(v, `${path}.${k}`)]);
}

describe.each(engines)('a customer’s data: export and erasure on %s', (engine) => {
  const clock = createFakeClock(Date.UTC(2026, 3, 1, 9, 0, 0));
  let t: TestHub;
  const s = {
    walletCustomer: '',
    bankCustomer: '',
    account: '',
    cardId: '',
    cardNumber: '',
    tokenRef: '',
    tokenNumber: '',
    tokenKey: '',
    totpSecret: '',
    linkCode: '',
    walletCreateKey: { 'idempotency-key': 'gdpr-create-wallet-customer' },
  };

  beforeAll(async () => {
    t = await startTestHub(engine, { clock, config: { webhooks: { enabled: false, pollMs: 1000 }, accessTokenTtlS: 86_400 } });
    const wallet = t.api('wallet-a');
    const bank = t.api('bank-a');
    const ok = <T>(res: { status: number; body: T }, status: number): T => {
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      return res.body;
    };

    // The bank's customer: an account, an authenticator, an active card.
    s.bankCustomer = ok(await bank.post('/v1/customers', { externalId: 'gdpr-bank-1', name: NAME, phone: PHONE }, key()), 201).id;
    ok(await bank.post('/v1/accounts', { customerId: s.bankCustomer, currency: 'CNY' }, key()), 201);
    s.totpSecret = ok(await bank.post(`/v1/issuer/customers/${s.bankCustomer}/authenticator`), 201).secret;
    const card = ok(await bank.post('/v1/issuer/cards', { productId: 'cpr_demo_bank_a_debit', customerId: s.bankCustomer }, key()), 201);
    s.cardId = card.card.id;
    s.cardNumber = card.cardNumber;
    ok(await bank.post(`/v1/issuer/cards/${s.cardId}/activate`), 200);

    // The wallet's customer links their record at the bank (consent on both sides), then adds the card by reference
    // (step-up with the bank's authenticator).
    s.walletCustomer = ok(await wallet.post('/v1/customers', { externalId: 'gdpr-wallet-1', name: NAME, phone: PHONE }, s.walletCreateKey), 201).id;
    const linkConsent = ok(await wallet.post('/v1/customer-links', { customerId: s.walletCustomer, participantId: demoParticipantId('bank-a') }, key()), 201);
    ok(await wallet.post(`/v1/customer-links/consents/${linkConsent.id}/confirm`, { code: await openSentCode(t.hub, 'customer_link.consent_requested', linkConsent.id) }), 201);
    const device = newDevice();
    const prov = ok(await wallet.post('/v1/wallet/tokens', { customerId: s.walletCustomer, consent: true, deviceId: 'gdpr-device', devicePublicKey: device.publicKey, source: { type: 'card_ref', cardRef: s.cardId } }, key()), 201);
    expect(prov.stepUp.method).toBe('totp');
    const done = ok(await wallet.post(`/v1/wallet/provisionings/${prov.id}/step-up`, { code: generateSync({ secret: s.totpSecret, epoch: Math.floor(clock.nowMs() / 1000) }), deviceSignature: await device.sign({ purpose: 'step_up', provisioningId: prov.id }) }), 200);
    s.tokenRef = done.token.tokenRef;
    s.tokenNumber = done.tokenNumber;
    s.tokenKey = done.limitedUseKey.key;

    // An account with aliases; money in, then all of it paid out (a zero balance, payment records kept).
    s.account = ok(await wallet.post('/v1/accounts', { customerId: s.walletCustomer, currency: 'CNY' }, key()), 201).id;
    ok(await wallet.post('/v1/aliases', { customerId: s.walletCustomer, type: 'phone', value: PHONE, accountId: s.account }, key()), 201);
    ok(await wallet.post('/v1/aliases', { customerId: s.walletCustomer, type: 'handle', value: HANDLE, accountId: s.account }, key()), 201);
    ok(await wallet.post(`/v1/accounts/${s.account}/deposits`, { amount: { amount: '50.00', currency: 'CNY' } }, key()), 201);
    const quote = ok(await wallet.post('/v1/transfers/quotes', { customerId: s.walletCustomer, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '50.00', currency: 'CNY' } }), 201);
    ok(await wallet.post('/v1/transfers/payments', { quoteId: quote.id }, key()), 201);
    ok(await wallet.post('/v1/transfers/requests', { customerId: s.walletCustomer, payer: { type: 'handle', value: 'liwei' }, amount: { amount: '5.00', currency: 'CNY' }, note: 'lunch' }, key()), 201);

    // The bank's accounts linked into the wallet (the code the bank delivers), and a second consent left pending.
    const consent = ok(await wallet.post('/v1/account-links', { customerId: s.walletCustomer, bankParticipantId: demoParticipantId('bank-a') }, key()), 201);
    s.linkCode = await openSentCode(t.hub, 'account_link.consent_requested', consent.id);
    ok(await wallet.post(`/v1/account-links/consents/${consent.id}/confirm`, { code: s.linkCode }), 201);
    ok(await wallet.post('/v1/account-links', { customerId: s.walletCustomer, bankParticipantId: demoParticipantId('bank-a') }, key()), 201);
  });
  afterAll(async () => t?.close());

  it('exports everything the hub holds about the customer, with no secret, to its own participant only', async () => {
    const res = await t.api('wallet-a').get(`/v1/customers/${s.walletCustomer}/export`);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const e = res.body;
    expect(e.customer).toMatchObject({ id: s.walletCustomer, externalId: 'gdpr-wallet-1', name: NAME, phone: PHONE, erasedAt: null });
    expect(e.accounts).toEqual([expect.objectContaining({ id: s.account, currency: 'CNY', balance: { amount: '0.00', currency: 'CNY' } })]);
    // The deposit in and the payment out, one entry per side on the customer's account.
    expect(e.ledgerTransfers.map((x: any) => `${x.side}:${x.amount.amount}:${x.purpose}`).sort()).toEqual(['credit:50.00:deposit', 'debit:50.00:p2p']);
    expect(e.tokens).toEqual([expect.objectContaining({ tokenRef: s.tokenRef, cardId: s.cardId, status: 'active', walletParticipantId: demoParticipantId('wallet-a') })]);
    expect(e.provisionings).toEqual([expect.objectContaining({ cardId: s.cardId, status: 'approved', stepUpMethod: 'totp' })]);
    expect(e.aliases.map((a: any) => `${a.type}:${a.value}`).sort()).toEqual([`handle:${HANDLE}`, `phone:${PHONE}`]);
    expect(e.accountLinks).toEqual([expect.objectContaining({ role: 'wallet', status: 'active', bankParticipantId: demoParticipantId('bank-a') })]);
    expect(e.accountLinkConsents.map((c: any) => c.status).sort()).toEqual(['confirmed', 'pending']);
    expect(e.customerLinks).toEqual([expect.objectContaining({ otherParticipantId: demoParticipantId('bank-a'), status: 'active' })]);
    expect(e.passkeys).toEqual([]);
    expect(e.payments).toEqual([expect.objectContaining({ role: 'payer', counterpartyParticipantId: demoParticipantId('wallet-b'), sent: { amount: '50.00', currency: 'CNY' } })]);
    expect(e.moneyRequests).toEqual([expect.objectContaining({ role: 'requester', status: 'pending', note: 'lunch', amount: { amount: '5.00', currency: 'CNY' } })]);
    expect(e.quotes).toEqual([expect.objectContaining({ role: 'payer', status: 'used', send: { amount: '50.00', currency: 'CNY' } })]);
    expect(e.riskObservations).toEqual([expect.objectContaining({ channel: expect.any(String), amount: { amount: expect.stringMatching(/^\d+\.\d{2}$/), currency: 'EUR' } })]);
    for (const section of ['cards', 'splits', 'redPackets', 'cardPayments', 'riskAlerts', 'aliasMoves', 'payerBlocks']) expect(e[section], section).toEqual([]);
    expect(e.authenticator).toEqual({ enrolled: false, enrolledAt: null });
    expect(e.auditRecords.map((r: any) => r.action)).toEqual(expect.arrayContaining(['customer.created', 'alias.registered', 'token.provisioned', 'account.opened', 'account_link.confirmed']));
    expect(e.truncated).toEqual([]);
    // No secret: no card or token number, token key, authenticator seed or one-time code, and no field shaped for one.
    const text = JSON.stringify(e);
    for (const secret of [s.cardNumber, s.tokenNumber, s.tokenKey, s.totpSecret]) expect(text).not.toContain(secret);
    expect(text).not.toContain(`"${s.linkCode}"`);
    expect(secretKeys(e)).toEqual([]);

    // The bank's export of its own record: the card masked, the authenticator as a fact, the wallet's token without its
    // reference, and no trace of the wallet's customer id.
    const bankExport = (await t.api('bank-a').get(`/v1/customers/${s.bankCustomer}/export`)).body;
    expect(bankExport.cards).toEqual([expect.objectContaining({ id: s.cardId, status: 'active', maskedNumber: `${s.cardNumber.slice(0, 6)}******${s.cardNumber.slice(-4)}` })]);
    expect(bankExport.authenticator).toEqual({ enrolled: true, enrolledAt: expect.any(String) });
    expect(bankExport.tokens).toEqual([expect.objectContaining({ cardId: s.cardId, tokenRef: null, deviceId: null, walletParticipantId: demoParticipantId('wallet-a') })]);
    expect(bankExport.accountLinks).toEqual([expect.objectContaining({ role: 'bank', status: 'active' })]);
    const bankText = JSON.stringify(bankExport);
    for (const secret of [s.cardNumber, s.tokenNumber, s.tokenKey, s.totpSecret, s.walletCustomer]) expect(bankText).not.toContain(secret);
    expect(secretKeys(bankExport)).toEqual([]);

    // The export is itself recorded.
    const [audited] = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from audit_log where action = 'customer.exported' and object_id = $1`, [s.walletCustomer]);
    expect(audited?.n).toBe(1n);
  });

  it("answers 404 for another participant's customer, on export and on erasure", async () => {
    const exported = await t.api('wallet-b').get(`/v1/customers/${s.walletCustomer}/export`);
    expect(exported.status).toBe(404);
    expect(exported.body.error.code).toBe('customer_not_found');
    const erased = await t.api('bank-a').post(`/v1/customers/${s.walletCustomer}/erase`, {}, key());
    expect(erased.status).toBe(404);
    expect(erased.body.error.code).toBe('customer_not_found');
  });

  it('refuses to erase a customer who still holds a balance (409 customer_has_balance), changing nothing', async () => {
    const li = t.demo.customers.get('li-at-wallet-a') ?? '';
    const res = await t.api('wallet-a').post(`/v1/customers/${li}/erase`, {}, key());
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('customer_has_balance');
    expect(res.body.error.message).toMatch(/still holds money: a balance or pending amount on acc_/);
    expect(res.body.error.details.accounts[0]).toMatchObject({ accountId: `acc_${li}_CNY`, balance: { currency: 'CNY' } });
    const after = await t.api('wallet-a').get(`/v1/customers/${li}`);
    expect(after.body.name).toBe('李伟');
    const aliases = await t.hub.db.query<{ n: bigint }>('select count(*) as n from aliases where customer_id = $1', [li]);
    expect(aliases[0]?.n).toBeGreaterThan(0n);
  });

  it('erases: name and phone gone from every table, reaching data removed, the books and the audit chain intact', async () => {
    const wallet = t.api('wallet-a');
    const before = await t.hub.db.query<{ n: bigint }>('select count(*) as n from ledger_transfers');
    const eraseKey = key();
    const res = await wallet.post(`/v1/customers/${s.walletCustomer}/erase`, {}, eraseKey);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.customer).toMatchObject({ id: s.walletCustomer, name: ERASED_NAME, phone: null, externalId: expect.stringMatching(/^erased_[A-Za-z0-9_-]{32}$/) });
    expect(res.body.alreadyErased).toBe(false);
    expect(res.body.removed).toEqual({
      aliases: 2,
      authenticators: 0,
      customerLinks: 1,
      passkeys: 0,
      pendingConsents: 1,
      accountLinksRevoked: 1,
      tokensDeleted: 1,
      cardsCancelled: 0,
      provisioningsExpired: 0,
      storedResponsesScrubbed: expect.any(Number),
    });
    expect(res.body.removed.storedResponsesScrubbed).toBeGreaterThanOrEqual(2);
    // A retry with the key replays the answer.
    const replay = await wallet.post(`/v1/customers/${s.walletCustomer}/erase`, {}, eraseKey);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toEqual(res.body);

    // The bank erases its record of the same person: its card is cancelled (the wallet's token with it), the
    // authenticator removed.
    const bankRes = await t.api('bank-a').post(`/v1/customers/${s.bankCustomer}/erase`, {}, key());
    expect(bankRes.status, JSON.stringify(bankRes.body)).toBe(200);
    // (The link between the two records went with the wallet's erasure, on both sides.)
    expect(bankRes.body.removed).toMatchObject({ cardsCancelled: 1, authenticators: 1, customerLinks: 0, aliases: 0 });

    // Name and phone are nowhere in the database any more (rows, JSON payloads, stored answers).
    expect(await findEverywhere(t.hub.db, NAME)).toEqual([]);
    expect(await findEverywhere(t.hub.db, PHONE)).toEqual([]);
    expect(await findEverywhere(t.hub.db, PHONE.slice(1))).toEqual([]);
    expect(await findEverywhere(t.hub.db, HANDLE)).toEqual([]);
    expect(await findEverywhere(t.hub.db, 'gdpr-wallet-1')).toEqual([]);

    // What reached or verified the person is gone; the card and token are cancelled and deleted, not removed.
    const count = async (sql: string, params: unknown[]) => (await t.hub.db.query<{ n: bigint }>(sql, params))[0]?.n;
    expect(await count('select count(*) as n from aliases where customer_id = $1', [s.walletCustomer])).toBe(0n);
    expect(await count(`select count(*) as n from customer_links where customer_id = any($1::text[]) and status = 'active'`, [[s.walletCustomer, s.bankCustomer]])).toBe(0n);
    expect(await count('select count(*) as n from customer_authenticators where customer_id = $1', [s.bankCustomer])).toBe(0n);
    expect(await count(`select count(*) as n from account_link_consents where wallet_customer_id = $1 and status = 'pending'`, [s.walletCustomer])).toBe(0n);
    expect(await count(`select count(*) as n from account_links where wallet_customer_id = $1 and status = 'active'`, [s.walletCustomer])).toBe(0n);
    const [token] = await t.hub.db.query<{ status: string }>('select status from card_tokens where token_ref = $1', [s.tokenRef]);
    expect(token?.status).toBe('deleted');
    const [card] = await t.hub.db.query<{ status: string }>('select status from cards where id = $1', [s.cardId]);
    expect(card?.status).toBe('cancelled');

    // The books: every transfer kept, and per currency debits equal credits, posted and pending.
    expect(await count('select count(*) as n from ledger_transfers', [])).toBe(before[0]?.n);
    const books = await t.hub.db.query<{ currency: string; dp: string; cp: string; dpe: string; cpe: string }>(
      `select currency, sum(debits_posted)::text as dp, sum(credits_posted)::text as cp, sum(debits_pending)::text as dpe, sum(credits_pending)::text as cpe from ledger_accounts group by currency`,
    );
    for (const b of books) {
      expect(b.dp, b.currency).toBe(b.cp);
      expect(b.dpe, b.currency).toBe(b.cpe);
    }
    const verify = await t.api('operator').post('/v1/operator/audit/verify');
    expect(verify.status).toBe(200);
    expect(verify.body.ok).toBe(true);
    // The erasure is on the record, and the participant heard of it.
    expect(await count(`select count(*) as n from audit_log where action = 'customer.erased' and object_id = any($1::text[])`, [[s.walletCustomer, s.bankCustomer]])).toBe(2n);
    const events = await t.hub.db.query<{ participant_id: string; payload: { customerId: string; externalId: string } }>(`select participant_id, payload from events where type = 'customer.erased' order by id`);
    expect(events.map((x) => [x.participant_id, x.payload.customerId])).toEqual([
      [demoParticipantId('wallet-a'), s.walletCustomer],
      [demoParticipantId('bank-a'), s.bankCustomer],
    ]);
    expect(events[0]?.payload.externalId).toBe(res.body.customer.externalId);

    // The export now shows the pseudonymised record, with the payment records and transfers still there.
    const e = (await wallet.get(`/v1/customers/${s.walletCustomer}/export`)).body;
    expect(e.customer).toMatchObject({ name: ERASED_NAME, phone: null, externalId: res.body.customer.externalId, erasedAt: res.body.erasedAt });
    expect(e.aliases).toEqual([]);
    expect(e.customerLinks).toEqual([expect.objectContaining({ status: 'revoked' })]);
    expect(e.tokens).toEqual([expect.objectContaining({ tokenRef: s.tokenRef, status: 'deleted' })]);
    expect(e.payments).toHaveLength(1);
    expect(e.ledgerTransfers).toHaveLength(2);
    expect(e.accountLinks).toEqual([expect.objectContaining({ status: 'revoked' })]);
    expect(e.auditRecords.map((r: any) => r.action)).toContain('customer.erased');

    // The stored answer of the customer's creation no longer carries the name or phone when replayed.
    const created = await wallet.post('/v1/customers', { externalId: 'gdpr-wallet-1', name: NAME, phone: PHONE }, s.walletCreateKey);
    expect(created.headers['idempotent-replayed']).toBe('true');
    expect(created.body).toMatchObject({ id: s.walletCustomer, name: ERASED_NAME, phone: null });

    // Erasing again changes nothing; the old external id is free for a new customer.
    const again = await wallet.post(`/v1/customers/${s.walletCustomer}/erase`, {});
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ alreadyErased: true, erasedAt: res.body.erasedAt, customer: { externalId: res.body.customer.externalId } });
    expect((await wallet.post('/v1/customers', { externalId: 'gdpr-wallet-1', name: 'Someone Else' }, key())).status).toBe(201);
  });
});
