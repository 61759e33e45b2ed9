import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createFakeClock } from '../../src/platform/clock.ts';
import { connectReferenceBank, CONNECTED_CUSTOMERS, type ConnectedBankCredential } from '../../src/demo/bank/connect.ts';
import { createReferenceBank, type ReferenceBank } from '../../src/demo/bank/reference-bank.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * Payment kinds beyond P2P with a participant that keeps its own books (bank-c, the reference bank): money requests and
 * bill splits, with the payer or the payee at the connected bank. They pay through the one confirm path P2P uses
 * (quote → confirm → reserve at the payer's bank / accept at the payee's → commit or abort), so the bank's books and
 * the hub's positions move together, and a refusal leaves the request payable again. A red packet share claimed by a
 * connected bank's customer is paid through the same two-phase path (the bank accepts); packets funded from an account
 * at the connected bank: red-packets-funded.test.ts.
 */
const engines = await availableEngines();
let n = 0;
const key = () => ({ 'idempotency-key': `kinds-${Date.now()}-${++n}` });

describe.each(engines)('payment kinds with a connected bank on %s', (engine) => {
  let t: TestHub;
  let bank: ReferenceBank;
  let bankCred: ConnectedBankCredential;
  const clock = createFakeClock(Date.now());
  const bankC = demoParticipantId('bank-c');
  const wang = demoCustomerId('wang-at-bank-c');
  const wangAccount = CONNECTED_CUSTOMERS[0]!.bankAccount;
  const li = () => t.demo.customers.get('li-at-wallet-a')!;
  const liAccount = () => `acc_${li()}_CNY`;

  const balance = async (accountId: string) => {
    const r = await t.hub.transfers.ledger.getAccount(accountId);
    if (!r.ok) throw new Error(r.error.code);
    return r.value.creditsPostedMinor - r.value.debitsPostedMinor;
  };
  const position = async () => {
    const r = await t.hub.transfers.ledger.getAccount(`fund_${bankC}_CNY`);
    if (!r.ok) throw new Error(r.error.code);
    return r.value.creditsPostedMinor - r.value.debitsPostedMinor;
  };
  let initialPosition = 0n;
  const expectConserved = async () => {
    expect((await bank.books('CNY')).clearing + (await position()) - initialPosition).toBe(0n);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  };
  const asBank = async () => {
    const res = await t.hub.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: bankCred.clientId, client_secret: bankCred.clientSecret } });
    return { authorization: `Bearer ${(res.json() as { access_token: string }).access_token}` };
  };
  const bankApi = async (method: 'GET' | 'POST', url: string, payload?: object, headers: Record<string, string> = {}) => {
    const res = await t.hub.app.inject({ method, url, headers: { ...(await asBank()), ...headers }, ...(payload !== undefined ? { payload } : {}) });
    return { status: res.statusCode, body: res.json() as any };
  };
  const deliverAll = async (paymentId: string) => {
    for (let i = 0; i < 50; i++) {
      await t.hub.connectors.deliverDue();
      if ((await t.hub.connectors.messages(paymentId)).every((m) => m.acked)) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  beforeAll(async () => {
    t = await startTestHub(engine, { clock });
    bank = await createReferenceBank({ hubPublicJwk: await t.hub.connectors.publicJwk() });
    await bank.listen(0);
    bankCred = await connectReferenceBank(t.hub, bank, { deadlineMs: 5_000 });
    initialPosition = await position();
  }, 240_000);
  afterAll(async () => {
    await bank?.close();
    await t?.close();
  });
  beforeEach(() => {
    Object.assign(bank.switches, { slowMs: 0, hang: false, down: false, refuse: undefined, duplicate: false, crashAfterReserve: false });
  });

  it('a hosted wallet’s customer requests money from a connected bank’s customer, who pays it from the bank (reserve at the bank)', async () => {
    const made = await t.api('wallet-a').post('/v1/transfers/requests', { customerId: li(), payer: { type: 'handle', value: 'wangfang' }, amount: { amount: '15.00', currency: 'CNY' }, note: 'dinner' }, key());
    expect(made.status).toBe(201);
    const [li0, wang0, pos0] = [await balance(liAccount()), (await bank.balance(wangAccount))!, await position()];
    const quote = await bankApi('POST', `/v1/transfers/requests/${made.body.id}/approve`, { customerId: wang, sourceAccountId: `acc_${wang}_CNY` }, key());
    expect(quote.status).toBe(201);
    const pay = await bankApi('POST', '/v1/transfers/payments', { quoteId: quote.body.id }, key());
    expect(pay.status).toBe(201);
    expect(pay.body.status).toBe('completed');
    expect(pay.body.requestId).toBe(made.body.id);
    expect((await t.api('wallet-a').get(`/v1/transfers/requests/${made.body.id}`)).body.status).toBe('paid');
    expect(await balance(liAccount())).toBe(li0 + 1500n);
    expect(await position()).toBe(pos0 - 1500n);
    await deliverAll(pay.body.id);
    expect(await bank.balance(wangAccount)).toBe(wang0 - 1500n);
    await expectConserved();
  });

  it('a connected bank’s customer requests money from a hosted wallet’s customer: paid into the bank’s books (accept at the bank)', async () => {
    const made = await bankApi('POST', '/v1/transfers/requests', { customerId: wang, payer: { type: 'handle', value: 'liwei' }, amount: { amount: '8.50', currency: 'CNY' } }, key());
    expect(made.status).toBe(201);
    const [li0, wang0, pos0] = [await balance(liAccount()), (await bank.balance(wangAccount))!, await position()];
    const quote = await t.api('wallet-a').post(`/v1/transfers/requests/${made.body.id}/approve`, { customerId: li() }, key());
    expect(quote.status).toBe(201);
    const pay = await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: quote.body.id }, key());
    expect(pay.status).toBe(201);
    expect(pay.body.status).toBe('completed');
    expect((await bankApi('GET', `/v1/transfers/requests/${made.body.id}`)).body.status).toBe('paid');
    expect(await balance(liAccount())).toBe(li0 - 850n);
    expect(await position()).toBe(pos0 + 850n);
    // The bank's customer's address account at the hub never holds the money: the bank credits its own books.
    expect(await balance(`acc_${wang}_CNY`)).toBe(0n);
    await deliverAll(pay.body.id);
    expect(await bank.balance(wangAccount)).toBe(wang0 + 850n);
    await expectConserved();
  });

  it('a request whose payment the bank refuses stays payable, and is paid on the next try', async () => {
    const made = await t.api('wallet-a').post('/v1/transfers/requests', { customerId: li(), payer: { type: 'handle', value: 'wangfang' }, amount: { amount: '2.00', currency: 'CNY' } }, key());
    bank.switches.refuse = { op: 'reserve', reason: 'AM02' };
    const li0 = await balance(liAccount());
    const q1 = await bankApi('POST', `/v1/transfers/requests/${made.body.id}/approve`, { customerId: wang, sourceAccountId: `acc_${wang}_CNY` }, key());
    const refused = await bankApi('POST', '/v1/transfers/payments', { quoteId: q1.body.id }, key());
    expect(refused.status).toBe(422);
    expect(refused.body.error.details.reason.Rsn).toBe('AM02');
    expect((await t.api('wallet-a').get(`/v1/transfers/requests/${made.body.id}`)).body.status).toBe('pending');
    expect(await balance(liAccount())).toBe(li0);
    await deliverAll(refused.body.error.details.paymentId);
    bank.switches.refuse = undefined;
    const q2 = await bankApi('POST', `/v1/transfers/requests/${made.body.id}/approve`, { customerId: wang, sourceAccountId: `acc_${wang}_CNY` }, key());
    const paid = await bankApi('POST', '/v1/transfers/payments', { quoteId: q2.body.id }, key());
    expect(paid.status).toBe(201);
    expect((await t.api('wallet-a').get(`/v1/transfers/requests/${made.body.id}`)).body.status).toBe('paid');
    expect(await balance(liAccount())).toBe(li0 + 200n);
    await deliverAll(paid.body.id);
    await expectConserved();
  });

  it('a split with a member at the connected bank: that member pays their share from the bank', async () => {
    const split = await t.api('wallet-a').post('/v1/transfers/splits', { customerId: li(), total: { amount: '30.00', currency: 'CNY' }, method: 'equal', members: [{ alias: { type: 'handle', value: 'wangfang' } }, { alias: { type: 'handle', value: 'zhangmin' } }] }, key());
    expect(split.status).toBe(201);
    const wangShare = split.body.members.find((m: { requestId: string | null; isPayer: boolean; maskedName: string }) => !m.isPayer && m.requestId !== null && m.maskedName.startsWith('王'));
    expect(wangShare).toBeDefined();
    const [li0, wang0] = [await balance(liAccount()), (await bank.balance(wangAccount))!];
    const quote = await bankApi('POST', `/v1/transfers/requests/${wangShare.requestId}/approve`, { customerId: wang, sourceAccountId: `acc_${wang}_CNY` }, key());
    const pay = await bankApi('POST', '/v1/transfers/payments', { quoteId: quote.body.id }, key());
    expect(pay.status).toBe(201);
    const share = BigInt(Math.round(Number(wangShare.amount.amount) * 100));
    expect(await balance(liAccount())).toBe(li0 + share);
    await deliverAll(pay.body.id);
    expect(await bank.balance(wangAccount)).toBe(wang0 - share);
    const seen = await t.api('wallet-a').get(`/v1/transfers/splits/${split.body.id}`);
    expect(seen.body.members.find((m: { requestId: string | null }) => m.requestId === wangShare.requestId).status).toBe('paid');
    await expectConserved();
  });

  it('a red packet shared with a connected bank’s customer: the share is paid through the two-phase path (the bank accepts); a refusal releases it', async () => {
    const made = await t.api('wallet-a').post('/v1/transfers/red-packets', { customerId: li(), total: { amount: '6.00', currency: 'CNY' }, shares: 2, mode: 'equal', members: [{ type: 'handle', value: 'zhangmin' }, { type: 'handle', value: 'wangfang' }] }, key());
    expect(made.status).toBe(201);
    const escrow = `esc_${demoParticipantId('wallet-a')}_CNY`;
    const [escrow0, wang0, pos0] = [await balance(escrow), (await bank.balance(wangAccount))!, await position()];
    // The bank refuses first (the account is closed): nothing moves, the share can be claimed again.
    await bank.closeAccount(wangAccount);
    const refused = await bankApi('POST', `/v1/transfers/red-packets/${made.body.id}/claim`, { customerId: wang }, key());
    expect(refused.status).toBe(422);
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'payment_rejected', details: expect.objectContaining({ reason: expect.objectContaining({ Rsn: 'AC04' }) }) }));
    await deliverAll(refused.body.error.details.paymentId);
    expect(await balance(escrow)).toBe(escrow0);
    expect(await position()).toBe(pos0);
    await bank.db.query('update accounts set closed = false where id = $1', [wangAccount]);
    // Claimed again: accepted by the bank, committed; the bank credits its customer, the hub moves positions only.
    const claimed = await bankApi('POST', `/v1/transfers/red-packets/${made.body.id}/claim`, { customerId: wang }, key());
    expect(claimed.status).toBe(201);
    expect(claimed.body.amount).toEqual({ amount: '3.00', currency: 'CNY' });
    expect(typeof claimed.body.paymentId).toBe('string');
    expect(await balance(escrow)).toBe(escrow0 - 300n);
    expect(await position()).toBe(pos0 + 300n);
    expect(await balance(`acc_${wang}_CNY`)).toBe(0n);
    await deliverAll(claimed.body.paymentId);
    expect(await bank.balance(wangAccount)).toBe(wang0 + 300n);
    expect((await bankApi('GET', `/v1/connector/transfers/${claimed.body.paymentId}`)).body.TxSts).toBe('ACSC');
    // Once per member, as for any member.
    const again = await bankApi('POST', `/v1/transfers/red-packets/${made.body.id}/claim`, { customerId: wang }, key());
    expect(again.body.error.code).toBe('red_packet_already_claimed');
    await expectConserved();
  });

  it('a share refused by the member’s bank after the packet expired is refunded to the sender (nothing stays in escrow)', async () => {
    const li0 = await balance(liAccount());
    const made = await t.api('wallet-a').post('/v1/transfers/red-packets', { customerId: li(), total: { amount: '2.00', currency: 'CNY' }, shares: 1, mode: 'equal', members: [{ type: 'handle', value: 'wangfang' }], expiresInS: 60 }, key());
    expect(made.status).toBe(201);
    // The claim's transaction only (its answer from the bank still to come), then the packet expires and is swept.
    const r = await t.hub.db.transaction((tx) => t.hub.transfers.transfers.claimRedPacket(tx, { type: 'system' }, bankC, made.body.id, wang));
    expect(r.ok && r.value.paymentId).toBeTruthy();
    const paymentId = r.ok ? r.value.paymentId! : '';
    clock.advance(61_000);
    await t.hub.transfers.sweep();
    expect(await balance(liAccount())).toBe(li0 - 200n);
    bank.switches.refuse = { op: 'accept', reason: 'RR04' };
    const decided = await t.hub.transfers.transfers.settleConnected(paymentId);
    expect(decided?.status).toBe('rejected');
    expect(await balance(liAccount())).toBe(li0);
    expect(await balance(`esc_${demoParticipantId('wallet-a')}_CNY`)).toBeGreaterThanOrEqual(0n);
    await deliverAll(paymentId);
    await expectConserved();
  });

  it('a split created by a connected bank’s customer: a hosted member’s share is credited at the bank', async () => {
    const split = await bankApi('POST', '/v1/transfers/splits', { customerId: wang, total: { amount: '12.00', currency: 'CNY' }, method: 'equal', members: [{ alias: { type: 'handle', value: 'liwei' } }, { alias: { type: 'handle', value: 'chenjie' } }] }, key());
    expect(split.status).toBe(201);
    const liShare = split.body.members.find((m: { requestId: string | null; maskedName: string }) => m.requestId !== null && m.maskedName.startsWith('李'));
    expect(liShare).toBeDefined();
    const wang0 = (await bank.balance(wangAccount))!;
    const quote = await t.api('wallet-a').post(`/v1/transfers/requests/${liShare.requestId}/approve`, { customerId: li() }, key());
    const pay = await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: quote.body.id }, key());
    expect(pay.status).toBe(201);
    expect(pay.body.status).toBe('completed');
    await deliverAll(pay.body.id);
    expect(await bank.balance(wangAccount)).toBe(wang0 + BigInt(Math.round(Number(liShare.amount.amount) * 100)));
    expect((await bankApi('GET', `/v1/transfers/splits/${split.body.id}`)).body.members.find((m: { requestId: string | null }) => m.requestId === liShare.requestId).status).toBe('paid');
    await expectConserved();
  });
});
