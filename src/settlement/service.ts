import type { Actor, AuditService } from '../audit/index.ts';
import type { AccountService } from '../accounts/index.ts';
import type { Ledger } from '../ledger/index.ts';
import type { TransferInput } from '../ledger/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { formatMoney } from '../platform/money.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { Discrepancy, DiscrepancyKind, DiscrepancyReport } from './reconcile.ts';

/**
 * Settlement between participants (docs/ARCHITECTURE.md, "Settlement").
 *
 * POSITIONS. A participant's position in a currency is its funding account (`fund_<participant>_<currency>`, see
 * src/liquidity: liquidity prefunded from its settlement-bank mirror, a net debit cap as the account's credit limit,
 * `liquidity_exceeded` past it). A payment between customers of two different participants is one linked ledger chain
 * (`interparticipantLegs`):
 *     position   fund_<payer>  → fund_<payee>    the payer participant owes the payee participant (checked against the
 *                                               payer's liquidity and cap first: at its cap, it cannot pay out)
 *     customer   source        → fund_<payer>    the customer's money goes back to its participant …
 *     customer   fund_<payee>  → payee account  … and the payee participant credits its customer.
 * The funding accounts thus keep, at every moment, `liquidity − customers' money + unsettled position`; the position
 * legs are recorded per settlement window (settlement_entries). A payment inside one participant is one leg and moves
 * no position.
 *
 * WINDOWS. One open window per currency. The transaction that commits a payment's position legs takes the open
 * window's row FOR SHARE (after its ledger work, until its COMMIT) and records the legs in it; closing takes the row
 * FOR UPDATE, so it waits for every payment that named the window, and every later one finds the next window. A
 * payment therefore belongs to the window its transfer committed in, exactly once.
 *
 * CLOSE computes each participant's multilateral net position (received − sent; they sum to zero) and the settlement
 * instructions (who pays whom at the settlement bank). RECORDING the settlement bank's confirmation posts them: each
 * instruction moves liquidity between the two participants' settlement-bank mirror accounts (`sbk_…`), and the
 * window is settled, which ends its part of the positions (the funding balances already hold the effect). Recording
 * it again changes nothing.
 */
export type SettlementErrorCode = 'settlement_window_not_found' | 'settlement_window_open' | 'settlement_invalid' | 'settlement_csv_invalid';

/** How a currency settles: deferred net (default) or immediate gross (each payment moves liquidity at once). */
export type SettlementModel = 'deferred_net' | 'immediate_gross';

export interface SavedDiscrepancies {
  readonly id: string;
  readonly windowId: string;
  readonly participantId: string;
  readonly currency: string;
  readonly report: DiscrepancyReport;
  readonly createdAt: Date;
}

export interface SettlementSchedule {
  readonly currency: string;
  /** Close every N minutes (counted from when the schedule was set), or … */
  readonly everyMinutes: number | null;
  /** … daily at this UTC time (HH:MM). */
  readonly cutoffUtc: string | null;
  readonly nextCloseAt: Date;
}

/** The first close of a schedule after `from`: N minutes on, or the next HH:MM (UTC) strictly after it. */
export function nextCloseAfter(from: Date, schedule: { everyMinutes: number | null; cutoffUtc: string | null }): Date {
  if (schedule.everyMinutes !== null) return new Date(from.getTime() + schedule.everyMinutes * 60_000);
  const [hh, mm] = (schedule.cutoffUtc ?? '00:00').split(':').map(Number);
  const at = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate(), hh ?? 0, mm ?? 0));
  return at.getTime() > from.getTime() ? at : new Date(at.getTime() + 86_400_000);
}

type SErr = DomainError<SettlementErrorCode | 'ledger_rejected'>;

export interface PositionMove {
  readonly transferId: string;
  readonly paymentId: string;
  readonly payerParticipantId: string;
  readonly payeeParticipantId: string;
  readonly currency: string;
  readonly amountMinor: bigint;
}

export interface SettlementWindow {
  readonly id: string;
  readonly currency: string;
  readonly seq: bigint;
  readonly status: 'open' | 'closed' | 'settled';
  readonly openedAt: Date;
  readonly closedAt: Date | null;
  readonly settledAt: Date | null;
  readonly settlementReference: string | null;
}

export interface NetPosition {
  readonly participantId: string;
  readonly currency: string;
  readonly sentMinor: bigint;
  readonly receivedMinor: bigint;
  readonly sentCount: bigint;
  readonly receivedCount: bigint;
  readonly netMinor: bigint;
}

