import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { actorOf, created, okResponse, principalOf, type Idempotent } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import { AmountString, CurrencyCode, Money, Strict, Timestamp } from '../api/index.ts';
import type { CustomerService } from '../customers/index.ts';
import type { InsightRow, InsightService, PaymentService } from '../payments/index.ts';
import type { HttpServer } from '../platform/http.ts';
import { deterministicId } from '../platform/ids.ts';
import { formatMoney, parseAmount, parseMoney } from '../platform/money.ts';
import type { Coupon, CouponService, MembershipCard, MembershipProgram, WalletCoupon } from './coupons.ts';
import type { Pot, PotService, VisiblePot } from './pots.ts';
import type { RewardBalance, RewardRule, RewardService } from './rewards.ts';
import type { EligibleOffer, OfferConsent, TargetedOffer, TargetedOfferService } from './targeted.ts';

const WireMoney = Type.Object({ amount: Type.String(), currency: Type.String() }, { additionalProperties: false });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

const CouponSchema = Type.Object(
  {
    id: Type.String(),
    merchantId: Type.String(),
    merchantName: Type.String(),
    name: Type.String(),
    kind: Type.Union([Type.Literal('amount'), Type.Literal('percent')]),
    amountOff: Nullable(WireMoney),
    percentOff: Nullable(Type.Integer()),
    minSpend: WireMoney,
    perCustomerLimit: Type.Integer(),
    pointsCost: Nullable(Type.String({ description: 'Reward points a cardholder gives for it (null: free to keep)' })),
    expiresAt: Timestamp,
    status: Type.Union([Type.Literal('active'), Type.Literal('withdrawn')]),
  },
  { $id: 'Coupon', additionalProperties: false },
);
const WalletCouponSchema = Type.Object(
  { id: Type.String(), coupon: Type.Ref(CouponSchema), uses: Type.Integer(), usesLeft: Type.Integer(), usable: Type.Boolean({ description: 'Active, not expired and not used up' }), source: Type.Union([Type.Literal('claimed'), Type.Literal('points'), Type.Literal('offer')], { description: 'claimed, points (taken for reward points) or offer (an accepted targeted offer)' }), createdAt: Timestamp },
  { $id: 'WalletCoupon', additionalProperties: false },
);
const ProgramSchema = Type.Object({ id: Type.String(), merchantId: Type.String(), merchantName: Type.String(), name: Type.String(), createdAt: Timestamp }, { $id: 'MembershipProgram', additionalProperties: false });
const MembershipSchema = Type.Object({ id: Type.String(), program: Type.Ref(ProgramSchema), memberNumber: Type.String(), createdAt: Timestamp }, { $id: 'MembershipCard', additionalProperties: false });
const PotSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    balance: WireMoney,
    goal: Nullable(WireMoney),
    goalReached: Type.Boolean(),
    lockedUntil: Nullable(Timestamp),
    locked: Type.Boolean(),
    own: Type.Boolean({ description: 'Held at your participant (false: at a participant the customer linked with consent; read only)' }),
    holderParticipantId: Type.String(),
    createdAt: Timestamp,
  },
  { $id: 'SavingsPot', additionalProperties: false },
);
const RuleSchema = Type.Object(
  {
    id: Type.String(),
    cardProductId: Type.String(),
    kind: Type.Union([Type.Literal('points'), Type.Literal('cashback')]),
    mcc: Nullable(Type.String()),
    pointsPerUnit: Nullable(Type.Integer()),
    cashbackBps: Nullable(Type.Integer()),
    monthlyCap: Nullable(Type.String({ description: 'Points, or cashback in the product currency (decimal), per card and month' })),
    active: Type.Boolean(),
    createdAt: Timestamp,
  },
  { $id: 'RewardRule', additionalProperties: false },
);
const BalanceSchema = Type.Object(
  {
    cardId: Nullable(Type.String({ description: 'The card (to its issuer; null to a wallet)' })),
    points: Type.String(),
    cashback: Type.Array(WireMoney),
    entries: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          reason: Type.Union([Type.Literal('earned'), Type.Literal('reversed'), Type.Literal('redeemed')]),
          kind: Type.Union([Type.Literal('points'), Type.Literal('cashback')]),
          points: Nullable(Type.String()),
          cashback: Nullable(WireMoney),
          paymentId: Nullable(Type.String()),
          createdAt: Timestamp,
        },
        { additionalProperties: false },
      ),
    ),
  },
  { $id: 'RewardBalance', additionalProperties: false },
);
const InsightItem = Type.Object({ key: Type.String(), count: Type.Integer(), spend: WireMoney }, { additionalProperties: false });
const InsightsSchema = Type.Object(
  {
    from: Timestamp,
    to: Timestamp,
    byCategory: Type.Array(InsightItem),
    byMerchant: Type.Array(Type.Object({ key: Type.String(), name: Type.String(), count: Type.Integer(), spend: WireMoney }, { additionalProperties: false })),
    byChannel: Type.Array(InsightItem),
    byWallet: Type.Array(InsightItem),
    byMonth: Type.Array(InsightItem),
    declines: Type.Array(Type.Object({ day: Type.String(), reason: Type.String(), count: Type.Integer() }, { additionalProperties: false })),
  },
  { $id: 'IssuerInsights', additionalProperties: false },
);

