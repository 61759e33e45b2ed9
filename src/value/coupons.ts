import type { Actor, AuditService } from '../audit/index.ts';
import type { MerchantService } from '../merchants/index.ts';
import type { AppliedCoupon, PaymentOffers, PErr } from '../payments/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { formatMoney } from '../platform/money.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { VErr } from './errors.ts';

/**
 * Merchants' coupons and membership cards, kept in customers' wallets (tables coupons, wallet_coupons,
 * coupon_redemptions, membership_programs, membership_cards). A merchant publishes a coupon (an amount or a percentage
 * off, a minimum spend, an expiry, a per-customer limit, optionally a price in reward points); any wallet's customer
 * keeps it (`claim`); a payment the customer pushes at that merchant (QR, link) applies the best one automatically
 * (`offers`, the card pipeline's hook), and `preview` shows it before the customer confirms.
 */
export interface Coupon {
  readonly id: string;
  readonly merchantId: string;
  readonly merchantName: string;
  readonly ownerParticipantId: string;
  readonly name: string;
  readonly kind: 'amount' | 'percent';
  readonly amountOffMinor: bigint | null;
  readonly percentOff: number | null;
  readonly minSpendMinor: bigint;
  readonly currency: string;
  readonly perCustomerLimit: number;
  readonly pointsCost: bigint | null;
  readonly expiresAt: Date;
  readonly status: 'active' | 'withdrawn';
  readonly createdAt: Date;
}

export interface WalletCoupon {
  readonly id: string;
  readonly coupon: Coupon;
  readonly participantId: string;
  readonly customerId: string;
  readonly uses: number;
  readonly source: 'claimed' | 'points' | 'offer';
  readonly createdAt: Date;
}

export interface MembershipProgram {
  readonly id: string;
  readonly merchantId: string;
  readonly merchantName: string;
  readonly name: string;
  readonly createdAt: Date;
}

export interface MembershipCard {
  readonly id: string;
  readonly program: MembershipProgram;
  readonly memberNumber: string;
  readonly createdAt: Date;
}

export interface NewCoupon {
  readonly name: string;
  readonly amountOffMinor: bigint | null;
  readonly percentOff: number | null;
  readonly minSpendMinor: bigint;
  readonly perCustomerLimit: number;
  readonly pointsCost: bigint | null;
  readonly expiresAt: Date;
}

export interface OfferPreview {
  readonly merchantId: string;
  readonly amountDueMinor: bigint;
  readonly currency: string;
  readonly applied: AppliedCoupon | undefined;
  readonly memberships: MembershipCard[];
}

export interface CouponService {
  create(tx: Queryable, actor: Actor, owner: string, merchantId: string, input: NewCoupon): Promise<Result<Coupon, VErr>>;
  listForMerchant(owner: string, merchantId: string): Promise<Coupon[]>;
  /** The currency of the owner's merchant (undefined: not theirs). */
  merchantCurrency(owner: string, merchantId: string): Promise<string | undefined>;
  withdraw(tx: Queryable, actor: Actor, owner: string, couponId: string): Promise<Result<Coupon, VErr>>;
  /** Coupons any wallet's customer may keep: active, not expired, free (not priced in points). */
  offers(merchantId?: string): Promise<Coupon[]>;
  get(couponId: string, q?: Queryable): Promise<Coupon | undefined>;
  claim(tx: Queryable, actor: Actor, participantId: string, customerId: string, couponId: string, source?: 'claimed' | 'points' | 'offer'): Promise<Result<WalletCoupon, VErr>>;
  wallet(participantId: string, customerId: string): Promise<WalletCoupon[]>;
  /** The coupon a payment of this amount at this merchant would apply, and the customer's membership there. */
  preview(input: { participantId: string; customerId: string; merchantId: string; amountMinor: bigint; currency: string; walletCouponId?: string | undefined }): Promise<Result<OfferPreview, PErr>>;
  readonly paymentOffers: PaymentOffers;

  createProgram(tx: Queryable, actor: Actor, owner: string, merchantId: string, name: string): Promise<Result<MembershipProgram, VErr>>;
  programs(merchantId?: string): Promise<MembershipProgram[]>;
  join(tx: Queryable, actor: Actor, participantId: string, customerId: string, programId: string): Promise<Result<MembershipCard, VErr>>;
  memberships(participantId: string, customerId: string, merchantId?: string): Promise<MembershipCard[]>;
}

