import type { AccountService } from '../accounts/index.ts';
import type { Actor, AuditService } from '../audit/index.ts';
import type { CardService } from '../cards/index.ts';
import type { Ledger } from '../ledger/index.ts';
import type { CaptureObserver } from '../payments/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { currencyMinorUnit, formatMoney } from '../platform/money.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { CouponService, WalletCoupon } from './coupons.ts';
import type { VErr } from './errors.ts';

/**
 * Issuers' rewards (tables reward_rules, reward_entries): rules per card product — points per 1.00 spent, or
 * cashback in basis points, for every merchant category or one MCC, optionally capped per card and calendar month
 * (UTC) — earned in the transaction that captures a card payment and reversed, in proportion, in the one that refunds
 * it. A card's balance is the sum of its entries. Redemption: cashback into the card's funding account, a ledger
 * transfer from the issuer's position (refused with liquidity_exceeded past its cover), or points for a merchant's
 * coupon priced in points (kept in the customer's wallet).
 */
export interface RewardRule {
  readonly id: string;
  readonly issuerParticipantId: string;
  readonly cardProductId: string;
  readonly kind: 'points' | 'cashback';
  readonly mcc: string | null;
  readonly pointsPerUnit: number | null;
  readonly cashbackBps: number | null;
  readonly monthlyCap: bigint | null;
  readonly active: boolean;
  readonly createdAt: Date;
}

export interface RewardBalance {
  readonly cardId: string;
  readonly points: bigint;
  readonly cashback: { readonly currency: string; readonly minor: bigint }[];
  readonly entries: RewardEntry[];
}

export interface RewardEntry {
  readonly id: string;
  readonly reason: 'earned' | 'reversed' | 'redeemed';
  readonly kind: 'points' | 'cashback';
  readonly amount: bigint;
  readonly currency: string | null;
  readonly authorizationId: string | null;
  readonly month: string;
  readonly createdAt: Date;
}

export type Redemption =
  | { readonly kind: 'cashback'; readonly amountMinor: bigint; readonly currency: string }
  | { readonly kind: 'coupon'; readonly couponId: string; readonly participantId: string; readonly customerId: string };

export interface RewardService extends CaptureObserver {
  createRule(tx: Queryable, actor: Actor, issuerId: string, productId: string, input: { kind: 'points' | 'cashback'; mcc: string | null; pointsPerUnit: number | null; cashbackBps: number | null; monthlyCap: bigint | null }): Promise<Result<RewardRule, VErr>>;
  listRules(issuerId: string, productId: string): Promise<RewardRule[]>;
  deactivateRule(tx: Queryable, actor: Actor, issuerId: string, ruleId: string): Promise<Result<RewardRule, VErr>>;
  balance(cardId: string, q?: Queryable): Promise<RewardBalance>;
  redeem(tx: Queryable, actor: Actor, cardId: string, redemption: Redemption): Promise<Result<{ entryId: string; balance: RewardBalance; walletCoupon: WalletCoupon | null; transferId: string | null }, VErr>>;
}

interface RuleRow {
  id: string;
  issuer_participant_id: string;
  card_product_id: string;
  kind: 'points' | 'cashback';
  mcc: string | null;
  points_per_unit: number | null;
  cashback_bps: number | null;
  monthly_cap: string | bigint | null;
  active: boolean;
  created_at: Date;
}
const toRule = (r: RuleRow): RewardRule => ({
  id: r.id,
  issuerParticipantId: r.issuer_participant_id,
  cardProductId: r.card_product_id,
  kind: r.kind,
  mcc: r.mcc,
  pointsPerUnit: r.points_per_unit,
  cashbackBps: r.cashback_bps,
  monthlyCap: r.monthly_cap === null ? null : BigInt(r.monthly_cap),
  active: r.active,
  createdAt: r.created_at,
});

/** What a rule earns on an amount, before its cap: whole points per whole unit spent, cashback rounded down. */
export function earnOf(rule: Pick<RewardRule, 'kind' | 'pointsPerUnit' | 'cashbackBps'>, amountMinor: bigint, currency: string): bigint {
  if (rule.kind === 'points') return (amountMinor * BigInt(rule.pointsPerUnit ?? 0)) / 10n ** BigInt(currencyMinorUnit(currency) ?? 2);
  return (amountMinor * BigInt(rule.cashbackBps ?? 0)) / 10_000n;
}

const MAX_RULES_PER_PRODUCT = 20;

