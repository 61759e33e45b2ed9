import { Type } from '@sinclair/typebox';
import { actorOf, created, principalOf, type Idempotent } from '../api/index.ts';
import { CurrencyCode, Money, Strict, Timestamp, pageLimit, PageQuery, refuseUnknownCursor } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import type { AuditService } from '../audit/index.ts';
import type { ParticipantService } from '../participants/index.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { deterministicId } from '../platform/ids.ts';
import { formatMoney, parseMoney } from '../platform/money.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { Ledger } from './ledger.ts';
import type { Account } from './types.ts';
import { accountToWire, historyEntryToWire, transferToWire } from './wire.ts';

const WireMoney = Type.Object({ amount: Type.String(), currency: Type.String() }, { additionalProperties: false });

const AccountSchema = Type.Object(
  {
    id: Type.String(),
    ownerParticipantId: Type.String(),
    customerId: Type.Union([Type.String(), Type.Null()]),
    currency: Type.String(),
    kind: Type.String(),
    flags: Type.Object({ debitsMustNotExceedCredits: Type.Boolean(), creditsMustNotExceedDebits: Type.Boolean(), closed: Type.Boolean() }, { additionalProperties: false }),
    creditLimit: Type.Union([WireMoney, Type.Null()]),
    balance: WireMoney,
    available: WireMoney,
    debitsPending: WireMoney,
    debitsPosted: WireMoney,
    creditsPending: WireMoney,
    creditsPosted: WireMoney,
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'LedgerAccount', additionalProperties: false },
);

const HistoryEntrySchema = Type.Object(
  {
    seq: Type.String(),
    transferId: Type.String(),
    event: Type.String(),
    side: Type.Union([Type.Literal('debit'), Type.Literal('credit')]),
    amount: WireMoney,
    balanceAfter: WireMoney,
    debitsPendingAfter: WireMoney,
    creditsPendingAfter: WireMoney,
    at: Timestamp,
  },
  { $id: 'LedgerHistoryEntry', additionalProperties: false },
);

const TransferSchema = Type.Object(
  {
    id: Type.String(),
    kind: Type.String(),
    debitAccountId: Type.String(),
    creditAccountId: Type.String(),
    amount: WireMoney,
    purpose: Type.String(),
    metadata: Type.Object({}, { additionalProperties: true }),
    linked: Type.Boolean(),
    pendingId: Type.Union([Type.String(), Type.Null()]),
    pendingState: Type.Union([Type.String(), Type.Null()]),
    timeoutMs: Type.Union([Type.Number(), Type.Null()]),
    expiresAt: Type.Union([Timestamp, Type.Null()]),
    createdAt: Timestamp,
  },
  { $id: 'LedgerTransfer', additionalProperties: false },
);

const AccountParams = Strict({ accountId: Ref('account', 'Ledger account id') });

export interface LedgerRouteDeps {
  readonly db: Db;
  readonly ledger: Ledger;
  readonly participants: ParticipantService;
  readonly audit: AuditService;
  readonly events: EventOutbox;
  readonly idempotent: Idempotent;
  /** A participant's position account in a currency (src/liquidity): the only source money of theirs comes from. */
  readonly positionAccount: (participantId: string, currency: string) => Promise<string>;
}

