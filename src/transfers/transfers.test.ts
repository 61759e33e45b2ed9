import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeClock } from '../platform/clock.ts';
import { availableEngines } from '../../test/support/engines.ts';
import { startTestHub, type TestHub } from '../../test/support/hub.ts';
import { openSentCode } from '../platform/sent-codes.ts';
import { demoParticipantId } from '../demo/seed.ts';

const engines = await availableEngines();
let n = 0;
const key = () => ({ 'idempotency-key': `k-${Date.now()}-${++n}` });

describe.each(engines)('P2P transfers on %s', (engine) => {
  let t: TestHub;
  const clock = createFakeClock(Date.UTC(2026, 0, 15, 8, 0, 0));
  const cus = (k: string) => t.demo.customers.get(k)!;
  const balance = async (accountId: string) => {
    const r = await t.hub.transfers.ledger.getAccount(accountId);
    if (!r.ok) throw new Error(r.error.code);
    return r.value.creditsPostedMinor - r.value.debitsPostedMinor;
  };
  const acc = (k: string, c: string) => `acc_${cus(k)}_${c}`;

  beforeAll(async () => {
    t = await startTestHub(engine, { clock });
  }, 60_000);
  afterAll(async () => t?.close());

  it('a deposit is in the account’s own currency: another one is refused with nothing moved, whatever its exponent', async () => {
    const to = acc('li-at-wallet-a', 'CNY');
    const position = `fund_${demoParticipantId('wallet-a')}_CNY`;
    const [b0, p0] = [await balance(to), await balance(position)];
    for (const amount of [{ amount: '1.00', currency: 'HKD' }, { amount: '5', currency: 'JPY' }, { amount: '1.001', currency: 'KWD' }]) {
      const res = await t.api('wallet-a').post(`/v1/accounts/${to}/deposits`, { amount }, key());
      expect(res.status, JSON.stringify(res.body)).toBe(422);
      expect(res.body.error).toMatchObject({ code: 'currency_mismatch', details: { accountId: to, currency: 'CNY' } });
    }
    expect([await balance(to), await balance(position)]).toEqual([b0, p0]);
    const ok = await t.api('wallet-a').post(`/v1/accounts/${to}/deposits`, { amount: { amount: '1.00', currency: 'CNY' } }, key());
    expect(ok.status).toBe(201);
    expect([await balance(to), await balance(position)]).toEqual([b0 + 100n, p0 - 100n]);
  });

  it('verification of payee answers a masked name and the participant, never account details', async () => {
    const res = await t.api('wallet-a').get(`/v1/aliases/lookup?customerId=${cus('li-at-wallet-a')}&type=handle&value=zhangmin`);
    expect(res.status).toBe(200);
    expect(res.body.maskedName).toBe('张*');
    expect(res.body.participantName).toContain('Jade');
    expect(JSON.stringify(res.body)).not.toContain('acc_');
    const maria = await t.api('wallet-a').get(`/v1/aliases/lookup?customerId=${cus('li-at-wallet-a')}&type=phone&value=${encodeURIComponent('+6581234567')}`);
    expect(maria.body.maskedName).toBe('M** T**');
  });

  it('pays across wallets in one currency: quote then confirm, payee credited, both participants told', async () => {
    const from = acc('li-at-wallet-a', 'CNY');
    const to = acc('zhang-at-wallet-b', 'CNY');
    const [b0, p0] = [await balance(from), await balance(to)];
    const q = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: cus('li-at-wallet-a'), payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '12.34', currency: 'CNY' } });
    expect(q.status).toBe(201);
    expect(q.body.receiveAmount).toEqual({ amount: '12.34', currency: 'CNY' });
    const pay = await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q.body.id }, key());
    expect(pay.status).toBe(201);
    expect(pay.body.status).toBe('completed');
    expect(await balance(from)).toBe(b0 - 1234n);
    expect(await balance(to)).toBe(p0 + 1234n);
    const seen = await t.api('wallet-b').get(`/v1/transfers/payments/${pay.body.id}`);
    expect(seen.status).toBe(200);
    expect(seen.body.role).toBe('payee');
    expect((await t.api('wallet-c').get(`/v1/transfers/payments/${pay.body.id}`)).status).toBe(404);
    const evts = await t.hub.db.query<{ participant_id: string; type: string }>(`select participant_id, type from events where type in ('payment.sent', 'payment.received')`);
    expect(evts.map((e) => `${e.participant_id}:${e.type}`)).toEqual(expect.arrayContaining([`${demoParticipantId('wallet-a')}:payment.sent`, `${demoParticipantId('wallet-b')}:payment.received`]));
  });

  it('a quote names its amount exactly once: neither answers quote_amount_required, both quote_amount_conflict', async () => {
    const base = { customerId: cus('li-at-wallet-a'), payee: { type: 'handle', value: 'zhangmin' } };
    const neither = await t.api('wallet-a').post('/v1/transfers/quotes', base);
    expect(neither.status).toBe(400);
    expect(neither.body.error.code).toBe('quote_amount_required');
    const both = await t.api('wallet-a').post('/v1/transfers/quotes', { ...base, sendAmount: { amount: '1.00', currency: 'CNY' }, receiveAmount: { amount: '1.00', currency: 'CNY' } });
    expect(both.status).toBe(400);
    expect(both.body.error.code).toBe('quote_amount_conflict');
  });

  it('concurrent confirms by one payer: never overdrawn, each payment recorded exactly when its money moved', async () => {
    const payer = cus('li-at-wallet-b');
    const from = acc('li-at-wallet-b', 'CNY');
    const b0 = await balance(from);
    // Enough quotes for twice the balance: at most half can be paid.
    const amountMinor = b0 / 6n;
    const quotes = [];
    for (let i = 0; i < 12; i++) {
      const q = await t.api('wallet-b').post('/v1/transfers/quotes', { customerId: payer, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: (Number(amountMinor) / 100).toFixed(2), currency: 'CNY' } });
      expect(q.status).toBe(201);
      quotes.push(q.body.id as string);
    }
    const results = await Promise.all(quotes.map((id) => t.api('wallet-b').post('/v1/transfers/payments', { quoteId: id }, key())));
    const paid = results.filter((r) => r.status === 201);
    for (const r of results.filter((x) => x.status !== 201)) expect(['insufficient_funds', 'limit_exceeded']).toContain(r.body.error.code);
    expect(paid.length).toBeGreaterThan(0);
    expect(paid.length).toBeLessThanOrEqual(6);
    expect(await balance(from)).toBe(b0 - BigInt(paid.length) * amountMinor);
    expect(await balance(from)).toBeGreaterThanOrEqual(0n);
    const rows = await t.hub.db.query<{ id: string }>('select id from payments where quote_id = any($1::text[])', [quotes]);
    expect(rows.map((r) => r.id).sort()).toEqual(paid.map((r) => r.body.id as string).sort());
    const audits = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from audit_log where action = 'payment.completed' and object_id = any($1::text[])`, [rows.map((r) => r.id)]);
    expect(audits[0]!.n).toBe(BigInt(paid.length));
    // A failed confirm rolled back: its quote is still open, and a second confirm of a paid quote is refused.
    const again = await t.api('wallet-b').post('/v1/transfers/payments', { quoteId: paid[0]!.body.quoteId }, key());
    expect(again.body.error.code).toBe('quote_already_used');
    expect(await t.hub.transfers.ledger.checkInvariants()).toEqual([]);
  });

  it('a batch of confirms decides each payment on its own: refused ones write nothing, and a refused quote can be paid later', async () => {
    const payer = cus('li-at-wallet-b');
    const from = acc('li-at-wallet-b', 'CNY');
    const quote = async (amount: string) => {
      const q = await t.api('wallet-b').post('/v1/transfers/quotes', { customerId: payer, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount, currency: 'CNY' } });
      expect(q.status).toBe(201);
      return q.body.id as string;
    };
    // Earlier tests may have spent this payer's money: start from a known amount.
    const funded = await t.hub.db.transaction((tx) => t.hub.transfers.accounts.deposit(tx, { type: 'system' }, demoParticipantId('wallet-b'), from, 10_000n, 'CNY', `fund-${Date.now()}`));
    expect(funded.ok).toBe(true);
    const b0 = await balance(from);
    const small = await quote('1.00');
    const tooBig = await quote(((Number(b0) + 100) / 100).toFixed(2));
    const expired = await quote('1.00');
    await t.hub.db.query(`update quotes set expires_at = $2 where id = $1`, [expired, new Date(clock.nowMs() - 1)]);
    const actor = { type: 'participant' as const, participantId: demoParticipantId('wallet-b') };
    const one = (quoteId: string) => ({ actor, participantId: demoParticipantId('wallet-b'), quoteId });
    const results = await t.hub.db.transaction((tx) => t.hub.transfers.transfers.confirmMany(tx, [one(small), one(tooBig), one(small), one(expired), one('quo_nosuchquote00000')]));
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'insufficient_funds', 'quote_already_used', 'quote_expired', 'quote_not_found']);
    expect(await balance(from)).toBe(b0 - 100n);
    const rows = await t.hub.db.query<{ quote_id: string }>('select quote_id from payments where quote_id = any($1::text[])', [[small, tooBig, expired]]);
    expect(rows.map((r) => r.quote_id)).toEqual([small]);
    const states = await t.hub.db.query<{ id: string; status: string }>('select id, status from quotes where id = any($1::text[]) order by id', [[small, tooBig]]);
    expect(Object.fromEntries(states.map((r) => [r.id, r.status]))).toEqual({ [small]: 'used', [tooBig]: 'open' });
    // The refused quote is still open: once the account holds enough, confirming it again pays (its first attempt's
    // recorded ledger failure belongs to that attempt only).
    const dep = await t.hub.db.transaction((tx) => t.hub.transfers.accounts.deposit(tx, { type: 'system' }, demoParticipantId('wallet-b'), from, 200n, 'CNY', `topup-${Date.now()}`));
    expect(dep.ok).toBe(true);
    const retry = await t.api('wallet-b').post('/v1/transfers/payments', { quoteId: tooBig }, key());
    expect(retry.status).toBe(201);
    expect(await balance(from)).toBe(b0 - 100n + 200n - (b0 + 100n));
    expect(await t.hub.transfers.ledger.checkInvariants()).toEqual([]);
  });

  it('pays in two currencies through FX liquidity accounts, with the fee, atomically', async () => {
    const from = acc('li-at-wallet-a', 'CNY');
    const to = acc('maria-at-wallet-c', 'SGD');
    const [b0, p0] = [await balance(from), await balance(to)];
    const q = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: cus('li-at-wallet-a'), payee: { type: 'handle', value: 'maria.tan' }, sendAmount: { amount: '100.00', currency: 'CNY' } });
    expect(q.status).toBe(201);
    expect(q.body.receiveAmount.currency).toBe('SGD');
    // 100 CNY at 1.4587/7.8312 less 50 bps = 18.53… SGD, rounded down.
    expect(q.body.receiveAmount.amount).toBe('18.53');
    expect(q.body.fee).toEqual({ amount: '1.25', currency: 'CNY' });
    const pay = await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q.body.id }, key());
    expect(pay.status).toBe(201);
    expect(await balance(from)).toBe(b0 - 10_125n);
    expect(await balance(to)).toBe(p0 + 1853n);
    expect(await t.hub.transfers.ledger.checkInvariants()).toEqual([]);
  });

  it('refuses attacks with a code and moves no money', async () => {
    const from = acc('li-at-wallet-a', 'CNY');
    const b0 = await balance(from);
    const api = t.api('wallet-a');
    const li = cus('li-at-wallet-a');
    const quote = async (body: object) => api.post('/v1/transfers/quotes', { customerId: li, ...body });
    // paying yourself
    expect((await quote({ payee: { type: 'handle', value: 'liwei' }, sendAmount: { amount: '1.00', currency: 'CNY' } })).body.error.code).toBe('cannot_pay_self');
    // unknown alias
    expect((await quote({ payee: { type: 'handle', value: 'nobody_here' }, sendAmount: { amount: '1.00', currency: 'CNY' } })).body.error.code).toBe('alias_not_found');
    // a currency the payee cannot receive
    expect((await quote({ payee: { type: 'handle', value: 'maria.tan' }, receiveAmount: { amount: '1.00', currency: 'CNY' } })).body.error.code).toBe('currency_not_receivable');
    // over the KYC limit (level 2: 5 000 EUR a day)
    expect((await quote({ payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '900000.00', currency: 'CNY' } })).body.error.code).toBe('limit_exceeded');
    // reused quote
    const q = await quote({ payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '1.00', currency: 'CNY' } });
    expect((await api.post('/v1/transfers/payments', { quoteId: q.body.id }, key())).status).toBe(201);
    const again = await api.post('/v1/transfers/payments', { quoteId: q.body.id }, key());
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('quote_already_used');
    // expired quote
    const q2 = await quote({ payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '1.00', currency: 'CNY' } });
    clock.advance(31_000);
    const late = await api.post('/v1/transfers/payments', { quoteId: q2.body.id }, key());
    expect(late.body.error.code).toBe('quote_expired');
    // another participant's quote is not found
    const q3 = await quote({ payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '1.00', currency: 'CNY' } });
    expect((await t.api('wallet-b').post('/v1/transfers/payments', { quoteId: q3.body.id }, key())).status).toBe(404);
    // no idempotency key on a money-moving POST
    expect((await api.post('/v1/transfers/payments', { quoteId: q3.body.id })).body.error.code).toBe('idempotency_key_required');
    expect(await balance(from)).toBe(b0 - 100n);
  });

  it('links bank accounts into a wallet with a one-time code; the wallet pays from them; unlinking revokes at once', async () => {
    const li = cus('li-at-wallet-a');
    const consent = await t.api('wallet-a').post('/v1/account-links', { customerId: li, bankParticipantId: demoParticipantId('bank-a') });
    expect(consent.status).toBe(201);
    // The code reaches the bank sealed to its webhook secret: the outbox (a table) holds neither the code nor a message with it.
    const [evt] = await t.hub.db.query<{ participant_id: string; payload: Record<string, unknown> }>(
      `select participant_id, payload from events where type = 'account_link.consent_requested' and payload->>'consentId' = $1`,
      [consent.body.id],
    );
    expect(evt!.participant_id).toBe(demoParticipantId('bank-a'));
    const code = await openSentCode(t.hub, 'account_link.consent_requested', consent.body.id);
    expect(code).toMatch(/^[0-9]{6}$/);
    expect(evt!.payload).not.toHaveProperty('code');
    expect(evt!.payload.messageTemplate).toContain('{code}');
    expect(JSON.stringify(evt!.payload)).not.toContain(code);
    const stored = await t.hub.db.query<{ code_hash: string }>('select code_hash from account_link_consents where id = $1', [consent.body.id]);
    expect(stored[0]!.code_hash).not.toContain(code);
    const wrong = code === '000000' ? '111111' : '000000';
    const first = await t.api('wallet-a').post(`/v1/account-links/consents/${consent.body.id}/confirm`, { code: wrong });
    expect(first.body.error.code).toBe('consent_code_invalid');
    expect(first.body.error.details.attemptsLeft).toBe(4);
    const ok = await t.api('wallet-a').post(`/v1/account-links/consents/${consent.body.id}/confirm`, { code });
    expect(ok.status).toBe(201);
    expect(ok.body.items).toHaveLength(2);
    const listed = await t.api('wallet-a').get(`/v1/accounts?customerId=${li}`);
    expect(listed.body.items.map((a: { currency: string }) => a.currency).sort()).toEqual(['CNY', 'CNY', 'USD']);
    const bankCny = acc('li-at-bank-a', 'CNY');
    const q = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: li, sourceAccountId: bankCny, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '50.00', currency: 'CNY' } });
    expect(q.status).toBe(201);
    const b0 = await balance(bankCny);
    expect((await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q.body.id }, key())).status).toBe(201);
    expect(await balance(bankCny)).toBe(b0 - 5000n);
    const link = ok.body.items.find((l: { accountId: string }) => l.accountId === bankCny);
    const q2 = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: li, sourceAccountId: bankCny, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '5.00', currency: 'CNY' } });
    expect((await t.api('bank-a').delete(`/v1/account-links/${link.id}`)).status).toBe(200);
    const refused = await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q2.body.id }, key());
    expect(refused.body.error.code).toBe('account_unavailable');
    expect(await balance(bankCny)).toBe(b0 - 5000n);
  });

  it('a link code takes no more than five tries, even guessed all at once; the sixth, right or wrong, finds the consent locked', async () => {
    const li = cus('li-at-wallet-a');
    const consent = await t.api('wallet-a').post('/v1/account-links', { customerId: li, bankParticipantId: demoParticipantId('bank-a') }, key());
    expect(consent.status).toBe(201);
    const code = await openSentCode(t.hub, 'account_link.consent_requested', consent.body.id);
    const wrong = code === '000000' ? '111111' : '000000';
    const answers = await Promise.all(Array.from({ length: 12 }, () => t.api('wallet-a').post(`/v1/account-links/consents/${consent.body.id}/confirm`, { code: wrong })));
    const codes = answers.map((r) => r.body.error?.code as string);
    expect(codes.filter((c) => c === 'consent_code_invalid').length).toBeLessThanOrEqual(5);
    expect(codes.filter((c) => c !== 'consent_code_invalid').every((c) => c === 'consent_locked')).toBe(true);
    expect((await t.api('wallet-a').post(`/v1/account-links/consents/${consent.body.id}/confirm`, { code })).body.error.code).toBe('consent_locked');
  });

  it('moves an alias with a code sealed to its current holder; a wrong code is refused', async () => {
    const handle = `li_move_${Date.now().toString(36)}`;
    const registered = await t.api('wallet-a').post('/v1/aliases', { customerId: cus('li-at-wallet-a'), type: 'handle', value: handle, accountId: acc('li-at-wallet-a', 'CNY') });
    expect(registered.status).toBe(201);
    const move = await t.api('wallet-b').post('/v1/aliases/moves', { customerId: cus('li-at-wallet-b'), type: 'handle', value: handle, accountId: acc('li-at-wallet-b', 'CNY') }, key());
    expect(move.status).toBe(201);
    const [evt] = await t.hub.db.query<{ participant_id: string; payload: Record<string, unknown> }>(`select participant_id, payload from events where type = 'alias.move_requested' and payload->>'moveId' = $1`, [move.body.id]);
    expect(evt!.participant_id).toBe(demoParticipantId('wallet-a'));
    const code = await openSentCode(t.hub, 'alias.move_requested', move.body.id);
    expect(code).toMatch(/^[0-9]{6}$/);
    expect(evt!.payload).not.toHaveProperty('code');
    expect(JSON.stringify(evt!.payload)).not.toContain(code);
    const wrong = code === '000000' ? '111111' : '000000';
    expect((await t.api('wallet-b').post(`/v1/aliases/moves/${move.body.id}/confirm`, { code: wrong })).body.error.code).toBe('alias_code_invalid');
    const moved = await t.api('wallet-b').post(`/v1/aliases/moves/${move.body.id}/confirm`, { code });
    expect(moved.status).toBe(200);
    expect(moved.body.accountId).toBe(acc('li-at-wallet-b', 'CNY'));
  });

  it('requests money: flagged first-time requests, explicit approval through quote and confirm, decline and block', async () => {
    const maria = cus('maria-at-wallet-c');
    const zhang = cus('zhang-at-wallet-b');
    const req = await t.api('wallet-c').post('/v1/transfers/requests', { customerId: maria, payer: { type: 'handle', value: 'zhangmin' }, amount: { amount: '5.00', currency: 'SGD' } });
    expect(req.status).toBe(201);
    expect(req.body.firstTime).toBe(true);
    expect(req.body.warning).toContain('SENDS money');
    // someone else's request: another participant, or another customer of the payer's wallet, gets 404
    expect((await t.api('wallet-a').post(`/v1/transfers/requests/${req.body.id}/approve`, { customerId: cus('li-at-wallet-a') })).status).toBe(404);
    expect((await t.api('wallet-b').post(`/v1/transfers/requests/${req.body.id}/approve`, { customerId: cus('li-at-wallet-b') })).body.error.code).toBe('request_not_found');
    const before = await balance(acc('maria-at-wallet-c', 'SGD'));
    const q = await t.api('wallet-b').post(`/v1/transfers/requests/${req.body.id}/approve`, { customerId: zhang });
    expect(q.status).toBe(201);
    expect(q.body.receiveAmount).toEqual({ amount: '5.00', currency: 'SGD' });
    expect(q.body.warnings.join(' ')).toContain('never paid');
    expect(await balance(acc('maria-at-wallet-c', 'SGD'))).toBe(before); // approving alone moves nothing
    expect((await t.api('wallet-b').post('/v1/transfers/payments', { quoteId: q.body.id }, key())).status).toBe(201);
    expect(await balance(acc('maria-at-wallet-c', 'SGD'))).toBe(before + 500n);
    expect((await t.api('wallet-c').get(`/v1/transfers/requests/${req.body.id}`)).body.status).toBe('paid');
    const second = await t.api('wallet-b').post('/v1/transfers/requests', { customerId: cus('zhang-at-wallet-b'), payer: { type: 'handle', value: 'maria.tan' }, amount: { amount: '1.00', currency: 'CNY' } });
    expect(second.status).toBe(201);
    const declined = await t.api('wallet-c').post(`/v1/transfers/requests/${second.body.id}/decline`, { customerId: maria, block: true });
    expect(declined.body.status).toBe('declined');
    const blocked = await t.api('wallet-b').post('/v1/transfers/requests', { customerId: cus('zhang-at-wallet-b'), payer: { type: 'handle', value: 'maria.tan' }, amount: { amount: '1.00', currency: 'CNY' } });
    expect(blocked.body.error.code).toBe('request_blocked');
  });

  it('splits a bill with the remainder assigned deterministically, and refuses amounts that do not sum', async () => {
    const zhang = cus('zhang-at-wallet-b');
    const bad = await t.api('wallet-b').post('/v1/transfers/splits', {
      customerId: zhang,
      total: { amount: '100.00', currency: 'CNY' },
      method: 'amounts',
      members: [{ alias: { type: 'handle', value: 'zhangmin' }, amount: '50.00' }, { alias: { type: 'handle', value: 'liwei' }, amount: '49.99' }],
    });
    expect(bad.body.error.code).toBe('split_amounts_mismatch');
    const split = await t.api('wallet-b').post('/v1/transfers/splits', {
      customerId: zhang,
      total: { amount: '100.00', currency: 'CNY' },
      method: 'equal',
      members: [{ alias: { type: 'handle', value: 'zhangmin' } }, { alias: { type: 'handle', value: 'liwei' } }, { alias: { type: 'phone', value: '+8613800138001' } }].slice(0, 2).concat([{ alias: { type: 'handle', value: 'zhangmin' } }]).slice(0, 2),
    });
    expect(split.status).toBe(201);
    expect(split.body.members.map((m: { amount: { amount: string } }) => m.amount.amount)).toEqual(['50.00', '50.00']);
    const three = await t.api('wallet-b').post('/v1/transfers/splits', {
      customerId: zhang,
      total: { amount: '100.00', currency: 'CNY' },
      method: 'shares',
      members: [
        { alias: { type: 'handle', value: 'zhangmin' }, shares: 1 },
        { alias: { type: 'handle', value: 'liwei' }, shares: 2 },
      ],
    });
    expect(three.body.members.map((m: { amount: { amount: string } }) => m.amount.amount)).toEqual(['33.33', '66.67']);
    const reqId = split.body.members[1].requestId;
    const q = await t.api('wallet-a').post(`/v1/transfers/requests/${reqId}/approve`, { customerId: cus('li-at-wallet-a') });
    expect((await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q.body.id }, key())).status).toBe(201);
    const after = await t.api('wallet-b').get(`/v1/transfers/splits/${split.body.id}`);
    expect(after.body.paidCount).toBe(2);
    expect((await t.api('wallet-b').post(`/v1/transfers/splits/${three.body.id}/remind`)).body.reminded).toBe(1);
    expect((await t.api('wallet-b').post(`/v1/transfers/splits/${three.body.id}/remind`)).body.error.code).toBe('reminder_rate_limited');
  });

  it('red packet: claims once each, outsiders refused, unclaimed refunded at expiry through the ledger', async () => {
    const li = cus('li-at-wallet-a');
    const src = acc('li-at-wallet-a', 'CNY');
    const b0 = await balance(src);
    const packet = await t.api('wallet-a').post(
      '/v1/transfers/red-packets',
      { customerId: li, total: { amount: '10.00', currency: 'CNY' }, shares: 3, mode: 'random', members: [{ type: 'handle', value: 'zhangmin' }] },
      key(),
    );
    expect(packet.status).toBe(201);
    expect(await balance(src)).toBe(b0 - 1000n);
    const claim = await t.api('wallet-b').post(`/v1/transfers/red-packets/${packet.body.id}/claim`, { customerId: cus('zhang-at-wallet-b') }, key());
    expect(claim.status).toBe(201);
    const twice = await t.api('wallet-b').post(`/v1/transfers/red-packets/${packet.body.id}/claim`, { customerId: cus('zhang-at-wallet-b') }, key());
    expect(twice.body.error.code).toBe('red_packet_already_claimed');
    const outsider = await t.api('wallet-b').post(`/v1/transfers/red-packets/${packet.body.id}/claim`, { customerId: cus('li-at-wallet-b') }, key());
    expect(outsider.status).toBe(404);
    expect(outsider.body.error.code).toBe('red_packet_not_found');
    expect((await t.api('wallet-c').post(`/v1/transfers/red-packets/${packet.body.id}/claim`, { customerId: cus('maria-at-wallet-c') }, key())).status).toBe(404);
    const claimed = BigInt(claim.body.amount.amount.replace('.', ''));
    clock.advance(24 * 3_600_000 + 1);
    const swept = await t.hub.transfers.sweep();
    expect(swept.refunded).toBeGreaterThanOrEqual(1);
    expect(await balance(src)).toBe(b0 - claimed);
    const view = await t.hub.transfers.transfers.getRedPacket(demoParticipantId('wallet-a'), packet.body.id);
    expect(view?.status).toBe('refunded');
    expect(view?.refundedMinor).toBe(1000n - claimed);
    expect(await t.hub.transfers.ledger.checkInvariants()).toEqual([]);
  });
});
