import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeClock } from '../../src/platform/clock.ts';
import { connectReferenceBank, CONNECTED_CUSTOMERS } from '../../src/demo/bank/connect.ts';
import { createReferenceBank, type ReferenceBank } from '../../src/demo/bank/reference-bank.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * Open-banking account access end to end over HTTP: a hosted wallet's customer links an account at the connected
 * reference bank by the bank's OAuth 2.0 consent (authorization code with PKCE), reads its balance through the hub,
 * pays from it (the bank authorizes the debit at reserve time), and the consent is revoked in the wallet and at the
 * bank: reads and payments are then refused with consent_revoked (details.reason MD01 when the bank refuses the debit first).
 */
const engines = await availableEngines();
let n = 0;
const key = () => ({ 'idempotency-key': `ob-${Date.now()}-${++n}` });
const REDIRECT = 'https://wallet-a.example/open-banking/callback';

describe.each(engines)('open-banking account access on %s', (engine) => {
  let t: TestHub;
  let bank: ReferenceBank;
  const clock = createFakeClock(Date.now());
  const bankC = demoParticipantId('bank-c');
  const wang = CONNECTED_CUSTOMERS[0]!;
  const wangHubAccount = `acc_${demoCustomerId('wang-at-bank-c')}_CNY`;
  const li = () => t.demo.customers.get('li-at-wallet-a')!;
  const wallet = () => t.api('wallet-a');

  const hubBalance = async (accountId: string) => {
    const r = await t.hub.transfers.ledger.getAccount(accountId);
    if (!r.ok) throw new Error(r.error.code);
    return r.value.creditsPostedMinor - r.value.debitsPostedMinor;
  };
  const deliverAll = async (paymentId: string) => {
    for (let i = 0; i < 50; i++) {
      await t.hub.connectors.deliverDue();
      if ((await t.hub.connectors.messages(paymentId)).every((m) => m.acked)) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  /** The customer at the bank: opens the authorize URL, signs in with the account's passcode, approves; the bank redirects. */
  const approveAtBank = async (authorizeUrl: string, passcode = wang.passcode, decision = 'approve') => {
    const page = await fetch(authorizeUrl);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<form method="post"');
    const form = new URLSearchParams(new URL(authorizeUrl).searchParams);
    form.set('account', wang.bankAccount);
    form.set('passcode', passcode);
    form.set('decision', decision);
    const res = await fetch(`${bank.url()}/oauth/authorize`, { method: 'POST', body: form, redirect: 'manual' });
    return { status: res.status, location: res.headers.get('location') };
  };
  /** Link wang's bank account into li's wallet: start, approve at the bank, authorize at the hub. */
  const link = async () => {
    const started = await wallet().post('/v1/open-banking/consents', { customerId: li(), bankParticipantId: bankC, currency: 'CNY', redirectUri: REDIRECT }, key());
    expect(started.status).toBe(201);
    const back = await approveAtBank(started.body.authorizeUrl);
    expect(back.status).toBe(302);
    const redirected = new URL(back.location!);
    const done = await wallet().post(`/v1/open-banking/consents/${started.body.id}/authorize`, { code: redirected.searchParams.get('code'), state: redirected.searchParams.get('state') });
    expect(done.status).toBe(200);
    return { consentId: started.body.id as string, started: started.body, consent: done.body };
  };
  const bankConsents = async () => {
    const res = await fetch(`${bank.url()}/ob/consents?account=${wang.bankAccount}`, { headers: { 'x-customer-passcode': wang.passcode } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { items: { id: string; status: string; revokedBy: string | null; scope: string }[] }).items;
  };
  const revokeAtBank = async (bankConsentId: string) => {
    const res = await fetch(`${bank.url()}/ob/consents/${bankConsentId}/revoke?account=${wang.bankAccount}`, { method: 'POST', headers: { 'x-customer-passcode': wang.passcode } });
    expect(res.status).toBe(200);
    return (await res.json()) as { status: string; revokedBy: string };
  };
  const bankConsentIdOf = async (consentId: string) => (await t.hub.db.query<{ bank_consent_id: string }>('select bank_consent_id from open_banking_consents where id = $1', [consentId]))[0]!.bank_consent_id;
  const quoteFrom = (consentId: string, amount: string) => wallet().post(`/v1/open-banking/consents/${consentId}/quotes`, { payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount, currency: 'CNY' } }, key());

  beforeAll(async () => {
    t = await startTestHub(engine, { clock });
    bank = await createReferenceBank({ hubPublicJwk: await t.hub.connectors.publicJwk() });
    await bank.listen(0);
    await connectReferenceBank(t.hub, bank, { deadlineMs: 5_000 });
  }, 240_000);
  afterAll(async () => {
    await bank?.close();
    await t?.close();
  });

  it('links by the bank’s consent (authorization code with PKCE): the verifier and the grant are kept sealed, never in clear', async () => {
    const started = await wallet().post('/v1/open-banking/consents', { customerId: li(), bankParticipantId: bankC, currency: 'CNY', redirectUri: REDIRECT }, key());
    expect(started.status).toBe(201);
    expect(started.body).toEqual(expect.objectContaining({ status: 'awaiting_authorization', bankParticipantId: bankC, links: [], scope: 'accounts payments' }));
    const url = new URL(started.body.authorizeUrl);
    expect(`${url.origin}${url.pathname}`).toBe(`${bank.url()}/oauth/authorize`);
    expect(Object.fromEntries(url.searchParams)).toEqual(expect.objectContaining({ response_type: 'code', client_id: 'hutong', redirect_uri: REDIRECT, code_challenge_method: 'S256' }));
    // The hub keeps the verifier sealed (its S256 is the challenge sent) and only a hash of the state.
    const [row] = await t.hub.db.query<{ verifier_sealed: string; state_hash: string }>('select verifier_sealed, state_hash from open_banking_consents where id = $1', [started.body.id]);
    const verifier = await t.hub.vault.open(row!.verifier_sealed);
    expect(row!.verifier_sealed).not.toContain(verifier);
    expect(createHash('sha256').update(verifier).digest('base64url')).toBe(url.searchParams.get('code_challenge'));
    expect(row!.state_hash).not.toContain(url.searchParams.get('state')!);

    // A wrong passcode at the bank signs no one in; a denial redirects with access_denied.
    expect((await approveAtBank(started.body.authorizeUrl, 'wrong')).status).toBe(401);
    const denied = await approveAtBank(started.body.authorizeUrl, wang.passcode, 'deny');
    expect(new URL(denied.location!).searchParams.get('error')).toBe('access_denied');

    const back = await approveAtBank(started.body.authorizeUrl);
    const redirected = new URL(back.location!);
    expect(`${redirected.origin}${redirected.pathname}`).toBe(REDIRECT);
    expect(redirected.searchParams.get('state')).toBe(url.searchParams.get('state'));
    const code = redirected.searchParams.get('code')!;
    // Another consent's state (a forged redirect) is refused, and the code is not spent.
    const wrongState = await wallet().post(`/v1/open-banking/consents/${started.body.id}/authorize`, { code, state: 'not-the-state' });
    expect(wrongState.status).toBe(422);
    expect(wrongState.body.error.code).toBe('consent_state_invalid');
    const done = await wallet().post(`/v1/open-banking/consents/${started.body.id}/authorize`, { code, state: url.searchParams.get('state') });
    expect(done.status).toBe(200);
    expect(done.body).toEqual(expect.objectContaining({ status: 'active', links: [expect.objectContaining({ accountId: wangHubAccount, status: 'active' })], revokedBy: null }));
    // A retry (the answer was lost) answers the same consent; the code is not exchanged twice.
    const retried = await wallet().post(`/v1/open-banking/consents/${started.body.id}/authorize`, { code, state: url.searchParams.get('state') });
    expect(retried.status).toBe(200);
    expect(retried.body).toEqual(done.body);
    // The grant: sealed at the hub, and it is the token the bank issued (the bank keeps its hash).
    const [granted] = await t.hub.db.query<{ access_token_sealed: string; bank_consent_id: string }>('select access_token_sealed, bank_consent_id from open_banking_consents where id = $1', [started.body.id]);
    const token = await t.hub.vault.open(granted!.access_token_sealed);
    expect(granted!.access_token_sealed).not.toContain(token);
    const [atBank] = await bank.db.query<{ token_hash: string; account_id: string }>('select token_hash, account_id from ob_consents where id = $1', [granted!.bank_consent_id]);
    expect(atBank).toEqual({ token_hash: createHash('sha256').update(token).digest('base64url'), account_id: wang.bankAccount });
    // No API answer carries it.
    const listed = await wallet().get(`/v1/open-banking/consents?customerId=${li()}`);
    expect(JSON.stringify(listed.body)).not.toContain(token);
    expect(listed.body.items.map((c: { id: string }) => c.id)).toContain(started.body.id);
    // The code was spent: exchanging it again (a replay) is refused by the bank.
    const again = await wallet().post('/v1/open-banking/consents', { customerId: li(), bankParticipantId: bankC, currency: 'CNY', redirectUri: REDIRECT }, key());
    const replay = await wallet().post(`/v1/open-banking/consents/${again.body.id}/authorize`, { code, state: new URL(again.body.authorizeUrl).searchParams.get('state') });
    expect(replay.status).toBe(422);
    expect(replay.body.error.code).toBe('bank_authorization_failed');
    expect((await wallet().get(`/v1/open-banking/consents/${again.body.id}`)).body.status).toBe('failed');
    // Another wallet cannot name the consent.
    expect((await t.api('wallet-b').get(`/v1/open-banking/consents/${started.body.id}/balances`)).status).toBe(404);
    await wallet().delete(`/v1/open-banking/consents/${started.body.id}`);
  });

  it('a bank that does not keep its own books cannot be linked this way; redirect URIs must be https', async () => {
    const hosted = await wallet().post('/v1/open-banking/consents', { customerId: li(), bankParticipantId: demoParticipantId('bank-b'), currency: 'CNY', redirectUri: REDIRECT }, key());
    expect(hosted.status).toBe(422);
    expect(hosted.body.error.code).toBe('open_banking_unavailable');
    const plain = await wallet().post('/v1/open-banking/consents', { customerId: li(), bankParticipantId: bankC, currency: 'CNY', redirectUri: 'http://wallet.example/cb' }, key());
    expect(plain.status).toBe(400);
  });

  it('link → balance read → payment from the account (the bank authorizes the debit) → revoke in the wallet → refused', async () => {
    const { consentId } = await link();
    // The balance, read at the bank now, through the hub.
    const before = (await bank.balance(wang.bankAccount))!;
    const balances = await wallet().get(`/v1/open-banking/consents/${consentId}/balances`);
    expect(balances.status).toBe(200);
    expect(balances.body.items).toEqual([expect.objectContaining({ accountId: wangHubAccount, balance: { amount: (Number(before) / 100).toFixed(2), currency: 'CNY' } })]);

    // A payment from it to a hosted wallet's customer: reserved at the bank under the consent, then committed.
    const zhang = `acc_${t.demo.customers.get('zhang-at-wallet-b')!}_CNY`;
    const zhang0 = await hubBalance(zhang);
    const q = await quoteFrom(consentId, '25.00');
    expect(q.status).toBe(201);
    expect(q.body.sourceAccountId).toBe(wangHubAccount);
    const pay = await wallet().post('/v1/transfers/payments', { quoteId: q.body.id }, key());
    expect(pay.status).toBe(201);
    expect(pay.body.status).toBe('completed');
    expect(await hubBalance(zhang)).toBe(zhang0 + 2500n);
    await deliverAll(pay.body.id);
    expect(await bank.balance(wang.bankAccount)).toBe(before - 2500n);
    expect((await bank.hold(pay.body.id))?.state).toBe('committed');
    // The reserve named the bank's consent and the initiating wallet.
    const [answer] = await bank.db.query<{ body: string }>(`select body from answers where key like $1`, [`reserve:${pay.body.id}%`]);
    expect(answer).toBeDefined();
    // The hub's account list does not show it with a hub balance (it holds none): its balance is the bank's.
    const listed = await wallet().get(`/v1/accounts?customerId=${li()}`);
    expect(listed.body.items.map((a: { id: string }) => a.id)).not.toContain(wangHubAccount);
    const after = await wallet().get(`/v1/open-banking/consents/${consentId}/balances`);
    expect(after.body.items[0].balance.amount).toBe((Number(before - 2500n) / 100).toFixed(2));

    // The customer sees the consent at the bank too.
    const bankConsentId = await bankConsentIdOf(consentId);
    expect((await bankConsents()).find((c) => c.id === bankConsentId)).toEqual(expect.objectContaining({ status: 'active', scope: 'accounts payments' }));

    // A quote taken before the revocation, confirmed after it.
    const early = await quoteFrom(consentId, '3.00');
    expect(early.status).toBe(201);
    const revoked = await wallet().delete(`/v1/open-banking/consents/${consentId}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toEqual(expect.objectContaining({ status: 'revoked', revokedBy: 'wallet', links: [expect.objectContaining({ status: 'revoked' })] }));
    // The hub gave the grant back at the bank (RFC 7009).
    expect((await bankConsents()).find((c) => c.id === bankConsentId)).toEqual(expect.objectContaining({ status: 'revoked', revokedBy: 'client' }));

    const read = await wallet().get(`/v1/open-banking/consents/${consentId}/balances`);
    expect(read.status).toBe(403);
    expect(read.body.error).toEqual(expect.objectContaining({ code: 'consent_revoked', details: expect.objectContaining({ revokedBy: 'wallet' }) }));
    const newQuote = await quoteFrom(consentId, '1.00');
    expect(newQuote.status).toBe(403);
    expect(newQuote.body.error.code).toBe('consent_revoked');
    const bank0 = await bank.balance(wang.bankAccount);
    const late = await wallet().post('/v1/transfers/payments', { quoteId: early.body.id }, key());
    expect(late.status).toBe(403);
    expect(late.body.error.code).toBe('consent_revoked');
    expect(await bank.balance(wang.bankAccount)).toBe(bank0);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('top-up from the linked bank account and withdrawal to it, through the same confirm path (reserve at the bank / accept at the bank)', async () => {
    const { consentId } = await link();
    const liAccount = `acc_${li()}_CNY`;
    const [li0, bank0] = [await hubBalance(liAccount), (await bank.balance(wang.bankAccount))!];
    const topUp = await wallet().post(`/v1/open-banking/consents/${consentId}/top-ups`, { amount: { amount: '10.00', currency: 'CNY' } }, key());
    expect(topUp.status).toBe(201);
    expect(topUp.body).toEqual(expect.objectContaining({ sourceAccountId: wangHubAccount }));
    const paidIn = await wallet().post('/v1/transfers/payments', { quoteId: topUp.body.id }, key());
    expect(paidIn.status).toBe(201);
    expect(paidIn.body.status).toBe('completed');
    await deliverAll(paidIn.body.id);
    expect(await hubBalance(liAccount)).toBe(li0 + 1000n);
    expect(await bank.balance(wang.bankAccount)).toBe(bank0 - 1000n);

    const withdrawal = await wallet().post(`/v1/open-banking/consents/${consentId}/withdrawals`, { amount: { amount: '4.00', currency: 'CNY' } }, key());
    expect(withdrawal.status).toBe(201);
    expect(withdrawal.body.sourceAccountId).toBe(liAccount);
    const paidOut = await wallet().post('/v1/transfers/payments', { quoteId: withdrawal.body.id }, key());
    expect(paidOut.status).toBe(201);
    expect(paidOut.body.status).toBe('completed');
    await deliverAll(paidOut.body.id);
    expect(await hubBalance(liAccount)).toBe(li0 + 600n);
    expect(await bank.balance(wang.bankAccount)).toBe(bank0 - 600n);
    // The account at the bank stays an address at the hub: it never holds money.
    expect(await hubBalance(wangHubAccount)).toBe(0n);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);

    // After revocation neither is offered.
    await wallet().delete(`/v1/open-banking/consents/${consentId}`);
    const after = await wallet().post(`/v1/open-banking/consents/${consentId}/withdrawals`, { amount: { amount: '1.00', currency: 'CNY' } }, key());
    expect(after.status).toBe(403);
    expect(after.body.error.code).toBe('consent_revoked');
  });

  it('MD01 from the hub: a consent revoked in the wallet after a payment was reserved, before the bank is asked, aborts it unasked', async () => {
    const { consentId } = await link();
    const q = await quoteFrom(consentId, '5.00');
    const [reserved] = await t.hub.db.transaction((tx) => t.hub.transfers.transfers.confirmMany(tx, [{ actor: { type: 'system' }, participantId: demoParticipantId('wallet-a'), quoteId: q.body.id }]));
    const paymentId = reserved?.ok ? reserved.value.id : '';
    expect(reserved?.ok && reserved.value.status).toBe('pending');
    expect((await wallet().delete(`/v1/open-banking/consents/${consentId}`)).status).toBe(200);
    const bank0 = await bank.balance(wang.bankAccount);
    const decided = await t.hub.transfers.transfers.settleConnected(paymentId);
    expect(decided?.status).toBe('rejected');
    expect(decided?.reason?.Rsn).toBe('MD01');
    expect(await bank.hold(paymentId)).toBeUndefined(); // the bank was never asked to debit
    await deliverAll(paymentId);
    expect(await bank.balance(wang.bankAccount)).toBe(bank0);
    expect((await wallet().get(`/v1/transfers/payments/${paymentId}`)).body.statusReason.Rsn).toBe('MD01');
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('revoked at the bank: the next debit is refused by the bank (MD01) and the hub ends the consent; reads are refused', async () => {
    const { consentId } = await link();
    const q = await quoteFrom(consentId, '4.00');
    expect(q.status).toBe(201);
    const bankConsentId = await bankConsentIdOf(consentId);
    expect(await revokeAtBank(bankConsentId)).toEqual(expect.objectContaining({ status: 'revoked', revokedBy: 'customer' }));
    const bank0 = await bank.balance(wang.bankAccount);
    const pay = await wallet().post('/v1/transfers/payments', { quoteId: q.body.id }, key());
    // As a card payment or a red packet from the account answers it.
    expect(pay.status).toBe(403);
    expect(pay.body.error).toEqual(expect.objectContaining({ code: 'consent_revoked', details: expect.objectContaining({ status: 'RJCT', revokedBy: 'bank', reason: expect.objectContaining({ Rsn: 'MD01' }) }) }));
    await deliverAll(pay.body.error.details.paymentId);
    expect(await bank.balance(wang.bankAccount)).toBe(bank0);
    expect(await bank.openHolds()).toEqual([]);
    // The hub learnt it: the consent and its links ended, revoked at the bank.
    const seen = await wallet().get(`/v1/open-banking/consents/${consentId}`);
    expect(seen.body).toEqual(expect.objectContaining({ status: 'revoked', revokedBy: 'bank', links: [expect.objectContaining({ status: 'revoked' })] }));
    const read = await wallet().get(`/v1/open-banking/consents/${consentId}/balances`);
    expect(read.status).toBe(403);
    expect(read.body.error).toEqual(expect.objectContaining({ code: 'consent_revoked', details: expect.objectContaining({ revokedBy: 'bank' }) }));
    expect((await quoteFrom(consentId, '1.00')).body.error.code).toBe('consent_revoked');
  });

  it('revoked at the bank: the next balance read is refused by the bank, and then payments are refused at the hub', async () => {
    const { consentId } = await link();
    await revokeAtBank(await bankConsentIdOf(consentId));
    const read = await wallet().get(`/v1/open-banking/consents/${consentId}/balances`);
    expect(read.status).toBe(403);
    expect(read.body.error).toEqual(expect.objectContaining({ code: 'consent_revoked', details: expect.objectContaining({ revokedBy: 'bank' }) }));
    const q = await quoteFrom(consentId, '1.00');
    expect(q.status).toBe(403);
    expect(q.body.error.code).toBe('consent_revoked');
    // Its account no longer resolves as a source for this wallet's customer.
    const direct = await wallet().post('/v1/transfers/quotes', { customerId: li(), sourceAccountId: wangHubAccount, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '1.00', currency: 'CNY' } });
    expect(direct.status).toBe(404);
  });
});
