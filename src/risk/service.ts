import type { Actor, AuditService } from '../audit/index.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Flusher, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';

/**
 * Risk checks shared by every channel (P2P today, card payments next). Rules are data: a hub default row
 * (participant '*') per rule, overridden per participant. Each triggered rule adds a score and a reason and asks for
 * an action; the decision is the most severe action asked for. Anything but `approve` raises an alert that the
 * participant and the operator can list and resolve.
 */
export type RiskErrorCode = 'risk_alert_not_found' | 'risk_rule_invalid';
export type RiskDecision = 'approve' | 'step_up' | 'decline';
export type RiskAction = Exclude<RiskDecision, 'approve'>;

export interface RiskInput {
  readonly channel: string;
  readonly participantId: string;
  readonly customerId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  /** Amount in the hub's reference unit (EUR cents at mid rate), for thresholds across currencies. */
  readonly refEurCents: bigint;
  readonly counterparty: { readonly id: string; readonly flagged?: boolean };
  readonly country: string;
  readonly device?: string;
}

export interface RiskReason {
  readonly rule: string;
  readonly score: number;
  readonly action: RiskAction;
  readonly message: string;
}

export interface RiskAssessment {
  readonly decision: RiskDecision;
  readonly score: number;
  readonly reasons: readonly RiskReason[];
}

export type RuleName = 'velocity' | 'amount_vs_history' | 'new_counterparty' | 'flagged_counterparty' | 'large_amount';
export const RULE_NAMES: readonly RuleName[] = ['velocity', 'amount_vs_history', 'new_counterparty', 'flagged_counterparty', 'large_amount'];

export interface RuleParams {
  readonly action: RiskAction;
  readonly score: number;
  /** velocity: window and count; amount_vs_history: multiple of the average and history needed; thresholds in EUR cents. */
  readonly windowS?: number;
  readonly maxCount?: number;
  readonly multiple?: number;
  readonly minHistory?: number;
  readonly minRefEurCents?: number;
}

export const DEFAULT_RULES: Readonly<Record<RuleName, RuleParams>> = {
  velocity: { action: 'step_up', score: 40, windowS: 600, maxCount: 20 },
  amount_vs_history: { action: 'step_up', score: 30, multiple: 10, minHistory: 3, minRefEurCents: 5_000 },
  new_counterparty: { action: 'step_up', score: 20, minRefEurCents: 100_000 },
  flagged_counterparty: { action: 'decline', score: 90 },
  large_amount: { action: 'decline', score: 80, minRefEurCents: 2_000_000 },
};

export interface RiskAlert {
  readonly id: string;
  readonly participantId: string;
  readonly customerId: string;
  readonly channel: string;
  readonly decision: RiskAction;
  readonly score: number;
  readonly reasons: readonly RiskReason[];
  readonly context: Record<string, unknown>;
  readonly status: 'open' | 'resolved';
  readonly resolution: string | null;
  readonly createdAt: Date;
  readonly resolvedAt: Date | null;
}

/** What the rules read about the customer's history (and the rules in force), loaded before deciding. */
export interface RiskHistory {
  readonly rules: Record<RuleName, RuleParams & { enabled: boolean }>;
  readonly recent: number;
  readonly count: number;
  readonly avgRefEurCents: number;
  readonly knownCounterparty: boolean;
}

/**
 * The history the rules read — the customer's last 500 observations: how many inside the velocity window, how many in
 * all, their average, and whether the counterparty is among them — as one SELECT over SQL expressions (parameters or
 * columns of the caller's query), so that a caller can fold it into its own statement (`cross join lateral (…) h`).
 */
export function riskHistorySql(e: { participantId: string; customerId: string; counterparty: string; since: string }): string {
  return `select count(*) filter (where at > ${e.since}) as recent, count(*) as n, avg(ref_eur_cents)::text as avg,
                coalesce(bool_or(counterparty = ${e.counterparty}), false) as known
           from (select at, ref_eur_cents, counterparty from risk_observations
                  where participant_id = ${e.participantId} and customer_id = ${e.customerId} order by at desc limit 500) h`;
}

/** The row riskHistorySql answers (columns recent, n, avg, known), as a RiskHistory under the given rules. */
export function riskHistoryOf(rules: RiskRules, row: { recent: bigint | null; n: bigint | null; avg: string | null; known: boolean | null } | undefined): RiskHistory {
  return {
    rules,
    recent: Number(row?.recent ?? 0n),
    count: Number(row?.n ?? 0n),
    avgRefEurCents: row?.avg === null || row?.avg === undefined ? 0 : Number(row.avg),
    knownCounterparty: row?.known === true,
  };
}

export type RiskRules = Record<RuleName, RuleParams & { enabled: boolean }>;