interface CouponRow {
  id: string;
  merchant_id: string;
  owner_participant_id: string;
  name: string;
  kind: 'amount' | 'percent';
  amount_off_minor: string | bigint | null;
  percent_off: number | null;
  min_spend_minor: string | bigint;
  currency: string;
  per_customer_limit: number;
  points_cost: string | bigint | null;
  expires_at: Date;
  status: 'active' | 'withdrawn';
  created_at: Date;
}
interface WalletCouponRow {
  id: string;
  coupon_id: string;
  participant_id: string;
  customer_id: string;
  uses: number;
  source: 'claimed' | 'points' | 'offer';
  created_at: Date;
}
const big = (v: string | bigint | null): bigint | null => (v === null ? null : BigInt(v));
const MAX_LIST = 200;

/** The discount a coupon gives on an amount: never the whole amount (a card payment is of a positive amount). */
export function discountOf(c: Pick<Coupon, 'kind' | 'amountOffMinor' | 'percentOff'>, amountMinor: bigint): bigint {
  const raw = c.kind === 'amount' ? (c.amountOffMinor ?? 0n) : (amountMinor * BigInt(c.percentOff ?? 0)) / 100n;
  return raw >= amountMinor ? amountMinor - 1n : raw;
}

export function createCouponService(deps: { db: Db; clock: Clock; audit: AuditService; events: EventOutbox; merchants: Pick<MerchantService, 'get' | 'getById' | 'getManyById'> }): CouponService {
  const { db, clock, audit, events, merchants } = deps;

  const names = async (ids: string[], q: Queryable = db) => (ids.length === 0 ? new Map<string, string>() : new Map([...(await merchants.getManyById([...new Set(ids)], q)).values()].map((m) => [m.id, m.name])));
  const toCoupons = async (rows: CouponRow[], q: Queryable = db): Promise<Coupon[]> => {
    const n = await names(rows.map((r) => r.merchant_id), q);
    return rows.map((r) => ({
      id: r.id,
      merchantId: r.merchant_id,
      merchantName: n.get(r.merchant_id) ?? r.merchant_id,
      ownerParticipantId: r.owner_participant_id,
      name: r.name,
      kind: r.kind,
      amountOffMinor: big(r.amount_off_minor),
      percentOff: r.percent_off,
      minSpendMinor: BigInt(r.min_spend_minor),
      currency: r.currency,
      perCustomerLimit: r.per_customer_limit,
      pointsCost: big(r.points_cost),
      expiresAt: r.expires_at,
      status: r.status,
      createdAt: r.created_at,
    }));
  };
  const getCoupon = async (couponId: string, q: Queryable = db) => {
    const rows = await q.query<CouponRow>('select * from coupons where id = $1', [couponId]);
    return (await toCoupons(rows, q))[0];
  };
  const toWallet = async (rows: WalletCouponRow[], q: Queryable = db): Promise<WalletCoupon[]> => {
    if (rows.length === 0) return [];
    const coupons = new Map((await toCoupons(await q.query<CouponRow>('select * from coupons where id = any($1::text[])', [[...new Set(rows.map((r) => r.coupon_id))]]), q)).map((c) => [c.id, c]));
    return rows.map((r) => ({ id: r.id, coupon: coupons.get(r.coupon_id)!, participantId: r.participant_id, customerId: r.customer_id, uses: r.uses, source: r.source, createdAt: r.created_at }));
  };
  const toPrograms = async (rows: { id: string; merchant_id: string; name: string; created_at: Date }[], q: Queryable = db): Promise<MembershipProgram[]> => {
    const n = await names(rows.map((r) => r.merchant_id), q);
    return rows.map((r) => ({ id: r.id, merchantId: r.merchant_id, merchantName: n.get(r.merchant_id) ?? r.merchant_id, name: r.name, createdAt: r.created_at }));
  };

  /** Why a kept coupon cannot apply to this payment now (undefined: it can). */
  const unusable = (w: WalletCoupon, merchantId: string, amountMinor: bigint, currency: string, now: Date, extraUses = 0): PErr | undefined => {
    const c = w.coupon;
    if (c.status !== 'active' || now >= c.expiresAt) return { code: 'coupon_expired', message: 'the coupon has expired', details: { couponId: c.id, expiresAt: c.expiresAt.toISOString() } };
    if (w.uses + extraUses >= c.perCustomerLimit) return { code: 'coupon_limit_reached', message: `the coupon was already used ${c.perCustomerLimit} time(s), its limit per customer`, details: { couponId: c.id, limit: c.perCustomerLimit } };
    if (c.merchantId !== merchantId || c.currency !== currency) return { code: 'coupon_not_applicable', message: 'the coupon is for another merchant', details: { couponId: c.id } };
    if (amountMinor < c.minSpendMinor) return { code: 'coupon_not_applicable', message: `the coupon needs a spend of at least ${formatMoney(c.minSpendMinor, c.currency).amount}`, details: { couponId: c.id, minSpend: formatMoney(c.minSpendMinor, c.currency) } };
    if (discountOf(c, amountMinor) <= 0n) return { code: 'coupon_not_applicable', message: 'the coupon gives no discount on this amount', details: { couponId: c.id } };
    return undefined;
  };
  const applied = (w: WalletCoupon, amountMinor: bigint): AppliedCoupon => ({ walletCouponId: w.id, couponId: w.coupon.id, name: w.coupon.name, originalMinor: amountMinor, discountMinor: discountOf(w.coupon, amountMinor) });

  const choose: PaymentOffers['choose'] = async (q, input) => {
    const now = clock.now();
    if (input.walletCouponId !== undefined) {
      const rows = await q.query<WalletCouponRow>('select * from wallet_coupons where id = $1 and participant_id = $2 and customer_id = $3', [input.walletCouponId, input.participantId, input.customerId]);
      const [w] = await toWallet(rows, q);
      if (w === undefined) return err('coupon_not_found', 'no such coupon in the customer’s wallet');
      const why = unusable(w, input.merchantId, input.amountMinor, input.currency, now);
      return why === undefined ? ok(applied(w, input.amountMinor)) : { ok: false, error: why };
    }
    if (!input.apply) return ok(undefined);
    const rows = await q.query<WalletCouponRow>(
      `select w.* from wallet_coupons w join coupons c on c.id = w.coupon_id
        where w.participant_id = $1 and w.customer_id = $2 and c.merchant_id = $3 and c.status = 'active' and c.expires_at > $4 and w.uses < c.per_customer_limit`,
      [input.participantId, input.customerId, input.merchantId, now],
    );
    const usable = (await toWallet(rows, q)).filter((w) => unusable(w, input.merchantId, input.amountMinor, input.currency, now) === undefined);
    // The best: the largest discount; then the one expiring first (use it before it lapses); then the oldest kept.
    usable.sort((a, b) => {
      const da = discountOf(a.coupon, input.amountMinor);
      const db2 = discountOf(b.coupon, input.amountMinor);
      if (da !== db2) return da > db2 ? -1 : 1;
      if (a.coupon.expiresAt.getTime() !== b.coupon.expiresAt.getTime()) return a.coupon.expiresAt.getTime() - b.coupon.expiresAt.getTime();
      if (a.createdAt.getTime() !== b.createdAt.getTime()) return a.createdAt.getTime() - b.createdAt.getTime();
      return a.id.localeCompare(b.id);
    });
    const best = usable[0];
    return ok(best === undefined ? undefined : applied(best, input.amountMinor));
  };

  const membershipsOf = async (participantId: string, customerId: string, merchantId?: string): Promise<MembershipCard[]> => {
    const rows = await db.query<{ id: string; program_id: string; member_number: string; created_at: Date; merchant_id: string; name: string; program_created_at: Date }>(
      `select m.id, m.program_id, m.member_number, m.created_at, p.merchant_id, p.name, p.created_at as program_created_at
         from membership_cards m join membership_programs p on p.id = m.program_id
        where m.participant_id = $1 and m.customer_id = $2 and ($3::text is null or p.merchant_id = $3) order by m.created_at, m.id limit $4`,
      [participantId, customerId, merchantId ?? null, MAX_LIST],
    );
    const programs = new Map((await toPrograms(rows.map((r) => ({ id: r.program_id, merchant_id: r.merchant_id, name: r.name, created_at: r.program_created_at })))).map((p) => [p.id, p]));
    return rows.map((r) => ({ id: r.id, program: programs.get(r.program_id)!, memberNumber: r.member_number, createdAt: r.created_at }));
  };

  const paymentOffers: PaymentOffers = {
    choose,
    async claim(tx, items) {
      const ids = [...new Set(items.map((i) => i.walletCouponId))].sort();
      const rows = await tx.query<WalletCouponRow>('select * from wallet_coupons where id = any($1::text[]) order by id for update', [ids]);
      const byId = new Map((await toWallet(rows, tx)).map((w) => [w.id, w]));
      const now = clock.now();
      const batchUses = new Map<string, number>();
      return items.map((item) => {
        const w = byId.get(item.walletCouponId);
        if (w === undefined) return { code: 'coupon_not_found', message: 'no such coupon in the customer’s wallet' } as PErr;
        const extra = batchUses.get(w.id) ?? 0;
        const why = unusable(w, w.coupon.merchantId, item.originalMinor, w.coupon.currency, now, extra);
        if (why !== undefined) return why;
        batchUses.set(w.id, extra + 1);
        return undefined;
      });
    },
    async record(tx, items) {
      const now = clock.now();
      for (const { authorizationId, coupon, currency } of items) {
        await tx.query('update wallet_coupons set uses = uses + 1 where id = $1', [coupon.walletCouponId]);
        await tx.query(
          'insert into coupon_redemptions (id, wallet_coupon_id, coupon_id, authorization_id, original_minor, discount_minor, currency, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8)',
          [newId('cpr'), coupon.walletCouponId, coupon.couponId, authorizationId, coupon.originalMinor, coupon.discountMinor, currency, now],
        );
      }
    },
  };

  return {
    paymentOffers,
    get: getCoupon,

    async create(tx, actor, owner, merchantId, input) {
      const m = await merchants.get(owner, merchantId, tx);
      if (m === undefined) return err('merchant_not_found', 'no such merchant');
      if ((input.amountOffMinor === null) === (input.percentOff === null)) return err('coupon_invalid', 'give either amountOff or percentOff', { field: 'amountOff' });
      if (input.percentOff !== null && (!Number.isInteger(input.percentOff) || input.percentOff < 1 || input.percentOff > 100)) return err('coupon_invalid', 'percentOff is a whole number from 1 to 100', { field: 'percentOff' });
      if (input.expiresAt <= clock.now()) return err('coupon_invalid', 'the expiry must be in the future', { field: 'expiresAt' });
      if (input.amountOffMinor !== null && input.minSpendMinor > 0n && input.amountOffMinor >= input.minSpendMinor) return err('coupon_invalid', 'the amount off must be below the minimum spend', { field: 'amountOff' });
      const id = newId('cpn');
      const now = clock.now();
      const [row] = await tx.query<CouponRow>(
        `insert into coupons (id, merchant_id, owner_participant_id, name, kind, amount_off_minor, percent_off, min_spend_minor, currency, per_customer_limit, points_cost, expires_at, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) returning *`,
        [id, merchantId, owner, input.name, input.amountOffMinor !== null ? 'amount' : 'percent', input.amountOffMinor, input.percentOff, input.minSpendMinor, m.currency, input.perCustomerLimit, input.pointsCost, input.expiresAt, now],
      );
      await audit.record(tx, { actor, action: 'coupon.created', objectType: 'coupon', objectId: id, details: { merchantId, name: input.name } });
      const [c] = await toCoupons([row!], tx);
      return ok(c!);
    },

    async merchantCurrency(owner, merchantId) {
      return (await merchants.get(owner, merchantId))?.currency;
    },

    async listForMerchant(owner, merchantId) {
      return toCoupons(await db.query<CouponRow>('select * from coupons where owner_participant_id = $1 and merchant_id = $2 order by created_at desc, id limit $3', [owner, merchantId, MAX_LIST]));
    },

    async withdraw(tx, actor, owner, couponId) {
      const [row] = await tx.query<CouponRow>(`update coupons set status = 'withdrawn' where id = $1 and owner_participant_id = $2 returning *`, [couponId, owner]);
      if (row === undefined) return err('coupon_not_found', 'no such coupon');
      await audit.record(tx, { actor, action: 'coupon.withdrawn', objectType: 'coupon', objectId: couponId, details: {} });
      const [c] = await toCoupons([row], tx);
      return ok(c!);
    },

    async offers(merchantId) {
      const rows = await db.query<CouponRow>(
        `select * from coupons where status = 'active' and expires_at > $1 and points_cost is null and ($2::text is null or merchant_id = $2) order by created_at desc, id limit $3`,
        [clock.now(), merchantId ?? null, MAX_LIST],
      );
      return toCoupons(rows);
    },

    async claim(tx, actor, participantId, customerId, couponId, source = 'claimed') {
      const c = await getCoupon(couponId, tx);
      if (c === undefined) return err('coupon_not_found', 'no such coupon');
      if (c.status !== 'active' || clock.now() >= c.expiresAt) return err('coupon_expired', 'the coupon has expired', { couponId, expiresAt: c.expiresAt.toISOString() });
      if (source === 'claimed' && c.pointsCost !== null) return err('coupon_not_applicable', 'this coupon is taken for reward points', { couponId, pointsCost: c.pointsCost.toString() });
      const id = newId('wcp');
      const rows = await tx.query<WalletCouponRow>(
        `insert into wallet_coupons (id, coupon_id, participant_id, customer_id, source, created_at) values ($1, $2, $3, $4, $5, $6)
         on conflict (coupon_id, participant_id, customer_id) do nothing returning *`,
        [id, couponId, participantId, customerId, source, clock.now()],
      );
      if (rows.length === 0) return err('coupon_already_held', 'the customer already keeps this coupon', { couponId });
      await audit.record(tx, { actor, action: 'coupon.claimed', objectType: 'coupon', objectId: couponId, details: { customerId, walletCouponId: id, source } });
      await events.emit(tx, { participantId: c.ownerParticipantId, type: 'coupon.claimed', data: { couponId, merchantId: c.merchantId, claimedBy: participantId, source } });
      const [w] = await toWallet(rows, tx);
      return ok(w!);
    },

    async wallet(participantId, customerId) {
      return toWallet(await db.query<WalletCouponRow>('select * from wallet_coupons where participant_id = $1 and customer_id = $2 order by created_at, id limit $3', [participantId, customerId, MAX_LIST]));
    },

    async preview(input) {
      const chosen = await choose(db, { ...input, apply: true });
      if (!chosen.ok) return chosen;
      const memberships = await membershipsOf(input.participantId, input.customerId, input.merchantId);
      return ok({ merchantId: input.merchantId, amountDueMinor: input.amountMinor, currency: input.currency, applied: chosen.value, memberships });
    },

    async createProgram(tx, actor, owner, merchantId, name) {
      const m = await merchants.get(owner, merchantId, tx);
      if (m === undefined) return err('merchant_not_found', 'no such merchant');
      const id = newId('mbp');
      const [row] = await tx.query<{ id: string; merchant_id: string; name: string; created_at: Date }>(
        'insert into membership_programs (id, merchant_id, owner_participant_id, name, created_at) values ($1, $2, $3, $4, $5) returning *',
        [id, merchantId, owner, name, clock.now()],
      );
      await audit.record(tx, { actor, action: 'membership_program.created', objectType: 'membership_program', objectId: id, details: { merchantId, name } });
      const [p] = await toPrograms([row!], tx);
      return ok(p!);
    },

    async programs(merchantId) {
      return toPrograms(await db.query('select * from membership_programs where ($1::text is null or merchant_id = $1) order by created_at desc, id limit $2', [merchantId ?? null, MAX_LIST]));
    },

    async join(tx, actor, participantId, customerId, programId) {
      const [prog] = await tx.query<{ id: string; merchant_id: string; owner_participant_id: string; name: string; created_at: Date }>('select * from membership_programs where id = $1', [programId]);
      if (prog === undefined) return err('membership_program_not_found', 'no such membership programme');
      const id = newId('mbc');
      // The member number the merchant's counter reads: short, and unique within the programme.
      const memberNumber = `M${id.slice(-10).toUpperCase()}`;
      const rows = await tx.query<{ id: string; member_number: string; created_at: Date }>(
        `insert into membership_cards (id, program_id, participant_id, customer_id, member_number, created_at) values ($1, $2, $3, $4, $5, $6)
         on conflict (program_id, participant_id, customer_id) do nothing returning *`,
        [id, programId, participantId, customerId, memberNumber, clock.now()],
      );
      if (rows.length === 0) return err('membership_exists', 'the customer already holds this membership card');
      await audit.record(tx, { actor, action: 'membership.joined', objectType: 'membership_program', objectId: programId, details: { customerId, membershipCardId: id } });
      await events.emit(tx, { participantId: prog.owner_participant_id, type: 'membership.joined', data: { programId, merchantId: prog.merchant_id, memberNumber, walletParticipantId: participantId } });
      const [p] = await toPrograms([prog], tx);
      return ok({ id, program: p!, memberNumber, createdAt: rows[0]!.created_at });
    },

    memberships: membershipsOf,
  };
}