const wireCoupon = (c: Coupon) => ({
  id: c.id,
  merchantId: c.merchantId,
  merchantName: c.merchantName,
  name: c.name,
  kind: c.kind,
  amountOff: c.amountOffMinor === null ? null : formatMoney(c.amountOffMinor, c.currency),
  percentOff: c.percentOff,
  minSpend: formatMoney(c.minSpendMinor, c.currency),
  perCustomerLimit: c.perCustomerLimit,
  pointsCost: c.pointsCost === null ? null : c.pointsCost.toString(),
  expiresAt: c.expiresAt.toISOString(),
  status: c.status,
});
const wireWalletCoupon = (w: WalletCoupon, now: Date) => ({
  id: w.id,
  coupon: wireCoupon(w.coupon),
  uses: w.uses,
  usesLeft: Math.max(0, w.coupon.perCustomerLimit - w.uses),
  usable: w.coupon.status === 'active' && now < w.coupon.expiresAt && w.uses < w.coupon.perCustomerLimit,
  source: w.source,
  createdAt: w.createdAt.toISOString(),
});
const wireProgram = (p: MembershipProgram) => ({ id: p.id, merchantId: p.merchantId, merchantName: p.merchantName, name: p.name, createdAt: p.createdAt.toISOString() });
const wireMembership = (m: MembershipCard) => ({ id: m.id, program: wireProgram(m.program), memberNumber: m.memberNumber, createdAt: m.createdAt.toISOString() });
const wirePot = (p: Pot | VisiblePot, now: Date) => ({
  id: p.id,
  name: p.name,
  balance: formatMoney(p.balanceMinor, p.currency),
  goal: p.goalMinor === null ? null : formatMoney(p.goalMinor, p.currency),
  goalReached: p.goalMinor !== null && p.balanceMinor >= p.goalMinor,
  lockedUntil: p.lockedUntil?.toISOString() ?? null,
  locked: p.lockedUntil !== null && now < p.lockedUntil,
  own: 'own' in p ? p.own : true,
  holderParticipantId: p.participantId,
  createdAt: p.createdAt.toISOString(),
});
const wireRule = (r: RewardRule, currency: string) => ({
  id: r.id,
  cardProductId: r.cardProductId,
  kind: r.kind,
  mcc: r.mcc,
  pointsPerUnit: r.pointsPerUnit,
  cashbackBps: r.cashbackBps,
  monthlyCap: r.monthlyCap === null ? null : r.kind === 'points' ? r.monthlyCap.toString() : formatMoney(r.monthlyCap, currency).amount,
  active: r.active,
  createdAt: r.createdAt.toISOString(),
});
const wireBalance = (b: RewardBalance) => ({
  cardId: b.cardId,
  points: b.points.toString(),
  cashback: b.cashback.map((c) => formatMoney(c.minor, c.currency)),
  entries: b.entries.map((e) => ({
    id: e.id,
    reason: e.reason,
    kind: e.kind,
    points: e.kind === 'points' ? e.amount.toString() : null,
    cashback: e.kind === 'cashback' ? formatMoney(e.amount, e.currency ?? '') : null,
    paymentId: e.authorizationId,
    createdAt: e.createdAt.toISOString(),
  })),
});
const wireInsight = (r: InsightRow) => ({ key: r.key, count: r.count, spend: formatMoney(r.amountMinor, r.currency) });

const ConsentSchema = Type.Object(
  { customerId: Type.String(), consent: Type.Boolean({ description: 'Offers targeted by the customer’s own card spending (default false)' }), givenAt: Nullable(Timestamp), withdrawnAt: Nullable(Timestamp) },
  { $id: 'OfferConsent', additionalProperties: false },
);
const targetedFields = {
  id: Type.String(),
  issuerParticipantId: Type.String(),
  name: Type.String(),
  mcc: Nullable(Type.String({ description: 'The merchant category whose spend counts (or merchantId)' })),
  merchantId: Nullable(Type.String({ description: 'The merchant whose spend counts (or mcc)' })),
  minSpend: WireMoney,
  windowDays: Type.Integer(),
  couponId: Type.String(),
  expiresAt: Timestamp,
  status: Type.Union([Type.Literal('active'), Type.Literal('withdrawn')]),
  createdAt: Timestamp,
};
const IssuerTargetedOfferSchema = Type.Object(
  { ...targetedFields, eligibleCount: Type.Integer({ description: 'Consenting customers found eligible (no one named)' }), acceptedCount: Type.Integer({ description: 'Customers who accepted it' }) },
  { $id: 'IssuerTargetedOffer', additionalProperties: false },
);
const EligibleOfferSchema = Type.Object(
  { ...targetedFields, coupon: Type.Ref(CouponSchema), accepted: Type.Boolean() },
  { $id: 'EligibleTargetedOffer', additionalProperties: false },
);
const wireConsent = (c: OfferConsent) => ({ customerId: c.customerId, consent: c.consented, givenAt: c.givenAt?.toISOString() ?? null, withdrawnAt: c.withdrawnAt?.toISOString() ?? null });
const wireTargeted = (o: TargetedOffer) => ({
  id: o.id,
  issuerParticipantId: o.issuerParticipantId,
  name: o.name,
  mcc: o.mcc,
  merchantId: o.merchantId,
  minSpend: formatMoney(o.minSpendMinor, o.currency),
  windowDays: o.windowDays,
  couponId: o.couponId,
  expiresAt: o.expiresAt.toISOString(),
  status: o.status,
  createdAt: o.createdAt.toISOString(),
});
const wireEligible = (e: EligibleOffer) => ({ ...wireTargeted(e.offer), coupon: wireCoupon(e.coupon), accepted: e.accepted });