export interface Instruction {
  readonly id: string;
  readonly seq: number;
  readonly fromParticipantId: string;
  readonly toParticipantId: string;
  readonly currency: string;
  readonly amountMinor: bigint;
}

export interface WindowEntry {
  readonly transferId: string;
  readonly paymentId: string;
  readonly payerParticipantId: string;
  readonly payeeParticipantId: string;
  readonly currency: string;
  readonly amountMinor: bigint;
  readonly createdAt: Date;
}

export interface WindowReport {
  readonly window: SettlementWindow;
  readonly netPositions: NetPosition[];
  readonly instructions: Instruction[];
}

export const MAX_ENTRIES_PAGE = 1000;
/** What a window entry is read as (only what WindowEntry carries: fewer values to parse per row). */
const ENTRY_COLUMNS = 'transfer_id, payment_id, payer_participant_id, payee_participant_id, currency, amount_minor, created_at';
/** How often the hub looks for windows due to close by their schedule. */
export const SETTLEMENT_SCHEDULE_INTERVAL_MS = 15_000;
/** The reference of a window settled as it closed (every leg in it settled gross). */
export const GROSS_REFERENCE = 'immediate_gross';

/**
 * The legs of one payment of `amountMinor` from `sourceAccountId` (a customer's account held by `payerParticipantId`)
 * to `payeeAccountId` (held by `payeeParticipantId`), as one linked chain's members (the caller links them). Between two
 * participants: the position leg first (the payer's cap is checked before anything else moves), then the customer
 * legs through both positions; inside one participant: one leg, no position.
 */
export function interparticipantLegs(input: {
  readonly legId: (leg: string) => string;
  readonly sourceAccountId: string;
  readonly payeeAccountId: string;
  readonly payerParticipantId: string;
  readonly payeeParticipantId: string;
  readonly payerPositionAccountId: string;
  readonly payeePositionAccountId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly purpose: string;
  readonly paymentId: string;
  readonly metadata: Readonly<Record<string, unknown>>;
}): { legs: TransferInput[]; move: PositionMove | undefined } {
  const { amountMinor, currency, purpose, metadata } = input;
  if (input.payerParticipantId === input.payeeParticipantId) {
    return { legs: [{ id: input.legId(purpose), debitAccountId: input.sourceAccountId, creditAccountId: input.payeeAccountId, amountMinor, currency, purpose, metadata }], move: undefined };
  }
  const positionId = input.legId('pos');
  const legs: TransferInput[] = [{ id: positionId, debitAccountId: input.payerPositionAccountId, creditAccountId: input.payeePositionAccountId, amountMinor, currency, purpose: 'position', metadata }];
  // A side whose money IS the position (a connected issuer's card payment is held on its position, a refund goes back
  // to it) has no customer leg on that side.
  if (input.sourceAccountId !== input.payerPositionAccountId) legs.push({ id: input.legId(purpose), debitAccountId: input.sourceAccountId, creditAccountId: input.payerPositionAccountId, amountMinor, currency, purpose, metadata });
  if (input.payeeAccountId !== input.payeePositionAccountId) legs.push({ id: input.legId(`${purpose}_in`), debitAccountId: input.payeePositionAccountId, creditAccountId: input.payeeAccountId, amountMinor, currency, purpose, metadata });
  return {
    legs,
    move: { transferId: positionId, paymentId: input.paymentId, payerParticipantId: input.payerParticipantId, payeeParticipantId: input.payeeParticipantId, currency, amountMinor },
  };
}

/**
 * The position accounts `interparticipantLegs` takes for a payment from `payerParticipantId` to `payeeParticipantId` in
 * `currency`: their funding accounts between two participants (payer's first); none inside one, where the chain has no
 * position leg.
 */
export async function positionAccounts(
  accounts: Pick<AccountService, 'ensureSystemAccount'>,
  payerParticipantId: string,
  payeeParticipantId: string,
  currency: string,
): Promise<{ readonly payerPositionAccountId: string; readonly payeePositionAccountId: string }> {
  if (payerParticipantId === payeeParticipantId) return { payerPositionAccountId: '', payeePositionAccountId: '' };
  const payerPositionAccountId = await accounts.ensureSystemAccount('funding', payerParticipantId, currency);
  return { payerPositionAccountId, payeePositionAccountId: await accounts.ensureSystemAccount('funding', payeeParticipantId, currency) };
}

