import type { RefLearner } from '../api/index.ts';
import type { AuditService } from '../audit/index.ts';
import type { Idempotent } from '../api/index.ts';
import type { CardsModule } from '../cards/index.ts';
import { createMerchantService, type MerchantService } from '../merchants/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import type { OutboundFetch, OutboundPolicy } from '../platform/outbound.ts';
import type { Vault } from '../platform/vault.ts';
import type { TransfersModule } from '../transfers/index.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import { createIssuerGateway, type IssuerGateway } from './issuer.ts';
import { createPaymentRuleStore, type PaymentRuleStore } from './risk-rules.ts';
import { registerPaymentRoutes } from './routes.ts';
import { createPaymentService, type ConnectedBanks, type PaymentService } from './service.ts';
import { createInsightService, type InsightService } from './insights.ts';
import type { ValueHooks } from './offers.ts';
import type { StepUpService } from '../stepup/index.ts';
import type { SettlementService } from '../settlement/index.ts';

/** Acceptance (pay anywhere): merchants, QR (MPM and CPM), tap, payment links, one authorization pipeline. */
export interface PaymentsModule {
  readonly merchants: MerchantService;
  readonly payments: PaymentService;
  readonly issuers: IssuerGateway;
  readonly paymentRules: PaymentRuleStore;
  /** Issuers' insights over their own cards' payments and declines. */
  readonly insights: InsightService;
  /** Coupons and rewards: the composition root fills these in once it has created them (src/value). */
  readonly value: ValueHooks;
  registerRoutes(app: HttpServer, deps: { idempotent: Idempotent }): void;
  /** Expires uncaptured holds (registered at the background anchor). */
  sweep(): Promise<{ expired: number; reversed: number }>;
  /** Reverses unused issuer approvals and aborts banks' unused reserves once their deadline passed. */
  sweepAsks(): Promise<{ reversed: number; used: number }>;
}

export const PAYMENT_SWEEP_MS = 60_000;

export function createPaymentsModule(deps: {
  db: Db;
  clock: Clock;
  vault: Vault;
  audit: AuditService;
  events: EventOutbox;
  cards: CardsModule;
  transfers: TransfersModule;
  stepUp: StepUpService;
  /** Checks issuers' authorization URLs when they are set. */
  outbound: OutboundPolicy;
  /** The issuers' real-time authorization calls: the outbound policy's guarded fetch, or a test's. */
  fetch: OutboundFetch;
  holdTtlMs?: number;
  /** The ownership registry, told the holders of each committed payment. */
  refs?: RefLearner;
  /** Records the position legs of card payments between participants in the open settlement window. */
  settlement: Pick<SettlementService, 'recordMoves'>;
  /** Banks that keep their own books: payments from accounts there are reserved at the bank. */
  banks?: ConnectedBanks;
}): PaymentsModule {
  const { db, clock, vault, audit, events, cards, transfers } = deps;
  const { ledger, accounts, risk, fx } = transfers;
  const merchants = createMerchantService({ db, clock, audit, events, ledger });
  const issuers = createIssuerGateway({ db, clock, vault, audit, outbound: deps.outbound, fetch: deps.fetch });
  const paymentRules = createPaymentRuleStore({ db, clock, audit });
  const insights = createInsightService({ db, clock, merchants });
  const value: ValueHooks = {};
  const payments = createPaymentService({
    value,
    recordDeclines: (q, items) => insights.recordDeclines(q, items),
    db,
    clock,
    audit,
    events,
    ledger,
    accounts,
    cards: cards.cards,
    walletTokens: cards.walletTokens,
    risk,
    fx,
    merchants,
    issuers,
    paymentRules,
    stepUp: deps.stepUp,
    settlement: deps.settlement,
    ...(deps.holdTtlMs !== undefined ? { holdTtlMs: deps.holdTtlMs } : {}),
    ...(deps.refs !== undefined ? { refs: deps.refs } : {}),
    ...(deps.banks !== undefined ? { banks: deps.banks } : {}),
  });
  return {
    merchants,
    payments,
    issuers,
    paymentRules,
    insights,
    value,
    registerRoutes(app, { idempotent }) {
      registerPaymentRoutes(app, { db, idempotent, merchants, payments, issuers, paymentRules });
    },
    sweep: () => payments.sweep(),
    sweepAsks: () => payments.sweepAsks(),
  };
}
