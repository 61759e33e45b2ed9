import type { Actor, AuditService } from '../audit/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { formatMoney, isCurrency } from '../platform/money.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { LiquidityErrorCode, LiquidityService } from './service.ts';

/**
 * Cash-out and top-up of liquidity, asked by the participant: a request to move money between its settlement bank
 * account (the ledger's mirror `sbk_…`) and its position (`fund_…`). At or below the currency's approval threshold the
 * operator set, it completes at once; above it (or with no threshold set) it waits for the operator, who approves
 * (the money moves then, checked then: a cash-out never takes more than the prefunded liquidity left) or rejects it.
 * The movement is the same recorded ledger transfer as the operator's own funds in / out, its id derived from the
 * request's, so an approval retried moves nothing twice.
 */
export type LiquidityDirection = 'top_up' | 'cash_out';
export type LiquidityRequestStatus = 'pending_approval' | 'completed' | 'rejected';

export interface LiquidityRequest {
  readonly id: string;
  readonly participantId: string;
  readonly direction: LiquidityDirection;
  readonly currency: string;
  readonly amountMinor: bigint;
  readonly reference: string | null;
  readonly status: LiquidityRequestStatus;
  readonly reason: string | null;
  readonly transferId: string | null;
  readonly createdAt: Date;
  readonly decidedAt: Date | null;
}

type RErr = DomainError<LiquidityErrorCode | 'participant_not_found' | 'ledger_rejected'>;

export interface LiquidityRequests {
  request(tx: Queryable, actor: Actor, input: { participantId: string; direction: LiquidityDirection; currency: string; amountMinor: bigint; reference?: string | undefined }): Promise<Result<LiquidityRequest, RErr>>;
  approve(tx: Queryable, actor: Actor, id: string): Promise<Result<LiquidityRequest, RErr>>;
  reject(tx: Queryable, actor: Actor, id: string, reason: string): Promise<Result<LiquidityRequest, RErr>>;
  get(q: Queryable, id: string, participantId?: string): Promise<LiquidityRequest | undefined>;
  list(q: Queryable, filter: { participantId?: string | undefined; status?: LiquidityRequestStatus | undefined; limit: number }): Promise<LiquidityRequest[]>;
  setThreshold(tx: Queryable, actor: Actor, currency: string, thresholdMinor: bigint): Promise<Result<{ currency: string; thresholdMinor: bigint }, RErr>>;
  thresholds(q: Queryable): Promise<{ currency: string; thresholdMinor: bigint }[]>;
}

interface Row {
  id: string;
  participant_id: string;
  direction: LiquidityDirection;
  currency: string;
  amount_minor: bigint;
  reference: string | null;
  status: LiquidityRequestStatus;
  reason: string | null;
  transfer_id: string | null;
  created_at: Date;
  decided_at: Date | null;
}
const toRequest = (r: Row): LiquidityRequest => ({
  id: r.id,
  participantId: r.participant_id,
  direction: r.direction,
  currency: r.currency,
  amountMinor: r.amount_minor,
  reference: r.reference,
  status: r.status,
  reason: r.reason,
  transferId: r.transfer_id,
  createdAt: r.created_at,
  decidedAt: r.decided_at,
});

