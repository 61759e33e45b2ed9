import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CONNECTED_CUSTOMERS } from '../../src/demo/bank/connect.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { availableEngines } from '../support/engines.ts';
import { resetSwitches, startConnectedNetwork, type ConnectedNetwork } from './support.ts';

/**
 * Red packets funded from an account at a bank that keeps its own books (bank-c, the reference bank): the packet is
 * written `funding` with a payment on the one two-phase path (payer connected, payee the packet's escrow); the bank
 * reserves, the commit posts the money into escrow through the positions and opens the packet; a refusal or a missed
 * deadline fails it with nothing moved. Members claim (hosted: through the positions; connected: the bank accepts);
 * at expiry the rest goes back to the sender's bank as a payment the bank accepts (escrow → positions → bank), and a
 * refused refund waits in escrow, visible, for the next try. Money is conserved across the hub's ledger and the bank.
 */
const engines = await availableEngines();
let n = 0;
const key = () => ({ 'idempotency-key': `rpf-${Date.now()}-${++n}` });

describe.each(engines)('red packets funded from an account at a connected bank on %s', (engine) => {
  let net: ConnectedNetwork;
  const [wang, chen] = [CONNECTED_CUSTOMERS[0]!, CONNECTED_CUSTOMERS[1]!];
  const wangId = demoCustomerId('wang-at-bank-c');
  const chenId = demoCustomerId('chen-at-bank-c');
  const wangHubAccount = `acc_${wangId}_CNY`;
  const walletA = demoParticipantId('wallet-a');
  const li = () => net.t.demo.customers.get('li-at-wallet-a')!;
  const liAccount = () => `acc_${li()}_CNY`;
  const bankEscrow = () => `esc_${net.bankC}_CNY`;
  const walletEscrow = `esc_${walletA}_CNY`;
  const walletPosition = `fund_${walletA}_CNY`;
  /** A hub account's posted balance, 0 before it exists (an escrow is made by its first packet). */
  const bal = (accountId: string) => net.balance(accountId).catch(() => 0n);
  const reserves = async (paymentId: string) => (await net.bank.db.query<{ key: string }>('select key from answers where key like $1', [`reserve:${paymentId}%`])).length;
  const packetPayments = async (packetId: string, prefix: 'rpf' | 'rpr') =>
    net.t.hub.db.query<{ id: string; status: string; reason: string | null }>(`select id, status, reason from payments where id like $1 order by created_at, id`, [`pay_${prefix}_${packetId.slice(4)}%`]);
  const events = async (type: string, packetId: string) =>
    (await net.t.hub.db.query<{ participant_id: string; payload: any }>(`select participant_id, payload from events where type = $1 and payload->>'packetId' = $2 order by created_at`, [type, packetId])).map((e) => ({
      participantId: e.participant_id,
      ...e.payload,
    }));
  const fromBank = (body: object, headers = key()) => net.bankApi('POST', '/v1/transfers/red-packets', { customerId: wangId, mode: 'equal', ...body }, headers);
  const packetSeen = async (id: string) => (await net.bankApi('GET', `/v1/transfers/red-packets/${id}`)).body;

  beforeAll(async () => {
    net = await startConnectedNetwork(engine, { deadlineMs: 1_500 });
  }, 240_000);
  afterAll(async () => net?.close());
  beforeEach(() => resetSwitches(net.bank));

  it('funded by the bank’s own customer: reserved at the bank, committed into escrow (open); a hosted and a connected member claim; at expiry the rest goes back to the sender’s bank account', async () => {
    const [pos0, esc0, li0, wallet0] = [await net.position(), await bal(bankEscrow()), await bal(liAccount()), await bal(walletPosition)];
    const [wang0, chen0] = [(await net.bank.balance(wang.bankAccount))!, (await net.bank.balance(chen.bankAccount))!];
    const made = await fromBank({
      total: { amount: '9.00', currency: 'CNY' },
      shares: 3,
      members: [{ type: 'handle', value: 'liwei' }, { type: 'handle', value: 'chenjie' }, { type: 'handle', value: 'zhangmin' }],
      message: '新年快乐',
      expiresInS: 60,
    });
    expect(made.status).toBe(201);
    expect(made.body).toEqual(expect.objectContaining({ status: 'open', total: { amount: '9.00', currency: 'CNY' }, reason: null, refundRetryAt: null }));
    const fundingId = made.body.fundingPaymentId as string;
    expect(fundingId).toMatch(/^pay_rpf_/);
    // The hub: the bank's position paid the escrow; the customer's hub address holds nothing.
    expect(await net.position()).toBe(pos0 - 900n);
    expect(await bal(bankEscrow())).toBe(esc0 + 900n);
    expect(await bal(wangHubAccount)).toBe(0n);
    // The bank: held, then debited once the commit is delivered.
    expect(['held', 'committed']).toContain((await net.bank.hold(fundingId))?.state);
    await net.deliverAll(fundingId);
    expect((await net.bank.hold(fundingId))?.state).toBe('committed');
    expect(await net.bank.balance(wang.bankAccount)).toBe(wang0 - 900n);
    expect((await net.bankApi('GET', `/v1/connector/transfers/${fundingId}`)).body.TxSts).toBe('ACSC');
    // Webhooks: the sender's bank hears it is open; each member's participant that its customers may claim.
    expect(await events('red_packet.funded', made.body.id)).toEqual([expect.objectContaining({ participantId: net.bankC, customerId: wangId, status: 'open', paymentId: fundingId, total: { amount: '9.00', currency: 'CNY' } })]);
    expect((await events('red_packet.received', made.body.id)).map((e) => e.participantId).sort()).toEqual([net.bankC, walletA, demoParticipantId('wallet-b')].sort());
    await net.expectConserved();

    // A hosted member (wallet-a): paid from the escrow through the positions (the bank owes wallet-a at settlement).
    const byLi = await net.t.api('wallet-a').post(`/v1/transfers/red-packets/${made.body.id}/claim`, { customerId: li() }, key());
    expect(byLi.status).toBe(201);
    expect(byLi.body.amount).toEqual({ amount: '3.00', currency: 'CNY' });
    expect(byLi.body.paymentId).toBeUndefined();
    expect(await bal(liAccount())).toBe(li0 + 300n);
    expect(await bal(bankEscrow())).toBe(esc0 + 600n);
    expect(await net.position()).toBe(pos0 - 900n);
    expect(await bal(walletPosition)).toBe(wallet0);
    const moves = await net.t.hub.db.query<{ payer_participant_id: string; payee_participant_id: string; amount_minor: bigint }>(
      'select payer_participant_id, payee_participant_id, amount_minor from settlement_entries where payment_id like $1',
      [`${made.body.id}:claim:%`],
    );
    expect(moves).toEqual([{ payer_participant_id: net.bankC, payee_participant_id: walletA, amount_minor: 300n }]);
    await net.expectConserved();

    // A connected member (the same bank's other customer): a payment with a connected payee, the bank accepts.
    const byChen = await net.bankApi('POST', `/v1/transfers/red-packets/${made.body.id}/claim`, { customerId: chenId }, key());
    expect(byChen.status).toBe(201);
    expect(byChen.body.amount).toEqual({ amount: '3.00', currency: 'CNY' });
    expect(await bal(bankEscrow())).toBe(esc0 + 300n);
    expect(await net.position()).toBe(pos0 - 600n);
    await net.deliverAll(byChen.body.paymentId);
    expect(await net.bank.balance(chen.bankAccount)).toBe(chen0 + 300n);
    await net.expectConserved();

    // Expiry: the unclaimed share goes back to 王芳's account at the bank (the bank accepts), never into its hub address.
    net.clock.advance(61_000);
    expect(await net.t.hub.transfers.sweep()).toEqual(expect.objectContaining({ refunded: 1 }));
    const [refund] = await packetPayments(made.body.id, 'rpr');
    expect(refund).toEqual(expect.objectContaining({ status: 'completed' }));
    expect(await packetSeen(made.body.id)).toEqual(expect.objectContaining({ status: 'refunded', refunded: { amount: '3.00', currency: 'CNY' }, claimedCount: 2 }));
    expect(await events('red_packet.refunded', made.body.id)).toEqual([expect.objectContaining({ participantId: net.bankC, status: 'refunded', paymentId: refund!.id, refunded: { amount: '3.00', currency: 'CNY' } })]);
    expect(await bal(bankEscrow())).toBe(esc0);
    expect(await net.position()).toBe(pos0 - 300n);
    expect(await bal(wangHubAccount)).toBe(0n);
    await net.deliverAll(refund!.id);
    expect((await net.bank.hold(refund!.id))?.state).toBe('committed');
    expect(await net.bank.balance(wang.bankAccount)).toBe(wang0 - 600n);
    expect(await net.bank.openHolds()).toEqual([]);
    await net.expectConserved();
  });

  it('funded by a wallet’s customer from the account linked by the bank’s consent: the rest returns to the bank at expiry; the reserve names the consent (revoked at the bank: MD01, consent_revoked)', async () => {
    const consentId = await net.link('wallet-a', li());
    const [pos0, esc0, wallet0, wang0] = [await net.position(), await bal(walletEscrow), await bal(walletPosition), (await net.bank.balance(wang.bankAccount))!];
    const made = await net.t.api('wallet-a').post(
      '/v1/transfers/red-packets',
      { customerId: li(), sourceAccountId: wangHubAccount, total: { amount: '5.00', currency: 'CNY' }, shares: 2, mode: 'equal', members: [{ type: 'handle', value: 'zhangmin' }, { type: 'handle', value: 'wangfang' }], expiresInS: 60 },
      key(),
    );
    expect(made.status).toBe(201);
    expect(made.body.status).toBe('open');
    const fundingId = made.body.fundingPaymentId as string;
    // The bank's position → wallet-a's (a settlement move) → the escrow: wallet-a's position is where it was.
    expect(await net.position()).toBe(pos0 - 500n);
    expect(await bal(walletPosition)).toBe(wallet0);
    expect(await bal(walletEscrow)).toBe(esc0 + 500n);
    await net.deliverAll(fundingId);
    expect(await net.bank.balance(wang.bankAccount)).toBe(wang0 - 500n);
    await net.expectConserved();

    // The connected member (王芳 herself) claims one share; the other stays unclaimed.
    const claimed = await net.bankApi('POST', `/v1/transfers/red-packets/${made.body.id}/claim`, { customerId: wangId }, key());
    expect(claimed.status).toBe(201);
    await net.deliverAll(claimed.body.paymentId);
    expect(await net.bank.balance(wang.bankAccount)).toBe(wang0 - 250n);
    expect(await net.position()).toBe(pos0 - 250n);

    net.clock.advance(61_000);
    await net.t.hub.transfers.sweep();
    const [refund] = await packetPayments(made.body.id, 'rpr');
    expect(refund?.status).toBe('completed');
    await net.deliverAll(refund!.id);
    expect(await bal(walletEscrow)).toBe(esc0);
    expect(await bal(walletPosition)).toBe(wallet0);
    expect(await net.position()).toBe(pos0);
    expect(await net.bank.balance(wang.bankAccount)).toBe(wang0);
    expect((await net.t.api('wallet-a').get(`/v1/transfers/red-packets/${made.body.id}`)).body.status).toBe('refunded');
    await net.expectConserved();

    // The reserve names the consent: once 王芳 revokes it at the bank, the bank refuses the debit (MD01).
    const [{ bank_consent_id }] = (await net.t.hub.db.query<{ bank_consent_id: string }>('select bank_consent_id from open_banking_consents where id = $1', [consentId])) as [{ bank_consent_id: string }];
    const revoked = await fetch(`${net.bank.url()}/ob/consents/${bank_consent_id}/revoke?account=${wang.bankAccount}`, { method: 'POST', headers: { 'x-customer-passcode': wang.passcode } });
    expect(revoked.status).toBe(200);
    const refused = await net.t.api('wallet-a').post(
      '/v1/transfers/red-packets',
      { customerId: li(), sourceAccountId: wangHubAccount, total: { amount: '1.00', currency: 'CNY' }, shares: 1, mode: 'equal', members: [{ type: 'handle', value: 'zhangmin' }] },
      key(),
    );
    expect(refused.status).toBe(403);
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'consent_revoked', details: expect.objectContaining({ reason: expect.objectContaining({ Rsn: 'MD01' }), packetStatus: 'failed', revokedBy: 'bank' }) }));
    expect(await net.position()).toBe(pos0);
    expect(await bal(walletEscrow)).toBe(esc0);
    await net.deliverAll(refused.body.error.details.paymentId);
    await net.expectConserved();
  });

  it('the bank refuses for lack of funds (AM04): insufficient_funds, the packet failed, nothing moved anywhere, nobody can claim', async () => {
    const atBank = (await net.bank.balance(wang.bankAccount))!;
    const tooMuch = (atBank + 100n).toString();
    const [pos0, esc0] = [await net.position(), await bal(bankEscrow())];
    const refused = await fromBank({ total: { amount: `${tooMuch.slice(0, -2)}.${tooMuch.slice(-2)}`, currency: 'CNY' }, shares: 1, members: [{ type: 'handle', value: 'liwei' }] });
    expect(refused.status).toBe(422);
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'insufficient_funds', details: expect.objectContaining({ reason: expect.objectContaining({ Rsn: 'AM04' }), packetStatus: 'failed' }) }));
    const packetId = refused.body.error.details.packetId as string;
    expect(await packetSeen(packetId)).toEqual(expect.objectContaining({ status: 'failed', reason: { Rsn: 'AM04' } }));
    expect(await net.position()).toBe(pos0);
    expect(await bal(bankEscrow())).toBe(esc0);
    expect(await net.bank.balance(wang.bankAccount)).toBe(atBank);
    expect(await net.bank.openHolds()).toEqual([]);
    const claim = await net.t.api('wallet-a').post(`/v1/transfers/red-packets/${packetId}/claim`, { customerId: li() }, key());
    expect(claim.status).toBe(409);
    expect(claim.body.error.code).toBe('red_packet_not_open');
    expect(await events('red_packet.failed', packetId)).toEqual([expect.objectContaining({ participantId: net.bankC, status: 'failed', reason: 'AM04' })]);
    expect(await events('red_packet.received', packetId)).toEqual([]);
    await net.deliverAll(refused.body.error.details.paymentId);
    expect((await net.bankApi('GET', `/v1/connector/transfers/${refused.body.error.details.paymentId}`)).body.TxSts).toBe('RJCT');
    await net.expectConserved();
  });

  it('the bank hangs past its deadline: the packet failed (AB05), nothing moved; the late reserve’s hold is released when the abort is delivered', async () => {
    const [pos0, esc0, wang0] = [await net.position(), await bal(bankEscrow()), (await net.bank.balance(wang.bankAccount))!];
    net.bank.switches.hang = true;
    const timedOut = await fromBank({ total: { amount: '4.00', currency: 'CNY' }, shares: 2, members: [{ type: 'handle', value: 'liwei' }] });
    expect(timedOut.status).toBe(422);
    expect(timedOut.body.error).toEqual(expect.objectContaining({ code: 'payment_rejected', details: expect.objectContaining({ reason: expect.objectContaining({ Rsn: 'AB05' }), packetStatus: 'failed' }) }));
    const id = timedOut.body.error.details.paymentId as string;
    expect((await net.t.hub.connectors.messages(id)).map((m) => m.kind)).toEqual(['abort']);
    await net.wakeBank(id, 'held');
    expect([undefined, 'released']).toContain((await net.bank.hold(id))?.state);
    expect(await net.bank.openHolds()).toEqual([]);
    expect(await packetSeen(timedOut.body.error.details.packetId)).toEqual(expect.objectContaining({ status: 'failed' }));
    expect(await net.position()).toBe(pos0);
    expect(await bal(bankEscrow())).toBe(esc0);
    expect(await net.bank.balance(wang.bankAccount)).toBe(wang0);
    await net.expectConserved();
  });

  it('a retry with the same Idempotency-Key answers the same packet: the bank reserved once, the money moved once', async () => {
    const headers = key();
    const body = { total: { amount: '2.00', currency: 'CNY' }, shares: 1, members: [{ type: 'handle', value: 'liwei' }] };
    const first = await fromBank(body, headers);
    expect(first.status).toBe(201);
    await net.deliverAll(first.body.fundingPaymentId);
    const [pos1, esc1, wang1] = [await net.position(), await bal(bankEscrow()), (await net.bank.balance(wang.bankAccount))!];
    const again = await fromBank(body, headers);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(await reserves(first.body.fundingPaymentId)).toBe(1);
    expect(await packetPayments(first.body.id, 'rpf')).toHaveLength(1);
    expect(await net.t.hub.db.query('select id from red_packets where funding_payment_id = $1', [first.body.fundingPaymentId])).toHaveLength(1);
    expect([await net.position(), await bal(bankEscrow()), (await net.bank.balance(wang.bankAccount))!]).toEqual([pos1, esc1, wang1]);
    await net.expectConserved();
  });

  it('a hub stopped between the packet’s transaction and the ask: recovery aborts the funding at its deadline (AB03), the packet failed, nothing moved', async () => {
    const [pos0, esc0, wang0] = [await net.position(), await bal(bankEscrow()), (await net.bank.balance(wang.bankAccount))!];
    const bankP = (await net.t.hub.participants.get(net.bankC))!;
    const r = await net.t.hub.db.transaction((tx) =>
      net.t.hub.transfers.transfers.createRedPacket(tx, { type: 'system' }, bankP, { customerId: wangId, totalMinor: 500n, currency: 'CNY', shares: 1, mode: 'equal', members: [{ type: 'handle', value: 'liwei' }] }),
    );
    expect(r.ok && r.value.status).toBe('funding');
    const packet = r.ok ? r.value : undefined;
    // Reserved at the hub only: the bank's position holds it pending; nothing posted.
    expect(await net.position()).toBe(pos0);
    expect((await net.t.api('wallet-a').post(`/v1/transfers/red-packets/${packet!.id}/claim`, { customerId: li() }, key())).body.error.code).toBe('red_packet_not_open');
    net.clock.advance(10_000);
    expect(await net.t.hub.transfers.transfers.recoverConnected()).toBeGreaterThanOrEqual(1);
    expect(await packetSeen(packet!.id)).toEqual(expect.objectContaining({ status: 'failed', reason: expect.objectContaining({ Rsn: 'AB03' }) }));
    await net.deliverAll(packet!.fundingPaymentId!);
    expect(await net.position()).toBe(pos0);
    expect(await bal(bankEscrow())).toBe(esc0);
    expect(await net.bank.balance(wang.bankAccount)).toBe(wang0);
    expect(await net.bank.openHolds()).toEqual([]);
    await net.expectConserved();
  });

  it('a connected member’s share the bank refuses after the sweep goes back to the sender’s bank by the next refund (never into a hub address)', async () => {
    const [pos0, esc0, wang0, chen0] = [await net.position(), await bal(bankEscrow()), (await net.bank.balance(wang.bankAccount))!, (await net.bank.balance(chen.bankAccount))!];
    const made = await fromBank({ total: { amount: '1.50', currency: 'CNY' }, shares: 1, members: [{ type: 'handle', value: 'chenjie' }], expiresInS: 60 });
    expect(made.status).toBe(201);
    await net.deliverAll(made.body.fundingPaymentId);
    // The claim's transaction only (the bank's answer still to come), then the packet expires: nothing left to refund.
    const claimed = await net.t.hub.db.transaction((tx) => net.t.hub.transfers.transfers.claimRedPacket(tx, { type: 'system' }, net.bankC, made.body.id, chenId));
    const paymentId = claimed.ok ? claimed.value.paymentId! : '';
    net.clock.advance(61_000);
    await net.t.hub.transfers.sweep();
    expect((await packetSeen(made.body.id)).status).toBe('completed');
    net.bank.switches.refuse = { op: 'accept', reason: 'AC04' };
    expect((await net.t.hub.transfers.transfers.settleConnected(paymentId))?.status).toBe('rejected');
    await net.deliverAll(paymentId);
    // Released into the rest, in the escrow, due for a refund through the bank.
    expect(await packetSeen(made.body.id)).toEqual(expect.objectContaining({ status: 'refunding' }));
    expect(await bal(bankEscrow())).toBe(esc0 + 150n);
    expect(await bal(wangHubAccount)).toBe(0n);
    resetSwitches(net.bank);
    await net.t.hub.transfers.sweep();
    const [refund] = await packetPayments(made.body.id, 'rpr');
    expect(refund?.status).toBe('completed');
    await net.deliverAll(refund!.id);
    expect(await packetSeen(made.body.id)).toEqual(expect.objectContaining({ status: 'refunded', refunded: { amount: '1.50', currency: 'CNY' } }));
    expect(await bal(bankEscrow())).toBe(esc0);
    expect(await net.position()).toBe(pos0);
    expect(await net.bank.balance(wang.bankAccount)).toBe(wang0);
    expect(await net.bank.balance(chen.bankAccount)).toBe(chen0);
    await net.expectConserved();
  });

  it('the sender’s bank refuses the refund: the rest stays in escrow, visibly refunding, and is returned on the next try', async () => {
    const wang0 = (await net.bank.balance(wang.bankAccount))!;
    const made = await fromBank({ total: { amount: '3.00', currency: 'CNY' }, shares: 1, members: [{ type: 'handle', value: 'liwei' }], expiresInS: 60 });
    expect(made.status).toBe(201);
    await net.deliverAll(made.body.fundingPaymentId);
    const [pos1, esc1] = [await net.position(), await bal(bankEscrow())];
    expect(await net.bank.balance(wang.bankAccount)).toBe(wang0 - 300n);

    net.bank.switches.refuse = { op: 'accept', reason: 'AC04' };
    net.clock.advance(61_000);
    await net.t.hub.transfers.sweep();
    const seen = await packetSeen(made.body.id);
    expect(seen).toEqual(expect.objectContaining({ status: 'refunding', reason: { Rsn: 'AC04' }, refunded: { amount: '0.00', currency: 'CNY' } }));
    expect(Date.parse(seen.refundRetryAt)).toBeGreaterThan(net.clock.nowMs());
    const [first] = await packetPayments(made.body.id, 'rpr');
    expect(first).toEqual(expect.objectContaining({ status: 'rejected', reason: 'AC04' }));
    expect(await events('red_packet.refund_delayed', made.body.id)).toEqual([expect.objectContaining({ status: 'refunding', reason: 'AC04', paymentId: first!.id, amount: { amount: '3.00', currency: 'CNY' }, retryAt: seen.refundRetryAt })]);
    await net.deliverAll(first!.id);
    // Nothing moved: the money waits in the escrow; the customer's hub address never holds it.
    expect(await bal(bankEscrow())).toBe(esc1);
    expect(await net.position()).toBe(pos1);
    expect(await bal(wangHubAccount)).toBe(0n);
    expect(await net.bank.balance(wang.bankAccount)).toBe(wang0 - 300n);
    await net.expectConserved();
    // Not due yet: the sweep leaves it.
    await net.t.hub.transfers.sweep();
    expect(await packetPayments(made.body.id, 'rpr')).toHaveLength(1);

    resetSwitches(net.bank);
    net.clock.advance(61_000);
    await net.t.hub.transfers.sweep();
    const tries = await packetPayments(made.body.id, 'rpr');
    expect(tries.map((t) => t.status)).toEqual(['rejected', 'completed']);
    await net.deliverAll(tries[1]!.id);
    expect(await packetSeen(made.body.id)).toEqual(expect.objectContaining({ status: 'refunded', refunded: { amount: '3.00', currency: 'CNY' }, reason: null, refundRetryAt: null }));
    expect(await bal(bankEscrow())).toBe(esc1 - 300n);
    expect(await net.position()).toBe(pos1 + 300n);
    expect(await net.bank.balance(wang.bankAccount)).toBe(wang0);
    await net.expectConserved();
  });
});
