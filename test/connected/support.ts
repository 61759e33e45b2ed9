import { expect } from 'vitest';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { connectReferenceBank, CONNECTED_CUSTOMERS, type ConnectedBankCredential } from '../../src/demo/bank/connect.ts';
import { createReferenceBank, type ReferenceBank } from '../../src/demo/bank/reference-bank.ts';
import { demoParticipantId } from '../../src/demo/seed.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import type { Engine } from '../support/engines.ts';

/**
 * The set-up the connected tests share: a hub with the reference bank (bank-c, CNY) connected to it, and the reads
 * every such test makes: hub balances, the bank's position, the conservation across the hub's ledger and the bank's
 * books, the bank's own API calls, deliveries of the commit/abort outbox, and linking the bank's customer's account
 * into a hosted wallet by the bank's open-banking consent.
 */
export interface ConnectedNetwork {
  readonly t: TestHub;
  readonly bank: ReferenceBank;
  readonly bankCred: ConnectedBankCredential;
  readonly clock: FakeClock;
  readonly bankC: string;
  /** Posted balance of a hub ledger account (credits − debits). */
  balance(accountId: string): Promise<bigint>;
  /** The connected bank's position at the hub. */
  position(): Promise<bigint>;
  /** Σ (bank's clearing) + (its position's movement since the start) = 0, and the hub's ledger invariants hold. */
  expectConserved(): Promise<void>;
  /** A call to the hub as the connected bank (its own client credentials). */
  bankApi(method: 'GET' | 'POST', url: string, payload?: object, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  /** Delivers the payment's commit/abort messages until every one is acknowledged. */
  deliverAll(paymentId: string): Promise<void>;
  /**
   * The bank, hung until now, wakes up: it handles what it was sent (the late request and the abort, in either order)
   * and the payment's messages are delivered; then waits (bounded) until the bank's hold for it is no longer `open`
   * (`held` for a reserve, `accepted` for an accept), so that a test can assert it was released.
   */
  wakeBank(paymentId: string, open: 'held' | 'accepted'): Promise<void>;
  /** Links the bank's customer 王芳's account into `wallet`'s customer by the bank's consent; the hub consent id. */
  link(wallet: string, customerId: string): Promise<string>;
  close(): Promise<void>;
}

export async function startConnectedNetwork(engine: Engine, options: { deadlineMs?: number } = {}): Promise<ConnectedNetwork> {
  const clock = createFakeClock(Date.now());
  const t = await startTestHub(engine, { clock });
  // The bank signs and checks signatures by the hub's fake clock: tests that advance it past the signatures' maximum
  // age (300 s) would otherwise see the bank refuse the hub's requests as stale.
  const bank = await createReferenceBank({ hubPublicJwk: await t.hub.connectors.publicJwk(), nowMs: () => clock.nowMs() });
  await bank.listen(0);
  const bankCred = await connectReferenceBank(t.hub, bank, { deadlineMs: options.deadlineMs ?? 5_000 });
  const bankC = demoParticipantId('bank-c');
  const balance = async (accountId: string) => {
    const r = await t.hub.transfers.ledger.getAccount(accountId);
    if (!r.ok) throw new Error(r.error.code);
    return r.value.creditsPostedMinor - r.value.debitsPostedMinor;
  };
  const position = () => balance(`fund_${bankC}_CNY`);
  const initialPosition = await position();
  const token = async () => {
    const res = await t.hub.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: bankCred.clientId, client_secret: bankCred.clientSecret } });
    return `Bearer ${(res.json() as { access_token: string }).access_token}`;
  };
  const net: ConnectedNetwork = {
    t,
    bank,
    bankCred,
    clock,
    bankC,
    balance,
    position,
    async expectConserved() {
      expect((await bank.books('CNY')).clearing + (await position()) - initialPosition).toBe(0n);
      expect(await t.hub.ledger.checkInvariants()).toEqual([]);
    },
    async bankApi(method, url, payload, headers = {}) {
      const res = await t.hub.app.inject({ method, url, headers: { authorization: await token(), ...headers }, ...(payload !== undefined ? { payload } : {}) });
      return { status: res.statusCode, body: res.json() };
    },
    async deliverAll(paymentId) {
      for (let i = 0; i < 50; i++) {
        await t.hub.connectors.deliverDue();
        if ((await t.hub.connectors.messages(paymentId)).every((m) => m.acked)) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async wakeBank(paymentId, open) {
      bank.switches.hang = false;
      bank.release();
      await t.hub.connectors.drain();
      await net.deliverAll(paymentId);
      for (let i = 0; i < 100 && (await bank.hold(paymentId))?.state === open; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    },
    async link(wallet, customerId) {
      const wang = CONNECTED_CUSTOMERS[0]!;
      const redirectUri = `https://${wallet}.example/open-banking/callback`;
      const started = await t.api(wallet).post('/v1/open-banking/consents', { customerId, bankParticipantId: bankC, currency: 'CNY', redirectUri }, { 'idempotency-key': `link-${Date.now()}-${Math.random()}` });
      expect(started.status).toBe(201);
      const form = new URLSearchParams(new URL(started.body.authorizeUrl).searchParams);
      form.set('account', wang.bankAccount);
      form.set('passcode', wang.passcode);
      form.set('decision', 'approve');
      const back = await fetch(`${bank.url()}/oauth/authorize`, { method: 'POST', body: form, redirect: 'manual' });
      expect(back.status).toBe(302);
      const redirected = new URL(back.headers.get('location') ?? '');
      const done = await t.api(wallet).post(`/v1/open-banking/consents/${started.body.id}/authorize`, { code: redirected.searchParams.get('code'), state: redirected.searchParams.get('state') });
      expect(done.status).toBe(200);
      return started.body.id as string;
    },
    async close() {
      await bank.close();
      await t.close();
    },
  };
  return net;
}

/** The reference bank behaving again (between tests). */
export function resetSwitches(bank: ReferenceBank): void {
  bank.release();
  Object.assign(bank.switches, { slowMs: 0, hang: false, down: false, refuse: undefined, duplicate: false, crashAfterReserve: false });
}