export function createLiquidityRequests(deps: { clock: Clock; audit: AuditService; events: EventOutbox; liquidity: LiquidityService }): LiquidityRequests {
  const { clock, audit, events, liquidity } = deps;

  /** Moves the money of a request (funds in or out), under the transfer id derived from the request's. */
  const execute = async (tx: Queryable, actor: Actor, r: { id: string; participantId: string; direction: LiquidityDirection; currency: string; amountMinor: bigint; reference: string | null }) => {
    const input = { participantId: r.participantId, currency: r.currency, amountMinor: r.amountMinor, transferId: `${r.id}:move`, reference: r.reference ?? r.id };
    return r.direction === 'top_up' ? liquidity.fundsIn(tx, actor, input) : liquidity.fundsOut(tx, actor, input);
  };

  const notify = async (tx: Queryable, type: 'liquidity.request_created' | 'liquidity.request_approved' | 'liquidity.request_rejected', r: LiquidityRequest) => {
    await events.emit(tx, { participantId: r.participantId, type, data: wireLiquidityRequest(r) });
  };

  return {
    async request(tx, actor, input) {
      if (input.amountMinor <= 0n) return err('liquidity_invalid', 'the amount must be positive');
      if (!isCurrency(input.currency)) return err('liquidity_invalid', 'the currency must be an ISO 4217 code');
      const [t] = await tx.query<{ threshold_minor: bigint }>('select threshold_minor from liquidity_approval_thresholds where currency = $1', [input.currency]);
      const now = clock.now();
      const id = newId('lqr');
      const base = { id, participantId: input.participantId, direction: input.direction, currency: input.currency, amountMinor: input.amountMinor, reference: input.reference ?? null };
      const auto = t !== undefined && input.amountMinor <= t.threshold_minor;
      if (auto) {
        // Within the threshold: the money moves now (a cash-out past the liquidity left is refused and nothing is kept).
        const moved = await execute(tx, actor, base);
        if (!moved.ok) return moved;
      }
      const r: LiquidityRequest = { ...base, status: auto ? 'completed' : 'pending_approval', reason: null, transferId: auto ? `${id}:move` : null, createdAt: now, decidedAt: auto ? now : null };
      await tx.query(
        `insert into liquidity_requests (id, participant_id, direction, currency, amount_minor, reference, status, reason, transfer_id, created_at, decided_at) values ($1, $2, $3, $4, $5, $6, $7, null, $8, $9, $10)`,
        [r.id, r.participantId, r.direction, r.currency, r.amountMinor, r.reference, r.status, r.transferId, now, r.decidedAt],
      );
      await audit.record(tx, { actor, action: 'liquidity.request_created', objectType: 'liquidity_request', objectId: id, details: { direction: r.direction, amount: formatMoney(r.amountMinor, r.currency), status: r.status } });
      await notify(tx, 'liquidity.request_created', r);
      return ok(r);
    },
    async approve(tx, actor, id) {
      const [row] = await tx.query<Row>('select * from liquidity_requests where id = $1 for update', [id]);
      if (row === undefined) return err('liquidity_request_not_found', 'no such liquidity request');
      if (row.status !== 'pending_approval') return err('liquidity_request_decided', `the request is ${row.status} already`, { status: row.status });
      const moved = await execute(tx, actor, { id: row.id, participantId: row.participant_id, direction: row.direction, currency: row.currency, amountMinor: row.amount_minor, reference: row.reference });
      if (!moved.ok) return moved;
      const now = clock.now();
      await tx.query(`update liquidity_requests set status = 'completed', transfer_id = $2, decided_at = $3 where id = $1`, [id, `${id}:move`, now]);
      const r: LiquidityRequest = { ...toRequest(row), status: 'completed', transferId: `${id}:move`, decidedAt: now };
      await audit.record(tx, { actor, action: 'liquidity.request_approved', objectType: 'liquidity_request', objectId: id });
      await notify(tx, 'liquidity.request_approved', r);
      return ok(r);
    },
    async reject(tx, actor, id, reason) {
      const [row] = await tx.query<Row>('select * from liquidity_requests where id = $1 for update', [id]);
      if (row === undefined) return err('liquidity_request_not_found', 'no such liquidity request');
      if (row.status !== 'pending_approval') return err('liquidity_request_decided', `the request is ${row.status} already`, { status: row.status });
      const now = clock.now();
      await tx.query(`update liquidity_requests set status = 'rejected', reason = $2, decided_at = $3 where id = $1`, [id, reason, now]);
      const r: LiquidityRequest = { ...toRequest(row), status: 'rejected', reason, decidedAt: now };
      await audit.record(tx, { actor, action: 'liquidity.request_rejected', objectType: 'liquidity_request', objectId: id, details: { reason } });
      await notify(tx, 'liquidity.request_rejected', r);
      return ok(r);
    },
    async get(q, id, participantId) {
      const [row] = await q.query<Row>('select * from liquidity_requests where id = $1 and ($2::text is null or participant_id = $2)', [id, participantId ?? null]);
      return row === undefined ? undefined : toRequest(row);
    },
    async list(q, filter) {
      const rows = await q.query<Row>(
        `select * from liquidity_requests where ($1::text is null or participant_id = $1) and ($2::text is null or status = $2) order by created_at desc, id desc limit $3`,
        [filter.participantId ?? null, filter.status ?? null, filter.limit],
      );
      return rows.map(toRequest);
    },
    async setThreshold(tx, actor, currency, thresholdMinor) {
      if (thresholdMinor < 0n) return err('liquidity_invalid', 'the threshold cannot be negative');
      const now = clock.now();
      await tx.query(
        `insert into liquidity_approval_thresholds (currency, threshold_minor, updated_at) values ($1, $2, $3)
         on conflict (currency) do update set threshold_minor = excluded.threshold_minor, updated_at = excluded.updated_at`,
        [currency, thresholdMinor, now],
      );
      await audit.record(tx, { actor, action: 'liquidity.threshold_set', objectType: 'liquidity_threshold', objectId: currency, details: { threshold: formatMoney(thresholdMinor, currency) } });
      return ok({ currency, thresholdMinor });
    },
    async thresholds(q) {
      const rows = await q.query<{ currency: string; threshold_minor: bigint }>('select currency, threshold_minor from liquidity_approval_thresholds order by currency');
      return rows.map((r) => ({ currency: r.currency, thresholdMinor: r.threshold_minor }));
    },
  };
}

export function wireLiquidityRequest(r: LiquidityRequest) {
  return {
    id: r.id,
    participantId: r.participantId,
    direction: r.direction,
    amount: formatMoney(r.amountMinor, r.currency),
    reference: r.reference,
    status: r.status,
    reason: r.reason,
    transferId: r.transferId,
    createdAt: r.createdAt.toISOString(),
    decidedAt: r.decidedAt === null ? null : r.decidedAt.toISOString(),
  };
}
