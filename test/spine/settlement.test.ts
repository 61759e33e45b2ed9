import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateXML } from 'xmllint-wasm';
import { parseIso, parsePacs002 } from '../../src/settlement/iso20022.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

/**
 * Settlement between participants: every payment between two participants' customers moves their positions in the same
 * linked ledger chain; windows per currency collect those legs, close into net positions and instructions, and settle
 * from the settlement bank's confirmation — on both engines, and under 32 concurrent payers on PostgreSQL.
 */
describe.each(engines)('settlement on %s', (engine) => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub(engine);
  });
  afterAll(async () => t?.close());

  const key = () => ({ 'idempotency-key': randomBytes(8).toString('hex') });
  const op = () => t.api('operator');

  type Wallet = Awaited<ReturnType<typeof newWallet>>;
  /** A new wallet with prefunded liquidity, its token and a caller for it. */
  const newWallet = async (currency: string, liquidity: string) => {
    const created = await op().post('/v1/operator/participants', { kind: 'wallet', name: `Settle ${randomBytes(3).toString('hex')}`, country: 'SG', currencies: [currency] });
    expect(created.status).toBe(201);
    const token = await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: created.body.credential.clientId, client_secret: created.body.credential.clientSecret });
    const auth = { authorization: `Bearer ${token.body.access_token}` };
    const as = t.api('anonymous');
    const id = created.body.participant.id as string;
    expect((await op().post(`/v1/operator/participants/${id}/liquidity`, { amount: { amount: liquidity, currency } }, key())).status).toBe(201);
    return {
      id,
      get: (url: string) => as.get(url, auth),
      post: (url: string, body: unknown, headers: Record<string, string> = {}) => as.post(url, body, { ...auth, ...headers }),
    };
  };
  let handles = 0;
  const openCustomer = async (w: Wallet, currency: string, deposit: string) => {
    const c = await w.post('/v1/customers', { externalId: `stl-${randomBytes(4).toString('hex')}`, name: 'Settlement Tester', kycLevel: 3 });
    const a = await w.post('/v1/accounts', { customerId: c.body.id, currency });
    expect(a.status).toBe(201);
    const handle = `stl_${randomBytes(3).toString('hex')}_${(handles += 1)}`;
    expect((await w.post('/v1/aliases', { customerId: c.body.id, type: 'handle', value: handle, accountId: a.body.id })).status).toBe(201);
    if (deposit !== '0') expect((await w.post(`/v1/accounts/${a.body.id}/deposits`, { amount: { amount: deposit, currency } }, key())).status).toBe(201);
    return { w, customerId: c.body.id as string, accountId: a.body.id as string, handle };
  };
  type Customer = Awaited<ReturnType<typeof openCustomer>>;
  const pay = async (from: Customer, to: Customer, amount: string, currency: string) => {
    const q = await from.w.post('/v1/transfers/quotes', { customerId: from.customerId, payee: { type: 'handle', value: to.handle }, sendAmount: { amount, currency } }, key());
    expect(q.status).toBe(201);
    return from.w.post('/v1/transfers/payments', { quoteId: q.body.id }, key());
  };
  const fundBalance = async (participantId: string, currency: string) => {
    const [r] = await t.hub.db.query<{ b: bigint }>('select credits_posted - debits_posted as b from ledger_accounts where id = $1', [`fund_${participantId}_${currency}`]);
    return r?.b ?? 0n;
  };
  const accountBalance = async (id: string) => {
    const [r] = await t.hub.db.query<{ b: bigint }>('select credits_posted - debits_posted as b from ledger_accounts where id = $1', [id]);
    return r?.b ?? 0n;
  };
  const transferCount = async () => (await t.hub.db.query<{ n: bigint }>('select count(*) as n from ledger_transfers'))[0]?.n;

  it('a payment between two participants moves both positions in its linked chain; one inside a participant moves none', async () => {
    const w1 = await newWallet('SGD', '1000.00');
    const w2 = await newWallet('SGD', '1000.00');
    const a = await openCustomer(w1, 'SGD', '300.00');
    const a2 = await openCustomer(w1, 'SGD', '0');
    const b = await openCustomer(w2, 'SGD', '0');
    const paid = await pay(a, b, '12.34', 'SGD');
    expect(paid.status).toBe(201);
    const legs = await t.hub.db.query<{ id: string; debit_account_id: string; credit_account_id: string; amount_minor: bigint; purpose: string; linked: boolean }>(
      'select id, debit_account_id, credit_account_id, amount_minor, purpose, linked from ledger_transfers where id = any($1::text[]) order by id',
      [paid.body.transferIds],
    );
    const position = legs.find((l) => l.purpose === 'position');
    expect(position).toMatchObject({ debit_account_id: `fund_${w1.id}_SGD`, credit_account_id: `fund_${w2.id}_SGD`, amount_minor: 1234n });
    expect(legs).toHaveLength(3);
    const [entry] = await t.hub.db.query<{ window_id: string; payer_participant_id: string; payee_participant_id: string; amount_minor: bigint }>('select * from settlement_entries where transfer_id = $1', [position?.id]);
    expect(entry).toMatchObject({ payer_participant_id: w1.id, payee_participant_id: w2.id, amount_minor: 1234n });
    expect(await accountBalance(b.accountId)).toBe(1234n);
    // Inside one participant: one leg, no position, no settlement entry.
    const inside = await pay(a, a2, '1.00', 'SGD');
    expect(inside.status).toBe(201);
    expect(inside.body.transferIds).toHaveLength(1);
    expect((await t.hub.db.query('select 1 from settlement_entries where payment_id = $1', [inside.body.id])).length).toBe(0);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('a participant at its net debit cap cannot pay out (liquidity_exceeded) but is paid; the cap or liquidity lets it through', async () => {
    const w1 = await newWallet('SGD', '100.00');
    const w2 = await newWallet('SGD', '1000.00');
    // w1 lent every cent of its liquidity to its customer: its position has nothing left (cap 0).
    const a = await openCustomer(w1, 'SGD', '100.00');
    const b = await openCustomer(w2, 'SGD', '500.00');
    expect(await fundBalance(w1.id, 'SGD')).toBe(0n);
    const before = await transferCount();
    const refused = await pay(a, b, '10.00', 'SGD');
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('liquidity_exceeded');
    expect(await transferCount()).toBe(before);
    expect(await accountBalance(a.accountId)).toBe(100_00n);
    // Incoming is accepted.
    expect((await pay(b, a, '10.00', 'SGD')).status).toBe(201);
    expect(await accountBalance(a.accountId)).toBe(110_00n);
    expect((await pay(a, b, '10.00', 'SGD')).body.error.code).toBe('liquidity_exceeded');
    // Raising the cap lets it through.
    expect((await op().post(`/v1/operator/participants/${w1.id}/net-debit-cap`, { cap: { amount: '20.00', currency: 'SGD' } })).status).toBe(200);
    expect((await pay(a, b, '10.00', 'SGD')).status).toBe(201);
    expect((await pay(a, b, '30.00', 'SGD')).body.error.code).toBe('liquidity_exceeded');
    // So does more liquidity.
    expect((await op().post(`/v1/operator/participants/${w1.id}/liquidity`, { amount: { amount: '10.00', currency: 'SGD' } }, key())).status).toBe(201);
    expect((await pay(a, b, '30.00', 'SGD')).status).toBe(201);
    expect(await accountBalance(a.accountId)).toBe(70_00n);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('liquidity.low: a deposit that takes the position within 10% of its liquidity and cap warns the participant once', async () => {
    const w = await newWallet('SGD', '100.00');
    const c = await openCustomer(w, 'SGD', '50.00');
    const lows = async () => t.hub.db.query<{ payload: any }>(`select payload from events where participant_id = $1 and type = 'liquidity.low'`, [w.id]);
    expect(await lows()).toHaveLength(0);
    expect((await w.post(`/v1/accounts/${c.accountId}/deposits`, { amount: { amount: '41.00', currency: 'SGD' } }, key())).status).toBe(201);
    const [low] = await lows();
    expect(low?.payload).toEqual({ available: { amount: '9.00', currency: 'SGD' }, netDebitCap: { amount: '0.00', currency: 'SGD' }, liquidity: { amount: '100.00', currency: 'SGD' } });
    // Already low: no second warning.
    expect((await w.post(`/v1/accounts/${c.accountId}/deposits`, { amount: { amount: '1.00', currency: 'SGD' } }, key())).status).toBe(201);
    expect(await lows()).toHaveLength(1);
  });

  it('close computes net positions and instructions; recording the settlement moves liquidity once', async () => {
    const cur = 'HKD';
    const w1 = await newWallet(cur, '1000.00');
    const w2 = await newWallet(cur, '1000.00');
    const w3 = await newWallet(cur, '1000.00');
    const c1 = await openCustomer(w1, cur, '500.00');
    const c2 = await openCustomer(w2, cur, '500.00');
    const c3 = await openCustomer(w3, cur, '500.00');
    expect((await pay(c1, c2, '100.00', cur)).status).toBe(201);
    expect((await pay(c2, c3, '30.00', cur)).status).toBe(201);
    expect((await pay(c3, c1, '20.00', cur)).status).toBe(201);
    expect((await pay(c1, c3, '5.00', cur)).status).toBe(201);
    const actor = { type: 'operator' as const };
    const closed = await t.hub.db.transaction((tx) => t.hub.settlement.close(tx, actor, cur));
    expect(closed.ok).toBe(true);
    if (!closed.ok) return;
    const net = new Map(closed.value.netPositions.map((n) => [n.participantId, n.netMinor]));
    expect(net.get(w1.id)).toBe(-100_00n + 20_00n - 5_00n);
    expect(net.get(w2.id)).toBe(100_00n - 30_00n);
    expect(net.get(w3.id)).toBe(30_00n - 20_00n + 5_00n);
    expect(closed.value.netPositions.reduce((s, n) => s + n.netMinor, 0n)).toBe(0n);
    // Instructions carry exactly the nets.
    const viaInstr = new Map<string, bigint>();
    for (const i of closed.value.instructions) {
      viaInstr.set(i.fromParticipantId, (viaInstr.get(i.fromParticipantId) ?? 0n) - i.amountMinor);
      viaInstr.set(i.toParticipantId, (viaInstr.get(i.toParticipantId) ?? 0n) + i.amountMinor);
    }
    for (const n of closed.value.netPositions) expect(viaInstr.get(n.participantId) ?? 0n).toBe(n.netMinor);
    // A new window is open at once; the next payment lands there.
    const next = await t.hub.settlement.openWindow(t.hub.db, cur);
    expect(next.id).not.toBe(closed.value.window.id);
    const latePay = await pay(c1, c2, '1.00', cur);
    expect(latePay.status).toBe(201);
    const [late] = await t.hub.db.query<{ window_id: string }>(`select window_id from settlement_entries where payment_id = $1`, [latePay.body.id]);
    expect(late?.window_id).toBe(next.id);

    const liq = async (p: string) => (await t.hub.liquidity.position(p, cur)).liquidityMinor;
    const funds0 = await Promise.all([w1, w2, w3].map((w) => fundBalance(w.id, cur)));
    const record = () => t.hub.db.transaction((tx) => t.hub.settlement.recordSettlement(tx, actor, { windowId: closed.value.window.id, reference: 'SB-2026-1' }));
    const settled = await record();
    expect(settled.ok && settled.value.window.status).toBe('settled');
    expect(await liq(w1.id)).toBe(1000_00n - 85_00n);
    expect(await liq(w2.id)).toBe(1000_00n + 70_00n);
    expect(await liq(w3.id)).toBe(1000_00n + 15_00n);
    // The positions (funding accounts) already held the effect: settlement moves the liquidity, not them.
    expect(await Promise.all([w1, w2, w3].map((w) => fundBalance(w.id, cur)))).toEqual(funds0);
    const count = await transferCount();
    const again = await record();
    expect(again.ok && again.value.window.settledAt?.getTime()).toBe(settled.ok ? settled.value.window.settledAt?.getTime() : -1);
    expect(await transferCount()).toBe(count);
    expect(await liq(w1.id)).toBe(1000_00n - 85_00n);
    // The open window cannot be settled.
    const open = await t.hub.db.transaction((tx) => t.hub.settlement.recordSettlement(tx, actor, { windowId: next.id, reference: 'x' }));
    expect(!open.ok && open.error.code).toBe('settlement_window_open');
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('the API: close, your window and its transfers (JSON and CSV, cursor-paginated) reconcile with your net position; record the settlement twice', async () => {
    const cur = 'EUR';
    const w1 = await newWallet(cur, '1000.00');
    const w2 = await newWallet(cur, '1000.00');
    const c1 = await openCustomer(w1, cur, '500.00');
    const c2 = await openCustomer(w2, cur, '500.00');
    const amounts = ['1.01', '2.02', '3.03', '4.04', '5.05'];
    for (const a of amounts) expect((await pay(c1, c2, a, cur)).status).toBe(201);
    expect((await pay(c2, c1, '0.50', cur)).status).toBe(201);
    const beforeClose = (await w1.get('/v1/settlement/positions')).body.items.find((p: any) => p.currency === cur);
    expect(beforeClose.unsettledPosition).toEqual({ amount: '-14.65', currency: cur });
    expect(beforeClose.liquidity).toEqual({ amount: '1000.00', currency: cur });

    // Only the operator closes; a participant answers 401.
    expect((await w1.post('/v1/operator/settlement/windows/close', { currency: cur }, key())).status).toBe(401);
    const closed = await op().post('/v1/operator/settlement/windows/close', { currency: cur }, key());
    expect(closed.status).toBe(200);
    const windowId = closed.body.window.id as string;
    expect(closed.body.window.status).toBe('closed');
    const nets = closed.body.netPositions as { participantId: string; netPosition: { amount: string } }[];
    expect(nets.find((n) => n.participantId === w1.id)?.netPosition).toEqual({ amount: '-14.65', currency: cur });
    expect(nets.find((n) => n.participantId === w2.id)?.netPosition).toEqual({ amount: '14.65', currency: cur });

    // The participant sees only its own net position and instructions.
    const mine = await w1.get(`/v1/settlement/windows/${windowId}`);
    expect(mine.status).toBe(200);
    expect(mine.body.netPositions.map((n: any) => n.participantId)).toEqual([w1.id]);
    for (const i of mine.body.instructions) expect([i.fromParticipantId, i.toParticipantId]).toContain(w1.id);
    expect((await w1.get('/v1/settlement/windows')).body.items.map((w: any) => w.id)).toContain(windowId);
    expect((await w1.get('/v1/settlement/windows/win_XXX_1')).status).toBe(404);

    // Pages of 2: every transfer once; received − sent equals the net position.
    const seen: any[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await w1.get(`/v1/settlement/windows/${windowId}/transfers?limit=2${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.items);
      cursor = page.body.nextCursor;
    } while (cursor !== null);
    expect(seen).toHaveLength(6);
    // A cursor that is none of its legs in this window answers 400 invalid_page, in JSON and CSV alike, not a page.
    for (const bad of ['trf_unknown', `${seen[0].transferId}x`]) {
      for (const path of ['transfers', 'transfers.csv']) {
        const refused = await w1.get(`/v1/settlement/windows/${windowId}/${path}?limit=2&cursor=${encodeURIComponent(bad)}`);
        expect(refused.status).toBe(400);
        expect(refused.body.error.code).toBe('invalid_page');
      }
    }
    expect(new Set(seen.map((e) => e.transferId)).size).toBe(6);
    const total = seen.reduce((s, e) => s + (e.direction === 'received' ? 1n : -1n) * BigInt(e.amount.amount.replace('.', '')), 0n);
    expect(total).toBe(-14_65n);
    const csv = await w1.get(`/v1/settlement/windows/${windowId}/transfers.csv?limit=1000`);
    expect(csv.status).toBe(200);
    expect(String(csv.headers['content-type'])).toMatch(/^text\/csv/);
    const lines = String(csv.body).trim().split('\r\n');
    expect(lines[0]).toBe('transfer_id,payment_id,direction,counterparty_participant_id,amount,currency,created_at');
    expect(lines.slice(1).map((l) => l.split(',')[0]).sort()).toEqual(seen.map((e) => e.transferId).sort());

    // Recording the settlement: liquidity moves once; twice changes nothing.
    const settle = () => op().post(`/v1/operator/settlement/windows/${windowId}/settlement`, { reference: 'SB-EUR-1' }, key());
    const s1 = await settle();
    expect(s1.status).toBe(200);
    expect(s1.body.window.status).toBe('settled');
    const count = await transferCount();
    const s2 = await settle();
    expect(s2.status).toBe(200);
    expect(s2.body.window).toEqual(s1.body.window);
    expect(await transferCount()).toBe(count);
    const after = (await w1.get('/v1/settlement/positions')).body.items.find((p: any) => p.currency === cur);
    expect(after.liquidity).toEqual({ amount: '985.35', currency: cur });
    expect(after.unsettledPosition).toEqual({ amount: '0.00', currency: cur });
    // ISO 20022: the statement and the credit transfers validate against the official XSDs; their totals are the
    // ledger's (the position legs' own rows), and the status report says settled for each payment.
    const xsd = (name: string) => ({ fileName: name, contents: readFileSync(join(import.meta.dirname, '../data/iso20022', name), 'utf8') });
    const camt = await w1.get(`/v1/settlement/windows/${windowId}/camt053`);
    expect(camt.status).toBe(200);
    expect(String(camt.headers['content-type'])).toMatch(/^application\/xml/);
    expect((await validateXML({ xml: [{ fileName: 'camt.xml', contents: String(camt.body) }], schema: [xsd('camt.053.001.08.xsd')] })).errors).toEqual([]);
    const [ledger] = await t.hub.db.query<{ out: bigint; in: bigint }>(
      `select coalesce(sum(t.amount_minor) filter (where t.debit_account_id = $2), 0)::int8 as out, coalesce(sum(t.amount_minor) filter (where t.credit_account_id = $2), 0)::int8 as in
         from settlement_entries e join ledger_transfers t on t.id = e.transfer_id where e.window_id = $1`,
      [windowId, `fund_${w1.id}_${cur}`],
    );
    const stmt = (parseIso(String(camt.body)) as any).Document.BkToCstmrStmt.Stmt;
    expect(stmt.TxsSummry.TtlDbtNtries.Sum).toBe((Number(ledger?.out) / 100).toFixed(2));
    expect(stmt.TxsSummry.TtlCdtNtries.Sum).toBe((Number(ledger?.in) / 100).toFixed(2));
    expect(stmt.TxsSummry.TtlNtries.TtlNetNtry).toEqual({ Amt: '14.65', CdtDbtInd: 'DBIT' });
    expect(stmt.Ntry.map((n: any) => n.NtryDtls.TxDtls.Refs.EndToEndId).sort()).toEqual(seen.map((e) => e.paymentId).sort());
    const pacs = await op().get(`/v1/operator/settlement/windows/${windowId}/pacs008`);
    expect(pacs.status).toBe(200);
    expect((await validateXML({ xml: [{ fileName: 'pacs.xml', contents: String(pacs.body) }], schema: [xsd('pacs.008.001.08.xsd')] })).errors).toEqual([]);
    expect((parseIso(String(pacs.body)) as any).Document.FIToFICstmrCdtTrf.GrpHdr.NbOfTxs).toBe('6');
    const status = parsePacs002(String((await w1.get(`/v1/settlement/windows/${windowId}/pacs002`)).body));
    expect(status.groupStatus).toBe('ACSC');
    expect(status.transactions.map((x) => x.originalEndToEndId).sort()).toEqual(seen.map((e) => e.paymentId).sort());
    expect(status.transactions.map((x) => x.amount).sort((a, b) => a.amount.localeCompare(b.amount))).toEqual(seen.map((e) => e.amount).sort((a: any, b: any) => a.amount.localeCompare(b.amount)));

    // The webhooks carry money as { amount, currency }.
    const events = await t.hub.db.query<{ type: string; data: any }>(`select type, payload as data from events where participant_id = $1 and type like 'settlement.%' order by id`, [w1.id]);
    expect(events.map((e) => e.type)).toEqual(['settlement.window_closed', 'settlement.settled']);
    expect(events[1]?.data.netPosition).toEqual({ amount: '-14.65', currency: cur });
  });

  it.runIf(engine === 'postgres')('closing while 32 clients pay: each payment in exactly one window, nets sum to zero, each change equals its legs', async () => {
    const cur = 'USD';
    const wallets = await Promise.all(Array.from({ length: 4 }, () => newWallet(cur, '100000.00')));
    const customers: Customer[] = [];
    for (const w of wallets) for (let i = 0; i < 4; i += 1) customers.push(await openCustomer(w, cur, '1000.00'));
    const funds0 = new Map(await Promise.all(wallets.map(async (w) => [w.id, await fundBalance(w.id, cur)] as const)));
    const actor = { type: 'operator' as const };
    const first = await t.hub.settlement.openWindow(t.hub.db, cur);
    let stop = false;
    const paidIds: string[] = [];
    const crossIds: string[] = [];
    const client = async (k: number) => {
      let n = 0;
      while (!stop && n < 40) {
        const from = customers[(k + n) % customers.length]!;
        const to = customers[(k * 7 + n * 3 + 5) % customers.length]!;
        n += 1;
        if (from === to) continue;
        const r = await pay(from, to, `${1 + ((k + n) % 9)}.0${n % 10}`, cur);
        // Risk checks may ask for a step-up on a fast payer: such a payment moves nothing and is not counted.
        if (r.status === 201) {
          paidIds.push(r.body.id);
          if (from.w !== to.w) crossIds.push(r.body.id);
        }
        else expect(r.body.error.code).toBe('step_up_required');
      }
    };
    const closer = async () => {
      const windows: string[] = [];
      for (let i = 0; i < 4; i += 1) {
        await new Promise((r) => setTimeout(r, 150));
        const c = await t.hub.db.transaction((tx) => t.hub.settlement.close(tx, actor, cur));
        expect(c.ok).toBe(true);
        if (c.ok) windows.push(c.value.window.id);
      }
      return windows;
    };
    const closing = closer();
    await Promise.all(Array.from({ length: 32 }, (_, k) => client(k)));
    const closedIds = await closing;
    stop = true;
    const last = await t.hub.db.transaction((tx) => t.hub.settlement.close(tx, actor, cur));
    expect(last.ok).toBe(true);
    if (!last.ok) return;
    const all = [...closedIds, last.value.window.id];
    expect(all[0]).toBe(first.id);
    // Every cross-participant payment is in exactly one window (and only those).
    const entries = await t.hub.db.query<{ payment_id: string; window_id: string; payer_participant_id: string; payee_participant_id: string; amount_minor: bigint }>(
      'select payment_id, window_id, payer_participant_id, payee_participant_id, amount_minor from settlement_entries where payment_id = any($1::text[])',
      [paidIds],
    );
    const perPayment = new Map<string, number>();
    for (const e of entries) perPayment.set(e.payment_id, (perPayment.get(e.payment_id) ?? 0) + 1);
    for (const [, n] of perPayment) expect(n).toBe(1);
    for (const e of entries) expect(all).toContain(e.window_id);
    const positionLegs = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from ledger_transfers where purpose = 'position' and metadata->>'paymentId' = any($1::text[])`, [paidIds]);
    expect(positionLegs[0]?.n).toBe(BigInt(entries.length));
    // Payments between two wallets' customers, and only those.
    expect(entries.map((e) => e.payment_id).sort()).toEqual([...crossIds].sort());
    expect(entries.length).toBeGreaterThan(100);
    // More than one window got payments: the close really raced them.
    expect(new Set(entries.map((e) => e.window_id)).size).toBeGreaterThan(1);
    // Per window, nets sum to zero and each participant's net equals its entries.
    for (const id of all) {
      const r = await t.hub.settlement.report(t.hub.db, id);
      expect(r).toBeDefined();
      if (r === undefined) continue;
      expect(r.netPositions.reduce((s, n) => s + n.netMinor, 0n)).toBe(0n);
      for (const n of r.netPositions) {
        const mine = entries.filter((e) => e.window_id === id);
        const expected = mine.reduce((s, e) => s + (e.payee_participant_id === n.participantId ? e.amount_minor : 0n) - (e.payer_participant_id === n.participantId ? e.amount_minor : 0n), 0n);
        if (wallets.some((w) => w.id === n.participantId)) expect(n.netMinor).toBe(expected);
      }
    }
    // Each participant's position change over the windows equals the sum of its windows' nets (and of its legs).
    for (const w of wallets) {
      let net = 0n;
      for (const id of all) net += (await t.hub.settlement.report(t.hub.db, id))?.netPositions.find((n) => n.participantId === w.id)?.netMinor ?? 0n;
      const own = customers.filter((c) => c.w === w);
      let customerMoney = 0n;
      for (const c of own) customerMoney += (await accountBalance(c.accountId)) - 1000_00n;
      // Customers' money came in or went out through the position: the customers' change is the position's net.
      expect(customerMoney).toBe(net);
      // The funding balance holds liquidity − customers' money + unsettled position: unchanged by payments.
      expect(await fundBalance(w.id, cur)).toBe(funds0.get(w.id));
    }
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  }, 120_000);
});