export interface RiskService {
  evaluate(q: Queryable, input: RiskInput): Promise<RiskAssessment>;
  /**
   * evaluate() in two halves, so that a caller can send the history read alongside its own reads (one round trip):
   * load() reads the history (one statement; the rules come from a short cache, read through `q` on a miss), decide()
   * applies the rules to it. evaluate(q, input) = decide(input, await load(q, input)).
   */
  load(q: Queryable, input: Pick<RiskInput, 'participantId' | 'customerId' | 'counterparty'>): Promise<RiskHistory>;
  decide(input: RiskInput, history: RiskHistory): RiskAssessment;
  /** The rules in force for a participant (short cache; a miss reads through `q`) and where its velocity window starts now. */
  rulesVia(q: Queryable, participantId: string): Promise<{ rules: RiskRules; windowStart: Date }>;
  /** Records an approved transaction so that later checks see it (velocity, history, known counterparties). */
  observe(q: Queryable, input: RiskInput): Promise<void>;
  raiseAlert(tx: Queryable, input: RiskInput, assessment: RiskAssessment, context?: Record<string, unknown>): Promise<RiskAlert>;
  listAlerts(filter: { participantId?: string; status?: 'open' | 'resolved'; limit: number }): Promise<RiskAlert[]>;
  resolveAlert(tx: Queryable, actor: Actor, id: string, participantId: string | undefined, resolution: string): Promise<Result<RiskAlert, DomainError<RiskErrorCode>>>;
  rules(participantId: string): Promise<Record<RuleName, RuleParams & { enabled: boolean }>>;
  setRule(tx: Queryable, actor: Actor, participantId: string, rule: RuleName, params: RuleParams, enabled: boolean): Promise<Result<void, DomainError<RiskErrorCode>>>;
}

const SEVERITY: Record<RiskDecision, number> = { approve: 0, step_up: 1, decline: 2 };

/** One staged observation: channel, participant, customer, counterparty, EUR cents, at (ISO). */
type StagedObservation = readonly [string, string, string, string, string, string];

const observationFlusher: Flusher<StagedObservation> = {
  flush: (tx, rows) =>
    tx.query(
      `insert into risk_observations (channel, participant_id, customer_id, counterparty, ref_eur_cents, at)
       select channel, participant_id, customer_id, counterparty, ref_eur_cents::int8, at::timestamptz
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) as r(channel, participant_id, customer_id, counterparty, ref_eur_cents, at)`,
      [0, 1, 2, 3, 4, 5].map((i) => rows.map((r) => r[i])),
    ),
};

interface AlertRow {
  id: string;
  participant_id: string;
  customer_id: string;
  channel: string;
  decision: RiskAction;
  score: number;
  reasons: RiskReason[];
  context: Record<string, unknown>;
  status: 'open' | 'resolved';
  resolution: string | null;
  created_at: Date;
  resolved_at: Date | null;
}
const toAlert = (r: AlertRow): RiskAlert => ({
  id: r.id,
  participantId: r.participant_id,
  customerId: r.customer_id,
  channel: r.channel,
  decision: r.decision,
  score: r.score,
  reasons: r.reasons,
  context: r.context,
  status: r.status,
  resolution: r.resolution,
  createdAt: r.created_at,
  resolvedAt: r.resolved_at,
});

function validParams(rule: RuleName, p: RuleParams): boolean {
  const pos = (n: number | undefined) => n === undefined || (Number.isInteger(n) && n >= 0 && n <= 1e12);
  if (!['step_up', 'decline'].includes(p.action) || !Number.isInteger(p.score) || p.score < 0 || p.score > 100) return false;
  if (![p.windowS, p.maxCount, p.multiple, p.minHistory, p.minRefEurCents].every(pos)) return false;
  if (rule === 'velocity') return (p.windowS ?? 0) > 0 && (p.maxCount ?? 0) > 0;
  if (rule === 'amount_vs_history') return (p.multiple ?? 0) > 0;
  return true;
}

