import type { Actor, AuditService } from '../audit/index.ts';
import type { InsightService } from '../payments/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { Coupon, CouponService, WalletCoupon } from './coupons.ts';
import type { VErr } from './errors.ts';

/**
 * Offers targeted by a customer's own card spending (tables offer_consents, targeted_offers,
 * targeted_offer_eligibility, targeted_offer_acceptances). A wallet records its customer's consent (none by default);
 * an issuer publishes an offer for its cardholders — spent at least an amount at a merchant category, or at the
 * merchant of the coupon offered, in the last N days — linking a merchant's free coupon. Only for a consenting customer, and only over the cards of the
 * offer's issuer behind that customer's tokens in that wallet, the hub sums the captured (less refunded) spend; without
 * consent nothing is read. The issuer is told counts (eligible, accepted), never who.
 */
export interface OfferConsent {
  readonly customerId: string;
  readonly consented: boolean;
  readonly givenAt: Date | null;
  readonly withdrawnAt: Date | null;
}

export interface TargetedOffer {
  readonly id: string;
  readonly issuerParticipantId: string;
  readonly name: string;
  readonly mcc: string | null;
  readonly merchantId: string | null;
  readonly minSpendMinor: bigint;
  readonly currency: string;
  readonly windowDays: number;
  readonly couponId: string;
  readonly expiresAt: Date;
  readonly status: 'active' | 'withdrawn';
  readonly createdAt: Date;
}

export interface IssuerTargetedOffer extends TargetedOffer {
  readonly eligibleCount: number;
  readonly acceptedCount: number;
}

export interface EligibleOffer {
  readonly offer: TargetedOffer;
  readonly coupon: Coupon;
  readonly accepted: boolean;
}

export interface NewTargetedOffer {
  readonly name: string;
  /** The merchant category whose spend counts; null: spend at the coupon's merchant. */
  readonly mcc: string | null;
  readonly minSpendMinor: bigint;
  readonly currency: string;
  readonly windowDays: number;
  readonly couponId: string;
  readonly expiresAt: Date;
}

export interface TargetedOfferService {
  consent(participantId: string, customerId: string, q?: Queryable): Promise<OfferConsent>;
  setConsent(tx: Queryable, actor: Actor, participantId: string, customerId: string, consented: boolean): Promise<OfferConsent>;
  create(tx: Queryable, actor: Actor, issuerId: string, input: NewTargetedOffer): Promise<Result<TargetedOffer, VErr>>;
  /** The issuer's offers with how many customers were found eligible and accepted (no one named). */
  listForIssuer(issuerId: string): Promise<IssuerTargetedOffer[]>;
  withdraw(tx: Queryable, actor: Actor, issuerId: string, offerId: string): Promise<Result<TargetedOffer, VErr>>;
  /** The offers the customer is eligible for; none, and nothing read, without their consent. */
  eligible(participantId: string, customerId: string, q?: Queryable): Promise<EligibleOffer[]>;
  accept(tx: Queryable, actor: Actor, participantId: string, customerId: string, offerId: string): Promise<Result<{ offer: TargetedOffer; walletCoupon: WalletCoupon }, VErr>>;
}

interface OfferRow {
  id: string;
  issuer_participant_id: string;
  name: string;
  mcc: string | null;
  merchant_id: string | null;
  min_spend_minor: string | bigint;
  currency: string;
  window_days: number;
  coupon_id: string;
  expires_at: Date;
  status: 'active' | 'withdrawn';
  created_at: Date;
}
const toOffer = (r: OfferRow): TargetedOffer => ({
  id: r.id,
  issuerParticipantId: r.issuer_participant_id,
  name: r.name,
  mcc: r.mcc,
  merchantId: r.merchant_id,
  minSpendMinor: BigInt(r.min_spend_minor),
  currency: r.currency,
  windowDays: r.window_days,
  couponId: r.coupon_id,
  expiresAt: r.expires_at,
  status: r.status,
  createdAt: r.created_at,
});

const MAX_ACTIVE_PER_ISSUER = 50;
const DAY_MS = 86_400_000;

