import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createFakeClock } from '../../src/platform/clock.ts';
import { connectReferenceBank, CONNECTED_CUSTOMERS, type ConnectedBankCredential } from '../../src/demo/bank/connect.ts';
import { createReferenceBank, type ReferenceBank } from '../../src/demo/bank/reference-bank.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * Connected participants end to end through the HTTP API: the hub, a hosted wallet (wallet-a) and the reference bank
 * (bank-c, its own books, reached over HTTP on loopback, demo mode), every ISO 20022 reason code the hub can produce,
 * timeouts, duplicate and late replies, a bank crash between reserve and commit, retried commit messages.
 */
const engines = await availableEngines();
let n = 0;
const key = () => ({ 'idempotency-key': `k-${Date.now()}-${++n}` });

describe.each(engines)('connected participants on %s', (engine) => {
  let t: TestHub;
  let bank: ReferenceBank;
  let bankCred: ConnectedBankCredential;
  const clock = createFakeClock(Date.now());
  const bankC = demoParticipantId('bank-c');
  const wang = demoCustomerId('wang-at-bank-c');
  const wangAccount = CONNECTED_CUSTOMERS[0]!.bankAccount;
  const chenAccount = CONNECTED_CUSTOMERS[1]!.bankAccount;
  const li = () => t.demo.customers.get('li-at-wallet-a')!;
  const liAccount = () => `acc_${li()}_CNY`;

  const balance = async (accountId: string) => {
    const r = await t.hub.transfers.ledger.getAccount(accountId);
    if (!r.ok) throw new Error(r.error.code);
    return r.value.creditsPostedMinor - r.value.debitsPostedMinor;
  };
  const pendingOf = async (accountId: string) => {
    const r = await t.hub.transfers.ledger.getAccount(accountId);
    if (!r.ok) throw new Error(r.error.code);
    return r.value.debitsPendingMinor + r.value.creditsPendingMinor;
  };
  /** The bank's position at the hub, as credits − debits of its funding account: it rises when the bank's customers receive. */
  const position = async () => {
    const r = await t.hub.transfers.ledger.getAccount(`fund_${bankC}_CNY`);
    if (!r.ok) throw new Error(r.error.code);
    return r.value.creditsPostedMinor - r.value.debitsPostedMinor;
  };
  let initialPosition = 0n;
  /** Money is conserved across the hub's books and the bank's: what its clearing account owes mirrors its position's movement. */
  const expectConserved = async () => {
    expect((await bank.books('CNY')).clearing + (await position()) - initialPosition).toBe(0n);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  };
  // The bank reaches the hub in-process (restart, duplicate replies), with its own credentials.
  const hubFetch: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const res = await t.hub.app.inject({
      method: (init?.method ?? 'GET') as 'GET' | 'POST',
      url: url.pathname + url.search,
      headers: (init?.headers ?? {}) as Record<string, string>,
      ...(typeof init?.body === 'string' ? { payload: init.body } : {}),
    });
    return new Response(res.body, { status: res.statusCode, headers: { 'content-type': String(res.headers['content-type'] ?? 'application/json') } });
  };
  const asBank = async () => {
    const res = await t.hub.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: bankCred.clientId, client_secret: bankCred.clientSecret } });
    return { authorization: `Bearer ${(res.json() as { access_token: string }).access_token}` };
  };
  const bankApi = async (method: 'GET' | 'POST', url: string, payload?: object, headers: Record<string, string> = {}) => {
    const res = await t.hub.app.inject({ method, url, headers: { ...(await asBank()), ...headers }, ...(payload !== undefined ? { payload } : {}) });
    return { status: res.statusCode, body: res.json() as any };
  };
  /** Delivers the outbox until the payment's messages are acknowledged (bounded). */
  const deliverAll = async (paymentId: string) => {
    for (let i = 0; i < 50; i++) {
      await t.hub.connectors.deliverDue();
      const messages = await t.hub.connectors.messages(paymentId);
      if (messages.every((m) => m.acked)) return messages;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return t.hub.connectors.messages(paymentId);
  };
  const bankTotal = async () => {
    const b = await bank.books('CNY');
    return b.customers + b.clearing;
  };

  const liPays = async (payee: string, amount: string) => {
    const q = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: li(), payee: { type: 'handle', value: payee }, sendAmount: { amount, currency: 'CNY' } });
    expect(q.status).toBe(201);
    return t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q.body.id }, key());
  };
  const wangPays = async (payee: string, amount: string) => {
    const q = await bankApi('POST', '/v1/transfers/quotes', { customerId: wang, sourceAccountId: `acc_${wang}_CNY`, payee: { type: 'handle', value: payee }, sendAmount: { amount, currency: 'CNY' } });
    expect(q.status).toBe(201);
    return bankApi('POST', '/v1/transfers/payments', { quoteId: q.body.id }, key());
  };

  beforeAll(async () => {
    t = await startTestHub(engine, { clock });
    // The bank signs and checks signatures by the hub's fake clock (tests below advance it by minutes).
    bank = await createReferenceBank({ hubPublicJwk: await t.hub.connectors.publicJwk(), nowMs: () => clock.nowMs() });
    await bank.listen(0);
    bankCred = await connectReferenceBank(t.hub, bank, { hubFetch, deadlineMs: 1_500 });
    initialPosition = await position();
  }, 240_000);
  afterAll(async () => {
    await bank?.close();
    await t?.close();
  });
  beforeEach(() => {
    Object.assign(bank.switches, { slowMs: 0, hang: false, down: false, refuse: undefined, duplicate: false, crashAfterReserve: false });
  });

  it('the operator sets a participant connected per currency; a private key, a missing endpoint or a bad deadline are refused', async () => {
    const listed = await t.api('operator').get(`/v1/operator/participants/${bankC}/connections`);
    expect(listed.status).toBe(200);
    expect(listed.body.items).toEqual([expect.objectContaining({ currency: 'CNY', mode: 'connected', endpointUrl: bank.url(), deadlineMs: 1_500 })]);
    const own = await bankApi('GET', '/v1/connector/connections');
    expect(own.body.items).toHaveLength(1);
    const { privateKey } = generateKeyPairSync('ed25519');
    const withD = privateKey.export({ format: 'jwk' });
    const bad = await t.api('operator').post(`/v1/operator/participants/${bankC}/connections`, { currency: 'USD', mode: 'connected', endpointUrl: bank.url(), publicJwk: { kty: withD.kty, crv: withD.crv, x: withD.x, d: withD.d } });
    expect(bad.status).toBe(400);
    const noUrl = await t.api('operator').post(`/v1/operator/participants/${bankC}/connections`, { currency: 'USD', mode: 'connected', publicJwk: bank.publicJwk });
    expect(noUrl.status).toBe(400);
    expect(noUrl.body.error.code).toBe('invalid_connection');
    const slow = await t.api('operator').post(`/v1/operator/participants/${bankC}/connections`, { currency: 'USD', mode: 'connected', endpointUrl: bank.url(), publicJwk: bank.publicJwk, deadlineMs: 60_000 });
    expect(slow.status).toBe(400);
    expect((await t.api('operator').get(`/v1/operator/participants/${bankC}/connections`)).body.items).toHaveLength(1);
    const jwks = await t.api('anonymous').get('/v1/connector/jwks');
    expect(jwks.body.keys[0]).toEqual(expect.objectContaining({ kty: 'OKP', crv: 'Ed25519' }));
    expect(JSON.stringify(jwks.body)).not.toContain('"d"');
  });

  it('a connected bank cannot deposit into its customer’s account at the hub: it is an address, the money is at the bank', async () => {
    const pos0 = await position();
    const res = await bankApi('POST', `/v1/accounts/acc_${wang}_CNY/deposits`, { amount: { amount: '10.00', currency: 'CNY' } }, key());
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('account_unavailable');
    expect(await balance(`acc_${wang}_CNY`)).toBe(0n);
    expect(await position()).toBe(pos0);
  });

  it('a hosted wallet’s customer pays a connected bank’s customer: the bank credits its own books, the hub moves positions only', async () => {
    const [li0, pos0, wang0, total0] = [await balance(liAccount()), await position(), await bank.balance(wangAccount), await bankTotal()];
    const pay = await liPays('wangfang', '12.34');
    expect(pay.status).toBe(201);
    expect(pay.body.status).toBe('completed');
    expect(await balance(liAccount())).toBe(li0 - 1234n);
    // The bank's position rises by what its customer received; its customer's account at the hub never holds money.
    expect(await position()).toBe(pos0 + 1234n);
    expect(await balance(`acc_${wang}_CNY`)).toBe(0n);
    expect(await pendingOf(liAccount())).toBe(0n);
    const messages = await deliverAll(pay.body.id);
    expect(messages).toEqual([expect.objectContaining({ kind: 'commit', participantId: bankC, acked: true })]);
    expect(await bank.balance(wangAccount)).toBe((wang0 ?? 0n) + 1234n);
    expect((await bank.hold(pay.body.id))?.state).toBe('committed');
    // Conservation across the books: what the bank's customers gained, its clearing owes back (its position at the hub).
    expect(await bankTotal()).toBe(total0);
    await expectConserved();
    const status = await bankApi('GET', `/v1/connector/transfers/${pay.body.id}`);
    expect(status.body).toEqual({ TxId: pay.body.id, TxSts: 'ACSC' });
    expect((await t.api('wallet-c').get(`/v1/connector/transfers/${pay.body.id}`)).status).toBe(404);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('a connected bank’s customer pays a hosted wallet’s customer: reserve at the bank, position against its cap, commit', async () => {
    const [li0, pos0, wang0, total0] = [await balance(liAccount()), await position(), await bank.balance(wangAccount), await bankTotal()];
    const pay = await wangPays('liwei', '20.00');
    expect(pay.status).toBe(201);
    expect(pay.body.status).toBe('completed');
    expect(await balance(liAccount())).toBe(li0 + 2000n);
    expect(await position()).toBe(pos0 - 2000n);
    await deliverAll(pay.body.id);
    expect(await bank.balance(wangAccount)).toBe((wang0 ?? 0n) - 2000n);
    expect(await bankTotal()).toBe(total0);
    // Settlement sees the position leg, as for any payment between two participants.
    const entries = await t.hub.db.query<{ payer_participant_id: string; amount_minor: bigint }>('select payer_participant_id, amount_minor from settlement_entries where payment_id = $1', [pay.body.id]);
    expect(entries).toEqual([{ payer_participant_id: bankC, amount_minor: 2000n }]);
    await expectConserved();
  });

  /**
   * A refused payment moves nothing anywhere: hub balances and pendings, the bank's books; the bank is told to release.
   * Answered payment_rejected (422) unless the payer's bank refused for a reason about the payer's account.
   */
  const expectNothingMoved = async (
    pay: { status: number; body: any },
    reason: string,
    before: { li: bigint; pos: bigint; total: bigint; wang: bigint | undefined },
    answered: { status: number; code: string } = { status: 422, code: 'payment_rejected' },
  ) => {
    expect(pay.status, JSON.stringify(pay.body)).toBe(answered.status);
    expect(pay.body.error.code).toBe(answered.code);
    expect(pay.body.error.details).toEqual(expect.objectContaining({ status: 'RJCT', reason: expect.objectContaining({ Rsn: reason }) }));
    expect(pay.body.error.message).toContain(reason);
    const paymentId = pay.body.error.details.paymentId as string;
    expect(await balance(liAccount())).toBe(before.li);
    expect(await pendingOf(liAccount())).toBe(0n);
    expect(await position()).toBe(before.pos);
    const messages = await deliverAll(paymentId);
    expect(messages.every((m) => m.kind === 'abort')).toBe(true);
    expect(await bankTotal()).toBe(before.total);
    expect(await bank.balance(wangAccount)).toBe(before.wang);
    expect((await bank.openHolds()).includes(paymentId)).toBe(false);
    const [row] = await t.hub.db.query<{ status: string; reason: string }>('select status, reason from payments where id = $1', [paymentId]);
    expect(row?.status).toBe('rejected');
    expect(row?.reason.startsWith(reason)).toBe(true);
    await expectConserved();
    const seen = await t.api('wallet-a').get(`/v1/transfers/payments/${paymentId}`);
    if (seen.status === 200) expect(seen.body.statusReason.Rsn).toBe(reason);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
    return paymentId;
  };
  const snapshot = async () => ({ li: await balance(liAccount()), pos: await position(), total: await bankTotal(), wang: await bank.balance(wangAccount) });

  it('AC04: the payee’s account is closed at the bank', async () => {
    await bank.closeAccount(chenAccount);
    const before = await snapshot();
    await expectNothingMoved(await liPays('chenjie', '5.00'), 'AC04', before);
    await bank.db.query('update accounts set closed = false where id = $1', [chenAccount]);
  });

  it('AC01: the bank knows no such account', async () => {
    await bank.db.query(`update accounts set id = 'BSB-GONE' where id = $1`, [chenAccount]);
    const before = await snapshot();
    await expectNothingMoved(await liPays('chenjie', '5.00'), 'AC01', before);
    await bank.db.query(`update accounts set id = $1 where id = 'BSB-GONE'`, [chenAccount]);
  });

  it('AM04: the payer’s bank account does not hold enough → insufficient_funds (as a card payment or a red packet from the account answers), and a retry answers the same', async () => {
    const before = await snapshot();
    const held = before.wang ?? 0n;
    const amount = ((Number(held) + 100) / 100).toFixed(2);
    const q = await bankApi('POST', '/v1/transfers/quotes', { customerId: wang, sourceAccountId: `acc_${wang}_CNY`, payee: { type: 'handle', value: 'liwei' }, sendAmount: { amount, currency: 'CNY' } });
    const retryKey = key();
    const pay = await bankApi('POST', '/v1/transfers/payments', { quoteId: q.body.id }, retryKey);
    await expectNothingMoved(pay, 'AM04', before, { status: 422, code: 'insufficient_funds' });
    const replay = await bankApi('POST', '/v1/transfers/payments', { quoteId: q.body.id }, retryKey);
    expect(replay).toEqual(pay);
  });

  it('MD01: the payer’s bank refuses the debit for lack of a mandate → consent_revoked, nothing moved', async () => {
    bank.switches.refuse = { op: 'reserve', reason: 'MD01' };
    const before = await snapshot();
    const pay = await wangPays('liwei', '1.00');
    await expectNothingMoved(pay, 'MD01', before, { status: 403, code: 'consent_revoked' });
    expect(pay.body.error.details.revokedBy).toBe('bank');
  });

  it('the payee’s bank speaks only for the credit: its AM04 is payment_rejected, not the payer’s insufficient_funds', async () => {
    bank.switches.refuse = { op: 'accept', reason: 'AM04' };
    const before = await snapshot();
    await expectNothingMoved(await liPays('wangfang', '1.00'), 'AM04', before);
  });

  it('AM02: the payee’s bank refuses an amount over its limit', async () => {
    await bank.db.query('update accounts set max_credit_minor = 100 where id = $1', [chenAccount]);
    const before = await snapshot();
    await expectNothingMoved(await liPays('chenjie', '3.00'), 'AM02', before);
    await bank.db.query('update accounts set max_credit_minor = null where id = $1', [chenAccount]);
  });

  it('AB05: no answer before the deadline aborts, nothing moved; the late answer changes nothing', async () => {
    await t.api('operator').post(`/v1/operator/participants/${bankC}/connections`, { currency: 'CNY', mode: 'connected', endpointUrl: bank.url(), publicJwk: bank.publicJwk, deadlineMs: 200 });
    bank.switches.hang = true;
    const before = await snapshot();
    const pay = await liPays('wangfang', '7.00');
    bank.switches.hang = false;
    bank.release(); // the hung accept now answers (ACSP) — too late
    const paymentId = await expectNothingMoved(pay, 'AB05', before);
    // The bank reports its late answer: the hub answers what it decided.
    const late = await bankApi('POST', `/v1/connector/transfers/${paymentId}/status`, { TxSts: 'ACSP' });
    expect(late.body).toEqual(expect.objectContaining({ TxId: paymentId, TxSts: 'RJCT', StsRsnInf: expect.objectContaining({ Rsn: 'AB05' }) }));
    await deliverAll(paymentId);
    expect((await bank.hold(paymentId))?.state).toBe('released');
    expect(await bankTotal()).toBe(before.total);
    await t.api('operator').post(`/v1/operator/participants/${bankC}/connections`, { currency: 'CNY', mode: 'connected', endpointUrl: bank.url(), publicJwk: bank.publicJwk, deadlineMs: 10_000 });
  });

  it('AB05: a bank that is down is no answer', async () => {
    bank.switches.down = true;
    const before = await snapshot();
    const pay = await liPays('wangfang', '1.00');
    bank.switches.down = false;
    await expectNothingMoved(pay, 'AB05', before);
  });

  it('DS0B: an answer signed by a key the hub does not know is refused', async () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const other = publicKey.export({ format: 'jwk' });
    await t.api('operator').post(`/v1/operator/participants/${bankC}/connections`, { currency: 'CNY', mode: 'connected', endpointUrl: bank.url(), publicJwk: { kty: other.kty, crv: other.crv, x: other.x } });
    const before = await snapshot();
    const pay = await liPays('wangfang', '2.00');
    await t.api('operator').post(`/v1/operator/participants/${bankC}/connections`, { currency: 'CNY', mode: 'connected', endpointUrl: bank.url(), publicJwk: bank.publicJwk, deadlineMs: 10_000 });
    await expectNothingMoved(pay, 'DS0B', before);
  });

  it('FF01: an answer that is not a connector message is refused', async () => {
    const junk: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"hello":"world"}');
    });
    await new Promise<void>((resolve) => junk.listen(0, '127.0.0.1', () => resolve()));
    const address = junk.address();
    const port = address !== null && typeof address === 'object' ? address.port : 0;
    await t.api('operator').post(`/v1/operator/participants/${bankC}/connections`, { currency: 'CNY', mode: 'connected', endpointUrl: `http://127.0.0.1:${port}`, publicJwk: bank.publicJwk });
    const before = await snapshot();
    const pay = await liPays('wangfang', '2.00');
    await t.api('operator').post(`/v1/operator/participants/${bankC}/connections`, { currency: 'CNY', mode: 'connected', endpointUrl: bank.url(), publicJwk: bank.publicJwk, deadlineMs: 10_000 });
    junk.closeAllConnections();
    await new Promise<void>((resolve) => junk.close(() => resolve()));
    await expectNothingMoved(pay, 'FF01', before);
  });

  it('a bank refusal code it chooses is relayed (RR04), and the payer wallet hears payment.rejected', async () => {
    bank.switches.refuse = { op: 'accept', reason: 'RR04' };
    const before = await snapshot();
    const id = await expectNothingMoved(await liPays('wangfang', '2.00'), 'RR04', before);
    const [event] = await t.hub.db.query<{ participant_id: string; payload: { reason: string } }>(`select participant_id, payload from events where type = 'payment.rejected' and payload->>'paymentId' = $1`, [id]);
    expect(event).toEqual(expect.objectContaining({ participant_id: demoParticipantId('wallet-a'), payload: expect.objectContaining({ reason: 'RR04' }) }));
  });

  it('AB03: a payment left undecided (the hub stopped between reserve and decision) is aborted by recovery after its deadline', async () => {
    const before = await snapshot();
    const q = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: li(), payee: { type: 'handle', value: 'wangfang' }, sendAmount: { amount: '4.00', currency: 'CNY' } });
    // The reserve transaction only, as a hub killed right after it would leave it.
    const [reserved] = await t.hub.db.transaction((tx) => t.hub.transfers.transfers.confirmMany(tx, [{ actor: { type: 'system' }, participantId: demoParticipantId('wallet-a'), quoteId: q.body.id }]));
    expect(reserved?.ok && reserved.value.status).toBe('pending');
    const paymentId = reserved?.ok ? reserved.value.id : '';
    expect(await pendingOf(liAccount())).toBe(400n);
    expect((await bankApi('GET', `/v1/connector/transfers/${paymentId}`)).body.TxSts).toBe('PDNG');
    expect(await t.hub.transfers.transfers.recoverConnected()).toBe(0); // not yet past its deadline
    clock.advance(60_000);
    expect(await t.hub.transfers.transfers.recoverConnected()).toBe(1);
    const [row] = await t.hub.db.query<{ status: string; reason: string }>('select status, reason from payments where id = $1', [paymentId]);
    expect(row).toEqual({ status: 'rejected', reason: expect.stringMatching(/^AB03/) });
    expect(await pendingOf(liAccount())).toBe(0n);
    expect(await balance(liAccount())).toBe(before.li);
    // A late decision attempt changes nothing: the payment is decided.
    const again = await t.hub.transfers.transfers.settleConnected(paymentId);
    expect(again?.status).toBe('rejected');
    await deliverAll(paymentId);
    expect(await bankTotal()).toBe(before.total);
  });

  it('a retried confirm (same key) answers the same decision and moves money once; duplicate requests to the bank answer the same', async () => {
    const q = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: li(), payee: { type: 'handle', value: 'wangfang' }, sendAmount: { amount: '3.00', currency: 'CNY' } });
    const k = key();
    const li0 = await balance(liAccount());
    const first = await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q.body.id }, k);
    const second = await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q.body.id }, k);
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.body).toEqual(first.body);
    expect(await balance(liAccount())).toBe(li0 - 300n);
    await deliverAll(first.body.id);
    // The commit message sent again (a retry after a lost acknowledgement) is answered from the bank's stored answer.
    const wang0 = await bank.balance(wangAccount);
    await t.hub.db.query('update connector_messages set acked_at = null, next_at = $2 where payment_id = $1', [first.body.id, clock.now()]);
    await deliverAll(first.body.id);
    expect(await bank.balance(wangAccount)).toBe(wang0);
  });

  it('commit messages are retried with backoff until the bank acknowledges them', async () => {
    const before = await snapshot();
    bank.switches.down = false;
    const q = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: li(), payee: { type: 'handle', value: 'wangfang' }, sendAmount: { amount: '6.00', currency: 'CNY' } });
    const done = await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q.body.id }, key());
    expect(done.status).toBe(201);
    await deliverAll(done.body.id);
    // As if the bank had been down when the commit was first sent: the message is due again, unacknowledged.
    bank.switches.down = true;
    await t.hub.db.query('update connector_messages set acked_at = null, attempts = 0, next_at = $2 where payment_id = $1', [done.body.id, clock.now()]);
    await t.hub.connectors.deliverDue();
    const [failed] = await t.hub.connectors.messages(done.body.id);
    expect(failed).toEqual(expect.objectContaining({ acked: false, attempts: 1, lastError: expect.stringMatching(/^AB05/) }));
    // Not due again before its backoff.
    expect(await t.hub.connectors.deliverDue()).toBe(0);
    bank.switches.down = false;
    clock.advance(1_000);
    const [acked] = await deliverAll(done.body.id);
    expect(acked).toEqual(expect.objectContaining({ acked: true, attempts: 2 }));
    expect(await bankTotal()).toBe(before.total);
  });

  /** The payments of a test that made many leave the risk rules' velocity window (600 s), as later tests expect. */
  const leaveVelocityWindow = () => clock.advance(601_000);
  /**
   * The bank's connection registered again (as after an upgrade): the hub forgets that the bank refused batches (it
   * sends single messages to a bank that answered 404 to a batch until then).
   */
  const registerAgain = async (deadlineMs = 1_500) => {
    clock.advance(1);
    await t.hub.db.transaction(async (tx) => {
      const r = await t.hub.connections.set(tx, { type: 'system' }, bankC, { currency: 'CNY', mode: 'connected', endpointUrl: bank.url(), publicJwk: bank.publicJwk, deadlineMs });
      if (!r.ok) throw new Error(r.error.code);
    });
  };

  /**
   * Whatever a batch test (or its failed assertion) left undelivered is delivered before the next test; after its
   * no-batch part the bank's connection is registered again.
   */
  const deliverLeftovers = async (noBatch: boolean) => {
    await t.hub.connectors.drain();
    clock.advance(60_000);
    await t.hub.connectors.deliverDue();
    if (noBatch) await registerAgain();
  };

  it('the commits of one delivery round go to the bank as one signed batch; a bank without batches gets them one by one', async () => {
    for (const noBatch of [false, true]) {
      const before = await snapshot();
      // The bank takes reserves but not commits for now: the three payments' commits wait in the outbox together.
      Object.assign(bank.switches, { downFor: ['commit', 'batch'], noBatch });
      try {
        const ids: string[] = [];
        for (const amount of ['1.00', '2.00', '3.00']) {
          const paid = await wangPays('liwei', amount);
          expect(paid.status).toBe(201);
          ids.push(paid.body.id as string);
        }
        await t.hub.connectors.drain();
        // Held at the bank, not yet debited; the hub has completed the payments (Li is paid).
        expect(await bank.balance(wangAccount)).toBe(before.wang);
        expect(await balance(liAccount())).toBe(before.li + 600n);
        for (const id of ids) expect((await bank.hold(id))?.state).toBe('held');
        bank.switches.downFor = [];
        bank.served.clear();
        clock.advance(60_000);
        expect(await t.hub.connectors.deliverDue()).toBe(3);
        expect(Object.fromEntries(bank.served)).toEqual(noBatch ? { commit: 3 } : { batch: 1, 'batch:commit': 1 });
        for (const id of ids) {
          expect((await bank.hold(id))?.state).toBe('committed');
          expect(await t.hub.connectors.messages(id)).toEqual([expect.objectContaining({ kind: 'commit', acked: true })]);
        }
        expect(await bank.balance(wangAccount)).toBe((before.wang ?? 0n) - 600n);
        expect(await bankTotal()).toBe(before.total);
        await expectConserved();
      } finally {
        Object.assign(bank.switches, { downFor: [], noBatch: false });
        await deliverLeftovers(noBatch);
      }
    }
    leaveVelocityWindow();
  });

  it('reserves asked while others are out go to the bank together in one signed batch; each payment keeps its own answer', async () => {
    const amounts = ['1.00', '2.00', '3.00', '4.00', '5.00', '6.00'];
    const pendingAtHub = async () => (await t.hub.db.query<{ n: number }>(`select count(*)::int as n from payments where status = 'pending'`))[0]?.n ?? 0;
    // A deadline long enough for the held asks below on a loaded machine.
    await registerAgain(10_000);
    for (const noBatch of [false, true]) {
      const before = await snapshot();
      bank.served.clear();
      bank.switches.noBatch = noBatch;
      try {
        let paid: Awaited<ReturnType<typeof wangPays>>[];
        if (noBatch) {
          paid = await Promise.all(amounts.map((amount) => wangPays('liwei', amount)));
          // The batch answered 404: every reserve went alone.
          expect(bank.served.get('reserve')).toBe(6);
        } else {
          // The bank holds the first two asks (the batches one participant may have out; each payment sent once the
          // one before reached the bank, so each goes alone); the other four payments' asks wait behind them and go
          // together once the bank answers.
          bank.switches.hang = true;
          const waitFor = async (done: () => Promise<boolean>) => {
            for (let i = 0; i < 500 && !(await done()); i++) await new Promise((resolve) => setTimeout(resolve, 10));
          };
          const first = wangPays('liwei', amounts[0]!);
          await waitFor(async () => (bank.served.get('reserve') ?? 0) >= 1);
          const second = wangPays('liwei', amounts[1]!);
          await waitFor(async () => (bank.served.get('reserve') ?? 0) >= 2);
          const paying = Promise.all([first, second, ...amounts.slice(2).map((amount) => wangPays('liwei', amount))]);
          await waitFor(async () => (await pendingAtHub()) >= 6);
          await new Promise((resolve) => setTimeout(resolve, 100));
          bank.switches.hang = false;
          bank.release();
          paid = await paying;
          expect(bank.served.get('reserve')).toBe(2);
          expect(bank.served.get('batch:reserve')).toBe(1);
        }
        expect(paid.map((p) => p.status)).toEqual([201, 201, 201, 201, 201, 201]);
        for (const p of paid) await deliverAll(p.body.id as string);
        for (const p of paid) expect((await bank.hold(p.body.id as string))?.state).toBe('committed');
        expect(await bank.balance(wangAccount)).toBe((before.wang ?? 0n) - 2100n);
        expect(await balance(liAccount())).toBe(before.li + 2100n);
        await expectConserved();
      } finally {
        Object.assign(bank.switches, { hang: false, noBatch: false });
        bank.release();
        await deliverLeftovers(noBatch);
      }
    }
    leaveVelocityWindow();
  });

  it('duplicate replies: the bank reports its answer again, the hub answers its decision, nothing changes', async () => {
    bank.switches.duplicate = true;
    const before = await snapshot();
    const pay = await liPays('wangfang', '1.50');
    expect(pay.status).toBe(201);
    const report = await bankApi('POST', `/v1/connector/transfers/${pay.body.id}/status`, { TxSts: 'RJCT', StsRsnInf: { Rsn: 'AC04' } });
    expect(report.body).toEqual({ TxId: pay.body.id, TxSts: 'ACSC' });
    await deliverAll(pay.body.id);
    expect(await bank.balance(wangAccount)).toBe((before.wang ?? 0n) + 150n);
    expect(await balance(liAccount())).toBe(before.li - 150n);
  });

  it('AB05: a participant no longer connected when the hub comes to ask it (switched to hosted after the reserve) is no answer', async () => {
    const before = await snapshot();
    const q = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: li(), payee: { type: 'handle', value: 'wangfang' }, sendAmount: { amount: '2.50', currency: 'CNY' } });
    const [reserved] = await t.hub.db.transaction((tx) => t.hub.transfers.transfers.confirmMany(tx, [{ actor: { type: 'system' }, participantId: demoParticipantId('wallet-a'), quoteId: q.body.id }]));
    const paymentId = reserved?.ok ? reserved.value.id : '';
    expect(reserved?.ok && reserved.value.status).toBe('pending');
    expect((await t.api('operator').post(`/v1/operator/participants/${bankC}/connections`, { currency: 'CNY', mode: 'hosted' })).status).toBe(200);
    const decided = await t.hub.transfers.transfers.settleConnected(paymentId);
    expect(decided?.status).toBe('rejected');
    expect(decided?.reason).toEqual(expect.objectContaining({ Rsn: 'AB05', AddtlInf: expect.stringContaining('no longer connected') }));
    expect((await bank.hold(paymentId))).toBeUndefined(); // never asked
    expect(await balance(liAccount())).toBe(before.li);
    expect(await pendingOf(liAccount())).toBe(0n);
    // The abort waits until the bank is reachable again (its connection restored), then is acknowledged.
    await t.hub.connectors.deliverDue();
    expect((await t.hub.connectors.messages(paymentId))[0]).toEqual(expect.objectContaining({ kind: 'abort', acked: false }));
    await t.api('operator').post(`/v1/operator/participants/${bankC}/connections`, { currency: 'CNY', mode: 'connected', endpointUrl: bank.url(), publicJwk: bank.publicJwk, deadlineMs: 10_000 });
    clock.advance(2_000);
    const [abort] = await deliverAll(paymentId);
    expect(abort).toEqual(expect.objectContaining({ kind: 'abort', acked: true }));
    expect(await bankTotal()).toBe(before.total);
    await expectConserved();
  });

  it('a bank that crashes between reserve and commit finds the final state at the hub when it comes back', async () => {
    await t.api('operator').post(`/v1/operator/participants/${bankC}/connections`, { currency: 'CNY', mode: 'connected', endpointUrl: bank.url(), publicJwk: bank.publicJwk, deadlineMs: 1_500 });
    bank.switches.crashAfterReserve = true;
    const before = await snapshot();
    const pay = await wangPays('liwei', '8.00');
    // The hold is in the bank's books, the answer was lost: the hub aborts.
    const paymentId = pay.body.error.details.paymentId as string;
    expect(pay.body.error.details.reason.Rsn).toBe('AB05');
    expect((await bank.hold(paymentId))?.state).toBe('held');
    // Still down: the abort is not acknowledged yet.
    await t.hub.connectors.deliverDue();
    expect((await t.hub.connectors.messages(paymentId))[0]?.acked).toBe(false);
    // No round of deliveries is still on its way to the bank: what releases the hold is the bank asking the hub.
    await t.hub.connectors.drain();
    const back = await bank.restart();
    expect(back.released).toBeGreaterThanOrEqual(1);
    expect((await bank.hold(paymentId))?.state).toBe('released');
    expect(await bank.openHolds()).toEqual([]);
    expect(await bank.balance(wangAccount)).toBe(before.wang);
    expect(await balance(liAccount())).toBe(before.li);
    expect(await position()).toBe(before.pos);
    clock.advance(2_000);
    await deliverAll(paymentId);
    expect(await bankTotal()).toBe(before.total);
  });
});