export function createRiskService(deps: { db: Db; clock: Clock; audit: AuditService; events: EventOutbox }): RiskService {
  const { db, clock, audit, events } = deps;
  // Rules are data (hub defaults, per-participant overrides), read through a short cache; a cache miss inside a
  // transaction reads through it (a second pool connection taken from inside a transaction could wait forever).
  const store = createRuleStore(
    { db, clock, audit },
    { table: 'risk_rules', names: RULE_NAMES, defaults: DEFAULT_RULES, valid: validParams, invalidCode: 'risk_rule_invalid', auditAction: 'risk.rule_set', auditObjectType: 'risk_rule' },
  );
  const rulesVia = store.rulesVia;
  const rules: RiskService['rules'] = (participantId) => rulesVia(db, participantId);

  const load: RiskService['load'] = async (q, input) => {
    const rules = await rulesVia(q, input.participantId);
    const [row] = await q.query<{ recent: bigint; n: bigint; avg: string | null; known: boolean }>(riskHistorySql({ participantId: '$1', customerId: '$2', since: '$3', counterparty: '$4' }), [
      input.participantId,
      input.customerId,
      new Date(clock.nowMs() - (rules.velocity.windowS ?? 600) * 1000),
      input.counterparty.id,
    ]);
    return riskHistoryOf(rules, row);
  };

  const decide: RiskService['decide'] = (input, h) => {
    const r = h.rules;
    const windowS = r.velocity.windowS ?? 600;
    const reasons: RiskReason[] = [];
    const hit = (rule: RuleName, message: string) => {
      const p = r[rule];
      if (p.enabled) reasons.push({ rule, score: p.score, action: p.action, message });
    };
    const recent = h.recent;
    if (recent >= (r.velocity.maxCount ?? 20)) hit('velocity', `${recent} payments in the last ${windowS} s`);
    const n = h.count;
    const avg = h.avgRefEurCents;
    const hist = r.amount_vs_history;
    if (n >= (hist.minHistory ?? 3) && Number(input.refEurCents) >= (hist.minRefEurCents ?? 0) && Number(input.refEurCents) > avg * (hist.multiple ?? 10)) {
      hit('amount_vs_history', `amount is more than ${hist.multiple ?? 10}× this customer's average`);
    }
    if (!h.knownCounterparty && Number(input.refEurCents) >= (r.new_counterparty.minRefEurCents ?? 0)) hit('new_counterparty', 'first payment to this counterparty');
    if (input.counterparty.flagged === true) hit('flagged_counterparty', 'the counterparty was flagged for fraud by a participant');
    if (Number(input.refEurCents) >= (r.large_amount.minRefEurCents ?? Number.MAX_SAFE_INTEGER)) hit('large_amount', 'amount above the large-amount threshold');
    const decision = reasons.reduce<RiskDecision>((d, x) => (SEVERITY[x.action] > SEVERITY[d] ? x.action : d), 'approve');
    return { decision, score: Math.min(100, reasons.reduce((s, x) => s + x.score, 0)), reasons };
  };

  return {
    rules,
    load,
    decide,
    async rulesVia(q, participantId) {
      const r = await rulesVia(q, participantId);
      return { rules: r, windowStart: new Date(clock.nowMs() - (r.velocity.windowS ?? 600) * 1000) };
    },
    async evaluate(q, input) {
      return decide(input, await load(q, input));
    },
    async observe(q, input) {
      const row: StagedObservation = [input.channel, input.participantId, input.customerId, input.counterparty.id, input.refEurCents.toString(), clock.now().toISOString()];
      // Inside a transaction it goes out with the COMMIT (one statement for all of the transaction's observations): the
      // checks that read observations run before the payment they observe is recorded.
      if (q.hooks !== undefined) q.hooks.stage(observationFlusher, row);
      else await observationFlusher.flush(q, [row]);
    },
    async raiseAlert(tx, input, assessment, context = {}) {
      if (assessment.decision === 'approve') throw new Error('raiseAlert on an approved assessment');
      const id = newId('ral');
      const now = clock.now();
      const ctx = { ...context, channel: input.channel, amountMinor: input.amountMinor.toString(), currency: input.currency, counterparty: input.counterparty.id, country: input.country, ...(input.device !== undefined ? { device: input.device } : {}) };
      await tx.query(
        `insert into risk_alerts (id, participant_id, customer_id, channel, decision, score, reasons, context, status, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9)`,
        [id, input.participantId, input.customerId, input.channel, assessment.decision, assessment.score, [...assessment.reasons], ctx, now],
      );
      await audit.record(tx, { actor: { type: 'system' }, action: 'risk.alert_raised', objectType: 'risk_alert', objectId: id, details: { decision: assessment.decision, score: assessment.score } });
      await events.emit(tx, { participantId: input.participantId, type: 'risk.alert_raised', data: { alertId: id, customerId: input.customerId, decision: assessment.decision, score: assessment.score, reasons: assessment.reasons.map((x) => x.rule) } });
      return { id, participantId: input.participantId, customerId: input.customerId, channel: input.channel, decision: assessment.decision, score: assessment.score, reasons: assessment.reasons, context: ctx, status: 'open', resolution: null, createdAt: now, resolvedAt: null };
    },
    async listAlerts(filter) {
      const rows = await db.query<AlertRow>(
        `select * from risk_alerts where ($1::text is null or participant_id = $1) and ($2::text is null or status = $2) order by created_at desc, id limit $3`,
        [filter.participantId ?? null, filter.status ?? null, filter.limit],
      );
      return rows.map(toAlert);
    },
    async resolveAlert(tx, actor, id, participantId, resolution) {
      const rows = await tx.query<AlertRow>(
        `update risk_alerts set status = 'resolved', resolution = $3, resolved_at = coalesce(resolved_at, $4) where id = $1 and ($2::text is null or participant_id = $2) returning *`,
        [id, participantId ?? null, resolution, clock.now()],
      );
      const row = rows[0];
      if (row === undefined) return err('risk_alert_not_found', 'no such alert', { alertId: id });
      await audit.record(tx, { actor, action: 'risk.alert_resolved', objectType: 'risk_alert', objectId: id, details: { resolution } });
      return ok(toAlert(row));
    },
    setRule: (tx, actor, participantId, rule, params, enabled) => store.setRule(tx, actor, participantId, rule, params, enabled),
  };
}