export function registerLedgerRoutes(app: HttpServer, deps: LedgerRouteDeps): void {
  const { ledger, participants, audit, events, idempotent } = deps;
  app.addSchema(AccountSchema);
  app.addSchema(HistoryEntrySchema);
  app.addSchema(TransferSchema);

  /** An account the caller owns, or undefined (another participant's account is not found). */
  const ownAccount = async (participantId: string, accountId: string): Promise<Account | undefined> => {
    const result = await ledger.getAccount(accountId);
    return result.ok && result.value.ownerParticipantId === participantId ? result.value : undefined;
  };

  app.get(
    '/v1/ledger/accounts',
    {
      schema: {
        tags: ['ledger'],
        summary: 'Your ledger accounts with balances',
        security: [{ participant: [] }],
        querystring: Type.Composite([PageQuery, Type.Object({ currency: Type.Optional(CurrencyCode), customerId: Type.Optional(Ref('customer', 'Only this customer’s accounts')) })], { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(Type.Ref(AccountSchema)) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const { currency, customerId, limit } = request.query;
      // One page only (no nextCursor), so no cursor is one this list issued: refused rather than answering page one again.
      const refused = await refuseUnknownCursor(request.query.cursor, () => Promise.resolve(undefined));
      if (refused !== undefined) return reply.fail(refused);
      const accounts = await ledger.listAccounts({
        ownerParticipantId: principalOf(request).participantId,
        limit: pageLimit(limit),
        ...(currency !== undefined ? { currency } : {}),
        ...(customerId !== undefined ? { customerId } : {}),
      });
      return { items: accounts.map(accountToWire) };
    },
  );

  app.get(
    '/v1/ledger/accounts/:accountId',
    { schema: { tags: ['ledger'], summary: 'One of your accounts: balances (posted, pending, available)', security: [{ participant: [] }], params: AccountParams, response: { 200: Type.Ref(AccountSchema) } } },
    async (request, reply) => {
      const account = await ownAccount(principalOf(request).participantId, request.params.accountId);
      if (account === undefined) return reply.fail({ code: 'account_not_found', message: 'no such account' });
      return accountToWire(account);
    },
  );

  app.get(
    '/v1/ledger/accounts/:accountId/statement',
    {
      schema: {
        tags: ['ledger'],
        summary: 'Statement: every posting with the balance after it, newest first (cursor pagination)',
        security: [{ participant: [] }],
        params: AccountParams,
        querystring: PageQuery,
        response: { 200: Type.Object({ items: Type.Array(Type.Ref(HistoryEntrySchema)), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const account = await ownAccount(principalOf(request).participantId, request.params.accountId);
      if (account === undefined) return reply.fail({ code: 'account_not_found', message: 'no such account' });
      const page = await ledger.history(account.id, { limit: pageLimit(request.query.limit), ...(request.query.cursor !== undefined ? { cursor: request.query.cursor } : {}) });
      if (!page.ok) return reply.fail(page.error);
      return { items: page.value.entries.map((e) => historyEntryToWire(e, account.currency)), nextCursor: page.value.nextCursor };
    },
  );

  app.post(
    '/v1/operator/ledger/accounts',
    { config: { idempotency: 'optional', auth: 'operator' },
      schema: {
        tags: ['operator'],
        summary: 'Open a settlement, fees or suspense account for a participant',
        security: [{ operator: [] }],
        body: Strict({ participantId: Ref('participant', 'The participant'), currency: CurrencyCode, kind: Type.Union([Type.Literal('settlement'), Type.Literal('fees'), Type.Literal('suspense')]) }),
        response: { 201: Type.Ref(AccountSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const { participantId, currency, kind } = request.body;
        const participant = await participants.get(participantId, tx);
        if (participant === undefined) return { code: 'participant_not_found', message: 'no such participant' };
        const currencyCheck = parseMoney({ amount: '1', currency });
        if (!currencyCheck.ok) return currencyCheck.error;
        const account = await ledger.createAccount({ ownerParticipantId: participantId, currency, kind, debitsMustNotExceedCredits: kind === 'settlement' });
        if (!account.ok) return account.error;
        await audit.record(tx, { actor: actorOf(request), action: 'ledger.account_opened', objectType: 'ledger_account', objectId: account.value.id, details: { participantId, currency, kind } });
        await events.emit(tx, { participantId, type: 'ledger.account_opened', data: { accountId: account.value.id, currency, kind } });
        return created(accountToWire(account.value));
      }),
  );

  app.post(
    '/v1/operator/ledger/accounts/:accountId/fund',
    { config: { idempotency: 'required', auth: 'operator' },
      schema: {
        tags: ['operator'],
        summary: "Fund a participant's account from its own position: a recorded transfer, never a balance edit",
        description: 'The money comes from the owner’s position (its prefunded liquidity and net debit cap): past them, liquidity_exceeded.',
        security: [{ operator: [] }],
        params: AccountParams,
        body: Strict({ amount: Money, reference: Type.Optional(Type.String({ maxLength: 64 })) }),
        response: { 201: Type.Ref(TransferSchema) },
      },
    },
    async (request, reply) =>
      idempotent(
        request,
        reply,
        async (tx) => {
          const money = parseMoney(request.body.amount);
          if (!money.ok) return money.error;
          const target = await ledger.getAccount(request.params.accountId);
          if (!target.ok) return target.error;
          if (target.value.currency !== money.value.currency) return { code: 'currency_mismatch', message: `the account holds ${target.value.currency}` };
          const fundingId = await deps.positionAccount(target.value.ownerParticipantId, money.value.currency);
          if (fundingId === target.value.id) return { code: 'invalid_transfer', message: 'a position is funded with liquidity (POST /v1/operator/participants/{id}/liquidity)' };
          // The transfer id comes from the Idempotency-Key when given: a retry cannot fund twice.
          const key = request.headers['idempotency-key'];
          const transferId = typeof key === 'string' ? deterministicId('fund', 'operator', key) : deterministicId('fund', 'operator', request.id);
          const [result] = await ledger.applyInTx(tx, [
            { id: transferId, debitAccountId: fundingId, creditAccountId: target.value.id, amountMinor: money.value.amountMinor, currency: money.value.currency, purpose: 'operator_funding', metadata: { reference: request.body.reference ?? null } },
          ]);
          if (result === undefined) throw new Error('ledger returned no result');
          if (!result.ok) {
            const failedAccount = (result.error.details as { accountId?: unknown } | undefined)?.accountId;
            return failedAccount === fundingId && (result.error.code === 'insufficient_funds' || result.error.code === 'exceeds_credit_limit')
              ? { code: 'liquidity_exceeded', message: "the participant's position cannot cover it (prefunded liquidity and net debit cap)" }
              : result.error;
          }
          await audit.record(tx, { actor: actorOf(request), action: 'ledger.account_funded', objectType: 'ledger_account', objectId: target.value.id, details: { transferId, amount: request.body.amount } });
          // The amount as the hub writes money (decimal to the currency's minor unit), not as the caller typed it.
          await events.emit(tx, { participantId: target.value.ownerParticipantId, type: 'ledger.account_funded', data: { accountId: target.value.id, transferId, amount: formatMoney(money.value.amountMinor, money.value.currency) } });
          return created(transferToWire(result.value.transfer));
        },
        { required: true },
      ),
  );
}