/** Greedy pairing of net positions into instructions: the largest debtor pays the largest creditor, and so on. */
export function instructionsFor(windowId: string, currency: string, nets: readonly NetPosition[]): Instruction[] {
  const debtors = nets.filter((n) => n.netMinor < 0n).map((n) => ({ id: n.participantId, left: -n.netMinor }));
  const creditors = nets.filter((n) => n.netMinor > 0n).map((n) => ({ id: n.participantId, left: n.netMinor }));
  const byLeft = (a: { id: string; left: bigint }, b: { id: string; left: bigint }) => (a.left === b.left ? a.id.localeCompare(b.id) : a.left > b.left ? -1 : 1);
  debtors.sort(byLeft);
  creditors.sort(byLeft);
  const out: Instruction[] = [];
  let d = 0;
  let c = 0;
  while (d < debtors.length && c < creditors.length) {
    const from = debtors[d];
    const to = creditors[c];
    if (from === undefined || to === undefined) break;
    const amount = from.left < to.left ? from.left : to.left;
    const seq = out.length + 1;
    out.push({ id: `${windowId}_i${seq}`, seq, fromParticipantId: from.id, toParticipantId: to.id, currency, amountMinor: amount });
    from.left -= amount;
    to.left -= amount;
    if (from.left === 0n) d += 1;
    if (to.left === 0n) c += 1;
  }
  return out;
}

interface WindowRow {
  id: string;
  currency: string;
  seq: bigint;
  status: 'open' | 'closed' | 'settled';
  opened_at: Date;
  closed_at: Date | null;
  settled_at: Date | null;
  settlement_reference: string | null;
}
const toWindow = (r: WindowRow): SettlementWindow => ({
  id: r.id,
  currency: r.currency,
  seq: r.seq,
  status: r.status,
  openedAt: r.opened_at,
  closedAt: r.closed_at,
  settledAt: r.settled_at,
  settlementReference: r.settlement_reference,
});
interface NetRow {
  participant_id: string;
  currency: string;
  sent_minor: bigint;
  received_minor: bigint;
  sent_count: bigint;
  received_count: bigint;
  net_minor: bigint;
}
const toNet = (r: NetRow): NetPosition => ({
  participantId: r.participant_id,
  currency: r.currency,
  sentMinor: r.sent_minor,
  receivedMinor: r.received_minor,
  sentCount: r.sent_count,
  receivedCount: r.received_count,
  netMinor: r.net_minor,
});

export interface SettlementService {
  /** Records committed position legs in each currency's open window (locking it FOR SHARE until the COMMIT). */
  recordMoves(tx: Queryable, moves: readonly PositionMove[]): Promise<void>;
  /** The currency's open window (opened if none). */
  openWindow(q: Queryable, currency: string): Promise<SettlementWindow>;
  close(tx: Queryable, actor: Actor, currency: string): Promise<Result<WindowReport, SErr>>;
  recordSettlement(tx: Queryable, actor: Actor, input: { windowId: string; reference: string }): Promise<Result<WindowReport, SErr>>;
  window(q: Queryable, id: string): Promise<SettlementWindow | undefined>;
  report(q: Queryable, id: string): Promise<WindowReport | undefined>;
  /** Windows, newest first; with a participant, only those it has a leg in (and the open ones). */
  windows(q: Queryable, filter: { currency?: string | undefined; participantId?: string | undefined; limit: number }): Promise<SettlementWindow[]>;
  /** A participant's legs in a window, in transfer-id order after `after`. */
  entries(q: Queryable, windowId: string, participantId: string | undefined, after: string | undefined, limit: number): Promise<WindowEntry[]>;
  /** The transfer id when it is one of the participant's legs in the window (an `entries` cursor it issued), else undefined. */
  entryOf(q: Queryable, windowId: string, participantId: string, transferId: string): Promise<string | undefined>;
  /** Received − sent over the windows not yet settled, per currency (legs settled gross are settled). */
  unsettled(q: Queryable, participantId: string): Promise<Map<string, bigint>>;
  models(q: Queryable): Promise<{ currency: string; model: SettlementModel }[]>;
  setModel(tx: Queryable, actor: Actor, input: { currency: string; model: SettlementModel }): Promise<Result<{ currency: string; model: SettlementModel }, SErr>>;
  schedules(q: Queryable): Promise<SettlementSchedule[]>;
  /** Sets (or with neither `everyMinutes` nor `cutoffUtc`, removes) a currency's schedule. */
  setSchedule(tx: Queryable, actor: Actor, input: { currency: string; everyMinutes?: number | undefined; cutoffUtc?: string | undefined }): Promise<Result<SettlementSchedule | null, SErr>>;
  /** Keeps a participant's reconciliation report (the operator lists them). */
  saveDiscrepancies(tx: Queryable, actor: Actor, input: { windowId: string; participantId: string; currency: string; report: DiscrepancyReport }): Promise<SavedDiscrepancies>;
  discrepancies(q: Queryable, filter: { windowId?: string | undefined; limit: number }): Promise<SavedDiscrepancies[]>;
  /** Closes every window whose schedule is due (each in its own transaction); answers the windows closed. */
  runSchedules(): Promise<string[]>;
}

