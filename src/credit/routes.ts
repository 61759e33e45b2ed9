import { Type, type Static } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { actorOf, created, okResponse, principalOf, type Idempotent } from '../api/index.ts';
import { Exactly, Money, Strict, Timestamp } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import type { WalletTokenService } from '../cards/index.ts';
import type { AccountService } from '../accounts/index.ts';
import type { HttpServer } from '../platform/http.ts';
import { newId } from '../platform/ids.ts';
import { formatMoney, parseMoney } from '../platform/money.ts';
import type { CreditLine, CreditService, Repayment, Statement } from './service.ts';

const StatementSchema = Type.Object(
  {
    id: Type.String(),
    accountId: Type.String({ description: 'The credit line (a credit card’s credit account or a bank credit line)' }),
    cardId: Type.Union([Type.String(), Type.Null()]),
    customerId: Type.String(),
    periodStart: Type.Union([Timestamp, Type.Null()], { description: 'The previous statement’s end; null for the first' }),
    periodEnd: Timestamp,
    balance: Money,
    minimumPayment: Type.Object(Money.properties, { additionalProperties: false, description: '5 % of the balance rounded up, at least 10.00, at most the balance' }),
    paid: Money,
    dueAt: Timestamp,
    status: Type.Union([Type.Literal('due'), Type.Literal('minimum_paid'), Type.Literal('paid'), Type.Literal('overdue')]),
    createdAt: Timestamp,
  },
  { $id: 'CreditStatement', additionalProperties: false },
);

const LineSchema = Type.Object(
  {
    accountId: Type.String(),
    customerId: Type.String(),
    limit: Money,
    available: Type.Object(Money.properties, { additionalProperties: false, description: 'The limit less what is owed and held by pending authorisations' }),
    owed: Money,
    statement: Type.Union([Type.Ref(StatementSchema), Type.Null()], { description: 'The latest statement' }),
  },
  { $id: 'CreditLineAccount', additionalProperties: false },
);

const RepaymentSchema = Type.Object(
  {
    id: Type.String(),
    accountId: Type.String(),
    fromAccountId: Type.String(),
    amount: Money,
    owed: Type.Object(Money.properties, { additionalProperties: false, description: 'Still owed after this repayment' }),
    statementId: Type.Union([Type.String(), Type.Null()], { description: 'The statement it counted against' }),
    statementStatus: Type.Union([Type.String(), Type.Null()]),
    createdAt: Timestamp,
  },
  { $id: 'CreditRepayment', additionalProperties: false },
);

const wireStatement = (s: Statement) =>
  Exactly<Static<typeof StatementSchema>>()({
    id: s.id,
    accountId: s.accountId,
    cardId: s.cardId,
    customerId: s.customerId,
    periodStart: s.periodStart?.toISOString() ?? null,
    periodEnd: s.periodEnd.toISOString(),
    balance: formatMoney(s.balanceMinor, s.currency),
    minimumPayment: formatMoney(s.minimumMinor, s.currency),
    paid: formatMoney(s.paidMinor, s.currency),
    dueAt: s.dueAt.toISOString(),
    status: s.status,
    createdAt: s.createdAt.toISOString(),
  });

const wireRepayment = (r: Repayment) =>
  Exactly<Static<typeof RepaymentSchema>>()({
    id: r.id,
    accountId: r.accountId,
    fromAccountId: r.sourceAccountId,
    amount: formatMoney(r.amountMinor, r.currency),
    owed: formatMoney(r.owedMinor, r.currency),
    statementId: r.statement?.id ?? null,
    statementStatus: r.statement?.status ?? null,
    createdAt: r.createdAt.toISOString(),
  });

export interface CreditRouteDeps {
  readonly credit: CreditService;
  readonly walletTokens: WalletTokenService;
  readonly accounts: AccountService;
  readonly idempotent: Idempotent;
}

const sec = [{ participant: [] }];
const LineParams = Strict({ accountId: Ref('account', 'The credit line’s account (a credit card’s fundingAccountId, or a line you opened)') });

function issuerOf(request: FastifyRequest): string | undefined {
  const p = principalOf(request);
  return p.kind === 'issuer' ? p.participantId : undefined;
}
const notIssuer = (reply: FastifyReply) => reply.fail({ code: 'not_issuer', message: 'only issuers (banks) extend credit' });

