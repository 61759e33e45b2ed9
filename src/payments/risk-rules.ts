import type { Actor, AuditService } from '../audit/service.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { RiskAction, RiskReason } from '../risk/service.ts';
import type { PErr } from './errors.ts';

/**
 * Card-payment risk rules, as data: hub defaults (participant '*') overridden per issuer. They complement the shared
 * rules of src/risk (customer velocity, amount vs history, new counterparty, large amount) with what only a card
 * payment knows: the token, the card, the device, the terminal's country and the merchant's category.
 */
export type PaymentRuleName = 'token_velocity' | 'card_velocity' | 'device_velocity' | 'new_device' | 'country_mismatch' | 'mcc';
export const PAYMENT_RULE_NAMES: readonly PaymentRuleName[] = ['token_velocity', 'card_velocity', 'device_velocity', 'new_device', 'country_mismatch', 'mcc'];

export interface PaymentRuleParams {
  readonly action: RiskAction;
  readonly score: number;
  /** Velocity rules: at most maxCount authorizations in windowS seconds (the new one included). */
  readonly windowS?: number;
  readonly maxCount?: number;
  /** new_device: only from this amount (minor units of the payment's currency). */
  readonly minAmountMinor?: number;
  /** mcc: the categories that trigger. */
  readonly mccs?: readonly string[];
}

export type PaymentRules = Record<PaymentRuleName, PaymentRuleParams & { enabled: boolean }>;

export const DEFAULT_PAYMENT_RULES: Readonly<Record<PaymentRuleName, PaymentRuleParams>> = {
  token_velocity: { action: 'decline', score: 50, windowS: 600, maxCount: 30 },
  card_velocity: { action: 'decline', score: 50, windowS: 600, maxCount: 60 },
  device_velocity: { action: 'step_up', score: 40, windowS: 600, maxCount: 60 },
  new_device: { action: 'step_up', score: 30, minAmountMinor: 500_000 },
  country_mismatch: { action: 'decline', score: 60 },
  // Online gambling, quasi-cash, money orders.
  mcc: { action: 'decline', score: 70, mccs: ['7995', '6051', '4829'] },
};

export interface PaymentRiskFacts {
  readonly amountMinor: bigint;
  readonly mcc: string;
  readonly merchantCountry: string;
  readonly deviceCountry?: string | undefined;
  readonly deviceId?: string | undefined;
  readonly tokenRecent: number;
  readonly cardRecent: number;
  readonly deviceRecent: number;
  readonly cardHistory: number;
  readonly deviceKnown: boolean;
}

/** Pure: the reasons these facts trigger under these rules. */
export function evaluatePaymentRules(rules: PaymentRules, f: PaymentRiskFacts): RiskReason[] {
  const reasons: RiskReason[] = [];
  const hit = (rule: PaymentRuleName, message: string) => {
    const p = rules[rule];
    if (p.enabled) reasons.push({ rule, score: p.score, action: p.action, message });
  };
  const over = (rule: PaymentRuleName, recent: number) => recent + 1 > (rules[rule].maxCount ?? Number.MAX_SAFE_INTEGER);
  if (over('token_velocity', f.tokenRecent)) hit('token_velocity', `${f.tokenRecent + 1} payments with this token in ${rules.token_velocity.windowS ?? 0} s`);
  if (over('card_velocity', f.cardRecent)) hit('card_velocity', `${f.cardRecent + 1} payments with this card in ${rules.card_velocity.windowS ?? 0} s`);
  if (f.deviceId !== undefined && over('device_velocity', f.deviceRecent)) hit('device_velocity', `${f.deviceRecent + 1} payments from this device in ${rules.device_velocity.windowS ?? 0} s`);
  if (f.deviceId !== undefined && f.cardHistory > 0 && !f.deviceKnown && f.amountMinor >= BigInt(rules.new_device.minAmountMinor ?? 0)) hit('new_device', 'first payment with this card from this device');
  if (f.deviceCountry !== undefined && f.deviceCountry !== f.merchantCountry) hit('country_mismatch', `device in ${f.deviceCountry}, merchant in ${f.merchantCountry}`);
  if ((rules.mcc.mccs ?? []).includes(f.mcc)) hit('mcc', `merchant category ${f.mcc} is high-risk`);
  return reasons;
}

function validParams(rule: PaymentRuleName, p: PaymentRuleParams): boolean {
  const pos = (n: number | undefined) => n === undefined || (Number.isInteger(n) && n >= 0 && n <= 1e15);
  if (!['step_up', 'decline'].includes(p.action) || !Number.isInteger(p.score) || p.score < 0 || p.score > 100) return false;
  if (![p.windowS, p.maxCount, p.minAmountMinor].every(pos)) return false;
  if (rule.endsWith('_velocity')) return (p.windowS ?? 0) > 0 && (p.maxCount ?? 0) > 0;
  if (rule === 'mcc') return p.mccs !== undefined && p.mccs.length <= 100 && p.mccs.every((m) => /^[0-9]{4}$/.test(m));
  return true;
}

export interface PaymentRuleStore {
  rules(participantId: string): Promise<PaymentRules>;
  setRule(tx: Queryable, actor: Actor, participantId: string, rule: PaymentRuleName, params: PaymentRuleParams, enabled: boolean): Promise<Result<void, PErr>>;
}

export function createPaymentRuleStore(deps: { db: Db; clock: Clock; audit: AuditService }): PaymentRuleStore {
  const { db, clock, audit } = deps;
  const cache = new Map<string, { at: number; rules: PaymentRules }>();
  const CACHE_MS = 5_000;
  return {
    async rules(participantId) {
      const hit = cache.get(participantId);
      if (hit !== undefined && clock.nowMs() - hit.at < CACHE_MS && clock.nowMs() >= hit.at) return hit.rules;
      const rows = await db.query<{ rule: PaymentRuleName; params: PaymentRuleParams; enabled: boolean }>(
        `select rule, params, enabled from pay_risk_rules where participant_id in ('*', $1) order by (participant_id = '*') desc`,
        [participantId],
      );
      const out = Object.fromEntries(PAYMENT_RULE_NAMES.map((r) => [r, { ...DEFAULT_PAYMENT_RULES[r], enabled: true }])) as PaymentRules;
      for (const row of rows) if (PAYMENT_RULE_NAMES.includes(row.rule)) out[row.rule] = { ...DEFAULT_PAYMENT_RULES[row.rule], ...row.params, enabled: row.enabled };
      if (cache.size > 10_000) cache.clear();
      cache.set(participantId, { at: clock.nowMs(), rules: out });
      return out;
    },
    async setRule(tx, actor, participantId, rule, params, enabled) {
      if (!PAYMENT_RULE_NAMES.includes(rule) || !validParams(rule, params)) return err('payment_risk_rule_invalid', 'rule parameters are out of range', { rule });
      await tx.query(
        `insert into pay_risk_rules (participant_id, rule, params, enabled, updated_at) values ($1, $2, $3, $4, $5)
         on conflict (participant_id, rule) do update set params = excluded.params, enabled = excluded.enabled, updated_at = excluded.updated_at`,
        [participantId, rule, params, enabled, clock.now()],
      );
      cache.clear();
      await audit.record(tx, { actor, action: 'payments.risk_rule_set', objectType: 'payment_risk_rule', objectId: `${participantId}:${rule}`, details: { params, enabled } });
      return ok(undefined);
    },
  };
}
