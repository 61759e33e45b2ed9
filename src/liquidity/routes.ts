import { Type } from '@sinclair/typebox';
import { actorOf, created, okResponse, principalOf, type Idempotent } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import { CurrencyCode, Money, Strict } from '../api/index.ts';
import type { HttpServer } from '../platform/http.ts';
import { deterministicId } from '../platform/ids.ts';
import { parseAmount, parseMoney } from '../platform/money.ts';
import { wirePosition, type LiquidityService } from './service.ts';

const WireMoney = Type.Object({ amount: Type.String(), currency: Type.String() }, { additionalProperties: false });
const PositionSchema = Type.Object(
  {
    participantId: Type.String(),
    currency: Type.String(),
    liquidity: WireMoney,
    balance: WireMoney,
    reserved: WireMoney,
    netDebitCap: WireMoney,
    available: WireMoney,
  },
  {
    $id: 'Position',
    additionalProperties: false,
    description:
      'A participant’s position at the hub in one currency: `liquidity` prefunded (funds in − funds out), `balance` what remains after the money that went into its ' +
      'customers’ accounts, `reserved` held by pending card authorizations, `netDebitCap` how far the operator lets the balance go below zero, and `available` ' +
      'what may still go out (balance − reserved + cap). A movement past it is refused with liquidity_exceeded.',
  },
);

const ParticipantParams = Strict({ participantId: Ref('participant', 'The participant') });
const operator = { auth: 'operator' } as const;
const opSec = [{ operator: [] }];

export function registerLiquidityRoutes(app: HttpServer, deps: { liquidity: LiquidityService; idempotent: Idempotent }): void {
  const { liquidity, idempotent } = deps;
  app.addSchema(PositionSchema);
  const positions = Type.Object({ items: Type.Array(Type.Ref(PositionSchema)) }, { additionalProperties: false });

  app.get(
    '/v1/positions',
    { schema: { tags: ['liquidity'], summary: 'Your positions at the hub, per currency', security: [{ participant: [] }], response: { 200: positions } } },
    async (request) => ({ items: (await liquidity.positions(principalOf(request).participantId)).map(wirePosition) }),
  );

  app.get(
    '/v1/operator/participants/:participantId/positions',
    { config: operator, schema: { tags: ['operator'], summary: "A participant's positions, per currency", security: opSec, params: ParticipantParams, response: { 200: positions } } },
    async (request) => ({ items: (await liquidity.positions(request.params.participantId)).map(wirePosition) }),
  );

  for (const [path, direction, summary] of [
    ['liquidity', 'in', 'Record prefunded liquidity the settlement bank confirmed (funds in): the participant’s position rises'],
    ['liquidity/withdrawals', 'out', 'Return liquidity to the participant’s settlement bank account (funds out): never more than it prefunded and has not used'],
  ] as const) {
    app.post(
      `/v1/operator/participants/:participantId/${path}`,
      { config: { ...operator, idempotency: 'required' },
        schema: {
          tags: ['operator'],
          summary,
          description: 'A recorded ledger transfer between the participant’s settlement-bank mirror account and its position; Idempotency-Key required (a retry moves nothing twice).',
          security: opSec,
          params: ParticipantParams,
          body: Strict({ amount: Money, reference: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'The settlement bank’s reference' })) }),
          response: { 201: Type.Ref(PositionSchema) },
        },
      },
      async (request, reply) =>
        idempotent(
          request,
          reply,
          async (tx) => {
            const amount = parseMoney(request.body.amount);
            if (!amount.ok) return amount.error;
            const key = String(request.headers['idempotency-key']);
            const input = {
              participantId: request.params.participantId,
              currency: amount.value.currency,
              amountMinor: amount.value.amountMinor,
              transferId: deterministicId(`liq_${direction}`, request.params.participantId, key),
              reference: request.body.reference,
            };
            const r = direction === 'in' ? await liquidity.fundsIn(tx, actorOf(request), input) : await liquidity.fundsOut(tx, actorOf(request), input);
            return r.ok ? created(wirePosition(r.value)) : r.error;
          },
          { required: true },
        ),
    );
  }

  app.post(
    '/v1/operator/participants/:participantId/net-debit-cap',
    { config: { ...operator, idempotency: 'optional' },
      schema: {
        tags: ['operator'],
        summary: "Set a participant's net debit cap in a currency: how far its position may go below zero",
        security: opSec,
        params: ParticipantParams,
        body: Strict({ cap: Type.Object({ amount: Type.String({ pattern: '^[0-9]{1,31}(\\.[0-9]{1,31})?$', maxLength: 40 }), currency: CurrencyCode }, { additionalProperties: false }) }),
        response: { 200: Type.Ref(PositionSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        // A cap of zero is allowed: the participant must then prefund everything that goes out.
        const cap = parseAmount(request.body.cap.amount, request.body.cap.currency, { allowZero: true, field: 'cap' });
        if (!cap.ok) return cap.error;
        const r = await liquidity.setNetDebitCap(tx, actorOf(request), { participantId: request.params.participantId, currency: request.body.cap.currency, capMinor: cap.value });
        return r.ok ? okResponse(wirePosition(r.value)) : r.error;
      }),
  );
}