const CUSTOMER = { customer: true } as const;
const sec = [{ participant: [] }];
const CustomerQuery = Strict({ customerId: Ref('customer', 'Your customer') });
const PotParams = Strict({ potId: Ref('savings_pot', 'The savings pot') });
const MerchantParams = Strict({ merchantId: Ref('merchant', 'Your merchant') });
const ProductParams = Strict({ productId: Ref('card_product', 'Your card product') });
const CardParams = Strict({ cardId: Ref('card', 'Your card') });
const IsoDate = Type.String({ format: 'date-time', description: 'ISO 8601 date-time' });
const DAY_MS = 86_400_000;

export interface ValueRouteDeps {
  readonly idempotent: Idempotent;
  readonly customers: CustomerService;
  readonly pots: PotService;
  readonly coupons: CouponService;
  readonly rewards: RewardService;
  readonly targeted: TargetedOfferService;
  readonly insights: InsightService;
  readonly payments: Pick<PaymentService, 'previewQr' | 'getLink'>;
  readonly cards: { getProduct(issuerId: string, productId: string): Promise<{ currency: string } | undefined> };
  /** The card behind one of the wallet's tokens (undefined: not the wallet's). */
  readonly tokenCard: (walletId: string, tokenRef: string) => Promise<string | undefined>;
  readonly now: () => Date;
}

