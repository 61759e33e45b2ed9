import { newDevice } from '../../src/demo/device.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customerAccountId } from '../../src/accounts/index.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { tapBody, type WalletToken } from '../../src/demo/fixtures.ts';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { openSentCode } from '../../src/platform/sent-codes.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * Credit lines end to end: a credit card with a 5,000.00 limit on an empty account pays (the ledger enforces the
 * limit on the card's own credit account), a payment over what is left is declined with exceeds_credit_limit, every
 * wallet holding the card shows the line, statements close with a minimum payment and a due date (overdue by the
 * schedule on the fake clock), and repayments come from the customer's accounts (the issuer's direct debit, or the
 * wallet paying from its own account through both positions).
 */
const engines = await availableEngines();
const MERCHANT_B = 'mer_demo_merchant_b';
let keyNo = 0;
const key = () => ({ 'idempotency-key': `credit-${Date.now()}-${++keyNo}` });

describe.each(engines)('credit lines on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let cardId: string;
  let creditAccountId: string;
  let inB: WalletToken;
  let inC: WalletToken;
  let zhang: string;
  let repaymentAccount: string;
  /** A tap at merchant-b, captured when authorized (the merchant captures at once). */
  const tap = async (w: WalletToken, amount: string, amountMinor: bigint) => {
    const res = await t.api('merchant-b').post(`/v1/merchants/${MERCHANT_B}/payments/tap`, tapBody(w, { amount, amountMinor, currency: 'HKD', country: 'HK', now: clock.now() }), key());
    if (res.status !== 201) return res;
    const captured = await t.api('merchant-b').post(`/v1/payments/${res.body.id}/capture`, {}, key());
    expect(captured.status, JSON.stringify(captured.body)).toBe(200);
    return { status: res.status, body: captured.body };
  };
  const line = async () => (await t.api('bank-b').get(`/v1/issuer/credit-lines/${creditAccountId}`)).body;

  beforeAll(async () => {
    clock = createFakeClock(Date.now());
    t = await startTestHub(engine, { clock });
    const bank = t.api('bank-b');
    // A new customer of the bank, with an empty HKD account.
    const customer = await bank.post('/v1/customers', { externalId: 'PRB-credit-1', name: '张敏', phone: '+85290000001' }, key());
    expect(customer.status).toBe(201);
    zhang = customer.body.id;
    repaymentAccount = customerAccountId(zhang, 'HKD');
    expect((await bank.post('/v1/accounts', { customerId: zhang, currency: 'HKD' }, key())).status).toBe(201);
    const issued = await bank.post('/v1/issuer/cards', { productId: 'cpr_demo_bank_b_credit', customerId: zhang, fundingAccountId: repaymentAccount, creditLimit: '5000.00' }, key());
    expect(issued.status).toBe(201);
    cardId = issued.body.card.id;
    creditAccountId = issued.body.card.fundingAccountId;
    expect(creditAccountId).not.toBe(repaymentAccount);
    expect(issued.body.card).toMatchObject({ type: 'credit', creditLimit: '5000.00', repaymentAccountId: repaymentAccount });
    expect((await bank.post(`/v1/issuer/cards/${cardId}/activate`, {}, key())).status).toBe(200);
    await t.hub.db.transaction((tx) =>
      t.hub.cards.walletTokens.setRules(tx, { type: 'system' }, demoParticipantId('bank-b'), { typed: 'approve', byReference: 'approve', newDevice: 'approve', keyMaxTransactions: 1000, keyTtlHours: 1000 }),
    );
    const card = (await t.hub.cards.cards.reveal(demoParticipantId('bank-b'), cardId))!;
    const provision = async (wallet: string, customerId: string, deviceId: string): Promise<WalletToken> => {
      const res = await t.api(wallet).post('/v1/wallet/tokens', { customerId, consent: true, deviceId, devicePublicKey: newDevice().publicKey, source: { type: 'typed', cardNumber: card.cardNumber, expiry: card.card.expiry, cvv: card.cvv } }, key());
      expect(res.status).toBe(201);
      const expiry = String(res.body.token.expiry);
      return { wallet, customerId, tokenRef: res.body.token.tokenRef, tokenNumber: res.body.tokenNumber, tokenKey: res.body.limitedUseKey.key, expiryYymm: `${expiry.slice(3, 5)}${expiry.slice(0, 2)}`, atc: 0 };
    };
    inB = await provision('wallet-b', demoCustomerId('zhang-at-wallet-b'), 'phone-zhang-b');
    // A second wallet: 张敏 is a customer of wallet-c too.
    const c = await t.api('wallet-c').post('/v1/customers', { externalId: 'kite-zhang', name: '张敏', phone: '+85291234567' }, key());
    expect(c.status).toBe(201);
    inC = await provision('wallet-c', c.body.id, 'phone-zhang-c');
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a 5,000.00 credit card on an empty account pays, and every wallet holding it shows the line', async () => {
    const paid = await tap(inB, '1200.00', 120_000n);
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
    expect(paid.body.status).toBe('captured');
    // Nothing was taken from the (empty) repayment account: the card spent on its own credit line.
    const repayment = await t.hub.ledger.getAccount(repaymentAccount);
    expect(repayment.ok && repayment.value.debitsPostedMinor).toBe(0n);
    for (const w of [inB, inC]) {
      const got = await t.api(w.wallet).get(`/v1/wallet/tokens/${w.tokenRef}`);
      expect(got.status).toBe(200);
      expect(got.body.credit).toEqual({ limit: { amount: '5000.00', currency: 'HKD' }, available: { amount: '3800.00', currency: 'HKD' }, owed: { amount: '1200.00', currency: 'HKD' }, statement: null });
      const list = await t.api(w.wallet).get(`/v1/wallet/tokens?customerId=${w.customerId}`);
      expect(list.body.items.find((x: { tokenRef: string }) => x.tokenRef === w.tokenRef).credit.available.amount).toBe('3800.00');
    }
    expect(await line()).toMatchObject({ accountId: creditAccountId, customerId: zhang, owed: { amount: '1200.00' }, available: { amount: '3800.00' } });
  });

  it('a payment over what is left of the limit is declined with exceeds_credit_limit, from any wallet', async () => {
    const over = await tap(inC, '3800.01', 380_001n);
    expect(over.status).toBe(422);
    expect(over.body.error.code).toBe('exceeds_credit_limit');
    // Exactly what is left pays.
    const rest = await tap(inC, '3800.00', 380_000n);
    expect(rest.status, JSON.stringify(rest.body)).toBe(201);
    expect((await line()).available.amount).toBe('0.00');
    // The issuer raises the limit: the next authorisation sees it.
    const raised = await t.api('bank-b').post(`/v1/issuer/credit-lines/${creditAccountId}/limit`, { limit: { amount: '6000.00', currency: 'HKD' } }, key());
    expect(raised.status).toBe(200);
    expect(raised.body.available.amount).toBe('1000.00');
    expect((await tap(inB, '1000.00', 100_000n)).status).toBe(201);
    expect((await tap(inB, '0.01', 1n)).body.error.code).toBe('exceeds_credit_limit');
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('a statement closes with the balance, a minimum payment and a due date; unpaid past it, it is overdue', async () => {
    const s = await t.api('bank-b').post(`/v1/issuer/credit-lines/${creditAccountId}/statements`, { dueInDays: 20 }, key());
    expect(s.status).toBe(201);
    expect(s.body).toMatchObject({ balance: { amount: '6000.00', currency: 'HKD' }, minimumPayment: { amount: '300.00', currency: 'HKD' }, paid: { amount: '0.00' }, status: 'due', periodStart: null });
    expect(new Date(s.body.dueAt).getTime() - clock.nowMs()).toBe(20 * 86_400_000);
    // Every wallet holding the card is told, by its own token.
    const told = await t.hub.db.query<{ participant_id: string; payload: { tokenRef?: string } }>(`select participant_id, payload from events where type = 'credit.statement_issued' and payload->>'statementId' = $1 order by participant_id`, [s.body.id]);
    expect(told.map((e) => [e.participant_id, e.payload.tokenRef ?? null])).toEqual(
      [[demoParticipantId('bank-b'), null], [demoParticipantId('wallet-b'), inB.tokenRef], [demoParticipantId('wallet-c'), inC.tokenRef]].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    expect(s.body.cardId).toBe(cardId);
    // Every wallet shows it.
    const inWallet = await t.api('wallet-c').get(`/v1/wallet/tokens/${inC.tokenRef}`);
    expect(inWallet.body.credit.statement).toMatchObject({ id: s.body.id, minimumPayment: { amount: '300.00' }, status: 'due' });
    // The schedule does nothing before the due date, then marks it overdue and tells the issuer.
    expect(await t.hub.credit.markOverdue()).toBe(0);
    clock.advance(21 * 86_400_000);
    expect(await t.hub.credit.markOverdue()).toBe(1);
    const listed = await t.api('bank-b').get(`/v1/issuer/credit-lines/${creditAccountId}/statements`);
    expect(listed.body.items[0]).toMatchObject({ id: s.body.id, status: 'overdue' });
    const events = await t.hub.db.query<{ type: string }>(`select type from events where participant_id = $1 and type like 'credit.%' order by type`, [demoParticipantId('bank-b')]);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['credit.limit_changed', 'credit.statement_issued', 'credit.statement_overdue']));
  });

  it('repayments: the issuer debits the customer account; the wallet pays from its own account through both positions', async () => {
    const bank = t.api('bank-b');
    // The customer's account is empty: a repayment from it fails with insufficient_funds.
    const empty = await bank.post(`/v1/issuer/credit-lines/${creditAccountId}/repayments`, { fromAccountId: repaymentAccount, amount: { amount: '100.00', currency: 'HKD' } }, key());
    expect(empty.status).toBe(422);
    expect(empty.body.error.code).toBe('insufficient_funds');
    expect((await bank.post(`/v1/accounts/${repaymentAccount}/deposits`, { amount: { amount: '2000.00', currency: 'HKD' } }, key())).status).toBe(201);
    const paid = await bank.post(`/v1/issuer/credit-lines/${creditAccountId}/repayments`, { fromAccountId: repaymentAccount, amount: { amount: '300.00', currency: 'HKD' } }, key());
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
    expect(paid.body).toMatchObject({ amount: { amount: '300.00' }, owed: { amount: '5700.00' }, statementStatus: 'overdue' });
    // A repayment over what is owed: repayment_exceeds_balance.
    const tooMuch = await bank.post(`/v1/issuer/credit-lines/${creditAccountId}/repayments`, { fromAccountId: repaymentAccount, amount: { amount: '5700.01', currency: 'HKD' } }, key());
    expect(tooMuch.body.error.code).toBe('repayment_exceeds_balance');
    // The wallet repays from the customer's HKD account with the wallet (another participant).
    const walletCustomer = demoCustomerId('zhang-at-wallet-b');
    const wb = t.api('wallet-b');
    expect((await wb.post('/v1/accounts', { customerId: walletCustomer, currency: 'HKD' }, key())).status).toBe(201);
    const walletAccount = customerAccountId(walletCustomer, 'HKD');
    expect((await wb.post(`/v1/accounts/${walletAccount}/deposits`, { amount: { amount: '1000.00', currency: 'HKD' } }, key())).status).toBe(201);
    const fromWallet = await wb.post('/v1/wallet/credit-repayments', { customerId: walletCustomer, tokenRef: inB.tokenRef, fromAccountId: walletAccount, amount: { amount: '700.00', currency: 'HKD' } }, key());
    expect(fromWallet.status, JSON.stringify(fromWallet.body)).toBe(201);
    expect(fromWallet.body.owed.amount).toBe('5000.00');
    // A debit card's token cannot be repaid: card_not_credit; an account the wallet does not pay from: repayment_account_invalid.
    const notMine = await wb.post('/v1/wallet/credit-repayments', { customerId: walletCustomer, tokenRef: inB.tokenRef, fromAccountId: repaymentAccount, amount: { amount: '1.00', currency: 'HKD' } }, key());
    expect(notMine.status).toBe(404);
    const g = await wb.get(`/v1/wallet/tokens/${inB.tokenRef}`);
    expect(g.body.credit).toMatchObject({ owed: { amount: '5000.00' }, available: { amount: '1000.00' } });
    // The position leg between wallet-b and bank-b is recorded for settlement; the books balance.
    const entries = await t.hub.db.query<{ amount_minor: bigint }>(`select amount_minor from settlement_entries where payer_participant_id = $1 and payee_participant_id = $2`, [demoParticipantId('wallet-b'), demoParticipantId('bank-b')]);
    expect(entries.map((e) => BigInt(e.amount_minor))).toContain(70_000n);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
    // Every step is in the audit trail with who acted.
    const audit = await t.hub.db.query<{ action: string; actor_participant_id: string | null }>(`select action, actor_participant_id from audit_log where action like 'credit.%' order by at, id`);
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['credit.limit_set', 'credit.statement_issued', 'credit.statement_overdue', 'credit.repaid']));
    expect(audit.filter((a) => a.action === 'credit.repaid').map((a) => a.actor_participant_id)).toEqual([demoParticipantId('bank-b'), demoParticipantId('wallet-b')]);
  });

  it('a bank credit line (no card) is opened by the issuer, and a debit card has no line', async () => {
    const opened = await t.api('bank-b').post('/v1/issuer/credit-lines', { customerId: zhang, limit: { amount: '800.00', currency: 'HKD' } }, key());
    expect(opened.status).toBe(201);
    expect(opened.body).toMatchObject({ customerId: zhang, limit: { amount: '800.00' }, available: { amount: '800.00' }, owed: { amount: '0.00' }, statement: null });
    const notLine = await t.api('bank-b').get(`/v1/issuer/credit-lines/${repaymentAccount}`);
    expect(notLine.status).toBe(404);
    expect(notLine.body.error.code).toBe('credit_line_not_found');
  });

  it("a bank's credit line, linked into a wallet with the bank's consent, pays a merchant there up to its limit", async () => {
    const bankCustomer = demoCustomerId('zhang-at-bank-b');
    const walletCustomer = demoCustomerId('zhang-at-wallet-b');
    const opened = await t.api('bank-b').post('/v1/issuer/credit-lines', { customerId: bankCustomer, limit: { amount: '300.00', currency: 'HKD' } }, key());
    expect(opened.status).toBe(201);
    const lineId = opened.body.accountId;
    const wb = t.api('wallet-b');
    const consent = await wb.post('/v1/account-links', { customerId: walletCustomer, bankParticipantId: demoParticipantId('bank-b'), currency: 'HKD' }, key());
    expect(consent.status).toBe(201);
    const code = await openSentCode(t.hub, 'account_link.consent_requested', consent.body.id);
    const links = await wb.post(`/v1/account-links/consents/${consent.body.id}/confirm`, { code }, key());
    expect(links.status).toBe(201);
    const listed = await wb.get(`/v1/accounts?customerId=${walletCustomer}`);
    expect(listed.body.items.map((a: { id: string }) => a.id)).toContain(lineId);
    const qr = await t.api('merchant-b').post(`/v1/merchants/${MERCHANT_B}/qr-codes`, { kind: 'static' }, key());
    expect(qr.status).toBe(201);
    const pay = (amount: string) => wb.post('/v1/wallet/payments/qr', { payload: qr.body.payload, amount: { amount, currency: 'HKD' }, customerId: walletCustomer, source: { type: 'account', accountId: lineId } }, key());
    const paid = await pay('250.00');
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
    const over = await pay('50.01');
    expect(over.status).toBe(422);
    expect(over.body.error.code).toBe('exceeds_credit_limit');
    expect((await t.api('bank-b').get(`/v1/issuer/credit-lines/${lineId}`)).body).toMatchObject({ owed: { amount: '250.00' }, available: { amount: '50.00' } });
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });
});