export function registerCreditRoutes(app: HttpServer, deps: CreditRouteDeps): void {
  const { credit, walletTokens, accounts, idempotent } = deps;
  app.addSchema(StatementSchema);
  app.addSchema(LineSchema);
  app.addSchema(RepaymentSchema);

  const wireLine = async (line: CreditLine) => {
    const statement = line.view.statement === null ? null : (await credit.statements(line.issuerParticipantId, line.accountId, 1))[0];
    return Exactly<Static<typeof LineSchema>>()({
      accountId: line.accountId,
      customerId: line.customerId,
      limit: formatMoney(line.view.limitMinor, line.view.currency),
      available: formatMoney(line.view.availableMinor, line.view.currency),
      owed: formatMoney(line.view.owedMinor, line.view.currency),
      statement: statement === undefined || statement === null ? null : wireStatement(statement),
    });
  };

  app.post(
    '/v1/issuer/credit-lines',
    {
      config: { idempotency: 'required' },
      schema: {
        tags: ['credit'],
        summary: 'Open a credit line for one of your customers',
        description:
          'A ledger account of kind credit whose debits may exceed its credits up to the limit (the ledger enforces it). ' +
          'The customer links it into any wallet like a bank account and pays from it there. A credit card has its own line, opened when the card is issued (its fundingAccountId).',
        security: sec,
        body: Strict({ customerId: Ref('customer', 'Your customer'), limit: Money }),
        response: { 201: Type.Ref(LineSchema) },
      },
    },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      return idempotent(
        request,
        reply,
        async (tx) => {
          const limit = parseMoney(request.body.limit, 'limit');
          if (!limit.ok) return limit.error;
          const r = await credit.openLine(tx, actorOf(request, request.body.customerId), issuerId, { customerId: request.body.customerId, currency: limit.value.currency, limitMinor: limit.value.amountMinor });
          return r.ok ? created(await wireLine(r.value)) : r.error;
        },
        { required: true },
      );
    },
  );

  app.get(
    '/v1/issuer/credit-lines/:accountId',
    { schema: { tags: ['credit'], summary: 'A credit line: limit, available, owed, latest statement', security: sec, params: LineParams, response: { 200: Type.Ref(LineSchema) } } },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      const line = await credit.line(issuerId, request.params.accountId);
      if (line === undefined) return reply.fail({ code: 'credit_line_not_found', message: 'no credit line of yours has this account' });
      return wireLine(line);
    },
  );

  app.post(
    '/v1/issuer/credit-lines/:accountId/limit',
    {
      config: { idempotency: 'optional' },
      schema: { tags: ['credit'], summary: 'Change a credit line’s limit (applies to the next authorisation)', security: sec, params: LineParams, body: Strict({ limit: Money }), response: { 200: Type.Ref(LineSchema) } },
    },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      return idempotent(request, reply, async (tx) => {
        const limit = parseMoney(request.body.limit, 'limit');
        if (!limit.ok) return limit.error;
        const line = await credit.line(issuerId, request.params.accountId, tx);
        if (line !== undefined && line.view.currency !== limit.value.currency) return { code: 'currency_mismatch', message: `the line is in ${line.view.currency}` };
        const r = await credit.setLimit(tx, actorOf(request), issuerId, request.params.accountId, limit.value.amountMinor);
        return r.ok ? okResponse(await wireLine(r.value)) : r.error;
      });
    },
  );

  app.post(
    '/v1/issuer/credit-lines/:accountId/statements',
    {
      config: { idempotency: 'required' },
      schema: {
        tags: ['credit'],
        summary: 'Close a statement now: the balance owed, the minimum payment and the due date',
        description: 'The `credit.statement_issued` webhook tells you (send it on to the cardholder). A statement still short of its minimum payment at its due date becomes overdue (`credit.statement_overdue`).',
        security: sec,
        params: LineParams,
        body: Strict({ dueInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 60, description: 'Default 21' })) }),
        response: { 201: Type.Ref(StatementSchema) },
      },
    },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      return idempotent(
        request,
        reply,
        async (tx) => {
          const r = await credit.issueStatement(tx, actorOf(request), issuerId, request.params.accountId, { dueInDays: request.body.dueInDays });
          return r.ok ? created(wireStatement(r.value)) : r.error;
        },
        { required: true },
      );
    },
  );

  app.get(
    '/v1/issuer/credit-lines/:accountId/statements',
    { schema: { tags: ['credit'], summary: 'A credit line’s statements, newest first', security: sec, params: LineParams, response: { 200: Strict({ items: Type.Array(Type.Ref(StatementSchema)) }) } } },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      if ((await credit.line(issuerId, request.params.accountId)) === undefined) return reply.fail({ code: 'credit_line_not_found', message: 'no credit line of yours has this account' });
      return { items: (await credit.statements(issuerId, request.params.accountId, 100)).map(wireStatement) };
    },
  );

  app.post(
    '/v1/issuer/credit-lines/:accountId/repayments',
    {
      config: { idempotency: 'required' },
      schema: {
        tags: ['credit'],
        summary: "Take a repayment from the customer's account with you (a direct debit)",
        security: sec,
        params: LineParams,
        body: Strict({ fromAccountId: Ref('account', "The customer's account with you"), amount: Money }),
        response: { 201: Type.Ref(RepaymentSchema) },
      },
    },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      return idempotent(
        request,
        reply,
        async (tx) => {
          const amount = parseMoney(request.body.amount);
          if (!amount.ok) return amount.error;
          const line = await credit.line(issuerId, request.params.accountId, tx);
          if (line === undefined) return { code: 'credit_line_not_found', message: 'no credit line of yours has this account' };
          const source = await accounts.ref(tx, request.body.fromAccountId);
          if (source === undefined || source.ownerParticipantId !== issuerId || source.customerId !== line.customerId) {
            return { code: 'repayment_account_invalid', message: "repayments you take come from the customer's own account with you" };
          }
          if (amount.value.currency !== line.view.currency) return { code: 'currency_mismatch', message: `the line is in ${line.view.currency}` };
          const r = await credit.repay(tx, actorOf(request), { id: newId('crp'), issuerId, accountId: request.params.accountId, sourceAccountId: source.id, initiatorId: issuerId, amountMinor: amount.value.amountMinor });
          return r.ok ? created(wireRepayment(r.value)) : r.error;
        },
        { required: true },
      );
    },
  );

  app.post(
    '/v1/wallet/credit-repayments',
    {
      config: { customer: true, idempotency: 'required' },
      schema: {
        tags: ['credit'],
        summary: 'Repay a credit card in your wallet from an account the customer pays from here',
        description:
          'The card is named by its token in your wallet; the money comes from the customer’s account with you or a bank account linked into your wallet. ' +
          'Between participants it moves through both positions and is settled like a payment.',
        security: sec,
        body: Strict({
          customerId: Ref('customer', 'Your customer'),
          tokenRef: Ref('token', 'The credit card’s token in your wallet'),
          fromAccountId: Ref('account', 'The account paying'),
          amount: Money,
        }),
        response: { 201: Type.Ref(RepaymentSchema) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      if (p.kind !== 'wallet') return reply.fail({ code: 'not_wallet', message: 'only wallets repay from a token' });
      const b = request.body;
      return idempotent(
        request,
        reply,
        async (tx) => {
          const amount = parseMoney(b.amount);
          if (!amount.ok) return amount.error;
          const token = await walletTokens.getForWallet(p.participantId, b.tokenRef, tx);
          if (token === undefined || token.customerId !== b.customerId) return { code: 'token_not_found', message: 'no such token' };
          if (token.creditAccountId === null) return { code: 'card_not_credit', message: 'this token is not of a credit card' };
          const source = await accounts.debitable(tx, p.participantId, b.customerId, b.fromAccountId);
          if (source === undefined) return { code: 'repayment_account_invalid', message: 'the customer does not pay from this account here' };
          if (amount.value.currency !== source.currency) return { code: 'currency_mismatch', message: `the account holds ${source.currency}` };
          // The Idempotency-Key makes a retry replay this answer: the transfer ids need not come from it.
          const r = await credit.repay(tx, actorOf(request, b.customerId), {
            id: newId('crp'),
            issuerId: token.issuerParticipantId,
            accountId: token.creditAccountId,
            sourceAccountId: source.id,
            initiatorId: p.participantId,
            amountMinor: amount.value.amountMinor,
          });
          return r.ok ? created(wireRepayment(r.value)) : r.error;
        },
        { required: true },
      );
    },
  );
}
