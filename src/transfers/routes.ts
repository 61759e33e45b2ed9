import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { actorOf, created, okResponse, participantOf, principalOf, type Idempotent } from '../api/index.ts';
import { CurrencyCode, Money, Strict, Timestamp } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import { customerAccountId, isRedirectUri, takeConsentTry, type AccountService, type OpenBankingConsent, type OpenBankingService } from '../accounts/index.ts';
import { takeMoveTry, takeVerificationTry, type AliasService } from '../aliases/index.ts';
import { ALIAS_TYPES, ALIAS_VALUE_DESCRIPTION, type AliasType } from '../aliases/index.ts';
import type { FxService } from '../fx/index.ts';
import { formatScaled } from '../fx/index.ts';
import { RULE_NAMES, type RiskAlert, type RiskService, type RuleName } from '../risk/index.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { formatMoney, parseMoney } from '../platform/money.ts';
import type { DomainError } from '../platform/result.ts';
import { errorAnswer } from '../api/index.ts';
import { bankRefusal, type RefusingSide } from '../connectors/index.ts';
import { CONSENT_ENDED_AT_HUB, type ConfirmInput, type QuoteInput, type MoneyRequest, type Payment, type Quote, type RedPacketView, type SplitView, type TransferService } from './service.ts';
import * as W from './wire-schemas.ts';

export interface TransferRouteDeps {
  readonly db: Db;
  readonly idempotent: Idempotent;
  readonly accounts: AccountService;
  readonly aliases: AliasService;
  readonly fx: FxService;
  readonly risk: RiskService;
  readonly transfers: TransferService;
  readonly openBanking?: OpenBankingService | undefined;
}

