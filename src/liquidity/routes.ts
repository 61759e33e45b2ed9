import { Type, type Static } from '@sinclair/typebox';
import { actorOf, created, okResponse, principalOf, type Idempotent } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import { CurrencyCode, Exactly, Money, Strict } from '../api/index.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { deterministicId } from '../platform/ids.ts';
import { formatMoney, parseAmount, parseMoney } from '../platform/money.ts';
import { wireLiquidityRequest, type LiquidityRequest, type LiquidityRequests } from './requests.ts';
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

const LiquidityRequestSchema = Type.Object(
  {
    id: Type.String({ description: 'The liquidity request' }),
    participantId: Type.String(),
    direction: Type.Union([Type.Literal('top_up'), Type.Literal('cash_out')], { description: 'top_up: settlement bank account → position; cash_out: position → settlement bank account' }),
    amount: WireMoney,
    reference: Type.Union([Type.String(), Type.Null()], { description: 'Your settlement bank reference' }),
    status: Type.Union([Type.Literal('pending_approval'), Type.Literal('completed'), Type.Literal('rejected')]),
    reason: Type.Union([Type.String(), Type.Null()], { description: 'Why the operator rejected it' }),
    transferId: Type.Union([Type.String(), Type.Null()], { description: 'The ledger transfer that moved the money, once completed' }),
    createdAt: Type.String({ format: 'date-time' }),
    decidedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  {
    $id: 'LiquidityRequest',
    additionalProperties: false,
    description: 'A participant’s request to move money between its settlement bank account and its position: completed at once up to the operator’s approval threshold, otherwise pending until the operator approves or rejects it.',
  },
);
const ThresholdSchema = Type.Object({ threshold: WireMoney }, { additionalProperties: false, description: 'Requests above this amount wait for the operator’s approval' });
const RequestParams = Strict({ requestId: Ref('liquidity_request', 'The liquidity request') });
const StatusQuery = Strict({
  status: Type.Optional(Type.Union([Type.Literal('pending_approval'), Type.Literal('completed'), Type.Literal('rejected')])),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: 'At most 200 (default 50)' })),
});
const limitOf = (s: string | undefined) => Math.min(Math.max(s === undefined ? 50 : Number(s), 1), 200);

/** Participants' cash-out and top-up requests, and the operator's approvals (src/liquidity/requests.ts). */
export function registerLiquidityRequestRoutes(app: HttpServer, deps: { db: Db; requests: LiquidityRequests; idempotent: Idempotent }): void {
  const { db, requests, idempotent } = deps;
  app.addSchema(LiquidityRequestSchema);
  const one = Type.Ref(LiquidityRequestSchema);
  const many = Type.Object({ items: Type.Array(Type.Ref(LiquidityRequestSchema)) }, { additionalProperties: false });
  const wire = (r: LiquidityRequest) => Exactly<Static<typeof LiquidityRequestSchema>>()(wireLiquidityRequest(r));

  app.post(
    '/v1/liquidity/requests',
    {
      config: { idempotency: 'required' },
      schema: {
        tags: ['liquidity'],
        summary: 'Ask to top up your position from your settlement bank account, or to cash out to it',
        description:
          'Up to the operator’s approval threshold for the currency the money moves at once (a recorded ledger transfer between your settlement-bank mirror and your ' +
          'position; a cash-out never takes more than the prefunded liquidity left: liquidity_exceeded); above it the request waits for the operator (webhooks ' +
          '`liquidity.request_approved` / `liquidity.request_rejected`). Idempotency-Key required.',
        security: [{ participant: [] }],
        body: Strict({
          direction: Type.Union([Type.Literal('top_up'), Type.Literal('cash_out')]),
          amount: Money,
          reference: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Your settlement bank reference' })),
        }),
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
          const r = await requests.request(tx, actorOf(request), {
            participantId: principalOf(request).participantId,
            direction: request.body.direction,
            currency: amount.value.currency,
            amountMinor: amount.value.amountMinor,
            reference: request.body.reference,
          });
          return r.ok ? created(wire(r.value)) : r.error;
        },
        { required: true },
      ),
  );
  app.get(
    '/v1/liquidity/requests',
    { schema: { tags: ['liquidity'], summary: 'Your liquidity requests, newest first', security: [{ participant: [] }], querystring: StatusQuery, response: { 200: many } } },
    async (request) => ({ items: (await requests.list(db, { participantId: principalOf(request).participantId, status: request.query.status, limit: limitOf(request.query.limit) })).map(wire) }),
  );
  app.get(
    '/v1/liquidity/requests/:requestId',
    { schema: { tags: ['liquidity'], summary: 'One of your liquidity requests', security: [{ participant: [] }], params: RequestParams, response: { 200: one } } },
    async (request, reply) => {
      const r = await requests.get(db, request.params.requestId, principalOf(request).participantId);
      return r === undefined ? reply.fail({ code: 'liquidity_request_not_found', message: 'no such liquidity request' }) : wire(r);
    },
  );
  app.get(
    '/v1/operator/liquidity/requests',
    { config: operator, schema: { tags: ['operator'], summary: 'Participants’ liquidity requests (pending_approval: those waiting for you)', security: opSec, querystring: StatusQuery, response: { 200: many } } },
    async (request) => ({ items: (await requests.list(db, { status: request.query.status, limit: limitOf(request.query.limit) })).map(wire) }),
  );
  for (const [action, summary] of [
    ['approve', 'Approve a pending liquidity request: the money moves now (a cash-out still within the prefunded liquidity left)'],
    ['reject', 'Reject a pending liquidity request: nothing moves'],
  ] as const) {
    app.post(
      `/v1/operator/liquidity/requests/:requestId/${action}`,
      {
        config: { ...operator, idempotency: 'optional' },
        schema: {
          tags: ['operator'],
          summary,
          security: opSec,
          params: RequestParams,
          body: action === 'reject' ? Strict({ reason: Type.String({ minLength: 1, maxLength: 200 }) }) : Strict({}),
          response: { 200: one },
        },
      },
      async (request, reply) =>
        idempotent(request, reply, async (tx) => {
          const body = request.body as { reason?: string };
          const r = action === 'approve' ? await requests.approve(tx, actorOf(request), request.params.requestId) : await requests.reject(tx, actorOf(request), request.params.requestId, body.reason ?? '');
          return r.ok ? okResponse(wire(r.value)) : r.error;
        }),
    );
  }
  app.post(
    '/v1/operator/liquidity/thresholds',
    {
      config: { ...operator, idempotency: 'optional' },
      schema: {
        tags: ['operator'],
        summary: 'Set the approval threshold of a currency: participants’ liquidity requests up to it complete at once, larger ones wait for your approval',
        security: opSec,
        body: Strict({ threshold: Type.Object({ amount: Type.String({ pattern: '^[0-9]{1,31}(\\.[0-9]{1,31})?$', maxLength: 40 }), currency: CurrencyCode }, { additionalProperties: false }) }),
        response: { 200: ThresholdSchema },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const t = parseAmount(request.body.threshold.amount, request.body.threshold.currency, { allowZero: true, field: 'threshold' });
        if (!t.ok) return t.error;
        const r = await requests.setThreshold(tx, actorOf(request), request.body.threshold.currency, t.value);
        return r.ok ? okResponse({ threshold: formatMoney(r.value.thresholdMinor, r.value.currency) }) : r.error;
      }),
  );
}
