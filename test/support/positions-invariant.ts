import type { Queryable } from '../../src/platform/db.ts';

/**
 * The positions invariant: NO PAYMENT BETWEEN CUSTOMERS OF TWO DIFFERENT PARTICIPANTS LEAVES THEIR POSITIONS UNTOUCHED.
 *
 * Every ledger account names the participant it belongs to (`ledger_accounts.owner_participant_id`): a customer's,
 * merchant's, credit line's or savings account the participant that keeps it; a system account (position
 * `fund_<p>`, settlement-bank mirror, fees, FX liquidity, a red packet's escrow, an offline purse's reserve) the
 * participant whose money it holds. Money may move freely between accounts of ONE participant; it crosses from
 * participant A to participant B only as a position leg `fund_A → fund_B` recorded for settlement.
 *
 * So over the committed ledger (`single_phase` transfers, and `post_pending` ones: a pending transfer moves money only
 * once posted; voided or still pending ones never did), this checks:
 *
 * 1. every committed transfer whose debit account belongs to A and whose credit account belongs to B ≠ A is either
 *    - a POSITION LEG (`purpose = 'position'`, between A's and B's funding accounts) with a `settlement_entries` row
 *      of the same transfer (its own id; for a posting, its own or the pending transfer's) saying payer A, payee B, the
 *      same currency and the amount moved, or
 *    - SETTLEMENT ITSELF: liquidity moving between two settlement-bank mirrors (`kind = 'settlement'` on both sides:
 *      a window's instructions, or a gross-settled leg), which settles positions instead of creating them;
 *    anything else moved money between two participants' books without their positions (`unrecorded_crossing`);
 * 2. every `settlement_entries` row names a committed position leg with those participants, currency and amount
 *    (`phantom_entry`: a window would net a move the ledger never made, e.g. one recorded for a voided pending).
 *
 * (1) over every transfer implies the rule for every linked chain and payment: a chain that starts in an account of A
 * and ends in one of B must cross from A's accounts to B's somewhere, and the only crossing allowed is a recorded
 * position leg A→B for the amount. Conversely a payment inside one participant has no crossing, so it moves no
 * position unless it records one (a position leg between a participant and itself is a `self_position` violation).
 */
export interface PositionViolation {
  readonly kind: 'unrecorded_crossing' | 'mismatched_entry' | 'phantom_entry' | 'self_position';
  readonly transferId: string;
  readonly purpose: string;
  readonly debit: string;
  readonly credit: string;
  readonly from: string;
  readonly to: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly detail: string;
}

interface MoveRow {
  id: string;
  pending_id: string | null;
  purpose: string;
  debit_account_id: string;
  credit_account_id: string;
  amount_minor: string;
  currency: string;
  debit_owner: string;
  credit_owner: string;
  debit_kind: string;
  credit_kind: string;
}

interface EntryRow {
  transfer_id: string;
  currency: string;
  payer_participant_id: string;
  payee_participant_id: string;
  amount_minor: string;
}

/** Every violation of the positions invariant in the database now (empty: the invariant holds). */
export async function positionViolations(q: Queryable): Promise<PositionViolation[]> {
  // Committed money movements: single-phase transfers, and postings of pendings (with the pending's accounts and
  // purpose).
  const moves = await q.query<MoveRow>(
    `with moved as (
       select t.id, null::text as pending_id, t.purpose, t.debit_account_id, t.credit_account_id, t.amount_minor, t.currency
         from ledger_transfers t where t.kind = 'single_phase'
       union all
       select p.id, p.pending_id, coalesce(nullif(pend.purpose, ''), p.purpose), pend.debit_account_id, pend.credit_account_id,
              p.amount_minor, pend.currency
         from ledger_transfers p join ledger_transfers pend on pend.id = p.pending_id
        where p.kind = 'post_pending')
     select m.id, m.pending_id, m.purpose, m.debit_account_id, m.credit_account_id, m.amount_minor::text as amount_minor, m.currency,
            d.owner_participant_id as debit_owner, c.owner_participant_id as credit_owner, d.kind as debit_kind, c.kind as credit_kind
       from moved m
       join ledger_accounts d on d.id = m.debit_account_id
       join ledger_accounts c on c.id = m.credit_account_id
      order by m.id`,
  );
  const entries = await q.query<EntryRow>(
    `select transfer_id, currency, payer_participant_id, payee_participant_id, amount_minor::text as amount_minor from settlement_entries`,
  );
  const entryOf = new Map(entries.map((e) => [e.transfer_id, e]));
  const violations: PositionViolation[] = [];
  const violation = (kind: PositionViolation['kind'], m: MoveRow, detail: string) =>
    violations.push({
      kind,
      transferId: m.id,
      purpose: m.purpose,
      debit: m.debit_account_id,
      credit: m.credit_account_id,
      from: m.debit_owner,
      to: m.credit_owner,
      amountMinor: BigInt(m.amount_minor),
      currency: m.currency,
      detail,
    });
  // Amount posted per position leg (a pending may be posted for less than it held).
  const posted = new Map<string, { row: MoveRow; amount: bigint }>();
  for (const m of moves) {
    if (m.purpose === 'position' && m.debit_kind === 'funding' && m.credit_kind === 'funding') {
      if (m.debit_owner === m.credit_owner) {
        violation('self_position', m, 'a position leg between a participant and itself');
        continue;
      }
      // The entry names the position leg: a posting's own id, or the pending transfer it posts.
      const entryId = m.pending_id !== null && !entryOf.has(m.id) && entryOf.has(m.pending_id) ? m.pending_id : m.id;
      const seen = posted.get(entryId);
      posted.set(entryId, { row: m, amount: (seen?.amount ?? 0n) + BigInt(m.amount_minor) });
      continue;
    }
    if (m.debit_owner === m.credit_owner) continue;
    if (m.debit_kind === 'settlement' && m.credit_kind === 'settlement') continue;
    violation('unrecorded_crossing', m, `money moved from ${m.debit_owner}'s books to ${m.credit_owner}'s without a position leg`);
  }
  for (const [entryId, { row, amount }] of posted) {
    const e = entryOf.get(entryId);
    if (e === undefined) {
      violation('unrecorded_crossing', row, 'position leg with no settlement entry');
    } else if (e.payer_participant_id !== row.debit_owner || e.payee_participant_id !== row.credit_owner || e.currency !== row.currency || BigInt(e.amount_minor) !== amount) {
      violation('mismatched_entry', row, `settlement entry says ${e.payer_participant_id}→${e.payee_participant_id} ${e.amount_minor} ${e.currency}, the ledger moved ${amount}`);
    }
  }
  for (const e of entries) {
    if (posted.has(e.transfer_id)) continue;
    violations.push({
      kind: 'phantom_entry',
      transferId: e.transfer_id,
      purpose: 'position',
      debit: '',
      credit: '',
      from: e.payer_participant_id,
      to: e.payee_participant_id,
      amountMinor: BigInt(e.amount_minor),
      currency: e.currency,
      detail: 'settlement entry with no committed position leg in the ledger',
    });
  }
  return violations;
}

/** One line per violation, for a failing assertion's message. */
export function describeViolations(vs: readonly PositionViolation[]): string {
  return vs.map((v) => `${v.kind} ${v.transferId} [${v.purpose}] ${v.debit}(${v.from}) → ${v.credit}(${v.to}) ${v.amountMinor} ${v.currency}: ${v.detail}`).join('\n');
}
