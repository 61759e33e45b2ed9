import { Type } from '@sinclair/typebox';
import { actorOf, okResponse, principalOf, type Idempotent } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import { CurrencyCode, Strict } from '../api/index.ts';
import type { Connection, ConnectionService } from '../participants/index.ts';
import type { TransferStatus } from '../participant-sdk/index.ts';
import type { HttpServer } from '../platform/http.ts';
import type { ConnectorService } from './service.ts';

const Reason = Type.Object(
  { Rsn: Type.String({ pattern: '^[A-Z0-9]{4}$', description: 'ISO 20022 status reason code' }), AddtlInf: Type.Optional(Type.String({ maxLength: 500 })) },
  { additionalProperties: false },
);
const TransferStatusSchema = Type.Object(
  {
    TxId: Type.String({ description: 'The payment id (the transfer id of every connector message)' }),
    TxSts: Type.Union([Type.Literal('PDNG'), Type.Literal('ACSC'), Type.Literal('RJCT')], { description: 'ISO 20022: pending, settled, rejected' }),
    StsRsnInf: Type.Optional(Reason),
  },
  { $id: 'ConnectorTransferStatus', additionalProperties: false, description: 'The hub’s decision on a transfer, as ISO 20022 pacs.002 states it.' },
);
const JwkSchema = Type.Object(
  { kty: Type.Literal('OKP'), crv: Type.Literal('Ed25519'), x: Type.String(), kid: Type.Optional(Type.String()), use: Type.Optional(Type.String()), alg: Type.Optional(Type.String()) },
  { additionalProperties: false },
);
const ConnectionSchema = Type.Object(
  {
    participantId: Type.String(),
    currency: Type.String(),
    mode: Type.Union([Type.Literal('hosted'), Type.Literal('connected')]),
    endpointUrl: Type.Union([Type.String(), Type.Null()]),
    publicJwk: Type.Union([JwkSchema, Type.Null()]),
    deadlineMs: Type.Integer(),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'ParticipantConnection', additionalProperties: false, description: 'A participant’s mode in one currency: hosted (the hub keeps its customers’ accounts) or connected (its own core system does, reached through its connector endpoint).' },
);
// ---- the participant-side endpoints the hub calls (OpenAPI callbacks of the connection it registers) ----
const WireAmount = Type.Object({ amount: Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?$' }), currency: Type.String({ pattern: '^[A-Z]{3}$' }) }, { additionalProperties: false });
const AccountId = Type.Object({ Id: Type.Object({ Othr: Type.Object({ Id: Type.String({ description: 'The account at the participant, as it registered its customer (externalId)' }) }) }), Ccy: Type.String() });
const Agent = Type.Object({ FinInstnId: Type.Object({ Othr: Type.Object({ Id: Type.String({ description: 'The participant id at the hub' }) }) }) });
const ConnectorRequestSchema = Type.Object(
  {
    MsgId: Type.String(),
    CreDtTm: Type.String({ format: 'date-time' }),
    Op: Type.Union([Type.Literal('reserve'), Type.Literal('accept'), Type.Literal('commit'), Type.Literal('abort')]),
    TxId: Type.String({ description: 'The payment id: every message of one transfer carries it (idempotency key)' }),
    EndToEndId: Type.String(),
    IntrBkSttlmAmt: WireAmount,
    DbtrAgt: Agent,
    CdtrAgt: Agent,
    DbtrAcct: Type.Optional(AccountId),
    CdtrAcct: Type.Optional(AccountId),
    Dbtr: Type.Optional(Type.Object({ Nm: Type.String({ description: 'masked' }) })),
    Cdtr: Type.Optional(Type.Object({ Nm: Type.String({ description: 'masked' }) })),
    MndtRltdInf: Type.Optional(
      Type.Object({ MndtId: Type.String({ description: 'Your own id of the open-banking consent the customer granted (the token answer’s consent_id)' }) }, {
        description: 'On a reserve a wallet initiated from an account linked by your open-banking consent: authorize the debit only while that consent is active for DbtrAcct and payments (else RJCT MD01)',
      }),
    ),
    InitgPty: Type.Optional(Type.Object({ Id: Type.Object({ OrgId: Type.Object({ Othr: Type.Object({ Id: Type.String({ description: 'The initiating wallet’s participant id' }) }) }) }) })),
    OrgnlTxId: Type.Optional(
      Type.String({ description: 'On an accept that returns money of an earlier transfer (a merchant’s refund of a payment your customer paid from CdtrAcct): that transfer’s TxId (EndToEndId is then that transfer’s too), as in a pacs.004 return' }),
    ),
    SttlmDdln: Type.String({ format: 'date-time', description: 'The payment’s deadline: an answer after it is ignored' }),
    TxSts: Type.Optional(Type.Union([Type.Literal('ACSC'), Type.Literal('RJCT')])),
    StsRsnInf: Type.Optional(Reason),
  },
  { description: 'A connector request (ISO 20022 element names, pacs.008). Signed: a detached JWS (EdDSA, the hub’s key from GET /v1/connector/jwks) over the body in the x-jws-signature header.' },
);
const ConnectorAnswerSchema = Type.Object(
  {
    OrgnlMsgId: Type.String(),
    TxId: Type.String(),
    TxSts: Type.Union([Type.Literal('ACSP'), Type.Literal('ACSC'), Type.Literal('ACCC'), Type.Literal('RJCT')]),
    StsRsnInf: Type.Optional(Reason),
  },
  { description: 'The participant’s answer (pacs.002 status), signed by its registered key in x-jws-signature. The same request (operation, TxId) always gets the same answer.' },
);
const connectorCallback = (op: string, what: string) => ({
  [`{$request.body#/endpointUrl}/${op}`]: {
    post: {
      requestBody: { description: what, required: true, content: { 'application/json': { schema: ConnectorRequestSchema } } },
      responses: { 200: { description: `${what}: the signed answer`, content: { 'application/json': { schema: ConnectorAnswerSchema } } } },
    },
  },
});
const ConnectorBatchSchema = Type.Object(
  {
    MsgId: Type.String({ description: 'The batch’s id: the signature’s txid' }),
    CreDtTm: Type.String({ format: 'date-time' }),
    Op: Type.Literal('batch'),
    NbOfTxs: Type.Integer({ minimum: 1, maximum: 128, description: 'How many items (GrpHdr.NbOfTxs)' }),
    TxInf: Type.Array(ConnectorRequestSchema, { minItems: 1, maxItems: 128, description: 'Each item the request the hub would send alone; a transfer at most once' }),
  },
  { description: 'Several connector requests in one signed message (detached JWS bound to op `batch` and txid MsgId).' },
);
const ConnectorBatchAnswerSchema = Type.Object(
  { OrgnlMsgId: Type.String(), TxInfAndSts: Type.Array(ConnectorAnswerSchema, { description: 'One status per item, as its request alone would be answered' }) },
  { description: 'The answers to a batch, signed once (op `batch`, txid the batch’s MsgId).' },
);
const connectorCallbacks = {
  reserve: connectorCallback('reserve', 'Payer side: hold IntrBkSttlmAmt on DbtrAcct until commit or abort (ACSP), or refuse (RJCT: AC01, AC04, AM04, AM02…)'),
  accept: connectorCallback('accept', 'Payee side: will CdtrAcct take this credit (ACSP), or refuse (RJCT: AC01, AC04, AM02, RR04…)'),
  commit: connectorCallback('commit', 'The hub committed: debit the hold (answer ACSC) or credit the customer (ACCC); retried with backoff until answered'),
  abort: connectorCallback('abort', 'The hub aborted (StsRsnInf says why): release the hold or forget the acceptance (answer RJCT); retried until answered'),
  batch: {
    '{$request.body#/endpointUrl}/batch': {
      post: {
        requestBody: {
          description:
            'Optional for a participant: requests the hub has for you at about the same time (reserves and accepts of payments confirmed together, commits and aborts of one delivery round), each answered by its own rules. Answer 404 if you do not serve batches: the hub then sends them one by one.',
          required: true,
          content: { 'application/json': { schema: ConnectorBatchSchema } },
        },
        responses: { 200: { description: 'The signed answers, one per item', content: { 'application/json': { schema: ConnectorBatchAnswerSchema } } } },
      },
    },
  },
};

const wireConnection = (c: Connection) => ({
  ...c,
  publicJwk: c.publicJwk === null ? null : { kty: c.publicJwk.kty, crv: c.publicJwk.crv, x: c.publicJwk.x, ...(c.publicJwk.kid !== undefined ? { kid: c.publicJwk.kid } : {}) },
  updatedAt: c.updatedAt.toISOString(),
});

export function registerConnectorRoutes(
  app: HttpServer,
  deps: { connectors: ConnectorService; connections: ConnectionService; idempotent: Idempotent; transferStatus: (participantId: string, paymentId: string) => Promise<TransferStatus | undefined> },
): void {
  const { connectors, connections, idempotent } = deps;

  app.get(
    '/v1/connector/jwks',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['connector'],
        summary: 'The hub’s connector signing key (JWK set)',
        description:
          'Connected participants verify the hub’s connector requests with this Ed25519 key: every request carries a detached JWS over its body in `x-jws-signature` ' +
          '(protected header: alg EdDSA, kid, op, txid, iat). See the `connector` webhooks for the messages.',
        response: { 200: Type.Object({ keys: Type.Array(JwkSchema) }, { additionalProperties: false }) },
      },
    },
    async () => ({ keys: [await connectors.publicJwk()] }),
  );

  app.get(
    '/v1/connector/transfers/:paymentId',
    {
      schema: {
        tags: ['connector'],
        summary: 'A transfer’s final state (for its payer’s or payee’s participant)',
        description: 'Ask at any time — after a crash, or when a commit or abort is late: PDNG while the hub decides, then ACSC or RJCT with the reason, for good.',
        security: [{ participant: [] }],
        params: Strict({ paymentId: Ref('transfer', 'Payment id (TxId)') }),
        response: { 200: Type.Ref(TransferStatusSchema) },
      },
    },
    async (request, reply) => {
      const status = await deps.transferStatus(principalOf(request).participantId, request.params.paymentId);
      return status === undefined ? reply.fail({ code: 'payment_not_found', message: 'no such payment' }) : status;
    },
  );

  app.post(
    '/v1/connector/transfers/:paymentId/status',
    {
      schema: {
        tags: ['connector'],
        summary: 'Report a late or repeated answer: the hub answers what it decided',
        description:
          'A connected participant whose answer to reserve or accept reached the hub after its deadline (or twice) may report it here. The hub never changes its decision: ' +
          'it answers its state (PDNG, ACSC or RJCT); the participant then follows it (releases on RJCT).',
        security: [{ participant: [] }],
        params: Strict({ paymentId: Ref('transfer', 'Payment id (TxId)') }),
        body: Strict({ TxSts: Type.Union([Type.Literal('ACSP'), Type.Literal('RJCT')]), StsRsnInf: Type.Optional(Reason) }),
        response: { 200: Type.Ref(TransferStatusSchema) },
      },
    },
    async (request, reply) => {
      const status = await deps.transferStatus(principalOf(request).participantId, request.params.paymentId);
      return status === undefined ? reply.fail({ code: 'payment_not_found', message: 'no such payment' }) : status;
    },
  );

  app.get(
    '/v1/connector/connections',
    {
      schema: {
        tags: ['connector'],
        summary: 'Your modes per currency (hosted unless listed as connected)',
        security: [{ participant: [] }],
        response: { 200: Type.Object({ items: Type.Array(Type.Ref(ConnectionSchema)) }, { additionalProperties: false }) },
      },
    },
    async (request) => ({ items: (await connections.list(principalOf(request).participantId)).map(wireConnection) }),
  );

  const ParticipantParams = Strict({ participantId: Ref('participant', 'Participant id') });
  app.get(
    '/v1/operator/participants/:participantId/connections',
    {
      config: { auth: 'operator' },
      schema: { tags: ['operator'], summary: 'A participant’s modes per currency', security: [{ operator: [] }], params: ParticipantParams, response: { 200: Type.Object({ items: Type.Array(Type.Ref(ConnectionSchema)) }, { additionalProperties: false }) } },
    },
    async (request) => ({ items: (await connections.list(request.params.participantId)).map(wireConnection) }),
  );

  app.post(
    '/v1/operator/participants/:participantId/connections',
    {
      config: { idempotency: 'optional', auth: 'operator' },
      schema: {
        tags: ['operator'],
        summary: 'Set a participant’s mode in a currency: hosted, or connected (its connector endpoint, its Ed25519 public key, the deadline of each call)',
        security: [{ operator: [] }],
        description:
          'A connected participant’s own core system keeps its customers’ accounts; the hub keeps its position and calls its connector endpoint (see callbacks: ' +
          'reserve, accept, commit, abort, and batch for several at once), each request signed by the hub (detached JWS, EdDSA), each answer signed by the key registered here.',
        callbacks: connectorCallbacks,
        params: ParticipantParams,
        body: Strict({
          currency: CurrencyCode,
          mode: Type.Union([Type.Literal('hosted'), Type.Literal('connected')]),
          endpointUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'The base URL the hub POSTs reserve, accept, commit and abort to (…/reserve)' })),
          publicJwk: Type.Optional(Strict({ kty: Type.String({ maxLength: 8 }), crv: Type.String({ maxLength: 16 }), x: Type.String({ maxLength: 64 }), kid: Type.Optional(Type.String({ maxLength: 128 })) })),
          deadlineMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 30_000, description: 'How long the hub waits for each answer (default 2000)' })),
        }),
        response: { 200: Type.Ref(ConnectionSchema) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      // The URL's host is resolved before the transaction (DNS can be slow), as for webhook URLs.
      if (b.endpointUrl !== undefined) {
        const checked = await connections.checkEndpoint(b.endpointUrl);
        if (!checked.ok) return reply.fail(checked.error);
      }
      return idempotent(request, reply, async (tx) => {
        const r = await connections.set(tx, actorOf(request), request.params.participantId, {
          currency: b.currency,
          mode: b.mode,
          endpointUrl: b.endpointUrl,
          publicJwk: b.publicJwk,
          deadlineMs: b.deadlineMs,
        });
        return r.ok ? okResponse(wireConnection(r.value)) : r.error;
      });
    },
  );
}

export const connectorSchemas = [TransferStatusSchema, ConnectionSchema];