export function registerValueRoutes(app: HttpServer, deps: ValueRouteDeps): void {
  const { idempotent, customers, pots, coupons, rewards, targeted, insights, payments, now } = deps;
  for (const s of [CouponSchema, WalletCouponSchema, ProgramSchema, MembershipSchema, PotSchema, RuleSchema, BalanceSchema, InsightsSchema, ConsentSchema, IssuerTargetedOfferSchema, EligibleOfferSchema]) app.addSchema(s);
  const me = (request: FastifyRequest) => principalOf(request).participantId;
  const keyOf = (request: FastifyRequest) => String(request.headers['idempotency-key']);

  // ---- Savings pots (the customer's own; seen read-only in every wallet their record is linked to) ----
  app.post(
    '/v1/pots',
    {
      config: { ...CUSTOMER, idempotency: 'optional' },
      schema: {
        tags: ['pots'],
        summary: 'Open a named savings pot for your customer (a ledger account of its own), with an optional goal and lock',
        description: 'Money moves in from, and out to, the customer’s own account in the pot’s currency. Before `lockedUntil` a withdrawal answers `pot_locked`.',
        security: sec,
        body: Strict({
          customerId: Ref('customer', 'Your customer'),
          name: Type.String({ minLength: 1, maxLength: 60 }),
          currency: CurrencyCode,
          goal: Type.Optional(AmountString),
          lockedUntil: Type.Optional(IsoDate),
        }),
        response: { 201: Type.Ref(PotSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const { customerId, name, currency, goal, lockedUntil } = request.body;
        if ((await customers.get(me(request), customerId, tx)) === undefined) return { code: 'customer_not_found', message: 'no such customer' };
        const g = goal === undefined ? undefined : parseAmount(goal, currency, { field: 'goal' });
        if (g !== undefined && !g.ok) return g.error;
        const lock = lockedUntil === undefined ? null : new Date(lockedUntil);
        if (lock !== null && Number.isNaN(lock.getTime())) return { code: 'validation_failed', message: 'lockedUntil is not a date', details: { field: 'lockedUntil' } };
        const r = await pots.create(tx, actorOf(request, customerId), me(request), customerId, { name, currency, goalMinor: g?.value ?? null, lockedUntil: lock });
        return r.ok ? created(wirePot(r.value, now())) : r.error;
      }),
  );

  app.get(
    '/v1/pots',
    {
      config: CUSTOMER,
      schema: { tags: ['pots'], summary: "Your customer's savings pots, here and at every participant their record is linked to with consent", security: sec, querystring: CustomerQuery, response: { 200: Type.Object({ items: Type.Array(Type.Ref(PotSchema)) }, { additionalProperties: false }) } },
    },
    async (request, reply) => {
      if ((await customers.get(me(request), request.query.customerId)) === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      const t = now();
      return { items: (await pots.listVisible(me(request), request.query.customerId)).map((p) => wirePot(p, t)) };
    },
  );

  app.patch(
    '/v1/pots/:potId',
    {
      config: { ...CUSTOMER, idempotency: 'optional' },
      schema: {
        tags: ['pots'],
        summary: 'Rename a savings pot, change its goal, or extend its lock (a lock in force is never shortened or removed: pot_locked)',
        security: sec,
        params: PotParams,
        body: Strict({
          name: Type.Optional(Type.String({ minLength: 1, maxLength: 60 })),
          goal: Type.Optional(Type.Union([AmountString, Type.Null()])),
          lockedUntil: Type.Optional(Type.Union([IsoDate, Type.Null()])),
        }),
        response: { 200: Type.Ref(PotSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const b = request.body;
        const pot = await pots.get(me(request), request.params.potId, tx);
        if (pot === undefined) return { code: 'pot_not_found', message: 'no such savings pot' };
        let goal: bigint | null | undefined;
        if (b.goal === null) goal = null;
        else if (b.goal !== undefined) {
          const g = parseAmount(b.goal, pot.currency, { field: 'goal' });
          if (!g.ok) return g.error;
          goal = g.value;
        }
        const lock = b.lockedUntil === undefined || b.lockedUntil === null ? b.lockedUntil : new Date(b.lockedUntil);
        if (lock instanceof Date && Number.isNaN(lock.getTime())) return { code: 'validation_failed', message: 'lockedUntil is not a date', details: { field: 'lockedUntil' } };
        const r = await pots.update(tx, actorOf(request, pot.customerId), me(request), pot.id, { name: b.name, goalMinor: goal, lockedUntil: lock });
        return r.ok ? okResponse(wirePot(r.value, now())) : r.error;
      }),
  );

  for (const [path, direction, summary] of [
    ['deposits', 'in', 'Move money from your customer’s account into the pot'],
    ['withdrawals', 'out', 'Move money from the pot back into your customer’s account (refused with pot_locked before its lock date)'],
  ] as const) {
    app.post(
      `/v1/pots/:potId/${path}`,
      {
        config: { ...CUSTOMER, idempotency: 'required' },
        schema: { tags: ['pots'], summary, security: sec, params: PotParams, body: Strict({ amount: Money }), response: { 201: Type.Ref(PotSchema) } },
      },
      async (request, reply) =>
        idempotent(
          request,
          reply,
          async (tx) => {
            const amount = parseMoney(request.body.amount);
            if (!amount.ok) return amount.error;
            const pot = await pots.get(me(request), request.params.potId, tx);
            if (pot === undefined) return { code: 'pot_not_found', message: 'no such savings pot' };
            if (pot.currency !== amount.value.currency) return { code: 'validation_failed', message: `the pot holds ${pot.currency}`, details: { field: 'amount.currency' } };
            const r = await pots.move(tx, actorOf(request, pot.customerId), me(request), pot.id, direction, amount.value.amountMinor, deterministicId(`pot_${direction}`, pot.id, keyOf(request)));
            return r.ok ? created(wirePot(r.value, now())) : r.error;
          },
          { required: true },
        ),
    );
  }

  // ---- Coupons and membership cards (merchants publish; wallets keep) ----
  app.post(
    '/v1/merchants/:merchantId/coupons',
    {
      config: { idempotency: 'optional' },
      schema: {
        tags: ['offers'],
        summary: 'Publish a coupon of your merchant: an amount or a percentage off, a minimum spend, an expiry and a per-customer limit',
        description: 'Give exactly one of `amountOff` and `percentOff`. With `pointsCost`, issuers’ cardholders take it for reward points instead of keeping it for free.',
        security: sec,
        params: MerchantParams,
        body: Strict({
          name: Type.String({ minLength: 1, maxLength: 80 }),
          amountOff: Type.Optional(AmountString),
          percentOff: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
          minSpend: Type.Optional(AmountString),
          perCustomerLimit: Type.Integer({ minimum: 1, maximum: 1000 }),
          pointsCost: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000 })),
          expiresAt: IsoDate,
        }),
        response: { 201: Type.Ref(CouponSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const b = request.body;
        const m = await coupons.merchantCurrency(me(request), request.params.merchantId);
        if (m === undefined) return { code: 'merchant_not_found', message: 'no such merchant' };
        const off = b.amountOff === undefined ? undefined : parseAmount(b.amountOff, m, { field: 'amountOff' });
        if (off !== undefined && !off.ok) return off.error;
        const min = b.minSpend === undefined ? undefined : parseAmount(b.minSpend, m, { field: 'minSpend', allowZero: true });
        if (min !== undefined && !min.ok) return min.error;
        const expiresAt = new Date(b.expiresAt);
        if (Number.isNaN(expiresAt.getTime())) return { code: 'coupon_invalid', message: 'expiresAt is not a date', details: { field: 'expiresAt' } };
        const r = await coupons.create(tx, actorOf(request), me(request), request.params.merchantId, {
          name: b.name,
          amountOffMinor: off?.value ?? null,
          percentOff: b.percentOff ?? null,
          minSpendMinor: min?.value ?? 0n,
          perCustomerLimit: b.perCustomerLimit,
          pointsCost: b.pointsCost === undefined ? null : BigInt(b.pointsCost),
          expiresAt,
        });
        return r.ok ? created(wireCoupon(r.value)) : r.error;
      }),
  );

  app.get(
    '/v1/merchants/:merchantId/coupons',
    { schema: { tags: ['offers'], summary: "Your merchant's coupons", security: sec, params: MerchantParams, response: { 200: Type.Object({ items: Type.Array(Type.Ref(CouponSchema)) }, { additionalProperties: false }) } } },
    async (request) => ({ items: (await coupons.listForMerchant(me(request), request.params.merchantId)).map(wireCoupon) }),
  );

  app.post(
    '/v1/coupons/:couponId/withdraw',
    {
      config: { idempotency: 'optional' },
      schema: { tags: ['offers'], summary: 'Withdraw one of your merchants’ coupons: no wallet may keep or use it any more', security: sec, params: Strict({ couponId: Ref('coupon', 'Your coupon') }), response: { 200: Type.Ref(CouponSchema) } },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await coupons.withdraw(tx, actorOf(request), me(request), request.params.couponId);
        return r.ok ? okResponse(wireCoupon(r.value)) : r.error;
      }),
  );

  app.get(
    '/v1/offers',
    {
      config: CUSTOMER,
      schema: {
        tags: ['offers'],
        summary: 'Coupons and membership programmes merchants publish, for your customers to keep',
        description: 'Coupons priced in reward points are not listed here: a cardholder takes one through their card’s rewards.',
        security: sec,
        response: { 200: Type.Object({ coupons: Type.Array(Type.Ref(CouponSchema)), membershipPrograms: Type.Array(Type.Ref(ProgramSchema)) }, { additionalProperties: false }) },
      },
    },
    async () => ({ coupons: (await coupons.offers()).map(wireCoupon), membershipPrograms: (await coupons.programs()).map(wireProgram) }),
  );

  app.post(
    '/v1/wallet/coupons',
    {
      config: { ...CUSTOMER, idempotency: 'optional' },
      schema: {
        tags: ['offers'],
        summary: "Keep a merchant's coupon in your customer's wallet (coupon_expired when it lapsed, coupon_already_held when kept)",
        security: sec,
        body: Strict({ customerId: Ref('customer', 'Your customer'), couponId: Ref('coupon', 'A published coupon') }),
        response: { 201: Type.Ref(WalletCouponSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const { customerId, couponId } = request.body;
        if ((await customers.get(me(request), customerId, tx)) === undefined) return { code: 'customer_not_found', message: 'no such customer' };
        const r = await coupons.claim(tx, actorOf(request, customerId), me(request), customerId, couponId);
        return r.ok ? created(wireWalletCoupon(r.value, now())) : r.error;
      }),
  );

  app.get(
    '/v1/wallet/coupons',
    {
      config: CUSTOMER,
      schema: {
        tags: ['offers'],
        summary: "The coupons and membership cards your customer keeps",
        security: sec,
        querystring: CustomerQuery,
        response: { 200: Type.Object({ coupons: Type.Array(Type.Ref(WalletCouponSchema)), memberships: Type.Array(Type.Ref(MembershipSchema)) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const { customerId } = request.query;
      if ((await customers.get(me(request), customerId)) === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      const t = now();
      return { coupons: (await coupons.wallet(me(request), customerId)).map((w) => wireWalletCoupon(w, t)), memberships: (await coupons.memberships(me(request), customerId)).map(wireMembership) };
    },
  );

  app.post(
    '/v1/wallet/offers/preview',
    {
      config: CUSTOMER,
      schema: {
        tags: ['offers'],
        summary: 'Before the customer confirms: the coupon a payment of a scanned code or a payment link would apply, the amount to pay, and their membership card there',
        description: 'Nothing is written. Paying the same code or link (POST /v1/wallet/payments/qr, POST /v1/payment-links/{linkId}/pay) applies the same coupon, checked again under its lock.',
        security: sec,
        body: Strict({
          customerId: Ref('customer', 'Your customer'),
          payload: Type.Optional(Type.String({ minLength: 20, maxLength: 512, description: 'The scanned merchant-presented code' })),
          linkId: Type.Optional(Ref('payment_link', 'A payment link')),
          amount: Type.Optional(Money),
          walletCouponId: Type.Optional(Ref('wallet_coupon', 'A coupon your customer keeps, to check instead of the best one')),
        }),
        response: {
          200: Type.Object(
            {
              merchantId: Type.String(),
              merchantName: Type.String(),
              amountDue: WireMoney,
              coupon: Nullable(Type.Object({ walletCouponId: Type.String(), couponId: Type.String(), name: Type.String(), discount: WireMoney }, { additionalProperties: false })),
              amountToPay: WireMoney,
              memberships: Type.Array(Type.Ref(MembershipSchema)),
            },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (request, reply) => {
      const b = request.body;
      if ((await customers.get(me(request), b.customerId)) === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      let merchantId: string;
      let merchantName: string;
      let amountMinor: bigint | null;
      let currency: string;
      if ((b.payload === undefined) === (b.linkId === undefined)) return reply.fail({ code: 'validation_failed', message: 'give either payload or linkId', details: { field: 'payload' } });
      if (b.payload !== undefined) {
        const q = await payments.previewQr(b.payload);
        if (!q.ok) return reply.fail(q.error);
        merchantId = q.value.merchant.id;
        merchantName = q.value.merchant.name;
        amountMinor = q.value.amountMinor;
        currency = q.value.currency;
      } else {
        const l = await payments.getLink(b.linkId!);
        if (l === undefined) return reply.fail({ code: 'payment_link_not_found', message: 'no such payment link' });
        merchantId = l.merchant.id;
        merchantName = l.merchant.name;
        amountMinor = l.link.amountMinor;
        currency = l.merchant.currency;
      }
      if (amountMinor === null) {
        if (b.amount === undefined) return reply.fail({ code: 'amount_required', message: 'a static code: send the amount the payer entered' });
        const a = parseMoney(b.amount);
        if (!a.ok) return reply.fail(a.error);
        if (a.value.currency !== currency) return reply.fail({ code: 'payment_currency_mismatch', message: `the merchant takes ${currency}` });
        amountMinor = a.value.amountMinor;
      }
      const r = await coupons.preview({ participantId: me(request), customerId: b.customerId, merchantId, amountMinor, currency, walletCouponId: b.walletCouponId });
      if (!r.ok) return reply.fail(r.error);
      const c = r.value.applied;
      return {
        merchantId,
        merchantName,
        amountDue: formatMoney(amountMinor, currency),
        coupon: c === undefined ? null : { walletCouponId: c.walletCouponId, couponId: c.couponId, name: c.name, discount: formatMoney(c.discountMinor, currency) },
        amountToPay: formatMoney(amountMinor - (c?.discountMinor ?? 0n), currency),
        memberships: r.value.memberships.map(wireMembership),
      };
    },
  );

  app.post(
    '/v1/merchants/:merchantId/membership-programs',
    {
      config: { idempotency: 'optional' },
      schema: { tags: ['offers'], summary: 'Start a membership programme of your merchant: wallets keep its membership cards', security: sec, params: MerchantParams, body: Strict({ name: Type.String({ minLength: 1, maxLength: 80 }) }), response: { 201: Type.Ref(ProgramSchema) } },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await coupons.createProgram(tx, actorOf(request), me(request), request.params.merchantId, request.body.name);
        return r.ok ? created(wireProgram(r.value)) : r.error;
      }),
  );

  app.post(
    '/v1/wallet/memberships',
    {
      config: { ...CUSTOMER, idempotency: 'optional' },
      schema: {
        tags: ['offers'],
        summary: "Join a merchant's membership programme: the membership card (its member number) is kept in your customer's wallet",
        security: sec,
        body: Strict({ customerId: Ref('customer', 'Your customer'), programId: Ref('membership_program', 'A membership programme') }),
        response: { 201: Type.Ref(MembershipSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const { customerId, programId } = request.body;
        if ((await customers.get(me(request), customerId, tx)) === undefined) return { code: 'customer_not_found', message: 'no such customer' };
        const r = await coupons.join(tx, actorOf(request, customerId), me(request), customerId, programId);
        return r.ok ? created(wireMembership(r.value)) : r.error;
      }),
  );

  // ---- Rewards (issuers) ----
  app.post(
    '/v1/card-products/:productId/reward-rules',
    {
      config: { idempotency: 'optional' },
      schema: {
        tags: ['rewards'],
        summary: 'Add a rewards rule to your card product: points per 1.00 spent, or cashback in basis points, for every category or one MCC, with an optional cap per card and month',
        description: 'Earned when a payment is captured, reversed in proportion when it is refunded. `monthlyCap`: points for a points rule, a decimal amount in the product’s currency for a cashback rule.',
        security: sec,
        params: ProductParams,
        body: Strict({
          kind: Type.Union([Type.Literal('points'), Type.Literal('cashback')]),
          mcc: Type.Optional(Type.String({ pattern: '^[0-9]{4}$' })),
          pointsPerUnit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          cashbackBps: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
          monthlyCap: Type.Optional(AmountString),
        }),
        response: { 201: Type.Ref(RuleSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const b = request.body;
        const product = await deps.cards.getProduct(me(request), request.params.productId);
        if (product === undefined) return { code: 'card_product_not_found', message: 'no such card product' };
        let cap: bigint | null = null;
        if (b.monthlyCap !== undefined) {
          if (b.kind === 'points') {
            if (!/^[1-9][0-9]{0,15}$/.test(b.monthlyCap)) return { code: 'reward_rule_invalid', message: 'a points cap is a whole number of points', details: { field: 'monthlyCap' } };
            cap = BigInt(b.monthlyCap);
          } else {
            const c = parseAmount(b.monthlyCap, product.currency, { field: 'monthlyCap' });
            if (!c.ok) return c.error;
            cap = c.value;
          }
        }
        const r = await rewards.createRule(tx, actorOf(request), me(request), request.params.productId, { kind: b.kind, mcc: b.mcc ?? null, pointsPerUnit: b.pointsPerUnit ?? null, cashbackBps: b.cashbackBps ?? null, monthlyCap: cap });
        return r.ok ? created(wireRule(r.value, product.currency)) : r.error;
      }),
  );

  app.get(
    '/v1/card-products/:productId/reward-rules',
    { schema: { tags: ['rewards'], summary: "Your card product's rewards rules", security: sec, params: ProductParams, response: { 200: Type.Object({ items: Type.Array(Type.Ref(RuleSchema)) }, { additionalProperties: false }) } } },
    async (request, reply) => {
      const product = await deps.cards.getProduct(me(request), request.params.productId);
      if (product === undefined) return reply.fail({ code: 'card_product_not_found', message: 'no such card product' });
      return { items: (await rewards.listRules(me(request), request.params.productId)).map((r) => wireRule(r, product.currency)) };
    },
  );

  app.get(
    '/v1/cards/:cardId/rewards',
    { config: CUSTOMER, schema: { tags: ['rewards'], summary: "Your card's rewards: points, cashback and the latest entries (earned, reversed, redeemed)", security: sec, params: CardParams, response: { 200: Type.Ref(BalanceSchema) } } },
    async (request) => wireBalance(await rewards.balance(request.params.cardId)),
  );

  app.get(
    '/v1/wallet/tokens/:tokenRef/rewards',
    {
      config: CUSTOMER,
      schema: {
        tags: ['rewards'],
        summary: "The rewards of the card behind one of your customer's tokens: points and cashback, as its issuer keeps them",
        description: 'The same balance in every wallet that holds the card. Entries name no payment (a payment made through another wallet is not yours to see).',
        security: sec,
        params: Strict({ tokenRef: Ref('token', 'Your token') }),
        response: { 200: Type.Ref(BalanceSchema) },
      },
    },
    async (request, reply) => {
      const cardId = await deps.tokenCard(me(request), request.params.tokenRef);
      if (cardId === undefined) return reply.fail({ code: 'token_not_found', message: 'no such token' });
      const b = wireBalance(await rewards.balance(cardId));
      return { ...b, cardId: null, entries: b.entries.map((e) => ({ ...e, paymentId: null })) };
    },
  );

  app.post(
    '/v1/cards/:cardId/rewards/redemptions',
    {
      config: { ...CUSTOMER, idempotency: 'required' },
      schema: {
        tags: ['rewards'],
        summary: "Redeem your card's rewards: cashback into the card's account (from your position), or points for a merchant's coupon priced in points",
        description: 'Cashback is a ledger transfer from your position to the card’s funding account (liquidity_exceeded past your cover). A coupon goes into the wallet of `customerId` (your customer). Past the balance: rewards_insufficient.',
        security: sec,
        params: CardParams,
        body: Strict({
          kind: Type.Union([Type.Literal('cashback'), Type.Literal('coupon')]),
          amount: Type.Optional(Money),
          couponId: Type.Optional(Ref('coupon', 'A coupon priced in points')),
          customerId: Type.Optional(Ref('customer', 'Your customer whose wallet keeps the coupon')),
        }),
        response: { 201: Type.Object({ redemptionId: Type.String(), balance: Type.Ref(BalanceSchema), walletCoupon: Nullable(Type.Ref(WalletCouponSchema)), transferId: Nullable(Type.String()) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) =>
      idempotent(
        request,
        reply,
        async (tx) => {
          const b = request.body;
          const cardId = request.params.cardId;
          let r;
          if (b.kind === 'cashback') {
            if (b.amount === undefined) return { code: 'validation_failed', message: 'a cashback redemption gives the amount', details: { field: 'amount' } };
            const a = parseMoney(b.amount);
            if (!a.ok) return a.error;
            r = await rewards.redeem(tx, actorOf(request), cardId, { kind: 'cashback', amountMinor: a.value.amountMinor, currency: a.value.currency });
          } else {
            if (b.couponId === undefined || b.customerId === undefined) return { code: 'validation_failed', message: 'a coupon redemption gives couponId and customerId', details: { field: b.couponId === undefined ? 'couponId' : 'customerId' } };
            if ((await customers.get(me(request), b.customerId, tx)) === undefined) return { code: 'customer_not_found', message: 'no such customer' };
            r = await rewards.redeem(tx, actorOf(request, b.customerId), cardId, { kind: 'coupon', couponId: b.couponId, participantId: me(request), customerId: b.customerId });
          }
          if (!r.ok) return r.error;
          return created({ redemptionId: r.value.entryId, balance: wireBalance(r.value.balance), walletCoupon: r.value.walletCoupon === null ? null : wireWalletCoupon(r.value.walletCoupon, now()), transferId: r.value.transferId });
        },
        { required: true },
      ),
  );

  // ---- Offers targeted by the customer's own spending (issuers publish, wallets show them with consent) ----
  app.get(
    '/v1/wallet/targeted-offers/consent',
    { config: CUSTOMER, schema: { tags: ['offers'], summary: "Whether your customer consented to offers targeted by their own card spending (default: no)", security: sec, querystring: CustomerQuery, response: { 200: Type.Ref(ConsentSchema) } } },
    async (request, reply) => {
      const { customerId } = request.query;
      if ((await customers.get(me(request), customerId)) === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      return wireConsent(await targeted.consent(me(request), customerId));
    },
  );

  app.post(
    '/v1/wallet/targeted-offers/consent',
    {
      config: { ...CUSTOMER, idempotency: 'optional' },
      schema: {
        tags: ['offers'],
        summary: "Give or withdraw your customer's consent to offers targeted by their own card spending",
        description: 'Recorded with its time and audited. Without consent the hub reads nothing of the customer’s spending for offers; withdrawing also removes what was computed (offers already accepted stay accepted).',
        security: sec,
        body: Strict({ customerId: Ref('customer', 'Your customer'), consent: Type.Boolean() }),
        response: { 200: Type.Ref(ConsentSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const { customerId, consent } = request.body;
        if ((await customers.get(me(request), customerId, tx)) === undefined) return { code: 'customer_not_found', message: 'no such customer' };
        return okResponse(wireConsent(await targeted.setConsent(tx, actorOf(request, customerId), me(request), customerId, consent)));
      }),
  );

  app.get(
    '/v1/wallet/targeted-offers',
    {
      config: CUSTOMER,
      schema: {
        tags: ['offers'],
        summary: 'The targeted offers your customer is eligible for (none without their consent)',
        description: 'Evaluated over the spending of the cards behind your customer’s tokens, each offer only over its own issuer’s cards. The issuer is told how many customers were eligible, never who.',
        security: sec,
        querystring: CustomerQuery,
        response: { 200: Type.Object({ consent: Type.Boolean(), items: Type.Array(Type.Ref(EligibleOfferSchema)) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const { customerId } = request.query;
      if ((await customers.get(me(request), customerId)) === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      const c = await targeted.consent(me(request), customerId);
      return { consent: c.consented, items: c.consented ? (await targeted.eligible(me(request), customerId)).map(wireEligible) : [] };
    },
  );

  app.post(
    '/v1/wallet/targeted-offers/:offerId/accept',
    {
      config: { ...CUSTOMER, idempotency: 'optional' },
      schema: {
        tags: ['offers'],
        summary: "Accept a targeted offer your customer is eligible for: its coupon goes into their wallet",
        description: 'offer_consent_required without consent; targeted_offer_not_eligible when the spending condition is not met; targeted_offer_accepted when accepted before.',
        security: sec,
        params: Strict({ offerId: Ref('targeted_offer', 'A targeted offer') }),
        body: Strict({ customerId: Ref('customer', 'Your customer') }),
        response: { 201: Type.Object({ offerId: Type.String(), walletCoupon: Type.Ref(WalletCouponSchema) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const { customerId } = request.body;
        if ((await customers.get(me(request), customerId, tx)) === undefined) return { code: 'customer_not_found', message: 'no such customer' };
        const r = await targeted.accept(tx, actorOf(request, customerId), me(request), customerId, request.params.offerId);
        return r.ok ? created({ offerId: r.value.offer.id, walletCoupon: wireWalletCoupon(r.value.walletCoupon, now()) }) : r.error;
      }),
  );

  app.post(
    '/v1/issuer/targeted-offers',
    {
      config: { idempotency: 'optional' },
      schema: {
        tags: ['offers'],
        summary: "Publish an offer for your cardholders targeted by their own spending: spent at least minSpend at a category (mcc) or at the coupon's merchant in the last windowDays days; a merchant's free coupon is offered",
        description: 'Shown only to customers who consented in their wallet, evaluated only over the cards you issued. You see how many were eligible and accepted, never who.',
        security: sec,
        body: Strict({
          name: Type.String({ minLength: 1, maxLength: 80 }),
          mcc: Type.Optional(Type.String({ pattern: '^[0-9]{4}$', description: 'Spend at this merchant category counts; without it, spend at the coupon’s merchant' })),
          minSpend: Money,
          windowDays: Type.Integer({ minimum: 1, maximum: 365 }),
          couponId: Ref('coupon', 'A published coupon (free to keep)'),
          expiresAt: IsoDate,
        }),
        response: { 201: Type.Ref(IssuerTargetedOfferSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const b = request.body;
        const m = parseMoney(b.minSpend);
        if (!m.ok) return m.error;
        if (m.value.amountMinor <= 0n) return { code: 'targeted_offer_invalid', message: 'minSpend must be positive', details: { field: 'minSpend' } };
        const r = await targeted.create(tx, actorOf(request), me(request), { name: b.name, mcc: b.mcc ?? null, minSpendMinor: m.value.amountMinor, currency: m.value.currency, windowDays: b.windowDays, couponId: b.couponId, expiresAt: new Date(b.expiresAt) });
        return r.ok ? created({ ...wireTargeted(r.value), eligibleCount: 0, acceptedCount: 0 }) : r.error;
      }),
  );

  app.get(
    '/v1/issuer/targeted-offers',
    { schema: { tags: ['offers'], summary: 'Your targeted offers, with how many customers were eligible and accepted (no one named)', security: sec, response: { 200: Type.Object({ items: Type.Array(Type.Ref(IssuerTargetedOfferSchema)) }, { additionalProperties: false }) } } },
    async (request) => ({ items: (await targeted.listForIssuer(me(request))).map((o) => ({ ...wireTargeted(o), eligibleCount: o.eligibleCount, acceptedCount: o.acceptedCount })) }),
  );

  app.post(
    '/v1/issuer/targeted-offers/:offerId/withdraw',
    {
      config: { idempotency: 'optional' },
      schema: { tags: ['offers'], summary: 'Withdraw your targeted offer: no longer shown or accepted (coupons already kept stay)', security: sec, params: Strict({ offerId: Ref('targeted_offer', 'Your targeted offer') }), response: { 200: Type.Ref(IssuerTargetedOfferSchema) } },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await targeted.withdraw(tx, actorOf(request), me(request), request.params.offerId);
        if (!r.ok) return r.error;
        const counts = (await targeted.listForIssuer(me(request))).find((o) => o.id === r.value.id);
        return okResponse({ ...wireTargeted(r.value), eligibleCount: counts?.eligibleCount ?? 0, acceptedCount: counts?.acceptedCount ?? 0 });
      }),
  );

  app.get(
    '/v1/issuer/insights',
    {
      schema: {
        tags: ['rewards'],
        summary: "Insights over your own cards: spend by category, merchant, channel, wallet and month, and decline reasons per day",
        description: 'Totals only, over payments and declines of cards you issued: no customer, card or payment is named, and no other participant’s cards are counted. Default range: the last 90 days.',
        security: sec,
        querystring: Strict({ from: Type.Optional(IsoDate), to: Type.Optional(IsoDate) }),
        response: { 200: Type.Ref(InsightsSchema) },
      },
    },
    async (request, reply) => {
      const to = request.query.to === undefined ? new Date(now().getTime() + 1000) : new Date(request.query.to);
      const from = request.query.from === undefined ? new Date(to.getTime() - 90 * DAY_MS) : new Date(request.query.from);
      if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || from >= to) return reply.fail({ code: 'validation_failed', message: 'from must be a date before to', details: { field: 'from' } });
      const i = await insights.insights(me(request), { from, to });
      return {
        from: from.toISOString(),
        to: to.toISOString(),
        byCategory: i.byCategory.map(wireInsight),
        byMerchant: i.byMerchant.map((m) => ({ ...wireInsight(m), name: m.name })),
        byChannel: i.byChannel.map(wireInsight),
        byWallet: i.byWallet.map(wireInsight),
        byMonth: i.byMonth.map(wireInsight),
        declines: i.declines,
      };
    },
  );
}
