import { Histogram } from 'prom-client';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createCardsModule, type CardsModule, type CreditOf } from './cards/index.ts';
import { createCreditService, registerCreditRoutes, type CreditService } from './credit/index.ts';
import { createDisputeService, defineDisputeRefs, registerDisputeRoutes, type DisputeService } from './disputes/index.ts';
import { createLedger, type Ledger } from './ledger/index.ts';
import { createPaymentsModule, type PaymentsModule } from './payments/index.ts';
import { createTransfersModule, type TransfersModule } from './transfers/index.ts';
import { registerWebRoutes } from './web/index.ts';
import { registerLedgerRoutes } from './ledger/index.ts';
import { createAuditService, type AuditService } from './audit/index.ts';
import { registerAuditRoutes } from './audit/index.ts';
import { callerOf, createIdempotentRunner, registerAuth, type Idempotent } from './api/index.ts';
import { createRefRegistry, registerOwnership, type RefRegistry } from './api/index.ts';
import { defineParticipantRefs } from './participants/index.ts';
import { defineCustomerLinkRefs, defineCustomerRefs } from './customers/index.ts';
import { createCustomerLinkService, type CustomerLinkService } from './customers/index.ts';
import { registerCustomerLinkRoutes } from './customers/index.ts';
import { defineAccountRefs } from './accounts/index.ts';
import { defineAliasRefs } from './aliases/index.ts';
import { defineCardRefs } from './cards/index.ts';
import { defineTokenRefs } from './cards/index.ts';
import { defineTransferRefs } from './transfers/index.ts';
import { defineRiskRefs } from './risk/index.ts';
import { connectorTransferHolders, definePaymentRefs } from './payments/index.ts';
import { defineStepUpRefs } from './stepup/index.ts';
import { createStepUpService, type StepUpService } from './stepup/index.ts';
import { registerStepUpRoutes } from './stepup/index.ts';
import { createLiquidityService, type LiquidityService } from './liquidity/index.ts';
import { createCashService, defineCashRefs, registerCashRoutes } from './cash/index.ts';
import { createLiquidityRequests, defineLiquidityRefs, registerLiquidityRequestRoutes, registerLiquidityRoutes } from './liquidity/index.ts';
import { createSettlementService, SETTLEMENT_SCHEDULE_INTERVAL_MS, type SettlementService } from './settlement/index.ts';
import { registerSettlementRoutes } from './settlement/index.ts';
import { createSettlementDocuments } from './settlement/index.ts';
import { defineSettlementRefs } from './settlement/index.ts';
import { createOfflineService, defineOfflineRefs, registerOfflineRoutes, vaultOfflineIssuer, type OfflineService } from './offline/index.ts';
import type { AccountService } from './accounts/index.ts';
import { errorStatus } from './api/index.ts';
import { createCustomerService, type CustomerService } from './customers/index.ts';
import { registerCustomerRoutes } from './customers/index.ts';
import { createCustomerDataRights } from './customers/index.ts';
import { participantSchemas, registerParticipantRoutes } from './participants/index.ts';
import { createParticipantService, type ParticipantService } from './participants/index.ts';
import { createTokenService, type TokenService } from './participants/index.ts';
import { createBudgetService, type BudgetService } from './web/index.ts';
import { registerOperatorSettingsRoutes } from './web/index.ts';
import { systemClock, type Clock } from './platform/clock.ts';
import type { HubConfig } from './platform/config.ts';
import { openDb, withDeadline, type Db } from './platform/db.ts';
import { documentRoute, finishCallbacks, shareErrorResponses } from './api/index.ts';
import { webhooksDocument } from './webhooks/index.ts';
import { createHttpServer, type HttpServer } from './platform/http.ts';
import { createIdempotency, type Idempotency } from './platform/idempotency.ts';
import { createLogger, type Logger } from './platform/logger.ts';
import { createMetrics, registerCounterSnapshot, type HttpMetrics } from './platform/metrics.ts';
import { migrate } from './platform/migrate.ts';
import { createOutboundPolicy, type HostResolver } from './platform/outbound.ts';
import { createFailureLimiter, createTokenBucketLimiter } from './platform/rate-limit.ts';
import { createVault, defaultKeySource, keyFilePath, type KeySource, type Vault } from './platform/vault.ts';
import { ensurePrivateDir, privateFileWarnings } from './platform/file-modes.ts';
import { registerSystemRoutes } from './system/index.ts';
import { createWebhookDispatcher, type WebhookDispatcher } from './webhooks/index.ts';
import { createEventOutbox, type EventOutbox } from './webhooks/index.ts';
import { defineWebhookRefs, registerWebhookRoutes } from './webhooks/index.ts';
import { createWebhookSecretService } from './participants/index.ts';
import { createConnectionService, type ConnectionService } from './participants/index.ts';
import { createConnectorService, type ConnectorService } from './connectors/index.ts';
import { createValueModule, defineValueRefs, type ValueModule } from './value/index.ts';
import { connectorSchemas, registerConnectorRoutes } from './connectors/index.ts';

