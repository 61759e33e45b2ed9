import type { AccountService } from '../accounts/index.ts';
import type { Idempotent } from '../api/index.ts';
import type { AuditService } from '../audit/index.ts';
import type { CardsModule } from '../cards/index.ts';
import type { CustomerLinkService, CustomerService } from '../customers/index.ts';
import type { Ledger } from '../ledger/index.ts';
import type { PaymentsModule } from '../payments/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import { createCouponService, type CouponService } from './coupons.ts';
import { createPotService, type PotService } from './pots.ts';
import { createRewardService, type RewardService } from './rewards.ts';
import { registerValueRoutes } from './routes.ts';
import { createTargetedOfferService, type TargetedOfferService } from './targeted.ts';

/**
 * Value beyond paying: issuers' rewards (earned at capture, reversed on refund, redeemed as cashback or for coupons)
 * and insights, merchants' coupons and membership cards kept in wallets (applied to payments by the card pipeline),
 * customers' savings pots, and issuers' offers targeted by a consenting customer's own card spending. Created after payments; it hands the pipeline its hooks (payments.value).
 */
export interface ValueModule {
  readonly pots: PotService;
  readonly coupons: CouponService;
  readonly rewards: RewardService;
  readonly targeted: TargetedOfferService;
  registerRoutes(app: HttpServer, deps: { idempotent: Idempotent }): void;
}

export function createValueModule(deps: {
  db: Db;
  clock: Clock;
  audit: AuditService;
  events: EventOutbox;
  ledger: Ledger;
  accounts: AccountService;
  customers: CustomerService;
  customerLinks: CustomerLinkService;
  cards: CardsModule;
  payments: PaymentsModule;
}): ValueModule {
  const { db, clock, audit, events, ledger, accounts, payments } = deps;
  const pots = createPotService({ db, clock, audit, events, ledger, accounts, customerLinks: deps.customerLinks });
  const coupons = createCouponService({ db, clock, audit, events, merchants: payments.merchants });
  const rewards = createRewardService({ db, clock, audit, events, ledger, accounts, cards: deps.cards.cards, coupons });
  const targeted = createTargetedOfferService({
    db,
    clock,
    audit,
    events,
    coupons,
    insights: payments.insights,
    customerCards: async (walletId, customerId) =>
      (await deps.cards.walletTokens.listForWallet(walletId, { customerId, limit: 200 })).filter((t) => t.status !== 'deleted').map((t) => ({ cardId: t.cardId, issuerParticipantId: t.issuerParticipantId })),
  });
  payments.value.offers = coupons.paymentOffers;
  payments.value.rewards = rewards;
  return {
    pots,
    coupons,
    rewards,
    targeted,
    registerRoutes(app, { idempotent }) {
      registerValueRoutes(app, {
        idempotent,
        customers: deps.customers,
        pots,
        coupons,
        rewards,
        targeted,
        insights: payments.insights,
        payments: payments.payments,
        cards: { getProduct: (issuerId, productId) => deps.cards.cards.getProduct(issuerId, productId) },
        tokenCard: async (walletId, tokenRef) => (await deps.cards.walletTokens.getForWallet(walletId, tokenRef))?.cardId,
        now: () => clock.now(),
      });
    },
  };
}