export function createRewardService(deps: {
  db: Db;
  clock: Clock;
  audit: AuditService;
  events: EventOutbox;
  ledger: Ledger;
  accounts: Pick<AccountService, 'ensureSystemAccount'>;
  cards: Pick<CardService, 'getProduct' | 'getById' | 'getManyById'>;
  coupons: Pick<CouponService, 'get' | 'claim'>;
}): RewardService {
  const { db, clock, audit, events, ledger } = deps;
  const month = () => clock.now().toISOString().slice(0, 7);

  const balance: RewardService['balance'] = async (cardId, q = db) => {
    const rows = await q.query<{ id: string; reason: RewardEntry['reason']; kind: RewardEntry['kind']; amount: string | bigint; currency: string | null; authorization_id: string | null; month: string; created_at: Date }>(
      'select id, reason, kind, amount, currency, authorization_id, month, created_at from reward_entries where card_id = $1 order by created_at desc, id desc',
      [cardId],
    );
    let points = 0n;
    const cash = new Map<string, bigint>();
    const entries = rows.map((r) => ({ id: r.id, reason: r.reason, kind: r.kind, amount: BigInt(r.amount), currency: r.currency, authorizationId: r.authorization_id, month: r.month, createdAt: r.created_at }));
    for (const e of entries) {
      if (e.kind === 'points') points += e.amount;
      else cash.set(e.currency ?? '', (cash.get(e.currency ?? '') ?? 0n) + e.amount);
    }
    return { cardId, points, cashback: [...cash.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([currency, minor]) => ({ currency, minor })), entries: entries.slice(0, 100) };
  };

  const insertEntries = async (tx: Queryable, rows: { id: string; cardId: string; issuer: string; ruleId: string | null; authorizationId: string | null; refundId: string | null; reason: string; kind: string; amount: bigint; currency: string | null; redemption: unknown }[]) => {
    if (rows.length === 0) return [] as { id: string }[];
    const now = clock.now();
    return tx.query<{ id: string }>(
      `insert into reward_entries (id, card_id, issuer_participant_id, rule_id, authorization_id, refund_id, reason, kind, amount, currency, month, redemption, created_at)
       select id, card, issuer, rule, auth, refund, reason, kind, amount::bigint, currency, month, redemption::jsonb, $13::timestamptz
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
              as v(id, card, issuer, rule, auth, refund, reason, kind, amount, currency, month, redemption)
       on conflict do nothing returning id`,
      [
        rows.map((r) => r.id),
        rows.map((r) => r.cardId),
        rows.map((r) => r.issuer),
        rows.map((r) => r.ruleId),
        rows.map((r) => r.authorizationId),
        rows.map((r) => r.refundId),
        rows.map((r) => r.reason),
        rows.map((r) => r.kind),
        rows.map((r) => r.amount.toString()),
        rows.map((r) => r.currency),
        rows.map(() => now.toISOString().slice(0, 7)),
        rows.map((r) => (r.redemption === null ? null : JSON.stringify(r.redemption))),
        now,
      ],
    );
  };

  return {
    balance,

    async createRule(tx, actor, issuerId, productId, input) {
      const product = await deps.cards.getProduct(issuerId, productId, tx);
      if (product === undefined) return err('card_product_not_found', 'no such card product');
      if (input.kind === 'points' && (input.pointsPerUnit === null || input.cashbackBps !== null)) return err('reward_rule_invalid', 'a points rule gives pointsPerUnit (and no cashbackBps)', { field: 'pointsPerUnit' });
      if (input.kind === 'cashback' && (input.cashbackBps === null || input.pointsPerUnit !== null)) return err('reward_rule_invalid', 'a cashback rule gives cashbackBps (and no pointsPerUnit)', { field: 'cashbackBps' });
      const [n] = await tx.query<{ n: number }>('select count(*)::int as n from reward_rules where card_product_id = $1 and active', [productId]);
      if ((n?.n ?? 0) >= MAX_RULES_PER_PRODUCT) return err('reward_rule_invalid', `at most ${MAX_RULES_PER_PRODUCT} active rules per product`);
      const id = newId('rwr');
      const [row] = await tx.query<RuleRow>(
        `insert into reward_rules (id, issuer_participant_id, card_product_id, kind, mcc, points_per_unit, cashback_bps, monthly_cap, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning *`,
        [id, issuerId, productId, input.kind, input.mcc, input.pointsPerUnit, input.cashbackBps, input.monthlyCap, clock.now()],
      );
      await audit.record(tx, { actor, action: 'reward_rule.created', objectType: 'card_product', objectId: productId, details: { ruleId: id, kind: input.kind, mcc: input.mcc, pointsPerUnit: input.pointsPerUnit, cashbackBps: input.cashbackBps, monthlyCap: input.monthlyCap?.toString() ?? null } });
      return ok(toRule(row!));
    },

    async listRules(issuerId, productId) {
      return (await db.query<RuleRow>('select * from reward_rules where issuer_participant_id = $1 and card_product_id = $2 order by created_at, id', [issuerId, productId])).map(toRule);
    },

    async deactivateRule(tx, actor, issuerId, ruleId) {
      const [row] = await tx.query<RuleRow>('update reward_rules set active = false where id = $1 and issuer_participant_id = $2 returning *', [ruleId, issuerId]);
      if (row === undefined) return err('reward_rule_invalid', 'no such reward rule of yours', { ruleId });
      await audit.record(tx, { actor, action: 'reward_rule.deactivated', objectType: 'card_product', objectId: row.card_product_id, details: { ruleId } });
      return ok(toRule(row));
    },

    async captured(tx, items) {
      const cards = await deps.cards.getManyById([...new Set(items.map((i) => i.cardId))], tx);
      const productIds = [...new Set([...cards.values()].map((c) => c.productId))];
      if (productIds.length === 0) return;
      // Rules with a cap are locked (in id order), so that payments of one product committing at once count against it in turn.
      const rules = (await tx.query<RuleRow>('select * from reward_rules where card_product_id = any($1::text[]) and active order by id', [productIds])).map(toRule);
      if (rules.length === 0) return;
      const capped = rules.filter((r) => r.monthlyCap !== null).map((r) => r.id);
      if (capped.length > 0) await tx.query('select id from reward_rules where id = any($1::text[]) order by id for update', [capped]);
      const m = month();
      const usedRows =
        capped.length === 0
          ? []
          : await tx.query<{ rule_id: string; card_id: string; used: string | bigint }>(
              `select rule_id, card_id, sum(amount)::text as used from reward_entries where rule_id = any($1::text[]) and card_id = any($2::text[]) and month = $3 and reason in ('earned', 'reversed') group by 1, 2`,
              [capped, [...cards.keys()], m],
            );
      const used = new Map(usedRows.map((u) => [`${u.rule_id} ${u.card_id}`, BigInt(u.used)]));
      const rows: Parameters<typeof insertEntries>[1] = [];
      for (const item of items) {
        const card = cards.get(item.cardId);
        if (card === undefined) continue;
        for (const rule of rules) {
          if (rule.cardProductId !== card.productId || (rule.mcc !== null && rule.mcc !== item.mcc)) continue;
          let amount = earnOf(rule, item.amountMinor, item.currency);
          if (rule.monthlyCap !== null) {
            const k = `${rule.id} ${card.id}`;
            const before = used.get(k) ?? 0n;
            const left = rule.monthlyCap - before;
            if (amount > left) amount = left > 0n ? left : 0n;
            used.set(k, before + amount);
          }
          if (amount <= 0n) continue;
          rows.push({ id: newId('rwe'), cardId: card.id, issuer: item.issuerParticipantId, ruleId: rule.id, authorizationId: item.authorizationId, refundId: null, reason: 'earned', kind: rule.kind, amount, currency: rule.kind === 'cashback' ? item.currency : null, redemption: null });
        }
      }
      const inserted = new Set((await insertEntries(tx, rows)).map((r) => r.id));
      for (const r of rows) {
        if (!inserted.has(r.id)) continue;
        await events.emit(tx, {
          participantId: r.issuer,
          type: 'reward.earned',
          data: { cardId: r.cardId, authorizationId: r.authorizationId, kind: r.kind, ...(r.kind === 'points' ? { points: r.amount.toString() } : { cashback: formatMoney(r.amount, r.currency ?? '') }) },
        });
      }
    },

    async refunded(tx, item) {
      const earned = await tx.query<{ rule_id: string; card_id: string; issuer_participant_id: string; kind: 'points' | 'cashback'; currency: string | null; earned: string | bigint; reversed: string | bigint }>(
        `select e.rule_id, e.card_id, e.issuer_participant_id, e.kind, e.currency, e.amount::text as earned,
                coalesce((select -sum(r.amount) from reward_entries r where r.authorization_id = e.authorization_id and r.rule_id = e.rule_id and r.reason = 'reversed'), 0)::text as reversed
           from reward_entries e where e.authorization_id = $1 and e.reason = 'earned' order by e.rule_id`,
        [item.authorizationId],
      );
      const rows: Parameters<typeof insertEntries>[1] = [];
      for (const e of earned) {
        const total = BigInt(e.earned);
        // What stays earned is in proportion to what stays captured; a full refund takes it all back.
        const target = item.capturedMinor === 0n ? total : (total * item.refundedMinor) / item.capturedMinor;
        const reverse = target - BigInt(e.reversed);
        if (reverse <= 0n) continue;
        rows.push({ id: newId('rwe'), cardId: e.card_id, issuer: e.issuer_participant_id, ruleId: e.rule_id, authorizationId: item.authorizationId, refundId: item.refundId, reason: 'reversed', kind: e.kind, amount: -reverse, currency: e.currency, redemption: null });
      }
      await insertEntries(tx, rows);
      for (const r of rows) {
        await events.emit(tx, {
          participantId: r.issuer,
          type: 'reward.reversed',
          data: { cardId: r.cardId, authorizationId: r.authorizationId, refundId: r.refundId, kind: r.kind, ...(r.kind === 'points' ? { points: (-r.amount).toString() } : { cashback: formatMoney(-r.amount, r.currency ?? '') }) },
        });
      }
    },

    async redeem(tx, actor, cardId, redemption) {
      const card = await deps.cards.getById(cardId, tx);
      if (card === undefined) return err('card_not_found', 'no such card');
      // One redemption of a card at a time: the balance read below is the one the entry is written against.
      await tx.query('select pg_advisory_xact_lock(hashtext($1))', [`rewards:${cardId}`]);
      const before = await balance(cardId, tx);
      const entryId = newId('rwe');
      if (redemption.kind === 'cashback') {
        const have = before.cashback.find((c) => c.currency === redemption.currency)?.minor ?? 0n;
        if (redemption.amountMinor > have) return err('rewards_insufficient', `the card has ${formatMoney(have < 0n ? 0n : have, redemption.currency).amount} ${redemption.currency} of cashback`, { available: formatMoney(have < 0n ? 0n : have, redemption.currency) });
        if (card.fundingAccountId === null) return err('account_unavailable', 'the card has no funding account at the hub to pay cashback into');
        const funding = await deps.accounts.ensureSystemAccount('funding', card.issuerParticipantId, redemption.currency);
        const transferId = `${entryId}_cashback`;
        const [r] = await ledger.applyInTx(tx, [{ id: transferId, debitAccountId: funding, creditAccountId: card.fundingAccountId, amountMinor: redemption.amountMinor, currency: redemption.currency, purpose: 'reward_cashback', metadata: { cardId, entryId } }]);
        if (r !== undefined && !r.ok) {
          if (r.error.code === 'insufficient_funds' || r.error.code === 'exceeds_credit_limit') return err('liquidity_exceeded', `the issuer's ${redemption.currency} position cannot pay this cashback`, { currency: redemption.currency });
          if (r.error.code === 'currency_mismatch') return err('account_unavailable', `the card's account is not in ${redemption.currency}`);
          return err('ledger_rejected', r.error.message);
        }
        await insertEntries(tx, [{ id: entryId, cardId, issuer: card.issuerParticipantId, ruleId: null, authorizationId: null, refundId: null, reason: 'redeemed', kind: 'cashback', amount: -redemption.amountMinor, currency: redemption.currency, redemption: { type: 'cashback', transferId, accountId: card.fundingAccountId } }]);
        await audit.record(tx, { actor, action: 'reward.redeemed', objectType: 'card', objectId: cardId, details: { kind: 'cashback', amountMinor: redemption.amountMinor.toString(), currency: redemption.currency, transferId } });
        await events.emit(tx, { participantId: card.issuerParticipantId, type: 'reward.redeemed', data: { cardId, kind: 'cashback', cashback: formatMoney(redemption.amountMinor, redemption.currency), transferId } });
        return ok({ entryId, balance: await balance(cardId, tx), walletCoupon: null, transferId });
      }
      const coupon = await deps.coupons.get(redemption.couponId, tx);
      if (coupon === undefined) return err('coupon_not_found', 'no such coupon');
      if (coupon.pointsCost === null) return err('coupon_not_applicable', 'this coupon is not offered for points: keep it for free', { couponId: coupon.id });
      if (before.points < coupon.pointsCost) return err('rewards_insufficient', `the coupon costs ${coupon.pointsCost} points; the card has ${before.points < 0n ? 0n : before.points}`, { points: (before.points < 0n ? 0n : before.points).toString(), pointsCost: coupon.pointsCost.toString() });
      const claimed = await deps.coupons.claim(tx, actor, redemption.participantId, redemption.customerId, coupon.id, 'points');
      if (!claimed.ok) return claimed;
      await insertEntries(tx, [{ id: entryId, cardId, issuer: card.issuerParticipantId, ruleId: null, authorizationId: null, refundId: null, reason: 'redeemed', kind: 'points', amount: -coupon.pointsCost, currency: null, redemption: { type: 'coupon', couponId: coupon.id, walletCouponId: claimed.value.id } }]);
      await audit.record(tx, { actor, action: 'reward.redeemed', objectType: 'card', objectId: cardId, details: { kind: 'coupon', points: coupon.pointsCost.toString(), couponId: coupon.id } });
      await events.emit(tx, { participantId: card.issuerParticipantId, type: 'reward.redeemed', data: { cardId, kind: 'coupon', points: coupon.pointsCost.toString(), couponId: coupon.id } });
      return ok({ entryId, balance: await balance(cardId, tx), walletCoupon: claimed.value, transferId: null });
    },
  };
}