/**
 * A set of risk rules stored as data — a hub default row (participant '*') per rule, overridden per participant — read
 * through a short cache. The shared rules above keep theirs in `risk_rules`; other modules register their own rule
 * kinds (names, defaults, validation, error code and audit names) over their own table with the same columns
 * (participant_id, rule, params jsonb, enabled, updated_at; primary key (participant_id, rule)).
 */
export interface RuleStoreSpec<N extends string, P extends { readonly action: RiskAction; readonly score: number }, C extends string> {
  /** A table name from code (never from input): it is interpolated into the SQL. */
  readonly table: string;
  readonly names: readonly N[];
  readonly defaults: Readonly<Record<N, P>>;
  valid(rule: N, params: P): boolean;
  /** The error setRule answers for an unknown rule or out-of-range parameters. */
  readonly invalidCode: C;
  readonly auditAction: string;
  readonly auditObjectType: string;
}

export interface RuleStore<N extends string, P, C extends string> {
  /** The rules in force for a participant (hub defaults, then its overrides); a cache miss reads through `q`. */
  rulesVia(q: Queryable, participantId: string): Promise<Record<N, P & { enabled: boolean }>>;
  rules(participantId: string): Promise<Record<N, P & { enabled: boolean }>>;
  setRule(tx: Queryable, actor: Actor, participantId: string, rule: N, params: P, enabled: boolean): Promise<Result<void, DomainError<C>>>;
}

export function createRuleStore<N extends string, P extends { readonly action: RiskAction; readonly score: number }, C extends string>(
  deps: { db: Db; clock: Clock; audit: AuditService },
  spec: RuleStoreSpec<N, P, C>,
): RuleStore<N, P, C> {
  const { db, clock, audit } = deps;
  const cache = new Map<string, { at: number; rules: Record<N, P & { enabled: boolean }> }>();
  const CACHE_MS = 5_000;
  const rulesVia = async (q: Queryable, participantId: string): Promise<Record<N, P & { enabled: boolean }>> => {
    const hit = cache.get(participantId);
    // A clock that went back (fake clocks in tests) misses.
    if (hit !== undefined && clock.nowMs() - hit.at < CACHE_MS && clock.nowMs() >= hit.at) return hit.rules;
    const rows = await q.query<{ rule: N; params: P; enabled: boolean }>(`select rule, params, enabled from ${spec.table} where participant_id in ('*', $1) order by (participant_id = '*') desc`, [participantId]);
    const out = Object.fromEntries(spec.names.map((r) => [r, { ...spec.defaults[r], enabled: true }])) as Record<N, P & { enabled: boolean }>;
    for (const row of rows) if (spec.names.includes(row.rule)) out[row.rule] = { ...spec.defaults[row.rule], ...row.params, enabled: row.enabled };
    if (cache.size > 10_000) cache.clear();
    cache.set(participantId, { at: clock.nowMs(), rules: out });
    return out;
  };
  return {
    rulesVia,
    rules: (participantId) => rulesVia(db, participantId),
    async setRule(tx, actor, participantId, rule, params, enabled) {
      if (!spec.names.includes(rule) || !spec.valid(rule, params)) return err(spec.invalidCode, 'rule parameters are out of range', { rule });
      await tx.query(
        `insert into ${spec.table} (participant_id, rule, params, enabled, updated_at) values ($1, $2, $3, $4, $5)
         on conflict (participant_id, rule) do update set params = excluded.params, enabled = excluded.enabled, updated_at = excluded.updated_at`,
        [participantId, rule, params, enabled, clock.now()],
      );
      cache.clear();
      await audit.record(tx, { actor, action: spec.auditAction, objectType: spec.auditObjectType, objectId: `${participantId}:${rule}`, details: { params, enabled } });
      return ok(undefined);
    },
  };
}