export function createSettlementService(deps: { db: Db; clock: Clock; audit: AuditService; events: EventOutbox; ledger: Ledger; accounts: () => AccountService }): SettlementService {
  const { clock, audit, events, ledger } = deps;

  /** The open window's row, locked (share: payments; update: a close). Opened when the currency has none. */
  const lockOpen = async (q: Queryable, currency: string, mode: 'share' | 'update'): Promise<WindowRow> => {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const [row] = await q.query<WindowRow>(`select * from settlement_windows where currency = $1 and status = 'open' for ${mode === 'share' ? 'share' : 'update'}`, [currency]);
      if (row !== undefined) return row;
      // None, or it was closed while we waited (its row no longer matches): the next statement sees the new one, or
      // opens the first. Two openers race on the one-open index and on (currency, seq): the loser reads the winner's.
      await q.query(
        `insert into settlement_windows (id, currency, seq, status, opened_at)
         select $1 || '_' || (coalesce(max(seq), 0) + 1)::text, $2, coalesce(max(seq), 0) + 1, 'open', $3 from settlement_windows where currency = $2
         on conflict do nothing`,
        [`win_${currency}`, currency, clock.now()],
      );
    }
    throw new Error(`settlement: no open ${currency} window after 5 attempts`);
  };

  const netsOf = async (q: Queryable, windowId: string) =>
    (await q.query<NetRow>('select * from settlement_net_positions where window_id = $1 order by participant_id', [windowId])).map(toNet);
  const instructionsOf = async (q: Queryable, windowId: string) =>
    (
      await q.query<{ id: string; seq: number; from_participant_id: string; to_participant_id: string; currency: string; amount_minor: bigint }>(
        'select * from settlement_instructions where window_id = $1 order by seq',
        [windowId],
      )
    ).map((r) => ({ id: r.id, seq: r.seq, fromParticipantId: r.from_participant_id, toParticipantId: r.to_participant_id, currency: r.currency, amountMinor: r.amount_minor }));
  const report = async (q: Queryable, id: string): Promise<WindowReport | undefined> => {
    const [w] = await q.query<WindowRow>('select * from settlement_windows where id = $1', [id]);
    if (w === undefined) return undefined;
    return { window: toWindow(w), netPositions: await netsOf(q, id), instructions: await instructionsOf(q, id) };
  };

  const netData = (w: SettlementWindow, n: NetPosition) => ({
    windowId: w.id,
    currency: w.currency,
    netPosition: formatMoney(n.netMinor, n.currency),
    sent: formatMoney(n.sentMinor, n.currency),
    received: formatMoney(n.receivedMinor, n.currency),
  });

  const service: SettlementService = {
    async recordMoves(tx, moves) {
      if (moves.length === 0) return;
      const windowOf = new Map<string, string>();
      // Currencies in one order: two batches never wait on each other's window rows crosswise.
      for (const currency of [...new Set(moves.map((m) => m.currency))].sort()) windowOf.set(currency, (await lockOpen(tx, currency, 'share')).id);
      // Currencies settled gross: each leg moves liquidity between the two settlement-bank mirrors now, in this
      // transaction (as a settlement posting does for a window's instructions), so nothing of it is left to settle.
      const gross = new Set(
        (await tx.query<{ currency: string }>(`select currency from settlement_currency_models where currency = any($1::text[]) and model = 'immediate_gross'`, [[...windowOf.keys()]])).map((r) => r.currency),
      );
      const grossMoves = moves.filter((m) => gross.has(m.currency));
      if (grossMoves.length > 0) {
        const accounts = deps.accounts();
        const legs: TransferInput[] = [];
        for (const m of grossMoves) {
          const from = await accounts.ensureSystemAccount('settlement', m.payerParticipantId, m.currency);
          const to = await accounts.ensureSystemAccount('settlement', m.payeeParticipantId, m.currency);
          legs.push({ id: `${m.transferId}_gross`, debitAccountId: to, creditAccountId: from, amountMinor: m.amountMinor, currency: m.currency, purpose: 'settlement_gross', metadata: { paymentId: m.paymentId } });
        }
        const results = await ledger.applyInTx(tx, legs);
        const bad = results.find((r) => !r.ok);
        // The mirrors have no limits: a refusal here is a bug, and the whole payment rolls back with it.
        if (bad !== undefined && !bad.ok) throw new Error(`settlement: gross leg refused: ${bad.error.code}`);
      }
      await tx.query(
        `insert into settlement_entries (transfer_id, window_id, currency, payer_participant_id, payee_participant_id, amount_minor, payment_id, created_at, gross)
         select u.*, $8::timestamptz, u.currency = any($9::text[]) from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[]) as u(transfer_id, window_id, currency, payer, payee, amount, payment)`,
        [
          moves.map((m) => m.transferId),
          moves.map((m) => windowOf.get(m.currency) ?? ''),
          moves.map((m) => m.currency),
          moves.map((m) => m.payerParticipantId),
          moves.map((m) => m.payeeParticipantId),
          moves.map((m) => m.amountMinor.toString()),
          moves.map((m) => m.paymentId),
          clock.now(),
          [...gross],
        ],
      );
    },

    openWindow: async (q, currency) => toWindow(await lockOpen(q, currency, 'share')),

    async close(tx, actor, currency) {
      if (!/^[A-Z]{3}$/.test(currency)) return err('settlement_invalid', 'the currency must be an ISO 4217 code');
      // Waits for every payment that recorded legs in the window (they hold it FOR SHARE until their COMMIT).
      const open = await lockOpen(tx, currency, 'update');
      const now = clock.now();
      await tx.query(
        `insert into settlement_net_positions (window_id, participant_id, currency, sent_minor, received_minor, sent_count, received_count, net_minor)
         select $1, p, $2, sum(s)::int8, sum(r)::int8, sum(sc)::int8, sum(rc)::int8, (sum(r) - sum(s))::int8
           from (select payer_participant_id as p, sum(amount_minor) as s, 0::numeric as r, count(*) as sc, 0::int8 as rc from settlement_entries where window_id = $1 group by 1
                 union all
                 select payee_participant_id, 0, sum(amount_minor), 0, count(*) from settlement_entries where window_id = $1 group by 1) x
          group by p`,
        [open.id, currency],
      );
      const nets = await netsOf(tx, open.id);
      const sum = nets.reduce((s, n) => s + n.netMinor, 0n);
      if (sum !== 0n) throw new Error(`settlement: window ${open.id} nets sum to ${sum}, not zero`);
      // Legs settled gross moved liquidity already: the instructions net only the deferred ones.
      const deferred = await tx.query<{ participant_id: string; net: bigint }>(
        `select p as participant_id, sum(v)::int8 as net from (
           select payer_participant_id as p, -amount_minor as v from settlement_entries where window_id = $1 and not gross
           union all
           select payee_participant_id, amount_minor from settlement_entries where window_id = $1 and not gross) x
         group by p`,
        [open.id],
      );
      const instructions = instructionsFor(
        open.id,
        currency,
        deferred.map((d) => ({ participantId: d.participant_id, currency, sentMinor: 0n, receivedMinor: 0n, sentCount: 0n, receivedCount: 0n, netMinor: d.net })),
      );
      const [model] = await tx.query<{ model: SettlementModel }>('select model from settlement_currency_models where currency = $1', [currency]);
      // An immediate-gross window with nothing deferred in it has nothing to wait for: it is settled as it closes.
      const settledNow = model?.model === 'immediate_gross' && deferred.every((d) => d.net === 0n);
      if (instructions.length > 0) {
        await tx.query(
          `insert into settlement_instructions (id, window_id, seq, from_participant_id, to_participant_id, currency, amount_minor)
           select u.id, $1, u.seq, u.f, u.t, $2, u.a from unnest($3::text[], $4::int4[], $5::text[], $6::text[], $7::int8[]) as u(id, seq, f, t, a)`,
          [open.id, currency, instructions.map((i) => i.id), instructions.map((i) => i.seq), instructions.map((i) => i.fromParticipantId), instructions.map((i) => i.toParticipantId), instructions.map((i) => i.amountMinor.toString())],
        );
      }
      if (settledNow) {
        await tx.query(`update settlement_windows set status = 'settled', closed_at = $2, settled_at = $2, settlement_reference = $3 where id = $1`, [open.id, now, GROSS_REFERENCE]);
      } else {
        await tx.query(`update settlement_windows set status = 'closed', closed_at = $2 where id = $1`, [open.id, now]);
      }
      const nextSeq = open.seq + 1n;
      await tx.query(`insert into settlement_windows (id, currency, seq, status, opened_at) values ($1, $2, $3, 'open', $4)`, [`win_${currency}_${nextSeq}`, currency, nextSeq, now]);
      const closed: SettlementWindow = settledNow
        ? { ...toWindow(open), status: 'settled', closedAt: now, settledAt: now, settlementReference: GROSS_REFERENCE }
        : { ...toWindow(open), status: 'closed', closedAt: now };
      await audit.record(tx, { actor, action: 'settlement.window_closed', objectType: 'settlement_window', objectId: open.id, details: { currency, participants: nets.length, instructions: instructions.length } });
      for (const n of nets) await events.emit(tx, { participantId: n.participantId, type: 'settlement.window_closed', data: netData(closed, n) });
      if (settledNow) for (const n of nets) await events.emit(tx, { participantId: n.participantId, type: 'settlement.settled', data: { ...netData(closed, n), reference: GROSS_REFERENCE } });
      return ok({ window: closed, netPositions: nets, instructions });
    },

    async recordSettlement(tx, actor, input) {
      const [w] = await tx.query<WindowRow>('select * from settlement_windows where id = $1 for update', [input.windowId]);
      if (w === undefined) return err('settlement_window_not_found', 'no such settlement window');
      if (w.status === 'open') return err('settlement_window_open', 'the window is still open: close it first');
      if (w.status === 'settled') {
        // Recorded already: nothing moves again.
        const again = await report(tx, w.id);
        return again === undefined ? err('settlement_window_not_found', 'no such settlement window') : ok(again);
      }
      const instructions = await instructionsOf(tx, w.id);
      const accounts = deps.accounts();
      const legs: TransferInput[] = [];
      for (const i of instructions) {
        const from = await accounts.ensureSystemAccount('settlement', i.fromParticipantId, i.currency);
        const to = await accounts.ensureSystemAccount('settlement', i.toParticipantId, i.currency);
        // Liquidity = debits − credits of the mirror: the payer's falls, the payee's rises, as at the settlement bank.
        legs.push({ id: i.id, debitAccountId: to, creditAccountId: from, amountMinor: i.amountMinor, currency: i.currency, purpose: 'settlement', metadata: { windowId: w.id, reference: input.reference } });
      }
      if (legs.length > 0) {
        const results = await ledger.applyInTx(
          tx,
          legs.map((l, k) => ({ ...l, linked: k < legs.length - 1 })),
        );
        const bad = results.find((r) => !r.ok && r.error.code !== 'linked_transfer_failed') ?? results.find((r) => !r.ok);
        if (bad !== undefined && !bad.ok) return err('ledger_rejected', bad.error.message);
      }
      const now = clock.now();
      await tx.query(`update settlement_windows set status = 'settled', settled_at = $2, settlement_reference = $3 where id = $1`, [w.id, now, input.reference]);
      const settled: SettlementWindow = { ...toWindow(w), status: 'settled', settledAt: now, settlementReference: input.reference };
      const nets = await netsOf(tx, w.id);
      await audit.record(tx, { actor, action: 'settlement.settled', objectType: 'settlement_window', objectId: w.id, details: { reference: input.reference, instructions: instructions.length } });
      for (const n of nets) await events.emit(tx, { participantId: n.participantId, type: 'settlement.settled', data: { ...netData(settled, n), reference: input.reference } });
      return ok({ window: settled, netPositions: nets, instructions });
    },

    async window(q, id) {
      const [w] = await q.query<WindowRow>('select * from settlement_windows where id = $1', [id]);
      return w === undefined ? undefined : toWindow(w);
    },
    report,
    async windows(q, filter) {
      const rows = await q.query<WindowRow>(
        `select w.* from settlement_windows w
          where ($1::text is null or w.currency = $1)
            and ($2::text is null or w.status = 'open'
                 or exists (select 1 from settlement_net_positions n where n.window_id = w.id and n.participant_id = $2))
          order by w.opened_at desc, w.seq desc limit $3`,
        [filter.currency ?? null, filter.participantId ?? null, filter.limit],
      );
      return rows.map(toWindow);
    },
    async entries(q, windowId, participantId, after, limit) {
      const rows = await q.query<{ transfer_id: string; payment_id: string; payer_participant_id: string; payee_participant_id: string; currency: string; amount_minor: bigint; created_at: Date }>(
        participantId === undefined
          ? `select ${ENTRY_COLUMNS} from settlement_entries where window_id = $1 and transfer_id > $2 order by transfer_id limit $3`
          : `select * from (
               (select ${ENTRY_COLUMNS} from settlement_entries where window_id = $1 and payer_participant_id = $4 and transfer_id > $2 order by transfer_id limit $3)
               union all
               (select ${ENTRY_COLUMNS} from settlement_entries where window_id = $1 and payee_participant_id = $4 and payer_participant_id <> $4 and transfer_id > $2 order by transfer_id limit $3)
             ) x order by transfer_id limit $3`,
        participantId === undefined ? [windowId, after ?? '', limit] : [windowId, after ?? '', limit, participantId],
      );
      return rows.map((r) => ({ transferId: r.transfer_id, paymentId: r.payment_id, payerParticipantId: r.payer_participant_id, payeeParticipantId: r.payee_participant_id, currency: r.currency, amountMinor: r.amount_minor, createdAt: r.created_at }));
    },
    async entryOf(q, windowId, participantId, transferId) {
      const [row] = await q.query<{ transfer_id: string }>(
        'select transfer_id from settlement_entries where window_id = $1 and transfer_id = $2 and (payer_participant_id = $3 or payee_participant_id = $3)',
        [windowId, transferId, participantId],
      );
      return row?.transfer_id;
    },
    async unsettled(q, participantId) {
      const rows = await q.query<{ currency: string; net: bigint }>(
        `select e.currency, sum(case when e.payee_participant_id = $1 then e.amount_minor else -e.amount_minor end)::int8 as net
           from settlement_entries e join settlement_windows w on w.id = e.window_id and w.status <> 'settled'
          where (e.payer_participant_id = $1 or e.payee_participant_id = $1) and not e.gross group by e.currency`,
        [participantId],
      );
      return new Map(rows.map((r) => [r.currency, r.net]));
    },

    models: async (q) => q.query<{ currency: string; model: SettlementModel }>('select currency, model from settlement_currency_models order by currency'),
    async setModel(tx, actor, input) {
      if (!/^[A-Z]{3}$/.test(input.currency)) return err('settlement_invalid', 'the currency must be an ISO 4217 code');
      // After the open window's row (FOR UPDATE): no payment of the currency is between its legs and its COMMIT, so each
      // one is settled by the model in force when it committed.
      await lockOpen(tx, input.currency, 'update');
      await tx.query(
        `insert into settlement_currency_models (currency, model, updated_at) values ($1, $2, $3) on conflict (currency) do update set model = excluded.model, updated_at = excluded.updated_at`,
        [input.currency, input.model, clock.now()],
      );
      await audit.record(tx, { actor, action: 'settlement.model_set', objectType: 'settlement_currency', objectId: input.currency, details: { model: input.model } });
      return ok({ currency: input.currency, model: input.model });
    },

    async schedules(q) {
      const rows = await q.query<ScheduleRow>('select * from settlement_schedules order by currency');
      return rows.map(toSchedule);
    },
    async setSchedule(tx, actor, input) {
      if (!/^[A-Z]{3}$/.test(input.currency)) return err('settlement_invalid', 'the currency must be an ISO 4217 code');
      if (input.everyMinutes !== undefined && input.cutoffUtc !== undefined) return err('settlement_invalid', 'give either everyMinutes or cutoffUtc, not both');
      if (input.everyMinutes === undefined && input.cutoffUtc === undefined) {
        await tx.query('delete from settlement_schedules where currency = $1', [input.currency]);
        await audit.record(tx, { actor, action: 'settlement.schedule_removed', objectType: 'settlement_currency', objectId: input.currency });
        return ok(null);
      }
      if (input.everyMinutes !== undefined && (!Number.isInteger(input.everyMinutes) || input.everyMinutes < 1 || input.everyMinutes > 10_080)) return err('settlement_invalid', 'everyMinutes is 1 to 10080');
      if (input.cutoffUtc !== undefined && !/^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(input.cutoffUtc)) return err('settlement_invalid', 'cutoffUtc is HH:MM (UTC)');
      const shape = { everyMinutes: input.everyMinutes ?? null, cutoffUtc: input.cutoffUtc ?? null };
      const now = clock.now();
      const next = nextCloseAfter(now, shape);
      const [row] = await tx.query<ScheduleRow>(
        `insert into settlement_schedules (currency, every_minutes, cutoff_utc, next_close_at, updated_at) values ($1, $2, $3, $4, $5)
         on conflict (currency) do update set every_minutes = excluded.every_minutes, cutoff_utc = excluded.cutoff_utc, next_close_at = excluded.next_close_at, updated_at = excluded.updated_at
         returning *`,
        [input.currency, shape.everyMinutes, shape.cutoffUtc, next, now],
      );
      if (row === undefined) throw new Error('settlement: schedule upsert returned nothing');
      await audit.record(tx, { actor, action: 'settlement.schedule_set', objectType: 'settlement_currency', objectId: input.currency, details: { ...shape, nextCloseAt: next.toISOString() } });
      return ok(toSchedule(row));
    },
    async saveDiscrepancies(tx, actor, input) {
      const id = newId('rec');
      const now = clock.now();
      const { report } = input;
      // Amounts in the items as decimal strings (JSON has no bigint).
      const items = report.items.map((i) => ({ ...i, hub: i.hub === null ? null : { ...i.hub, amountMinor: i.hub.amountMinor.toString() }, participant: i.participant === null ? null : { ...i.participant, amountMinor: i.participant.amountMinor.toString() } }));
      await tx.query(
        `insert into settlement_discrepancy_reports (id, window_id, participant_id, currency, matched, hub_count, participant_count, hub_net_minor, participant_net_minor, counts, items, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        [id, input.windowId, input.participantId, input.currency, report.matched, report.hubCount, report.participantCount, report.hubNetMinor, report.participantNetMinor, JSON.stringify(report.counts), JSON.stringify(items), now],
      );
      const differences = Object.values(report.counts).reduce((a, b) => a + b, 0);
      await audit.record(tx, { actor, action: 'settlement.reconciled', objectType: 'settlement_window', objectId: input.windowId, details: { reportId: id, matched: report.matched, differences } });
      return { id, windowId: input.windowId, participantId: input.participantId, currency: input.currency, report, createdAt: now };
    },
    async discrepancies(q, filter) {
      const rows = await q.query<{
        id: string; window_id: string; participant_id: string; currency: string; matched: number; hub_count: number; participant_count: number; hub_net_minor: bigint; participant_net_minor: bigint;
        counts: Record<DiscrepancyKind, number> | string; items: unknown; created_at: Date;
      }>('select * from settlement_discrepancy_reports where ($1::text is null or window_id = $1) order by created_at desc, id desc limit $2', [filter.windowId ?? null, filter.limit]);
      const json = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));
      type StoredSide = { direction: 'sent' | 'received'; counterpartyParticipantId: string | null; amountMinor: string; currency: string } | null;
      return rows.map((r) => ({
        id: r.id,
        windowId: r.window_id,
        participantId: r.participant_id,
        currency: r.currency,
        createdAt: r.created_at,
        report: {
          matched: r.matched,
          hubCount: r.hub_count,
          participantCount: r.participant_count,
          hubNetMinor: r.hub_net_minor,
          participantNetMinor: r.participant_net_minor,
          counts: json<Record<DiscrepancyKind, number>>(r.counts),
          items: json<(Omit<Discrepancy, 'hub' | 'participant'> & { hub: StoredSide; participant: StoredSide })[]>(r.items).map((i) => ({
            ...i,
            hub: i.hub === null ? null : { direction: i.hub.direction, counterpartyParticipantId: i.hub.counterpartyParticipantId ?? '', amountMinor: BigInt(i.hub.amountMinor), currency: i.hub.currency },
            participant: i.participant === null ? null : { ...i.participant, amountMinor: BigInt(i.participant.amountMinor) },
          })),
        },
      }));
    },
    async runSchedules() {
      const closed: string[] = [];
      const due = await deps.db.query<{ currency: string }>('select currency from settlement_schedules where next_close_at <= $1 order by currency limit 100', [clock.now()]);
      for (const { currency } of due) {
        await deps.db.transaction(async (tx) => {
          // Locked and read again: two hub processes running the job close each due window once.
          const [row] = await tx.query<ScheduleRow>('select * from settlement_schedules where currency = $1 and next_close_at <= $2 for update skip locked', [currency, clock.now()]);
          if (row === undefined) return;
          const sched = toSchedule(row);
          const r = await service.close(tx, { type: 'system' }, currency);
          if (!r.ok) throw new Error(`settlement: scheduled close of ${currency}: ${r.error.code}`);
          closed.push(r.value.window.id);
          // The next close after now (a hub that was down for several periods closes once, not once per period missed).
          let next = nextCloseAfter(sched.nextCloseAt, sched);
          const now = clock.now();
          while (next.getTime() <= now.getTime()) next = nextCloseAfter(next, sched);
          await tx.query('update settlement_schedules set next_close_at = $2 where currency = $1', [currency, next]);
        });
      }
      return closed;
    },
  };
  return service;
}

interface ScheduleRow {
  currency: string;
  every_minutes: number | null;
  cutoff_utc: string | null;
  next_close_at: Date;
}
const toSchedule = (r: ScheduleRow): SettlementSchedule => ({ currency: r.currency, everyMinutes: r.every_minutes, cutoffUtc: r.cutoff_utc, nextCloseAt: r.next_close_at });