const WireMoneySchema = Type.Object({ amount: Type.String(), currency: Type.String() }, { additionalProperties: false });
const NullableTime = (description: string) => Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description });
/** An open-banking consent as the wallet sees it (wireConsent): never its grant, verifier or state. */
const OpenBankingConsentSchema = Type.Object(
  {
    id: Type.String({ description: 'Consent id' }),
    customerId: Type.String({ description: 'Your customer' }),
    bankParticipantId: Type.String({ description: 'The bank that holds the account (connected: it keeps its own books)' }),
    currency: Type.String(),
    status: Type.Union([Type.Literal('awaiting_authorization'), Type.Literal('active'), Type.Literal('revoked'), Type.Literal('failed')]),
    scope: Type.String({ description: 'What the bank granted: accounts (balances) and payments (debits the bank authorizes one by one)' }),
    links: Type.Array(Type.Object({ linkId: Type.String(), accountId: Type.String({ description: 'Pay from it with sourceAccountId' }), status: Type.Union([Type.Literal('active'), Type.Literal('revoked')]) }, { additionalProperties: false })),
    expiresAt: Type.String({ format: 'date-time', description: 'The customer must approve at the bank before this' }),
    createdAt: Type.String({ format: 'date-time' }),
    authorizedAt: NullableTime('When the bank granted access'),
    revokedAt: NullableTime('When the consent ended'),
    revokedBy: Type.Union([Type.Literal('wallet'), Type.Literal('bank'), Type.Null()], { description: 'Where the customer revoked it' }),
  },
  { additionalProperties: false },
);
const StartedConsentSchema = Type.Object(
  { ...OpenBankingConsentSchema.properties, authorizeUrl: Type.String({ description: 'Send the customer here (the bank’s OAuth 2.0 authorize endpoint, PKCE S256): the bank redirects to redirectUri with code and state' }) },
  { additionalProperties: false },
);
const BankBalancesSchema = Type.Object(
  {
    items: Type.Array(
      Type.Object({ accountId: Type.String(), linkId: Type.String(), balance: WireMoneySchema, available: WireMoneySchema, asOf: Type.String({ format: 'date-time', description: 'As the bank stated it' }) }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);
const wireConsent = (c: OpenBankingConsent) =>
  W.Exactly<Static<typeof OpenBankingConsentSchema>>()({
    id: c.id,
    customerId: c.walletCustomerId,
    bankParticipantId: c.bankParticipantId,
    currency: c.currency,
    status: c.status,
    scope: c.scope,
    links: c.links.map((l) => ({ linkId: l.linkId, accountId: l.accountId, status: l.status })),
    expiresAt: c.expiresAt.toISOString(),
    createdAt: c.createdAt.toISOString(),
    authorizedAt: c.authorizedAt?.toISOString() ?? null,
    revokedAt: c.revokedAt?.toISOString() ?? null,
    revokedBy: c.revokedBy,
  });

const AliasTypeSchema = Type.Union(ALIAS_TYPES.map((t) => Type.Literal(t)));
const AliasValue = Type.String({ minLength: 1, maxLength: 254, description: ALIAS_VALUE_DESCRIPTION });
const AliasRef = Strict({ type: AliasTypeSchema, value: AliasValue });
const CustomerId = Ref('customer', 'Your customer id');
/** Responses are documented as objects; the wire* functions below fix their fields. */
const Obj = (description: string) => Type.Object({}, { additionalProperties: true, description });
const Items = (description: string) => Type.Object({ items: Type.Array(Obj(description)) }, { additionalProperties: true });
const tags = (t: string) => [t];
/** Routes a customer session (the customer's own app) may call. */
const CUSTOMER = { customer: true } as const;

const money = (minor: bigint, currency: string) => formatMoney(minor, currency);

const NullableString = (description: string) => Type.Union([Type.String(), Type.Null()], { description });
/** A P2P quote as the payer sees it (wireQuote). */
const QuoteSchema = Type.Object(
  {
    id: Type.String({ description: 'Quote id: confirm it with POST /v1/transfers/payments before it expires' }),
    customerId: Type.String({ description: 'The paying customer' }),
    sourceAccountId: Type.String({ description: 'The account debited' }),
    payee: Type.Object(
      { maskedName: Type.String(), participantId: Type.String(), participantName: Type.String(), flagged: Type.Boolean({ description: 'The alias is flagged for suspected fraud' }) },
      { additionalProperties: false },
    ),
    sendAmount: Money,
    receiveAmount: Money,
    fee: Money,
    totalDebit: Money,
    rate: NullableString('Rate applied (receive per send), null in one currency'),
    midRate: NullableString('Mid-market reference rate, null in one currency'),
    spreadBps: Type.Integer({ description: 'Spread over the mid rate, basis points' }),
    fxRateId: NullableString('The FX provider’s posted rate this quote bound (GET /v1/fx/rates), null in one currency'),
    fxProviderId: NullableString('The FX provider participant the conversion goes through: its positions move in both currencies'),
    rounding: Type.String(),
    requestId: NullableString('The money request this quote pays'),
    warnings: Type.Array(Type.String()),
    expiresAt: Timestamp,
    createdAt: Timestamp,
  },
  { additionalProperties: false, description: 'A quote' },
);
/** A P2P payment as the payer or the payee sees it (wirePayment): what was sent and the fee only to the payer. */
const TransferPaymentSchema = Type.Object(
  {
    id: Type.String(),
    quoteId: Type.String(),
    status: Type.Union([Type.Literal('completed'), Type.Literal('pending'), Type.Literal('rejected')], {
      description: 'completed; pending while a participant that keeps its own books (connected) is being asked; rejected when it refused or did not answer before the deadline (nothing moved)',
    }),
    statusReason: Type.Optional(
      Type.Object({ Rsn: Type.String({ description: 'ISO 20022 status reason code (AC01, AC04, AM02, AM04, AB03, AB05, DS0B, FF01…)' }), AddtlInf: Type.Optional(Type.String()) }, { additionalProperties: false }),
    ),
    role: Type.Union([Type.Literal('payer'), Type.Literal('payee')]),
    customerId: Type.String({ description: 'Your customer (payer or payee)' }),
    sendAmount: Type.Optional(Money),
    fee: Type.Optional(Money),
    receiveAmount: Money,
    rate: NullableString('Rate applied, null in one currency'),
    requestId: NullableString('The money request it paid'),
    transferIds: Type.Optional(Type.Array(Type.String(), { description: 'Ledger transfers (payer only)' })),
    createdAt: Timestamp,
  },
  { additionalProperties: false, description: 'A P2P payment' },
);
export const wireQuote = (q: Quote) => ({
  id: q.id,
  customerId: q.payerCustomerId,
  sourceAccountId: q.sourceAccountId,
  payee: q.payee,
  sendAmount: money(q.sendMinor, q.sendCurrency),
  receiveAmount: money(q.receiveMinor, q.receiveCurrency),
  fee: money(q.feeMinor, q.sendCurrency),
  totalDebit: money(q.sendMinor + q.feeMinor, q.sendCurrency),
  rate: q.rate,
  midRate: q.midRate,
  spreadBps: q.spreadBps,
  fxRateId: q.fxRateId,
  fxProviderId: q.fxProviderId,
  rounding: 'in the hub’s favour: received amounts round down, paid amounts and fees round up, to the currency’s minor unit',
  requestId: q.requestId,
  warnings: [...q.warnings],
  expiresAt: q.expiresAt.toISOString(),
  createdAt: q.createdAt.toISOString(),
});

export const wirePayment = (p: Payment, viewer: string) => ({
  id: p.id,
  quoteId: p.quoteId,
  status: p.status,
  statusReason: p.reason ?? undefined,
  role: p.payerParticipantId === viewer ? 'payer' : 'payee',
  customerId: p.payerParticipantId === viewer ? p.payerCustomerId : p.payeeCustomerId,
  sendAmount: p.payerParticipantId === viewer ? money(p.sendMinor, p.sendCurrency) : undefined,
  fee: p.payerParticipantId === viewer ? money(p.feeMinor, p.sendCurrency) : undefined,
  receiveAmount: money(p.receiveMinor, p.receiveCurrency),
  rate: p.rate,
  requestId: p.requestId,
  transferIds: p.payerParticipantId === viewer ? [...p.transferIds] : undefined,
  createdAt: p.createdAt.toISOString(),
});

// The wire functions write what the schemas say (checked by the compiler).
export const quoteMatchesSchema = (q: Quote): Static<typeof QuoteSchema> => wireQuote(q);

export const wireRequest = (r: MoneyRequest) => W.Exactly<Static<typeof W.MoneyRequestSchema>>()({
  id: r.id,
  status: r.status,
  requester: { maskedName: r.requesterMaskedName, participantName: r.requesterParticipantName },
  requesterCustomerId: r.requesterCustomerId,
  payerCustomerId: r.payerCustomerId,
  amount: money(r.amountMinor, r.currency),
  note: r.note,
  firstTime: r.firstTime,
  flagged: r.flagged,
  warning: r.warning,
  splitId: r.splitId,
  paymentId: r.paymentId,
  expiresAt: r.expiresAt.toISOString(),
  createdAt: r.createdAt.toISOString(),
});

export const wireSplit = (s: SplitView) => W.Exactly<Static<typeof W.SplitSchema>>()({
  id: s.id,
  customerId: s.customerId,
  total: money(s.totalMinor, s.currency),
  method: s.method,
  note: s.note,
  rounding: 'each share is rounded down to the minor unit; the remainder goes one unit at a time to the first members listed (equal) or to the largest fractional parts, ties by listed order (shares)',
  members: s.members.map((m) => ({ index: m.idx, maskedName: m.maskedName, amount: money(m.amountMinor, s.currency), isPayer: m.isPayer, requestId: m.requestId, status: m.status })),
  paidCount: s.members.filter((m) => m.status === 'paid').length,
  createdAt: s.createdAt.toISOString(),
});

export const wirePacket = (p: RedPacketView) => W.Exactly<Static<typeof W.RedPacketSchema>>()({
  id: p.id,
  total: money(p.totalMinor, p.currency),
  shares: p.shareCount,
  mode: p.mode,
  message: p.message,
  status: p.status,
  fundingPaymentId: p.fundingPaymentId,
  reason: p.reason,
  refundRetryAt: p.refundRetryAt?.toISOString() ?? null,
  claimedCount: p.claimedCount,
  claimed: money(p.claimedMinor, p.currency),
  refunded: money(p.refundedMinor, p.currency),
  claims: p.claims.map((c) => ({ maskedName: c.maskedName, amount: money(c.amountMinor, p.currency), claimedAt: c.claimedAt.toISOString() })),
  expiresAt: p.expiresAt.toISOString(),
  createdAt: p.createdAt.toISOString(),
});

const wireAlert = (a: RiskAlert) => W.Exactly<Static<typeof W.AlertSchema>>()({
  id: a.id,
  participantId: a.participantId,
  customerId: a.customerId,
  channel: a.channel,
  decision: a.decision,
  score: a.score,
  reasons: a.reasons.map((r) => ({ rule: r.rule, score: r.score, action: r.action, message: r.message })),
  context: a.context,
  status: a.status,
  resolution: a.resolution,
  createdAt: a.createdAt.toISOString(),
  resolvedAt: a.resolvedAt?.toISOString() ?? null,
});

interface SchemaParts {
  body?: TSchema;
  params?: TSchema;
  querystring?: TSchema;
  response?: Record<number, TSchema>;
  description?: string;
  operator?: boolean;
}

function schema<P extends SchemaParts>(tag: string, summary: string, parts: P) {
  const { operator, response, ...rest } = parts;
  return { tags: tags(tag), summary, security: [operator === true ? { operator: [] } : { participant: [] }], ...rest, response: response ?? { 200: Obj(summary) } };
}

export function registerTransferRoutes(app: HttpServer, deps: TransferRouteDeps): void {
  const { db, idempotent, accounts, aliases, fx, risk, transfers } = deps;
  const me = async (request: FastifyRequest) => {
    const id = principalOf(request).participantId;
    // The auth check read the participant row for this request already: no second query (and none from inside a
    // transaction on the top-level pool, which could wait for a connection its own transaction is holding).
    const known = participantOf(request);
    if (known !== undefined && known.id === id) return { id, country: known.country };
    const [p] = await db.query<{ country: string }>('select country from participants where id = $1', [id]);
    // Authenticated a moment ago: a participant that is gone is a bug, not a country to guess.
    if (p === undefined) throw new Error(`authenticated participant ${id} not found`);
    return { id, country: p.country };
  };
  const parse = (m: { amount: string; currency: string }, field = 'amount') => parseMoney(m, field);

  // ---- accounts and links ------------------------------------------------------------------------------------------
  app.post(
    '/v1/accounts',
    { config: { idempotency: 'optional' }, schema: schema('accounts', 'Open an account for one of your customers', { body: Strict({ customerId: CustomerId, currency: CurrencyCode }), response: { 201: W.OpenedAccountSchema } }) },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const { participantId } = principalOf(request);
        const r = await accounts.openCustomerAccount(tx, actorOf(request, request.body.customerId), participantId, request.body.customerId, request.body.currency);
        return r.ok ? created(W.Exactly<Static<typeof W.OpenedAccountSchema>>()({ id: r.value.id, customerId: request.body.customerId, currency: r.value.currency, balance: money(0n, r.value.currency) })) : r.error;
      }),
  );

  app.post(
    '/v1/accounts/:accountId/deposits',
    { config: { idempotency: 'required' },
      schema: schema('accounts', 'Fund a customer account (cash-in): a ledger transfer from your funding account', {
        params: Strict({ accountId: Ref('account', 'Account id') }),
        body: Strict({ amount: Money }),
        response: { 201: W.DepositSchema },
      }),
    },
    async (request, reply) =>
      idempotent(
        request,
        reply,
        async (tx) => {
          const amount = parse(request.body.amount);
          if (!amount.ok) return amount.error;
          const { participantId } = principalOf(request);
          const key = String(request.headers['idempotency-key']);
          const r = await accounts.deposit(tx, actorOf(request), participantId, request.params.accountId, amount.value.amountMinor, amount.value.currency, `dep_${participantId}_${key}`.slice(0, 64));
          if (!r.ok) return r.error;
          return created(W.Exactly<Static<typeof W.DepositSchema>>()({ accountId: request.params.accountId, amount: request.body.amount }));
        },
        { required: true },
      ),
  );

  app.get(
    '/v1/accounts',
    { config: CUSTOMER,
      schema: schema('accounts', "List a customer's accounts: their own and every linked bank account, with balances", {
        description: 'An account at a bank that keeps its own books (linked by the bank’s consent) holds no balance at the hub: read it with GET /v1/open-banking/consents/{consentId}/balances.',
        querystring: Strict({ customerId: CustomerId }),
        response: { 200: Items('Account with balance') },
      }),
    },
    async (request) => {
      const list = await accounts.listForCustomer(principalOf(request).participantId, request.query.customerId);
      return {
        items: list.map((l) => ({
          id: l.account.id,
          currency: l.account.currency,
          balance: money(l.account.creditsPostedMinor - l.account.debitsPostedMinor, l.account.currency),
          available: money(l.account.creditsPostedMinor - l.account.debitsPostedMinor - l.account.debitsPendingMinor, l.account.currency),
          heldBy: { participantId: l.holderParticipantId, name: l.holderName },
          linkId: l.linkId,
        })),
      };
    },
  );

  app.post(
    '/v1/account-links',
    { config: { ...CUSTOMER, idempotency: 'optional' },
      schema: schema('accounts', 'Ask a bank to link its accounts of this customer into your wallet', {
        description: 'The bank receives a 6-digit code in the `account_link.consent_requested` webhook, sealed to its webhook secret (`codeSealed`, opened like the step-up code), and shows it to its customer; the customer types it into the wallet.',
        body: Strict({ customerId: CustomerId, bankParticipantId: Ref('participant', 'The bank'), currency: Type.Optional(CurrencyCode) }),
        response: { 201: W.ConsentSchema },
      }),
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await accounts.requestLink(tx, actorOf(request, request.body.customerId), {
          walletParticipantId: principalOf(request).participantId,
          walletCustomerId: request.body.customerId,
          bankParticipantId: request.body.bankParticipantId,
          currency: request.body.currency,
        });
        return r.ok ? created(W.Exactly<Static<typeof W.ConsentSchema>>()({ id: r.value.id, status: r.value.status, bankParticipantId: r.value.bankParticipantId, expiresAt: r.value.expiresAt.toISOString() })) : r.error;
      }),
  );

  app.post(
    '/v1/account-links/consents/:consentId/confirm',
    { config: { ...CUSTOMER, idempotency: 'optional' }, schema: schema('accounts', 'Confirm a link with the code the customer received from the bank', { params: Strict({ consentId: Ref('account_link_consent', 'Consent id') }), body: Strict({ code: Type.String({ pattern: '^[0-9]{6}$' }) }), response: { 201: Items('Link') } }) },
    async (request, reply) => {
      await takeConsentTry(db, request.params.consentId);
      return idempotent(request, reply, async (tx) => {
        const r = await accounts.confirmLink(tx, actorOf(request), principalOf(request).participantId, request.params.consentId, request.body.code);
        if (!r.ok) return r.error;
        return created({ items: r.value.map((l) => ({ id: l.id, accountId: l.accountId, bankParticipantId: l.bankParticipantId, status: l.status })) });
      });
    },
  );

  app.get('/v1/account-links', { config: CUSTOMER, schema: schema('accounts', 'List account links (as the wallet or as the bank)', { querystring: Strict({ customerId: Type.Optional(CustomerId) }), response: { 200: Items('Link') } }) }, async (request) => ({
    items: (await accounts.listLinks(principalOf(request).participantId, request.query.customerId)).map((l) => ({
      id: l.id,
      walletParticipantId: l.walletParticipantId,
      bankParticipantId: l.bankParticipantId,
      accountId: l.accountId,
      status: l.status,
      createdAt: l.createdAt.toISOString(),
      revokedAt: l.revokedAt?.toISOString() ?? null,
    })),
  }));

  app.delete('/v1/account-links/:linkId', { config: CUSTOMER, schema: schema('accounts', 'Unlink: revokes access at once (wallet or bank)', { params: Strict({ linkId: Ref('account_link', 'Link id') }), response: { 200: W.RevokedLinkSchema } }) }, async (request, reply) => {
    const r = await db.transaction((tx) => accounts.revokeLink(tx, actorOf(request), principalOf(request).participantId, request.params.linkId));
    return r.ok ? { id: r.value.id, status: r.value.status } : reply.fail(r.error);
  });

  // ---- aliases -----------------------------------------------------------------------------------------------------
  const aliasBody = Strict({ customerId: CustomerId, type: AliasTypeSchema, value: AliasValue, accountId: Ref('account', 'The account the alias points to') });
  const wireAlias = (a: { id: string; type: string; value: string; accountId: string; flagged: boolean; createdAt: Date }) =>
    W.Exactly<Static<typeof W.AliasSchema>>()({ id: a.id, type: a.type, value: a.value, accountId: a.accountId, flagged: a.flagged, createdAt: a.createdAt.toISOString() });
  app.post('/v1/aliases', { config: { ...CUSTOMER, idempotency: 'optional' }, schema: schema('aliases', 'Register an alias (phone, email or handle) for a customer account. A participant registers what it has verified itself; a customer session registers handles here and confirms a phone or e-mail with a code (POST /v1/aliases/verifications)', { body: aliasBody, response: { 201: W.AliasSchema } }) }, async (request, reply) =>
    idempotent(request, reply, async (tx) => {
      if (principalOf(request).customerId !== undefined && request.body.type !== 'handle') return { code: 'alias_verification_required', message: 'a customer adds a phone number or e-mail address by confirming a code sent there: POST /v1/aliases/verifications', details: { type: request.body.type } };
      const r = await aliases.register(tx, actorOf(request, request.body.customerId), await me(request), request.body);
      return r.ok ? created(wireAlias(r.value)) : r.error;
    }),
  );
  app.post(
    '/v1/aliases/verifications',
    { config: { ...CUSTOMER, idempotency: 'optional' }, schema: schema('aliases', 'Add a phone number or e-mail address as an alias: a one-time code goes to it through your participant (alias.verification_requested); confirm it to register the alias', { body: Strict({ customerId: CustomerId, type: Type.Union([Type.Literal('phone'), Type.Literal('email')]), value: AliasValue, accountId: Ref('account', 'The account the alias will point to') }), response: { 201: W.AliasVerificationSchema } }) },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await aliases.requestVerification(tx, actorOf(request, request.body.customerId), await me(request), request.body);
        return r.ok ? created(W.Exactly<Static<typeof W.AliasVerificationSchema>>()({ id: r.value.id, status: 'pending' as const, expiresAt: r.value.expiresAt.toISOString() })) : r.error;
      }),
  );
  app.post(
    '/v1/aliases/verifications/:verificationId/confirm',
    { config: { ...CUSTOMER, idempotency: 'optional' }, schema: schema('aliases', 'Confirm a new alias with the code sent to the number or address (five tries): the alias is registered', { params: Strict({ verificationId: Ref('alias_verification', 'Alias verification id') }), body: Strict({ code: Type.String({ pattern: '^[0-9]{6}$' }) }), response: { 201: W.AliasSchema } }) },
    async (request, reply) => {
      await takeVerificationTry(db, request.params.verificationId);
      return idempotent(request, reply, async (tx) => {
        const r = await aliases.confirmVerification(tx, actorOf(request), await me(request), request.params.verificationId, request.body.code);
        return r.ok ? created(wireAlias(r.value)) : r.error;
      });
    },
  );
  app.get('/v1/aliases', { config: CUSTOMER, schema: schema('aliases', "List a customer's aliases", { querystring: Strict({ customerId: CustomerId }), response: { 200: Type.Object({ items: Type.Array(W.AliasSchema) }, { additionalProperties: false }) } }) }, async (request) => ({
    items: (await aliases.list(principalOf(request).participantId, request.query.customerId)).map(wireAlias),
  }));
  app.delete('/v1/aliases/:aliasId', { config: CUSTOMER, schema: schema('aliases', 'Delete an alias', { params: Strict({ aliasId: Ref('alias', 'Alias id') }), response: { 200: W.DeletedAliasSchema } }) }, async (request, reply) => {
    const r = await db.transaction((tx) => aliases.remove(tx, actorOf(request), principalOf(request).participantId, request.params.aliasId));
    return r.ok ? { id: r.value.id, deleted: true as const } : reply.fail(r.error);
  });
  app.get(
    '/v1/aliases/lookup',
    { config: CUSTOMER,
      schema: schema('aliases', 'Verification of payee: who is behind an alias (masked name, participant), never account details', {
        description: 'Rate limited per participant and per customer; a miss costs more than a hit.',
        querystring: Strict({ customerId: CustomerId, type: AliasTypeSchema, value: AliasValue }),
        response: { 200: W.AliasLookupSchema },
      }),
    },
    async (request, reply) => {
      const r = await aliases.lookup(await me(request), request.query.customerId, request.query.type as AliasType, request.query.value);
      return r.ok ? W.Exactly<Static<typeof W.AliasLookupSchema>>()({ ...r.value }) : reply.fail(r.error);
    },
  );
  app.post('/v1/aliases/moves', { config: { idempotency: 'optional' }, schema: schema('aliases', 'Move an alias here from another participant; the customer confirms with a code sent through its current holder', { body: aliasBody, response: { 201: W.AliasMoveSchema } }) }, async (request, reply) =>
    idempotent(request, reply, async (tx) => {
      const r = await aliases.requestMove(tx, actorOf(request, request.body.customerId), await me(request), request.body);
      return r.ok ? created({ id: r.value.id, status: 'pending' as const, expiresAt: r.value.expiresAt.toISOString() }) : r.error;
    }),
  );
  app.post('/v1/aliases/moves/:moveId/confirm', { config: { idempotency: 'optional' }, schema: schema('aliases', 'Confirm an alias move with the customer’s code (five tries)', { params: Strict({ moveId: Ref('alias_move', 'Alias move id') }), body: Strict({ code: Type.String({ pattern: '^[0-9]{6}$' }) }), response: { 200: W.AliasSchema } }) }, async (request, reply) => {
    await takeMoveTry(db, request.params.moveId);
    return idempotent(request, reply, async (tx) => {
      const r = await aliases.confirmMove(tx, actorOf(request), principalOf(request).participantId, request.params.moveId, request.body.code);
      return r.ok ? okResponse(wireAlias(r.value)) : r.error;
    });
  });
  app.post('/v1/aliases/flags', { config: { idempotency: 'optional' }, schema: schema('aliases', 'Flag an alias for suspected fraud (payers are warned, risk rules use it)', { body: Strict({ type: AliasTypeSchema, value: AliasValue, reason: Type.String({ minLength: 1, maxLength: 500 }) }), response: { 201: W.AliasFlagSchema } }) }, async (request, reply) =>
    idempotent(request, reply, async (tx) => {
      const r = await aliases.flag(tx, actorOf(request), await me(request), request.body.type, request.body.value, request.body.reason);
      return r.ok ? created({ aliasId: r.value.id, flagged: true }) : r.error;
    }),
  );
  app.post('/v1/aliases/flags/remove', { schema: schema('aliases', 'Withdraw your fraud flag on an alias', { body: Strict({ type: AliasTypeSchema, value: AliasValue }), response: { 200: W.AliasFlagSchema } }) }, async (request, reply) => {
    const r = await db.transaction(async (tx) => aliases.unflag(tx, actorOf(request), await me(request), request.body.type, request.body.value));
    return r.ok ? { aliasId: r.value.id, flagged: r.value.flagged } : reply.fail(r.error);
  });

  // ---- FX and fees -------------------------------------------------------------------------------------------------
  app.get('/v1/fx/rates', { config: CUSTOMER, schema: schema('fx', 'Reference rates in force (per 1 EUR) and the spread', { response: { 200: W.FxRatesSchema } }) }, async () => {
    const t = await fx.table();
    return W.Exactly<Static<typeof W.FxRatesSchema>>()({ asOf: t.asOf, base: 'EUR' as const, spreadBps: fx.spreadBps(), rates: Object.fromEntries([...t.perEur.entries()].map(([c, v]) => [c, formatScaled(v, 6)])) });
  });
  app.post(
    '/v1/operator/fx/rates',
    { config: { idempotency: 'optional', auth: 'operator' },
      schema: schema('fx', 'Replace the reference rates with an ECB daily XML document (eurofxref-daily.xml)', { operator: true, body: Strict({ xml: Type.String({ minLength: 20, maxLength: 200_000 }), spreadBps: Type.Optional(Type.Integer({ minimum: 0, maximum: 2000 })) }), response: { 200: W.FxRefreshSchema } }),
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await fx.refresh(tx, actorOf(request), request.body.xml);
        if (!r.ok) return r.error;
        if (request.body.spreadBps !== undefined) fx.setSpreadBps(request.body.spreadBps);
        return okResponse({ asOf: r.value.asOf, currencies: r.value.perEur.size, spreadBps: fx.spreadBps() });
      }),
  );
  app.post(
    '/v1/operator/fees',
    { config: { idempotency: 'optional', auth: 'operator' },
      schema: schema('fx', 'Set the fee for payments from one participant to another: fixed + basis points, charged to the payer', {
        operator: true,
        body: Strict({ payerParticipantId: Ref('participant', 'Payer participant'), payeeParticipantId: Ref('participant', 'Payee participant'), fixed: Money, bps: Type.Integer({ minimum: 0, maximum: 10_000 }) }),
        response: { 200: W.FeeSchema },
      }),
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const fixed = parseMoney(request.body.fixed, 'fixed');
        const fixedMinor = fixed.ok ? fixed.value.amountMinor : request.body.fixed.amount.match(/^0+(\.0+)?$/) !== null ? 0n : undefined;
        if (fixedMinor === undefined) return (fixed as { error: DomainError }).error;
        const r = await transfers.setFee(tx, actorOf(request), { ...request.body, fixedMinor, fixedCurrency: request.body.fixed.currency });
        return r.ok ? okResponse(W.Exactly<Static<typeof W.FeeSchema>>()({ ...request.body })) : r.error;
      }),
  );

  app.get(
    '/v1/operator/fees',
    { config: { auth: 'operator' }, schema: schema('fx', 'The fee schedules in force between participants (payer → payee: fixed + basis points)', { operator: true, response: { 200: Type.Object({ items: Type.Array(W.FeeSchema) }, { additionalProperties: false }) } }) },
    async () => ({
      items: (await transfers.listFees()).map((f) => W.Exactly<Static<typeof W.FeeSchema>>()({ payerParticipantId: f.payerParticipantId, payeeParticipantId: f.payeeParticipantId, fixed: formatMoney(f.fixedMinor, f.fixedCurrency), bps: f.bps })),
    }),
  );

  // ---- pay ---------------------------------------------------------------------------------------------------------
  // Quotes run batched: concurrent quotes share one transaction, their reads and their insert set-based.
  const quote = idempotent.batched<{ payer: { id: string; country: string }; input: QuoteInput }>(
    async (tx, items) => (await transfers.quoteMany(tx, items)).map((r) => (r.ok ? created(wireQuote(r.value)) : r.error)),
    { keyRequired: false },
  );
  app.post(
    '/v1/transfers/quotes',
    { config: { ...CUSTOMER, idempotency: 'optional' },
      schema: schema('transfers', 'Quote a payment to an alias: fee, FX rate and spread, locked for 30 seconds', {
        body: Strict({ customerId: CustomerId, sourceAccountId: Type.Optional(Ref('account', 'Own or linked account to pay from')), payee: AliasRef, sendAmount: Type.Optional(Money), receiveAmount: Type.Optional(Money),
          fxProviderId: Type.Optional(Ref('participant', 'Across currencies: the FX provider to convert through (by default the best rate in force that prices the amount)')) }),
        response: { 201: QuoteSchema },
      }),
    },
    async (request, reply) => {
      const b = request.body;
      const send = b.sendAmount === undefined ? undefined : parse(b.sendAmount, 'sendAmount');
      const receive = b.receiveAmount === undefined ? undefined : parse(b.receiveAmount, 'receiveAmount');
      if (send?.ok === false) return reply.fail(send.error);
      if (receive?.ok === false) return reply.fail(receive.error);
      return quote(request, reply, {
        payer: await me(request),
        input: { customerId: b.customerId, sourceAccountId: b.sourceAccountId, payee: b.payee, sendAmount: send?.ok === true ? send.value : undefined, receiveAmount: receive?.ok === true ? receive.value : undefined, fxProviderId: b.fxProviderId },
      });
    },
  );

  // Confirms run batched: concurrent confirms share one transaction and set-based statements (transfers.confirmMany).
  // A payment with a connected side is answered reserved by its batch and decided right after it (outside any
  // transaction): the answer, first or replayed, is the decision.
  /**
   * A refused payment with a connected side as the API answers it (src/connectors: bankRefusal), the same code for the
   * same reason on every route. Which bank refused is not stored with the reason; the payer's bank is asked first and
   * its refusal ends the asking, and only the payer's bank speaks about the payer's account (AM04, MD01), so a payment
   * whose payer is connected reads those codes as its bank's; one whose payer is not was refused by the payee's bank.
   */
  const refusal = (p: Payment, refused: string, outcome: string, details?: Readonly<Record<string, unknown>>) => {
    const reason = p.reason ?? { Rsn: 'NARR' };
    const side: RefusingSide = p.connected.includes('payer') ? 'payer' : 'payee';
    const byHub = reason.Rsn === CONSENT_ENDED_AT_HUB.Rsn && reason.AddtlInf === CONSENT_ENDED_AT_HUB.AddtlInf;
    return errorAnswer(bankRefusal({ paymentId: p.id, reason, side, refused, outcome, byHub, ...(details !== undefined ? { details } : {}) }, 'payment_rejected'));
  };
  const confirm = idempotent.batched<ConfirmInput>(
    async (tx, inputs) => (await transfers.confirmMany(tx, inputs)).map((r, i) => (r.ok ? created(wirePayment(r.value, inputs[i]!.participantId)) : r.error)),
    {
      after: async (answer) => {
        const body = answer.body as { id?: unknown; status?: unknown } | undefined;
        if (answer.status !== 201 || body?.status !== 'pending' || typeof body.id !== 'string') return answer;
        const p = await transfers.settleConnected(body.id);
        if (p === undefined || p.status === 'pending') return answer;
        if (p.status === 'completed') return { status: 201, body: wirePayment(p, p.payerParticipantId) };
        return refusal(p, 'the payment', 'nothing moved');
      },
    },
  );
  app.post(
    '/v1/transfers/payments',
    { config: { ...CUSTOMER, idempotency: 'required' },
      schema: schema('transfers', 'Confirm a quote: the payee is credited at once (linked ledger transfers, all or nothing), or, with a bank that keeps its own books, once it accepted', {
        description:
          'With a side at a bank that keeps its own books (connected), the payer’s bank is asked to reserve the debit and the payee’s to accept the credit, each within its deadline; ' +
          'the payment completes only if both do. A refusal answers, with details.paymentId, details.status RJCT and details.reason (ISO 20022), nothing moved: the payer’s bank ' +
          'refusing for lack of funds (AM04) insufficient_funds, for a consent that no longer holds (MD01) consent_revoked (the consent’s links end here too); any other refusal, ' +
          'by either bank, or no valid answer in time (AB05, AB03, DS0B, FF01) payment_rejected. A replay of the Idempotency-Key answers the same.',
        body: Strict({ quoteId: Ref('quote', 'Quote id'), stepUpChallengeId: Type.Optional(Ref('step_up_challenge', 'After step_up_required: the challenge the customer completed for this payment')) }),
        response: { 201: TransferPaymentSchema },
      }),
    },
    async (request, reply) =>
      confirm(request, reply, { actor: actorOf(request), participantId: principalOf(request).participantId, quoteId: request.body.quoteId, stepUpChallengeId: request.body.stepUpChallengeId }),
  );
  app.get('/v1/transfers/payments/:paymentId', { config: CUSTOMER, schema: schema('transfers', 'Payment status (payer or payee participant)', { params: Strict({ paymentId: Ref('transfer', 'Payment id') }), response: { 200: TransferPaymentSchema } }) }, async (request, reply) => {
    const p = await transfers.getPayment(principalOf(request).participantId, request.params.paymentId);
    return p === undefined ? reply.fail({ code: 'payment_not_found', message: 'no such payment' }) : wirePayment(p, principalOf(request).participantId);
  });
  app.get(
    '/v1/transfers/payments',
    { config: CUSTOMER, schema: schema('transfers', 'Payments sent or received by your customers', { querystring: Strict({ customerId: Type.Optional(CustomerId), limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })) }), response: { 200: Items('Payment') } }) },
    async (request) => {
      const pid = principalOf(request).participantId;
      const limit = Math.min(Math.max(Number(request.query.limit ?? 50), 1), 200);
      return { items: (await transfers.listPayments(pid, request.query.customerId, limit)).map((p) => wirePayment(p, pid)) };
    },
  );

  // ---- open-banking account access (accounts at connected banks, by the bank's OAuth consent) ----------------------
  const ob = deps.openBanking;
  if (ob !== undefined) {
    const ConsentParams = Strict({ consentId: Ref('open_banking_consent', 'Open-banking consent id') });
    app.post(
      '/v1/open-banking/consents',
      { config: { ...CUSTOMER, idempotency: 'optional' },
        schema: schema('accounts', 'Link an account at a bank that keeps its own books: start the bank’s consent (OAuth 2.0 authorization code with PKCE)', {
          description:
            'The hub is the bank’s OAuth client: it makes the PKCE verifier and the state and keeps them (sealed, hashed). Send the customer to `authorizeUrl`; the bank redirects ' +
            'to `redirectUri` with `code` and `state`; hand both to POST /v1/open-banking/consents/{consentId}/authorize. The access grant the bank gives stays sealed at the hub.',
          body: Strict({
            customerId: CustomerId,
            bankParticipantId: Ref('participant', 'The bank (connected in this currency)'),
            currency: CurrencyCode,
            redirectUri: Type.String({ minLength: 1, maxLength: 2048, description: 'Where the bank sends the customer back (https; http only on localhost)' }),
          }),
          response: { 201: StartedConsentSchema },
        }),
      },
      async (request, reply) => {
        if (!isRedirectUri(request.body.redirectUri)) return reply.fail({ code: 'validation_failed', message: 'redirectUri must be an https URL (http only on localhost) without a fragment', details: { field: 'redirectUri' } });
        return idempotent(request, reply, async (tx) => {
          const r = await ob.start(tx, actorOf(request, request.body.customerId), {
            walletParticipantId: principalOf(request).participantId,
            walletCustomerId: request.body.customerId,
            bankParticipantId: request.body.bankParticipantId,
            currency: request.body.currency,
            redirectUri: request.body.redirectUri,
          });
          return r.ok ? created({ ...wireConsent(r.value.consent), authorizeUrl: r.value.authorizeUrl }) : r.error;
        });
      },
    );
    app.post(
      '/v1/open-banking/consents/:consentId/authorize',
      { config: CUSTOMER,
        schema: schema('accounts', 'Finish linking: the code and state the bank redirected with (the hub exchanges them for the bank’s grant)', {
          params: ConsentParams,
          body: Strict({ code: Type.String({ minLength: 1, maxLength: 512 }), state: Type.String({ minLength: 1, maxLength: 512 }) }),
          response: { 200: OpenBankingConsentSchema },
        }),
      },
      async (request, reply) => {
        const r = await ob.authorize(actorOf(request), principalOf(request).participantId, request.params.consentId, request.body);
        return r.ok ? wireConsent(r.value) : reply.fail(r.error);
      },
    );
    app.get(
      '/v1/open-banking/consents',
      { config: CUSTOMER, schema: schema('accounts', 'A customer’s open-banking consents (active, revoked, waiting for the bank)', { querystring: Strict({ customerId: CustomerId }), response: { 200: Type.Object({ items: Type.Array(OpenBankingConsentSchema) }, { additionalProperties: false }) } }) },
      async (request) => ({ items: (await ob.list(principalOf(request).participantId, request.query.customerId)).map(wireConsent) }),
    );
    app.get('/v1/open-banking/consents/:consentId', { config: CUSTOMER, schema: schema('accounts', 'An open-banking consent', { params: ConsentParams, response: { 200: OpenBankingConsentSchema } }) }, async (request, reply) => {
      const c = await ob.get(principalOf(request).participantId, request.params.consentId);
      return c === undefined ? reply.fail({ code: 'consent_not_found', message: 'no such consent' }) : wireConsent(c);
    });
    app.get(
      '/v1/open-banking/consents/:consentId/balances',
      { config: CUSTOMER, schema: schema('accounts', 'The balances of the consent’s accounts, read at the bank now', { description: 'Answers 403 consent_revoked once the customer revoked the consent, in the wallet or at the bank.', params: ConsentParams, response: { 200: BankBalancesSchema } }) },
      async (request, reply) => {
        const r = await ob.balances(principalOf(request).participantId, request.params.consentId);
        return r.ok ? { items: r.value.map((b) => ({ accountId: b.accountId, linkId: b.linkId, balance: b.balance, available: b.available, asOf: b.asOf })) } : reply.fail(r.error);
      },
    );
    app.delete(
      '/v1/open-banking/consents/:consentId',
      { config: CUSTOMER, schema: schema('accounts', 'Revoke the consent: its links end at once, and the hub revokes the grant at the bank', { params: ConsentParams, response: { 200: OpenBankingConsentSchema } }) },
      async (request, reply) => {
        const r = await ob.revoke(actorOf(request), principalOf(request).participantId, request.params.consentId);
        return r.ok ? wireConsent(r.value) : reply.fail(r.error);
      },
    );
    app.post(
      '/v1/open-banking/consents/:consentId/quotes',
      { config: { ...CUSTOMER, idempotency: 'optional' },
        schema: schema('accounts', 'Initiate a payment from the consent’s account: a quote to confirm with POST /v1/transfers/payments (the bank authorizes the debit)', {
          description: 'The same quote as POST /v1/transfers/quotes with the consent’s account as the source. Answers 403 consent_revoked once the consent ended.',
          params: ConsentParams,
          body: Strict({ payee: AliasRef, sendAmount: Type.Optional(Money), receiveAmount: Type.Optional(Money) }),
          response: { 201: QuoteSchema },
        }),
      },
      async (request, reply) => {
        const source = await ob.sourceOf(principalOf(request).participantId, request.params.consentId);
        if (!source.ok) return reply.fail(source.error);
        const b = request.body;
        const send = b.sendAmount === undefined ? undefined : parse(b.sendAmount, 'sendAmount');
        const receive = b.receiveAmount === undefined ? undefined : parse(b.receiveAmount, 'receiveAmount');
        if (send?.ok === false) return reply.fail(send.error);
        if (receive?.ok === false) return reply.fail(receive.error);
        return quote(request, reply, {
          payer: await me(request),
          input: { customerId: source.value.customerId, sourceAccountId: source.value.accountId, payee: b.payee, sendAmount: send?.ok === true ? send.value : undefined, receiveAmount: receive?.ok === true ? receive.value : undefined },
        });
      },
    );
    // Top-up and withdrawal: between the consent's account at the bank and the customer's own account here.
    for (const [path, direction, summary] of [
      ['top-ups', 'in', 'Top up the customer’s account here from the consent’s account at the bank: a quote to confirm with POST /v1/transfers/payments (the bank authorizes the debit)'],
      ['withdrawals', 'out', 'Withdraw from the customer’s account here to the consent’s account at the bank: a quote to confirm with POST /v1/transfers/payments (the bank accepts the credit)'],
    ] as const) {
      app.post(
        `/v1/open-banking/consents/:consentId/${path}`,
        { config: { ...CUSTOMER, idempotency: 'optional' },
          schema: schema('accounts', summary, {
            description: 'Answers 403 consent_revoked once the consent ended.',
            params: ConsentParams,
            body: Strict({ amount: Money, accountId: Type.Optional(Ref('account', 'The customer’s own account here (default: theirs in the amount’s currency)')) }),
            response: { 201: QuoteSchema },
          }),
        },
        async (request, reply) => {
          const source = await ob.sourceOf(principalOf(request).participantId, request.params.consentId);
          if (!source.ok) return reply.fail(source.error);
          const amount = parse(request.body.amount);
          if (!amount.ok) return reply.fail(amount.error);
          const here = request.body.accountId ?? customerAccountId(source.value.customerId, amount.value.currency);
          const payer = await me(request);
          return idempotent(request, reply, async (tx) => {
            const r = await transfers.quoteOwnTransfer(tx, payer, {
              customerId: source.value.customerId,
              sourceAccountId: direction === 'in' ? source.value.accountId : here,
              payeeAccountId: direction === 'in' ? here : source.value.accountId,
              amountMinor: amount.value.amountMinor,
              currency: amount.value.currency,
            });
            return r.ok ? created(wireQuote(r.value)) : r.error;
          });
        },
      );
    }
  }

  // ---- requests ----------------------------------------------------------------------------------------------------
  app.post(
    '/v1/transfers/requests',
    { config: { ...CUSTOMER, idempotency: 'optional' },
      schema: schema('transfers', 'Request money from an alias (never debits anything: the payer must approve in their own wallet)', {
        body: Strict({ customerId: CustomerId, payer: AliasRef, amount: Money, note: Type.Optional(Type.String({ maxLength: 140 })), accountId: Type.Optional(Ref('account', 'Account to receive into')) }),
        response: { 201: W.MoneyRequestSchema },
      }),
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const amount = parse(request.body.amount);
        if (!amount.ok) return amount.error;
        const r = await transfers.createRequest(tx, actorOf(request, request.body.customerId), await me(request), {
          customerId: request.body.customerId,
          payer: request.body.payer,
          amountMinor: amount.value.amountMinor,
          currency: amount.value.currency,
          note: request.body.note,
          accountId: request.body.accountId,
        });
        return r.ok ? created(wireRequest(r.value)) : r.error;
      }),
  );
  app.get(
    '/v1/transfers/requests',
    { config: CUSTOMER, schema: schema('transfers', 'Requests to or from a customer', { querystring: Strict({ customerId: CustomerId, role: Type.Union([Type.Literal('payer'), Type.Literal('requester')]) }), response: { 200: Type.Object({ items: Type.Array(W.MoneyRequestSchema) }, { additionalProperties: false }) } }) },
    async (request) => ({ items: (await transfers.listRequests(principalOf(request).participantId, request.query.customerId, request.query.role, 100)).map(wireRequest) }),
  );
  app.get('/v1/transfers/requests/:requestId', { config: CUSTOMER, schema: schema('transfers', 'A request', { params: Strict({ requestId: Ref('money_request', 'Request id') }), response: { 200: W.MoneyRequestSchema } }) }, async (request, reply) => {
    const r = await transfers.getRequest(principalOf(request).participantId, request.params.requestId);
    return r === undefined ? reply.fail({ code: 'request_not_found', message: 'no such request' }) : wireRequest(r);
  });
  app.post(
    '/v1/transfers/requests/:requestId/approve',
    { config: { ...CUSTOMER, idempotency: 'optional' },
      schema: schema('transfers', 'The payer approves: answers a quote (with warnings) to confirm through POST /v1/transfers/payments', {
        params: Strict({ requestId: Ref('money_request', 'Request id') }),
        body: Strict({ customerId: CustomerId, sourceAccountId: Type.Optional(Ref('account', 'Own or linked account to pay from')) }),
        response: { 201: QuoteSchema },
      }),
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await transfers.approveRequest(tx, actorOf(request, request.body.customerId), await me(request), request.params.requestId, request.body);
        return r.ok ? created(wireQuote(r.value)) : r.error;
      }),
  );
  app.post(
    '/v1/transfers/requests/:requestId/decline',
    { config: { ...CUSTOMER, idempotency: 'optional' }, schema: schema('transfers', 'The payer declines, and may block the requester', { params: Strict({ requestId: Ref('money_request', 'Request id') }), body: Strict({ customerId: CustomerId, block: Type.Optional(Type.Boolean()) }), response: { 200: W.MoneyRequestSchema } }) },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await transfers.declineRequest(tx, actorOf(request, request.body.customerId), principalOf(request).participantId, request.params.requestId, request.body);
        return r.ok ? okResponse(wireRequest(r.value)) : r.error;
      }),
  );

  // ---- splits ------------------------------------------------------------------------------------------------------
  app.post(
    '/v1/transfers/splits',
    { config: { ...CUSTOMER, idempotency: 'optional' },
      schema: schema('transfers', 'Split a bill you paid: each other member gets a request for their share', {
        body: Strict({
          customerId: CustomerId,
          total: Money,
          method: Type.Union([Type.Literal('equal'), Type.Literal('shares'), Type.Literal('amounts')]),
          note: Type.Optional(Type.String({ maxLength: 140 })),
          members: Type.Array(Strict({ alias: AliasRef, shares: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), amount: Type.Optional(Type.String({ pattern: '^[0-9]{1,19}(\\.[0-9]{1,4})?$' })) }), { minItems: 2, maxItems: 50 }),
        }),
        response: { 201: W.SplitSchema },
      }),
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const total = parse(request.body.total, 'total');
        if (!total.ok) return total.error;
        const members = [];
        for (const [i, m] of request.body.members.entries()) {
          let amountMinor: bigint | undefined;
          if (m.amount !== undefined) {
            const a = parse({ amount: m.amount, currency: total.value.currency }, `members[${i}].amount`);
            if (!a.ok) return a.error;
            amountMinor = a.value.amountMinor;
          }
          members.push({ alias: m.alias, shares: m.shares, amountMinor });
        }
        const r = await transfers.createSplit(tx, actorOf(request, request.body.customerId), await me(request), {
          customerId: request.body.customerId,
          totalMinor: total.value.amountMinor,
          currency: total.value.currency,
          method: request.body.method,
          note: request.body.note,
          members,
        });
        return r.ok ? created(wireSplit(r.value)) : r.error;
      }),
  );
  app.get('/v1/transfers/splits/:splitId', { config: CUSTOMER, schema: schema('transfers', 'A split: who paid, who has not', { params: Strict({ splitId: Ref('split', 'Split id') }), response: { 200: W.SplitSchema } }) }, async (request, reply) => {
    const s = await transfers.getSplit(principalOf(request).participantId, request.params.splitId);
    return s === undefined ? reply.fail({ code: 'split_not_found', message: 'no such split' }) : wireSplit(s);
  });
  app.post('/v1/transfers/splits/:splitId/remind', { config: CUSTOMER, schema: schema('transfers', 'Remind members who have not paid (at most once an hour)', { params: Strict({ splitId: Ref('split', 'Split id') }), response: { 200: W.RemindedSchema } }) }, async (request, reply) => {
    const r = await db.transaction((tx) => transfers.remind(tx, actorOf(request), principalOf(request).participantId, request.params.splitId));
    return r.ok ? r.value : reply.fail(r.error);
  });

  // ---- red packets -------------------------------------------------------------------------------------------------
  app.post(
    '/v1/transfers/red-packets',
    { config: { ...CUSTOMER, idempotency: 'required' },
      schema: schema('transfers', 'Send a red packet (红包) to a group: funded into escrow now (from an account at a bank that keeps its own books: once the bank reserved, else insufficient_funds / consent_revoked / payment_rejected and the packet failed), claimed share by share, the rest refunded at expiry (to that bank, which accepts)', {
        body: Strict({
          customerId: CustomerId,
          sourceAccountId: Type.Optional(Ref('account', 'Own or linked account to pay from')),
          total: Money,
          shares: Type.Integer({ minimum: 1, maximum: 200 }),
          mode: Type.Union([Type.Literal('equal'), Type.Literal('random')]),
          members: Type.Array(AliasRef, { minItems: 1, maxItems: 500 }),
          message: Type.Optional(Type.String({ maxLength: 140 })),
          expiresInS: Type.Optional(Type.Integer({ minimum: 60, maximum: 604_800 })),
        }),
        response: { 201: W.RedPacketSchema },
      }),
    },
    async (request, reply) =>
      idempotent(
        request,
        reply,
        async (tx) => {
          const total = parse(request.body.total, 'total');
          if (!total.ok) return total.error;
          const r = await transfers.createRedPacket(tx, actorOf(request, request.body.customerId), await me(request), { ...request.body, totalMinor: total.value.amountMinor, currency: total.value.currency });
          return r.ok ? created(wirePacket(r.value)) : r.error;
        },
        // Funded from an account at a bank that keeps its own books: the bank is asked after the packet's transaction
        // and the answer, first or replayed, is the decision (the packet open, or the bank's refusal as P2P's codes
        // say it). A replay asks nothing: the decided payment is answered as it is.
        { required: true, after: async (answer) => {
          const body = answer.body as { id?: unknown; fundingPaymentId?: unknown } | undefined;
          if (answer.status !== 201 || typeof body?.id !== 'string' || typeof body.fundingPaymentId !== 'string') return answer;
          const p = await transfers.settleConnected(body.fundingPaymentId);
          const packet = await transfers.getRedPacket(principalOf(request).participantId, body.id);
          if (p === undefined || packet === undefined || p.status !== 'rejected') return packet === undefined ? answer : { status: 201, body: wirePacket(packet) };
          return refusal(p, 'the packet’s funding', 'the packet failed, nothing moved', { packetId: packet.id, packetStatus: packet.status });
        } },
      ),
  );
  app.get('/v1/transfers/red-packets/:packetId', { config: CUSTOMER, schema: schema('transfers', 'A red packet and its claims', { params: Strict({ packetId: Ref('red_packet', 'Red packet id') }), response: { 200: W.RedPacketSchema } }) }, async (request, reply) => {
    const p = await transfers.getRedPacket(principalOf(request).participantId, request.params.packetId);
    return p === undefined ? reply.fail({ code: 'red_packet_not_found', message: 'no such red packet' }) : wirePacket(p);
  });
  app.post(
    '/v1/transfers/red-packets/:packetId/claim',
    { config: { ...CUSTOMER, idempotency: 'required' },
      schema: schema('transfers', 'Claim a share (once per group member)', {
        description: 'A member whose bank keeps its own books is paid once that bank accepts the credit; a refusal answers payment_rejected (details.paymentId, details.status RJCT, details.reason: ISO 20022) and the share can be claimed again.',
        params: Strict({ packetId: Ref('red_packet', 'Red packet id') }), body: Strict({ customerId: CustomerId }), response: { 201: W.RedPacketClaimSchema } }) },
    async (request, reply) =>
      idempotent(
        request,
        reply,
        async (tx) => {
          const r = await transfers.claimRedPacket(tx, actorOf(request, request.body.customerId), principalOf(request).participantId, request.params.packetId, request.body.customerId);
          return r.ok
            ? created({ packetId: request.params.packetId, amount: money(r.value.amountMinor, r.value.currency), packet: wirePacket(r.value.packet), ...(r.value.paymentId !== undefined ? { paymentId: r.value.paymentId } : {}) })
            : r.error;
        },
        // A member whose bank keeps its own books: the share's payment is decided after the claim's transaction (the
        // bank accepts, or refuses and the share is claimable again), and the answer, first or replayed, says which.
        { required: true, after: async (answer) => {
          const body = answer.body as { paymentId?: unknown } | undefined;
          if (answer.status !== 201 || typeof body?.paymentId !== 'string') return answer;
          const p = await transfers.settleConnected(body.paymentId);
          if (p === undefined || p.status !== 'rejected') return answer;
          return refusal(p, 'the share', 'it can be claimed again');
        } },
      ),
  );

  // ---- risk --------------------------------------------------------------------------------------------------------
  const AlertQuery = Strict({ status: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('resolved')])) });
  const ResolveBody = Strict({ resolution: Type.String({ minLength: 1, maxLength: 500 }) });
  app.get('/v1/risk/alerts', { schema: schema('risk', 'Risk alerts on your customers', { querystring: AlertQuery, response: { 200: W.AlertListSchema } }) }, async (request) => ({
    items: (await risk.listAlerts({ participantId: principalOf(request).participantId, ...(request.query.status !== undefined ? { status: request.query.status } : {}), limit: 200 })).map(wireAlert),
  }));
  app.post('/v1/risk/alerts/:alertId/resolve', { schema: schema('risk', 'Resolve one of your alerts', { params: Strict({ alertId: Ref('risk_alert', 'Alert id') }), body: ResolveBody, response: { 200: W.AlertSchema } }) }, async (request, reply) => {
    const r = await db.transaction((tx) => risk.resolveAlert(tx, actorOf(request), request.params.alertId, principalOf(request).participantId, request.body.resolution));
    return r.ok ? wireAlert(r.value) : reply.fail(r.error);
  });
  app.get('/v1/operator/risk/alerts', { config: { auth: 'operator' }, schema: schema('risk', 'Every risk alert', { operator: true, querystring: AlertQuery, response: { 200: W.AlertListSchema } }) }, async (request) => ({
    items: (await risk.listAlerts({ ...(request.query.status !== undefined ? { status: request.query.status } : {}), limit: 200 })).map(wireAlert),
  }));
  app.post('/v1/operator/risk/alerts/:alertId/resolve', { config: { auth: 'operator' }, schema: schema('risk', 'Resolve any alert', { operator: true, params: Strict({ alertId: Ref('risk_alert', 'Alert id') }), body: ResolveBody, response: { 200: W.AlertSchema } }) }, async (request, reply) => {
    const r = await db.transaction((tx) => risk.resolveAlert(tx, actorOf(request), request.params.alertId, undefined, request.body.resolution));
    return r.ok ? wireAlert(r.value) : reply.fail(r.error);
  });
  const RuleBody = Strict({
    rule: Type.Union(RULE_NAMES.map((r) => Type.Literal(r))),
    enabled: Type.Boolean(),
    action: Type.Union([Type.Literal('step_up'), Type.Literal('decline')]),
    score: Type.Integer({ minimum: 0, maximum: 100 }),
    windowS: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_592_000 })),
    maxCount: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    multiple: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    minHistory: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    minRefEurCents: Type.Optional(Type.Integer({ minimum: 0 })),
  });
  app.get('/v1/risk/rules', { schema: schema('risk', 'The risk rules in force for you (hub defaults with your overrides)', { response: { 200: W.P2pRulesSchema(RULE_NAMES) } }) }, async (request) => risk.rules(principalOf(request).participantId));
  app.post('/v1/risk/rules', { schema: schema('risk', 'Override one risk rule’s thresholds for your customers', { body: RuleBody, response: { 200: RuleBody } }) }, async (request, reply) => {
    const { rule, enabled, ...params } = request.body;
    const r = await db.transaction((tx) => risk.setRule(tx, actorOf(request), principalOf(request).participantId, rule as RuleName, params, enabled));
    return r.ok ? { rule, enabled, ...params } : reply.fail(r.error);
  });
  void Timestamp;
}
