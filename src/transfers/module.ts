import type { RefLearner } from '../api/index.ts';
import type { AuditService } from '../audit/index.ts';
import { createAccountService, createOpenBankingService, type AccountService, type OpenBankingService } from '../accounts/index.ts';
import type { OpenBankingClient } from '../connectors/index.ts';
import { createAliasService, type AliasService } from '../aliases/index.ts';
import type { Idempotent } from '../api/index.ts';
import type { CustomerService } from '../customers/index.ts';
import { createFxService, registerFxProviderRoutes, type FxService } from '../fx/index.ts';
import { createLedger, type Ledger } from '../ledger/index.ts';
import { createRiskService, type RiskService } from '../risk/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import type { Vault } from '../platform/vault.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { StepUpService } from '../stepup/index.ts';
import type { SettlementService } from '../settlement/index.ts';
import { registerTransferRoutes } from './routes.ts';
import { createTransferService, ledgerMoneyMover, type ConnectedSides, type TransferService } from './service.ts';

/** Transfers wired together: accounts and links, alias directory, FX, risk, and the P2P flows on top of the ledger. */
export interface TransfersModule {
  readonly ledger: Ledger;
  readonly accounts: AccountService;
  /** Accounts at connected banks linked by the bank's OAuth consent (undefined without connected participants). */
  readonly openBanking: OpenBankingService | undefined;
  readonly aliases: AliasService;
  readonly fx: FxService;
  readonly risk: RiskService;
  readonly transfers: TransferService;
  registerRoutes(app: HttpServer, deps: { idempotent: Idempotent }): void;
  /** The red-packet expiry sweeper (registered at the background anchor). */
  sweep(): Promise<{ refunded: number; completed: number }>;
}

export const RED_PACKET_SWEEP_MS = 30_000;

export function createTransfersModule(deps: { db: Db; clock: Clock; audit: AuditService; events: EventOutbox; vault: Vault; customers: CustomerService; stepUp: StepUpService; ledger?: Ledger; refs?: RefLearner; settlement?: Pick<SettlementService, 'recordMoves'>; connected?: ConnectedSides; openBankingClient?: OpenBankingClient }): TransfersModule {
  const { db, clock, audit, events, vault, customers, stepUp } = deps;
  // The ledger keeps no state between calls (applyInTx runs in the caller's transaction): a private instance is safe to share the database with.
  const ledger = deps.ledger ?? createLedger({ db, clock });
  const connected = deps.connected;
  const accounts = createAccountService({
    db, clock, audit, events, vault, ledger, customers,
    connected: connected === undefined ? undefined : async (participantId, currency, q) => (await connected.connection(participantId, currency, q)) !== undefined,
  });
  const openBanking =
    connected === undefined || deps.openBankingClient === undefined
      ? undefined
      : createOpenBankingService({ db, clock, audit, events, vault, customers, ledger, bank: deps.openBankingClient, connection: (p, c, q) => connected.connection(p, c, q) });
  const aliases = createAliasService({ db, clock, audit, events, vault, accounts });
  const fx = createFxService({ db, clock, audit, events });
  const risk = createRiskService({ db, clock, audit, events });
  const transfers = createTransferService({ db, clock, audit, events, customers, accounts, aliases, fx, risk, stepUp, mover: ledgerMoneyMover(ledger), settlement: deps.settlement, connected: deps.connected, openBanking, ...(deps.refs !== undefined ? { refs: deps.refs } : {}) });
  return {
    ledger,
    accounts,
    openBanking,
    aliases,
    fx,
    risk,
    transfers,
    registerRoutes(app, { idempotent }) {
      registerTransferRoutes(app, { db, idempotent, accounts, aliases, fx, risk, transfers, openBanking });
      registerFxProviderRoutes(app, { db, providers: fx.providers, idempotent });
    },
    sweep: () => transfers.sweepRedPackets(),
  };
}
