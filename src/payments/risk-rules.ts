import type { AuditService } from '../audit/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db } from '../platform/db.ts';
import { createRuleStore, type RiskAction, type RiskReason, type RuleStore } from '../risk/index.ts';

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

/** Stored like the shared rules of src/risk (its rule store), in their own table, with their own error and audit names. */
export type PaymentRuleStore = RuleStore<PaymentRuleName, PaymentRuleParams, 'payment_risk_rule_invalid'>;

export function createPaymentRuleStore(deps: { db: Db; clock: Clock; audit: AuditService }): PaymentRuleStore {
  return createRuleStore(deps, {
    table: 'pay_risk_rules',
    names: PAYMENT_RULE_NAMES,
    defaults: DEFAULT_PAYMENT_RULES,
    valid: validParams,
    invalidCode: 'payment_risk_rule_invalid',
    auditAction: 'payments.risk_rule_set',
    auditObjectType: 'payment_risk_rule',
  });
}
