import { Type, type Static } from '@sinclair/typebox';
import { actorOf, created, principalOf, type Idempotent } from '../api/index.ts';
import { Exactly, Money, Strict } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { parseMoney } from '../platform/money.ts';
import { wireCashMovement, type CashMovement, type CashService } from './service.ts';

const WireMoney = Type.Object({ amount: Type.String(), currency: Type.String() }, { additionalProperties: false });
const CashMovementSchema = Type.Object(
  {
    id: Type.String({ description: 'The withdrawal or top-up' }),
    kind: Type.Union([Type.Literal('withdrawal'), Type.Literal('top_up')], { description: 'withdrawal: wallet account → linked bank account; top_up: linked bank account → wallet account' }),
    customerId: Type.String({ description: 'Your customer' }),
    linkId: Type.String({ description: 'The account link used' }),
    walletAccountId: Type.String({ description: 'The customer’s account at your wallet' }),
    bankAccountId: Type.String({ description: 'The linked account at the bank' }),
    bankParticipantId: Type.String({ description: 'The bank holding it' }),
    amount: WireMoney,
    status: Type.Literal('completed', { description: 'completed: the money moved (a refused request moves nothing and answers an error)' }),
    transferIds: Type.Array(Type.String(), { description: 'The ledger transfers (the position leg first, between the two participants)' }),
    createdAt: Type.String({ format: 'date-time' }),
  },
  {
    $id: 'CashMovement',
    additionalProperties: false,
    description: 'A customer’s withdrawal to, or top-up from, a bank account linked into their wallet: a payment between the wallet and the bank through both positions.',
  },
);

const CustomerParams = Strict({ customerId: Ref('customer', 'Your customer') });
const CUSTOMER = { customer: true } as const;

/** Withdrawals and top-ups, callable by the wallet or by the customer's own session (scoped to the customer). */
export function registerCashRoutes(app: HttpServer, deps: { db: Db; cash: CashService; idempotent: Idempotent }): void {
  const { db, cash, idempotent } = deps;
  app.addSchema(CashMovementSchema);
  const one = Type.Ref(CashMovementSchema);
  const wire = (m: CashMovement) => Exactly<Static<typeof CashMovementSchema>>()(wireCashMovement(m));

  for (const [path, kind, summary] of [
    ['withdrawals', 'withdrawal', 'Withdraw from the customer’s wallet account to a bank account linked into the wallet'],
    ['top-ups', 'top_up', 'Top up the customer’s wallet account from a bank account linked into the wallet'],
  ] as const) {
    app.post(
      `/v1/customers/:customerId/${path}`,
      {
        config: { ...CUSTOMER, idempotency: 'required' },
        schema: {
          tags: ['cash'],
          summary,
          description:
            'The link must be the customer’s and active, the amount in the linked account’s currency, and the customer must hold an open wallet account in it. ' +
            'The money moves through both participants’ positions like any payment between them (liquidity_exceeded when the paying side’s position cannot ' +
            'cover it; insufficient_funds when the paying account cannot) and the position leg is settled in the currency’s window. Webhooks ' +
            '`cash.withdrawal_completed` / `cash.top_up_completed` go to the wallet and to the bank. Idempotency-Key required.',
          security: [{ participant: [] }],
          params: CustomerParams,
          body: Strict({ linkId: Ref('account_link', 'The customer’s account link (GET /v1/account-links)'), amount: Money }),
          response: { 201: one },
        },
      },
      async (request, reply) =>
        idempotent(
          request,
          reply,
          async (tx) => {
            const amount = parseMoney(request.body.amount);
            if (!amount.ok) return amount.error;
            const r = await cash.move(tx, actorOf(request, request.params.customerId), {
              kind,
              participantId: principalOf(request).participantId,
              customerId: request.params.customerId,
              linkId: request.body.linkId,
              amountMinor: amount.value.amountMinor,
              currency: amount.value.currency,
            });
            return r.ok ? created(wire(r.value)) : r.error;
          },
          { required: true },
        ),
    );
  }

  app.get(
    '/v1/customers/:customerId/cash-movements',
    {
      config: CUSTOMER,
      schema: {
        tags: ['cash'],
        summary: 'The customer’s withdrawals and top-ups, newest first',
        security: [{ participant: [] }],
        params: CustomerParams,
        querystring: Strict({ limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: 'At most 200 (default 50)' })) }),
        response: { 200: Type.Object({ items: Type.Array(Type.Ref(CashMovementSchema)) }, { additionalProperties: false }) },
      },
    },
    async (request) => {
      const limit = Math.min(Math.max(request.query.limit === undefined ? 50 : Number(request.query.limit), 1), 200);
      return { items: (await cash.list(db, principalOf(request).participantId, request.params.customerId, limit)).map(wire) };
    },
  );
  app.get(
    '/v1/customers/:customerId/cash-movements/:movementId',
    {
      config: CUSTOMER,
      schema: {
        tags: ['cash'],
        summary: 'One withdrawal or top-up of the customer (its status)',
        security: [{ participant: [] }],
        params: Strict({ customerId: Ref('customer', 'Your customer'), movementId: Ref('cash_movement', 'The withdrawal or top-up') }),
        response: { 200: one },
      },
    },
    async (request, reply) => {
      const m = await cash.get(db, request.params.movementId, principalOf(request).participantId, request.params.customerId);
      return m === undefined ? reply.fail({ code: 'cash_movement_not_found', message: 'no such withdrawal or top-up' }) : wire(m);
    },
  );
}