export const HUB_VERSION = '0.1.0';

export interface HubServices {
  readonly db: Db;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly vault: Vault;
  readonly audit: AuditService;
  readonly events: EventOutbox;
  readonly idempotency: Idempotency;
  readonly idempotent: Idempotent;
  readonly participants: ParticipantService;
  readonly customers: CustomerService;
  readonly tokens: TokenService;
  readonly webhooks: WebhookDispatcher;
  readonly metrics: HttpMetrics;
  /** Who may name which object: every capability's ownership specs (src/api/refs.ts). */
  readonly refs: RefRegistry;
  readonly stepUp: StepUpService;
  readonly customerLinks: CustomerLinkService;
  readonly liquidity: LiquidityService;
  // @modules:service-types (each capability adds its service here)
  readonly settlement: SettlementService;
  readonly ledger: Ledger;
  readonly cards: CardsModule;
  readonly transfers: TransfersModule;
  readonly payments: PaymentsModule;
  /** Customers' budgets and low-balance alerts (src/web/budgets.ts). */
  readonly budgets: BudgetService;
  /** Rewards, coupons and membership cards, savings pots (src/value). */
  readonly value: ValueModule;
  /** Offline small payments: purses reserved per device, tokens settled when merchants upload them (src/offline). */
  readonly offline: OfflineService;
  readonly credit: CreditService;
  readonly disputes: DisputeService;
  /** Participants' modes per currency (hosted or connected) and the connectors that reach connected ones. */
  readonly connections: ConnectionService;
  readonly connectors: ConnectorService;
}

export interface Hub extends HubServices {
  readonly config: HubConfig;
  readonly app: HttpServer;
  readonly operatorToken: string;
  /** Starts the background work: webhook delivery, audit chaining, key expiry sweeps. */
  startBackground(): void;
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface CreateHubOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** An already opened (and possibly shared) database; the hub then does not close it. */
  readonly db?: Db;
  readonly keys?: KeySource;
  /** Replaces every outbound HTTP call (webhooks, issuers' authorizations), bypassing the outbound policy's call-time guard. */
  readonly fetch?: typeof fetch;
  /** The outbound policy's DNS resolver (tests make public-looking names resolve to private addresses). */
  readonly resolveHost?: HostResolver;
}

/** The embedded default keeps a generated operator credential in the data directory (0600). */
export function resolveOperatorToken(config: HubConfig): string {
  if (config.operatorToken !== undefined && config.operatorToken !== '') return config.operatorToken;
  const path = join(config.dataDir, 'operator-token');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  ensurePrivateDir(dirname(path));
  const token = `op_${randomBytes(24).toString('base64url')}`;
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return token;
}

/** How long each step of close() may take: 6 s in all, within the 10 s an orchestrator gives a process after SIGTERM. */
const CLOSE_STEP_MS = { http: 3_000, webhooks: 500, outbound: 500, audit: 1_000, db: 1_000 } as const;
const AUDIT_CHAIN_INTERVAL_MS = 1_000;
const LEDGER_EXPIRY_INTERVAL_MS = 1_000;
/** Commit/abort messages to connected participants, and aborting payments past their deadline. */
const CONNECTOR_INTERVAL_MS = 1_000;
const SWEEP_INTERVAL_MS = 10 * 60_000;