export function createTargetedOfferService(deps: {
  db: Db;
  clock: Clock;
  audit: AuditService;
  events: EventOutbox;
  coupons: Pick<CouponService, 'get' | 'claim'>;
  /** The cards behind the customer's tokens in this wallet (not deleted), with their issuers. */
  customerCards: (walletId: string, customerId: string) => Promise<{ cardId: string; issuerParticipantId: string }[]>;
  insights: Pick<InsightService, 'cardSpend'>;
}): TargetedOfferService {
  const { db, clock, audit, events } = deps;

  const consent: TargetedOfferService['consent'] = async (participantId, customerId, q = db) => {
    const [r] = await q.query<{ consented: boolean; given_at: Date | null; withdrawn_at: Date | null }>('select consented, given_at, withdrawn_at from offer_consents where participant_id = $1 and customer_id = $2', [participantId, customerId]);
    return { customerId, consented: r?.consented ?? false, givenAt: r?.given_at ?? null, withdrawnAt: r?.withdrawn_at ?? null };
  };

  /**
   * The active offers of the issuers of the customer's cards (behind their tokens in this wallet), each with the spend
   * that counts for it: that issuer's cards only, the offer's currency, category or merchant, and window. Called only
   * once consent is established.
   */
  const evaluate = async (q: Queryable, participantId: string, customerId: string, offerId?: string) => {
    const cards = await deps.customerCards(participantId, customerId);
    if (cards.length === 0) return [];
    const now = clock.now();
    const rows = await q.query<OfferRow>(
      `select * from targeted_offers where issuer_participant_id = any($1::text[]) and status = 'active' and expires_at > $2 and ($3::text is null or id = $3) order by created_at, id limit 200`,
      [[...new Set(cards.map((c) => c.issuerParticipantId))], now, offerId ?? null],
    );
    const eligible: TargetedOffer[] = [];
    for (const offer of rows.map(toOffer)) {
      // Only the offer's own issuer's cards count.
      const cardIds = cards.filter((c) => c.issuerParticipantId === offer.issuerParticipantId).map((c) => c.cardId);
      const spent = await deps.insights.cardSpend(q, { issuerParticipantId: offer.issuerParticipantId, cardIds, currency: offer.currency, since: new Date(now.getTime() - offer.windowDays * DAY_MS), until: now, mcc: offer.mcc, merchantId: offer.merchantId });
      if (spent >= offer.minSpendMinor) eligible.push(offer);
    }
    return eligible;
  };

  return {
    consent,

    async setConsent(tx, actor, participantId, customerId, consented) {
      const now = clock.now();
      await tx.query(
        `insert into offer_consents (participant_id, customer_id, consented, given_at, withdrawn_at, updated_at) values ($1, $2, $3, case when $3 then $4::timestamptz end, case when $3 then null else $4::timestamptz end, $4)
         on conflict (participant_id, customer_id) do update set consented = excluded.consented,
           given_at = case when excluded.consented then excluded.updated_at else offer_consents.given_at end,
           withdrawn_at = case when excluded.consented then null else excluded.updated_at end,
           updated_at = excluded.updated_at`,
        [participantId, customerId, consented, now],
      );
      // Withdrawn: what was computed from the consent goes (offers already accepted stay accepted).
      if (!consented) {
        await tx.query(
          `delete from targeted_offer_eligibility e where e.participant_id = $1 and e.customer_id = $2
             and not exists (select 1 from targeted_offer_acceptances a where a.offer_id = e.offer_id and a.participant_id = e.participant_id and a.customer_id = e.customer_id)`,
          [participantId, customerId],
        );
      }
      await audit.record(tx, { actor, action: consented ? 'offer_consent.given' : 'offer_consent.withdrawn', objectType: 'customer', objectId: customerId, details: { at: now.toISOString() } });
      return consent(participantId, customerId, tx);
    },

    async create(tx, actor, issuerId, input) {
      const now = clock.now();
      if (input.expiresAt <= now) return err('targeted_offer_invalid', 'expiresAt must be in the future', { field: 'expiresAt' });
      const coupon = await deps.coupons.get(input.couponId, tx);
      if (coupon === undefined) return err('coupon_not_found', 'no such coupon');
      if (coupon.status !== 'active' || now >= coupon.expiresAt) return err('coupon_expired', 'the coupon has expired', { couponId: coupon.id });
      if (coupon.pointsCost !== null) return err('targeted_offer_invalid', 'a coupon priced in reward points cannot be offered', { field: 'couponId' });
      if (input.mcc === null && coupon.currency !== input.currency) return err('targeted_offer_invalid', `the coupon's merchant takes ${coupon.currency}`, { field: 'minSpend' });
      const merchantId = input.mcc === null ? coupon.merchantId : null;
      const [n] = await tx.query<{ n: number }>(`select count(*)::int as n from targeted_offers where issuer_participant_id = $1 and status = 'active' and expires_at > $2`, [issuerId, now]);
      if ((n?.n ?? 0) >= MAX_ACTIVE_PER_ISSUER) return err('targeted_offer_invalid', `at most ${MAX_ACTIVE_PER_ISSUER} active targeted offers`);
      const id = newId('tgo');
      const [row] = await tx.query<OfferRow>(
        `insert into targeted_offers (id, issuer_participant_id, name, mcc, merchant_id, min_spend_minor, currency, window_days, coupon_id, expires_at, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning *`,
        [id, issuerId, input.name, input.mcc, merchantId, input.minSpendMinor, input.currency, input.windowDays, input.couponId, input.expiresAt, now],
      );
      await audit.record(tx, { actor, action: 'targeted_offer.created', objectType: 'targeted_offer', objectId: id, details: { mcc: input.mcc, merchantId, minSpendMinor: input.minSpendMinor.toString(), currency: input.currency, windowDays: input.windowDays, couponId: input.couponId } });
      return ok(toOffer(row!));
    },

    async listForIssuer(issuerId) {
      const rows = await db.query<OfferRow & { eligible: number; accepted: number }>(
        `select o.*, (select count(*)::int from targeted_offer_eligibility e where e.offer_id = o.id) as eligible,
                (select count(*)::int from targeted_offer_acceptances a where a.offer_id = o.id) as accepted
           from targeted_offers o where o.issuer_participant_id = $1 order by o.created_at desc, o.id limit 200`,
        [issuerId],
      );
      return rows.map((r) => ({ ...toOffer(r), eligibleCount: Number(r.eligible), acceptedCount: Number(r.accepted) }));
    },

    async withdraw(tx, actor, issuerId, offerId) {
      const [row] = await tx.query<OfferRow>(`update targeted_offers set status = 'withdrawn' where id = $1 and issuer_participant_id = $2 returning *`, [offerId, issuerId]);
      if (row === undefined) return err('targeted_offer_not_found', 'no such targeted offer of yours');
      await audit.record(tx, { actor, action: 'targeted_offer.withdrawn', objectType: 'targeted_offer', objectId: offerId, details: {} });
      return ok(toOffer(row));
    },

    async eligible(participantId, customerId, q = db) {
      if (!(await consent(participantId, customerId, q)).consented) return [];
      const offers = await evaluate(q, participantId, customerId);
      if (offers.length === 0) return [];
      await q.query(
        `insert into targeted_offer_eligibility (offer_id, participant_id, customer_id, first_eligible_at) select unnest($1::text[]), $2, $3, $4 on conflict do nothing`,
        [offers.map((o) => o.id), participantId, customerId, clock.now()],
      );
      const accepted = new Set(
        (await q.query<{ offer_id: string }>('select offer_id from targeted_offer_acceptances where participant_id = $1 and customer_id = $2 and offer_id = any($3::text[])', [participantId, customerId, offers.map((o) => o.id)])).map((r) => r.offer_id),
      );
      const out: EligibleOffer[] = [];
      for (const offer of offers) {
        const coupon = await deps.coupons.get(offer.couponId, q);
        if (coupon === undefined || coupon.status !== 'active' || clock.now() >= coupon.expiresAt) continue;
        out.push({ offer, coupon, accepted: accepted.has(offer.id) });
      }
      return out;
    },

    async accept(tx, actor, participantId, customerId, offerId) {
      // One decision per customer at a time: the consent row is locked while the offer is checked and accepted.
      const [c] = await tx.query<{ consented: boolean }>('select consented from offer_consents where participant_id = $1 and customer_id = $2 for update', [participantId, customerId]);
      if (c?.consented !== true) return err('offer_consent_required', 'the customer has not consented to targeted offers');
      const [offer] = await evaluate(tx, participantId, customerId, offerId);
      if (offer === undefined) return err('targeted_offer_not_eligible', 'the customer is not eligible for this offer', { offerId });
      const [done] = await tx.query<{ id: string }>('select id from targeted_offer_acceptances where offer_id = $1 and participant_id = $2 and customer_id = $3', [offerId, participantId, customerId]);
      if (done !== undefined) return err('targeted_offer_accepted', 'the customer already accepted this offer', { offerId });
      const claimed = await deps.coupons.claim(tx, actor, participantId, customerId, offer.couponId, 'offer');
      if (!claimed.ok) return claimed;
      const now = clock.now();
      await tx.query(`insert into targeted_offer_eligibility (offer_id, participant_id, customer_id, first_eligible_at) values ($1, $2, $3, $4) on conflict do nothing`, [offerId, participantId, customerId, now]);
      await tx.query('insert into targeted_offer_acceptances (id, offer_id, participant_id, customer_id, wallet_coupon_id, created_at) values ($1, $2, $3, $4, $5, $6)', [newId('tga'), offerId, participantId, customerId, claimed.value.id, now]);
      await audit.record(tx, { actor, action: 'targeted_offer.accepted', objectType: 'targeted_offer', objectId: offerId, details: { customerId, walletCouponId: claimed.value.id } });
      const [n] = await tx.query<{ n: number }>('select count(*)::int as n from targeted_offer_acceptances where offer_id = $1', [offerId]);
      await events.emit(tx, { participantId: offer.issuerParticipantId, type: 'targeted_offer.accepted', data: { offerId, acceptedCount: Number(n?.n ?? 0) } });
      return ok({ offer, walletCoupon: claimed.value });
    },
  };
}
