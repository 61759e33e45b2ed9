import type { AuditService } from '../audit/index.ts';
import type { Idempotent } from '../api/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import type { Vault } from '../platform/vault.ts';
import { createTokenPropagation } from './token-propagation.ts';
import { registerWalletTokenRoutes } from './token-routes.ts';
import { createWalletTokenService, type WalletTokenService } from './token-service.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { StepUpService } from '../stepup/index.ts';
import { createRequestKeys, sweepRequestKeys } from './request-keys.ts';
import { registerCardRoutes } from './routes.ts';
import { createCardService, type CardService, type OpenCreditAccount } from './service.ts';
import type { CreditOf } from './model.ts';

/** One card, many wallets: the issuer's cards and the wallets' tokens, wired as one module. */
export interface CardsModule {
  readonly cards: CardService;
  readonly walletTokens: WalletTokenService;
  registerRoutes(app: HttpServer, deps: { idempotent: Idempotent }): void;
  /** Forgets Idempotency-Keys of card and token requests past the retention (one bounded batch). */
  sweep(): Promise<number>;
}

export function createCardsModule(deps: { db: Db; clock: Clock; vault: Vault; audit: AuditService; events: EventOutbox; stepUp: StepUpService; openCreditAccount?: OpenCreditAccount; creditOf?: CreditOf }): CardsModule {
  const propagation = createTokenPropagation(deps);
  const cards = createCardService({ ...deps, tokens: propagation });
  const walletTokens = createWalletTokenService({ ...deps, cards });
  const withRequestKey = createRequestKeys(deps);
  return {
    cards,
    walletTokens,
    registerRoutes(app, { idempotent }) {
      registerCardRoutes(app, { cards, walletTokens, idempotent, withRequestKey, db: deps.db, stepUp: deps.stepUp });
      registerWalletTokenRoutes(app, { walletTokens, idempotent, withRequestKey, db: deps.db, creditOf: deps.creditOf });
    },
    sweep: () => sweepRequestKeys(deps),
  };
}