/** The composition root: every service is created here, with its dependencies explicit. */
export async function createHub(config: HubConfig, options: CreateHubOptions = {}): Promise<Hub> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const ownsDb = options.db === undefined;
  const db =
    options.db ??
    (await openDb({
      databaseUrl: config.databaseUrl,
      dataDir: join(config.dataDir, 'pglite'),
      maxConnections: config.dbMaxConnections,
      timeouts: { statementMs: config.dbTimeouts.statementMs, idleInTransactionMs: config.dbTimeouts.statementMs, transactionMs: config.dbTimeouts.transactionMs },
    }));
  try {
    return await assembleHub(config, options, { clock, logger, db, ownsDb });
  } catch (error) {
    // A hub that cannot start (a wrong key-encrypting key, an unreachable database) lets go of what it opened, so that
    // the process ends with its one-line error instead of lingering on an open connection.
    if (ownsDb) await withDeadline(db.close(), CLOSE_STEP_MS.db, 'close').catch(() => undefined);
    throw error;
  }
}

async function assembleHub(config: HubConfig, options: CreateHubOptions, opened: { clock: Clock; logger: Logger; db: Db; ownsDb: boolean }): Promise<Hub> {
  const { clock, logger, db, ownsDb } = opened;
  await migrate(db, (version) => logger.info({ version }, 'migration applied'));
  if (db.engine === 'postgres') {
    // Every hot statement is a key lookup that the planner gets right only with table statistics; without autovacuum
    // they are never gathered, and a table that grew after its statements were prepared keeps sequential scans.
    const [setting] = await db.query<{ autovacuum: string }>(`select current_setting('autovacuum') as autovacuum`);
    if (setting?.autovacuum !== 'on') logger.warn('PostgreSQL runs with autovacuum = off: table statistics go stale and plans degrade as tables grow; turn it on, or run ANALYZE regularly');
  }

  // The key file lives outside the data directory (one found at the old place inside it is moved out first).
  const usesKeyFile = options.keys === undefined && (config.kek === undefined || config.kek === '');
  const keys = options.keys ?? defaultKeySource(config, (level, message) => logger[level](message));
  const vault = createVault({ db, clock, keys });
  await vault.warm();
  const audit = createAuditService({ db, clock, vault, logger });
  const events = createEventOutbox({ clock });
  const idempotency = createIdempotency({ db, clock, vault });
  const idempotent = createIdempotentRunner({ db, idempotency, errorStatus });
  // Every outbound HTTP call goes through the policy's guarded fetch (no private, loopback or metadata addresses; in
  // demo mode loopback and private ones are allowed), unless a test injects its own fetch.
  const outbound = createOutboundPolicy({ demo: config.demo, ...(options.resolveHost !== undefined ? { resolver: options.resolveHost } : {}) });
  const outboundFetch = options.fetch ?? outbound.fetch;
  const participants = createParticipantService({ db, clock, vault, audit, events, outbound });
  await participants.start();
  const customers = createCustomerService({ db, clock, audit });
  const customerLinks = createCustomerLinkService({ db, clock, vault, audit, events });
  const tokens = createTokenService({ vault, clock, ttlS: config.accessTokenTtlS });
  const webhooks = createWebhookDispatcher({ db, clock, vault, logger, fetch: outboundFetch });
  const metrics = createMetrics();
  const operatorToken = resolveOperatorToken(config);
  for (const warning of privateFileWarnings({ dataDir: config.dataDir, keyFile: usesKeyFile ? keyFilePath(config.keyDir) : undefined })) logger.warn(warning);
  // @modules:create (each capability creates its services here, dependencies explicit)
  // One ledger per process. Money moves only through ledger.applyInTx, inside the transaction of the service that moves
  // it (a batch of confirms, a capture, a deposit): the ledger keeps no queue or state of its own.
  const ledger = createLedger({ db, clock });
  registerCounterSnapshot(metrics.registry, 'hutong_ledger_', {
    applyCalls: 'ledger.applyInTx calls by this process (one per caller transaction batch; some may have rolled back)',
    transfersApplied: 'Transfers handed to ledger.applyInTx by this process (created, replayed or refused)',
  }, () => ledger.stats());
  // The page origins passkeys may be used from: configured, or the reference wallet served by this hub on its own port.
  let listeningPort: number | undefined;
  const webauthnOrigins = () =>
    config.webauthn.origins.length > 0 ? config.webauthn.origins : listeningPort === undefined ? [] : [`http://${config.webauthn.rpId}:${listeningPort}`, `https://${config.webauthn.rpId}:${listeningPort}`];
  const stepUp = createStepUpService({ db, clock, vault, audit, events, webauthn: { rpId: config.webauthn.rpId, rpName: 'Hutong', origins: webauthnOrigins } });
  // One ownership check for every id any route names (each capability says who holds its objects); the capabilities
  // that create hot objects tell it their holders after COMMIT.
  const refs = createRefRegistry();
  // A credit card's credit account (the ledger enforces its limit), opened in the issuing transaction; every wallet
  // holding the card shows its line (the credit service, created below).
  const creditLines: { of?: CreditOf } = {};
  const cards = createCardsModule({
    db, clock, vault, audit, events, stepUp,
    openCreditAccount: async (c) => {
      const opened = await ledger.createAccount({ id: c.id, ownerParticipantId: c.issuerId, customerId: c.customerId, currency: c.currency, kind: 'credit', debitsMustNotExceedCredits: true, creditLimitMinor: c.limitMinor });
      if (!opened.ok) throw new Error(`credit account ${c.id}: ${opened.error.code}`);
    },
    creditOf: (ids) => (creditLines.of === undefined ? Promise.resolve(new Map()) : creditLines.of(ids)),
  });
  // Settlement records the position legs of payments between participants (created first: transfers and payments use it).
  let accountsOf: (() => AccountService) | undefined = undefined;
  const settlement = createSettlementService({ db, clock, audit, events, ledger, accounts: () => {
    if (accountsOf === undefined) throw new Error('settlement: accounts not wired');
    return accountsOf();
  } });
  const connections = createConnectionService({ db, clock, audit, outbound });
  const connectors = createConnectorService({ db, clock, vault, logger, fetch: outboundFetch, connections });
  // What each phase of a payment with a connected bank takes: the bank's answer to reserve/accept, the hub's decision.
  const connectedPhases = new Histogram<'phase'>({
    name: 'hutong_connected_phase_seconds',
    help: 'Phases of payments with a connected participant: reserve and accept (the bank answering), decide (the hub committing or aborting)',
    labelNames: ['phase'],
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [metrics.registry],
  });
  const transfers = createTransfersModule({
    db, clock, audit, events, vault, customers, stepUp, ledger, settlement, refs,
    connected: {
      connection: (p, c, q) => connections.connected(p, c, q),
      ask: (c, op, r) => connectors.ask(c, op, r),
      enqueue: (tx, m) => connectors.enqueue(tx, m),
      deliverSoon: () => connectors.deliverSoon(),
      observe: (phase, ms) => connectedPhases.observe({ phase }, ms / 1000),
    },
    openBankingClient: connectors,
  });
  accountsOf = () => transfers.accounts;
  const liquidity = createLiquidityService({ db, clock, audit, events, ledger, accounts: transfers.accounts });
  const liquidityRequests = createLiquidityRequests({ clock, audit, events, liquidity });
  const cash = createCashService({ clock, audit, events, ledger, accounts: transfers.accounts, settlement, connected: async (p, c, q) => (await connections.connected(p, c, q)) !== undefined });
  const openBanking = transfers.openBanking;
  const payments = createPaymentsModule({
    db, clock, vault, audit, events, cards, transfers, stepUp, outbound, fetch: outboundFetch, refs, settlement,
    banks: {
      connection: (p, c, q) => connections.connected(p, c, q),
      ask: (c, op, r) => connectors.ask(c, op, r),
      enqueue: (tx, m) => connectors.enqueue(tx, m),
      deliverSoon: () => connectors.deliverSoon(),
      debtor: async (bankId, customerId, q) => {
        const c = await customers.get(bankId, customerId, q);
        return c === undefined ? undefined : { externalId: c.externalId, name: c.name };
      },
      mandateFor: async (q, w, c, a) => (openBanking === undefined ? undefined : openBanking.mandateFor(q, w, c, a)),
      endedAtBank: async (consentId, why) => openBanking?.endedAtBank(consentId, why),
    },
  });
  const credit: CreditService = createCreditService({ db, clock, audit, events, ledger, accounts: transfers.accounts, settlement, cards: cards.cards, walletTokens: cards.walletTokens });
  creditLines.of = (ids) => credit.lines(ids);
  const disputes: DisputeService = createDisputeService({ db, clock, audit, events, ledger, accounts: transfers.accounts, settlement, payments: payments.payments, merchants: payments.merchants, transfers: transfers.transfers });
  const budgets = createBudgetService({ db, clock, audit, events, accounts: transfers.accounts });
  const value = createValueModule({ db, clock, audit, events, ledger, accounts: transfers.accounts, customers, customerLinks, cards, payments });
  const offline = createOfflineService({ db, clock, audit, events, ledger, accounts: transfers.accounts, merchants: payments.merchants, settlement });
  const customerDataRights = createCustomerDataRights({ db, clock, vault, audit, events, cards: cards.cards, walletTokens: cards.walletTokens });

  // Per-participant limits: the participant's own setting (passed by the auth check), else the hub default.
  const limiter = createTokenBucketLimiter({ ratePerS: () => config.rateLimitPerS, burst: () => config.rateLimitPerS * 2, nowMs: () => clock.nowMs() });

  const app = await createHttpServer({
    logger,
    bodyLimitBytes: config.bodyLimitBytes,
    metrics,
    errorStatus,
    title: 'Hutong hub API',
    version: HUB_VERSION,
    description:
      'Hutong (互通) connects banks, wallets and merchants. Participants authenticate with OAuth 2.0 client credentials ' +
      '(POST /oauth/token) and send `Authorization: Bearer <token>`. Money is a decimal string with an ISO 4217 currency. ' +
      'Every error is `{ "error": { "code", "message", "details"? } }`; the codes are listed under `x-error-codes`. ' +
      'POSTs that create or move money accept `Idempotency-Key` (required where the operation says so). Events are sent to ' +
      'your webhook URL, signed per Standard Webhooks: see `webhooks`.',
    servers: [
      { url: '/', description: 'The hub that served this document' },
      { url: `http://localhost:${config.port}`, description: 'A local hub (`hutong start --demo`)' },
    ],
    webhooks: webhooksDocument(),
    documentRoute,
    finishDocument: (document) => {
      finishCallbacks(document);
      shareErrorResponses(document);
    },
  });
  for (const schema of [...participantSchemas, ...connectorSchemas]) app.addSchema(schema);
  registerAuth(app, { tokens, participants, operatorToken, limiter });
  for (const define of [defineParticipantRefs, defineCustomerRefs, defineCustomerLinkRefs, defineAccountRefs, defineAliasRefs, defineCardRefs, defineTokenRefs, (r: RefRegistry) => defineTransferRefs(r, { connectorTransfers: connectorTransferHolders }), defineRiskRefs, definePaymentRefs, defineStepUpRefs, defineSettlementRefs, defineLiquidityRefs, defineCashRefs, defineWebhookRefs, defineValueRefs, defineOfflineRefs, defineDisputeRefs]) define(refs);
  registerOwnership(app, { registry: refs, db }, callerOf);
  registerSystemRoutes(app, { db, metrics, errorStatus, version: HUB_VERSION });
  registerParticipantRoutes(app, { participants, tokens, idempotent, authFailures: createFailureLimiter({ nowMs: () => clock.nowMs() }) });
  registerCustomerRoutes(app, { customers, participants, idempotent, dataRights: customerDataRights });
  registerAuditRoutes(app, { audit });
  registerWebhookRoutes(app, { db, secrets: createWebhookSecretService({ db, clock, vault, audit }), idempotent, audit, demoEnabled: config.demo });
  registerStepUpRoutes(app, { db, stepUp, customers });
  registerCustomerLinkRoutes(app, { db, links: customerLinks, idempotent });
  // @modules:routes (each capability registers its routes here)
  registerLedgerRoutes(app, { db, ledger, participants, audit, events, idempotent, positionAccount: liquidity.positionAccount });
  registerLiquidityRoutes(app, { liquidity, idempotent });
  registerLiquidityRequestRoutes(app, { db, requests: liquidityRequests, idempotent });
  registerCashRoutes(app, { db, cash, idempotent });
  registerOfflineRoutes(app, { db, idempotent, offline, issuer: vaultOfflineIssuer(vault), nowS: () => Math.floor(clock.nowMs() / 1000) });
  registerSettlementRoutes(app, { db, settlement, documents: createSettlementDocuments({ clock, settlement }), liquidity, idempotent });
  await registerWebRoutes(app, { db, vault, tokens, customers, clock, paymentLinks: payments.payments, budgets, demoEnabled: config.demo });
  registerOperatorSettingsRoutes(app, { fx: transfers.fx, risk: transfers.risk });
  cards.registerRoutes(app, { idempotent });
  transfers.registerRoutes(app, { idempotent });
  payments.registerRoutes(app, { idempotent });
  value.registerRoutes(app, { idempotent });
  registerDisputeRoutes(app, { disputes, idempotent });
  registerCreditRoutes(app, { credit, walletTokens: cards.walletTokens, accounts: transfers.accounts, idempotent });
  registerConnectorRoutes(app, { connectors, connections, idempotent, transferStatus: async (participantId, paymentId) => (await transfers.transfers.connectorStatus(participantId, paymentId)) ?? payments.payments.connectorStatus(participantId, paymentId) });
  await app.ready();

  const timers: NodeJS.Timeout[] = [];
  let closed = false;
  const every = (ms: number, name: string, job: () => Promise<unknown>) => {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || closed) return;
      busy = true;
      job()
        .catch((error: unknown) => logger.error({ err: error, job: name }, 'background job failed'))
        .finally(() => {
          busy = false;
        });
    }, ms);
    timer.unref();
    timers.push(timer);
  };

  return {
    config,
    app,
    db,
    clock,
    logger,
    vault,
    audit,
    events,
    idempotency,
    idempotent,
    participants,
    customers,
    tokens,
    webhooks,
    metrics,
    refs,
    stepUp,
    customerLinks,
    liquidity,
    // @modules:hub-fields
    settlement,
    ledger,
    cards,
    transfers,
    payments,
    credit,
    disputes,
    budgets,
    value,
    offline,
    connections,
    connectors,
    operatorToken,
    startBackground() {
      if (config.webhooks.enabled) webhooks.start(config.webhooks.pollMs);
      // @modules:background (each capability's periodic jobs, via every(ms, name, job))
      every(LEDGER_EXPIRY_INTERVAL_MS, 'ledger-pending-expiry', () => ledger.expirePending());
      every(30_000, 'red-packet-sweep', () => transfers.sweep());
      every(CONNECTOR_INTERVAL_MS, 'connector-outbox', () => connectors.deliverDue());
      every(CONNECTOR_INTERVAL_MS, 'connected-payment-recovery', () => transfers.transfers.recoverConnected());
      every(60_000, 'payment-hold-expiry', () => payments.sweep());
      // A bank's reserve of a merchant payment left unused is aborted within a second of its deadline, as P2P ones are
      // (the hold expiry's minute would leave the customer's money held at the bank that long).
      every(CONNECTOR_INTERVAL_MS, 'payment-ask-sweep', () => payments.sweepAsks());
      every(SETTLEMENT_SCHEDULE_INTERVAL_MS, 'settlement-schedules', () => settlement.runSchedules());
      every(AUDIT_CHAIN_INTERVAL_MS, 'audit-chain', () => audit.chain());
      every(SWEEP_INTERVAL_MS, 'idempotency-sweep', () => idempotency.sweep());
      every(SWEEP_INTERVAL_MS, 'card-request-key-sweep', () => cards.sweep());
      every(30_000, 'budget-check', () => budgets.sweep());
      every(60_000, 'offline-purse-sweep', () => offline.sweep());
      every(60_000, 'credit-statements-overdue', () => credit.markOverdue());
      every(60_000, 'dispute-deadlines', () => disputes.sweep());
    },
    async listen() {
      const address = await app.listen({ port: config.port, host: config.host });
      const bound = app.server.address();
      if (bound !== null && typeof bound === 'object') listeningPort = bound.port;
      return address;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of timers) clearInterval(timer);
      // Every step is bounded (CLOSE_STEP_MS, 8 s in all), so that a hub told to stop stops even when its database is
      // down or hung: a step past its time is logged and left behind, and the next one runs.
      const step = async (name: keyof typeof CLOSE_STEP_MS, work: () => Promise<unknown>) => {
        try {
          await withDeadline(work(), CLOSE_STEP_MS[name], `closing (${name})`);
        } catch (error) {
          logger.warn({ err: error, step: name }, 'a close step did not finish in time or failed; going on');
        }
      };
      // In-flight requests finish first (each bounded by the database's deadlines); then background work stops; then
      // storage closes.
      await step('http', () => app.close());
      // @modules:close (each capability flushes and stops here, before storage closes)
      await step('webhooks', () => webhooks.stop());
      // A round of commit/abort messages to connected banks still under way ends before the outbound pool closes.
      await step('webhooks', () => connectors.drain());
      await step('outbound', () => outbound.close());
      await step('audit', () => audit.chain());
      if (ownsDb) await step('db', () => db.close());
    },
  };
}
