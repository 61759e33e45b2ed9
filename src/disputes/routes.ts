import { Type, type Static } from '@sinclair/typebox';
import { actorOf, created, errorAnswer, okResponse, principalOf, type Idempotent } from '../api/index.ts';
import type { StoredResponse } from '../platform/idempotency.ts';
import { Exactly, Money, Strict, Timestamp } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import type { HttpServer } from '../platform/http.ts';
import { formatMoney, parseMoney } from '../platform/money.ts';
import type { Dispute, DisputeService, Recall, Step } from './service.ts';

const Evidence = Type.String({ minLength: 1, maxLength: 4000, description: 'What you rely on (a receipt, a delivery record, a police report number…), kept in the dispute’s trail' });
const Reason = Type.String({ minLength: 1, maxLength: 500 });

const StepSchema = Type.Object(
  {
    seq: Type.Integer(),
    participantId: Type.Union([Type.String(), Type.Null()], { description: 'Who acted (null: the hub, on a deadline)' }),
    action: Type.String(),
    evidence: Type.Union([Type.String(), Type.Null()]),
    amount: Type.Union([Money, Type.Null()]),
    at: Timestamp,
  },
  { $id: 'DisputeStep', additionalProperties: false },
);

const DisputeSchema = Type.Object(
  {
    id: Type.String(),
    kind: Type.Union([Type.Literal('card'), Type.Literal('p2p')]),
    paymentId: Type.String(),
    walletParticipantId: Type.String(),
    customerId: Type.Union([Type.String(), Type.Null()], { description: 'The wallet’s customer (to the wallet only)' }),
    issuerParticipantId: Type.String({ description: 'Card: the issuer; P2P: the payer’s participant' }),
    respondentParticipantId: Type.String({ description: 'Card: the merchant’s participant; P2P: the payee’s participant' }),
    amount: Money,
    reason: Type.String(),
    status: Type.Union(['opened', 'chargeback', 'won_by_customer', 'won_by_respondent', 'rejected', 'refunded'].map((s) => Type.Literal(s)), {
      description: 'opened → (card) chargeback or rejected → won_by_customer (accepted or unanswered) or won_by_respondent (represented); (P2P) opened → refunded or won_by_respondent',
    }),
    respondBy: Timestamp,
    createdAt: Timestamp,
    updatedAt: Timestamp,
    steps: Type.Array(Type.Ref(StepSchema)),
  },
  { $id: 'Dispute', additionalProperties: false },
);

const RecallSchema = Type.Object(
  {
    id: Type.String(),
    paymentId: Type.String(),
    walletParticipantId: Type.String(),
    customerId: Type.Union([Type.String(), Type.Null()], { description: 'The wallet’s customer (to the wallet only)' }),
    payeeParticipantId: Type.String(),
    amount: Money,
    frozen: Type.Object(Money.properties, { additionalProperties: false, description: 'What the recall found and froze' }),
    refunded: Money,
    reason: Type.String(),
    status: Type.Union(['analysing', 'refunded', 'rejected', 'expired'].map((s) => Type.Literal(s))),
    analysisDueAt: Timestamp,
    refundDueAt: Timestamp,
    holds: Type.Array(
      Type.Object(
        {
          accountId: Type.Union([Type.String(), Type.Null()], { description: 'Your own accounts only (null for another participant’s)' }),
          ownerParticipantId: Type.String(),
          hop: Type.Integer({ description: '0: the payee’s account; 1, 2: where the money went next' }),
          amount: Money,
          status: Type.Union([Type.Literal('held'), Type.Literal('refunded'), Type.Literal('released')]),
        },
        { additionalProperties: false },
      ),
    ),
    steps: Type.Array(Type.Ref(StepSchema)),
    createdAt: Timestamp,
  },
  { $id: 'Recall', additionalProperties: false },
);

const wireStep = (s: Step, currency: string) => ({ seq: s.seq, participantId: s.participantId, action: s.action, evidence: s.evidence, amount: s.amountMinor === null ? null : formatMoney(s.amountMinor, currency), at: s.at.toISOString() });

const wireDispute = (d: Dispute, viewer: string) =>
  Exactly<Static<typeof DisputeSchema>>()({
    id: d.id,
    kind: d.kind,
    paymentId: d.paymentId,
    walletParticipantId: d.walletParticipantId,
    customerId: viewer === d.walletParticipantId ? d.customerId : null,
    issuerParticipantId: d.issuerParticipantId,
    respondentParticipantId: d.respondentParticipantId,
    amount: formatMoney(d.amountMinor, d.currency),
    reason: d.reason,
    status: d.status,
    respondBy: d.respondBy.toISOString(),
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
    steps: d.steps.map((s) => wireStep(s, d.currency)),
  });

const wireRecall = (r: Recall, viewer: string) =>
  Exactly<Static<typeof RecallSchema>>()({
    id: r.id,
    paymentId: r.paymentId,
    walletParticipantId: r.walletParticipantId,
    customerId: viewer === r.walletParticipantId ? r.customerId : null,
    payeeParticipantId: r.payeeParticipantId,
    amount: formatMoney(r.amountMinor, r.currency),
    frozen: formatMoney(r.frozenMinor, r.currency),
    refunded: formatMoney(r.refundedMinor, r.currency),
    reason: r.reason,
    status: r.status,
    analysisDueAt: r.analysisDueAt.toISOString(),
    refundDueAt: r.refundDueAt.toISOString(),
    holds: r.holds.map((h) => ({ accountId: h.ownerParticipantId === viewer ? h.accountId : null, ownerParticipantId: h.ownerParticipantId, hop: h.hop, amount: formatMoney(h.amountMinor, r.currency), status: h.status })),
    steps: r.steps.map((s) => wireStep(s, r.currency)),
    createdAt: r.createdAt.toISOString(),
  });

const sec = [{ participant: [] }];
const DisputeParams = Strict({ disputeId: Ref('dispute', 'Dispute id') });
const RecallParams = Strict({ recallId: Ref('recall', 'Recall id') });

export function registerDisputeRoutes(app: HttpServer, deps: { disputes: DisputeService; idempotent: Idempotent }): void {
  const { disputes, idempotent } = deps;
  app.addSchema(StepSchema);
  app.addSchema(DisputeSchema);
  app.addSchema(RecallSchema);

  app.post(
    '/v1/wallet/disputes',
    {
      config: { customer: true, idempotency: 'required' },
      schema: {
        tags: ['disputes'],
        summary: 'Dispute a card payment or a P2P payment your customer made',
        description:
          'Name exactly one of cardPaymentId and transferId. Card payments can be disputed within 120 days, P2P payments within 80 (`dispute_window_closed`). ' +
          'The issuer (or, for P2P, you as the payer’s participant) and the merchant’s or payee’s participant are told (`dispute.opened`); each answer is due within 10 days.',
        security: sec,
        body: Strict({
          customerId: Ref('customer', 'Your customer, the payer'),
          cardPaymentId: Type.Optional(Ref('card_payment', 'The card payment')),
          transferId: Type.Optional(Ref('transfer', 'The P2P payment')),
          reason: Reason,
          amount: Type.Optional(Money),
        }),
        response: { 201: Type.Ref(DisputeSchema) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      if (p.kind !== 'wallet') return reply.fail({ code: 'not_wallet', message: 'customers dispute payments from their wallet' });
      const b = request.body;
      if ((b.cardPaymentId === undefined) === (b.transferId === undefined)) return reply.fail({ code: 'validation_failed', message: 'name exactly one of cardPaymentId and transferId' });
      return idempotent(
        request,
        reply,
        async (tx) => {
          const amount = b.amount === undefined ? undefined : parseMoney(b.amount);
          if (amount !== undefined && !amount.ok) return amount.error;
          const kind = b.cardPaymentId !== undefined ? 'card' : 'p2p';
          const r = await disputes.open(tx, actorOf(request, b.customerId), { walletId: p.participantId, customerId: b.customerId, kind, paymentId: (b.cardPaymentId ?? b.transferId)!, reason: b.reason, amount: amount?.value });
          return r.ok ? created(wireDispute(r.value, p.participantId)) : r.error;
        },
        { required: true },
      );
    },
  );

  app.get(
    '/v1/disputes',
    {
      config: { customer: true },
      schema: {
        tags: ['disputes'],
        summary: 'Disputes you are a party to, newest first',
        description: 'A wallet may ask for one customer’s disputes only (`customerId`); a customer session sees its own customer’s.',
        security: sec,
        querystring: Strict({ customerId: Type.Optional(Ref('customer', 'Only the disputes this customer of yours opened')) }),
        response: { 200: Strict({ items: Type.Array(Type.Ref(DisputeSchema)) }) },
      },
    },
    async (request) => {
      const me = principalOf(request).participantId;
      const customerId = (request.query as { customerId?: string }).customerId;
      const all = await disputes.list(me, 100);
      const mine = customerId === undefined ? all : all.filter((d) => d.walletParticipantId === me && d.customerId === customerId);
      return { items: mine.map((d) => wireDispute(d, me)) };
    },
  );

  app.get(
    '/v1/disputes/:disputeId',
    { config: { customer: true }, schema: { tags: ['disputes'], summary: 'A dispute and its trail (who did what, with what evidence)', security: sec, params: DisputeParams, response: { 200: Type.Ref(DisputeSchema) } } },
    async (request, reply) => {
      const d = await disputes.get(request.params.disputeId);
      if (d === undefined) return reply.fail({ code: 'dispute_not_found', message: 'no such dispute' });
      return wireDispute(d, principalOf(request).participantId);
    },
  );

  const decide = (
    path: string,
    summary: string,
    body: ReturnType<typeof Strict>,
    run: (participantId: string, id: string, b: Record<string, unknown>, tx: Parameters<Parameters<Idempotent>[2]>[0], actor: ReturnType<typeof actorOf>) => ReturnType<DisputeService['respond']>,
    after?: (me: string, id: string, answer: StoredResponse) => Promise<StoredResponse>,
  ) =>
    app.post(
      `/v1/disputes/:disputeId/${path}`,
      { config: { idempotency: 'required' }, schema: { tags: ['disputes'], summary, security: sec, params: DisputeParams, body, response: { 200: Type.Ref(DisputeSchema) } } },
      async (request, reply) => {
        const me = principalOf(request).participantId;
        return idempotent(
          request,
          reply,
          async (tx) => {
            const r = await run(me, (request.params as { disputeId: string }).disputeId, request.body as Record<string, unknown>, tx, actorOf(request));
            if (!r.ok) return r.error;
            // A chargeback asking the customer's bank: its refund kept with the stored answer for the answer step.
            const body = wireDispute(r.value, me);
            return okResponse(r.value.chargebackAtBank === null ? body : { ...body, chargebackAtBank: r.value.chargebackAtBank });
          },
          after === undefined ? { required: true } : { required: true, after: (answer) => after(me, (request.params as { disputeId: string }).disputeId, answer) },
        );
      },
    );
  decide(
    'chargeback',
    'Card issuer: charge the payment back (the money goes from the merchant back to the cardholder; paid from an account at a connected bank, the bank accepts the credit first, else `refund_rejected` and nothing moves)',
    Strict({ evidence: Evidence }),
    (me, id, b, tx, actor) => disputes.issuerDecides(tx, actor, me, id, { decision: 'chargeback', evidence: String(b.evidence) }),
    // Paid from an account at a connected bank: the bank asked after the COMMIT (no lock held while it answers), the
    // dispute decided; the answer, first or replayed, is that decision (a decided chargeback is not asked again).
    async (me, id, answer) => {
      const body = answer.body as { chargebackAtBank?: unknown } | undefined;
      if (answer.status !== 200 || typeof body?.chargebackAtBank !== 'string') return answer;
      const settled = await disputes.settleChargebackAtBank(id, body.chargebackAtBank);
      if (settled === undefined) return { status: 200, body: Object.fromEntries(Object.entries(body).filter(([k]) => k !== 'chargebackAtBank')) };
      if (settled.ok) return { status: 200, body: wireDispute(settled.value, me) };
      return errorAnswer(settled.error);
    },
  );
  decide('reject', 'Card issuer: reject the dispute (nothing moves)', Strict({ evidence: Evidence }), (me, id, b, tx, actor) => disputes.issuerDecides(tx, actor, me, id, { decision: 'reject', evidence: String(b.evidence) }));
  decide('accept', 'Merchant’s or payee’s participant: accept (a chargeback stands; a P2P payment is refunded from the payee’s account)', Strict({ evidence: Type.Optional(Evidence) }), (me, id, b, tx, actor) =>
    disputes.respond(tx, actor, me, id, { decision: 'accept', evidence: b.evidence === undefined ? undefined : String(b.evidence) }),
  );
  decide('represent', 'Merchant’s or payee’s participant: contest with evidence (a card chargeback’s money goes back to the merchant)', Strict({ evidence: Evidence }), (me, id, b, tx, actor) =>
    disputes.respond(tx, actor, me, id, { decision: 'represent', evidence: String(b.evidence) }),
  );

  app.post(
    '/v1/wallet/recalls',
    {
      config: { customer: true, idempotency: 'required' },
      schema: {
        tags: ['disputes'],
        summary: 'Report a P2P payment as fraud: the hub follows the money and freezes what is left',
        description:
          'Within 80 days of the payment (`recall_window_closed`). The hub freezes what is still in the payee’s account and, for what already left it, in the accounts the money went to next (two hops). ' +
          'The payee’s participant analyses within 7 days (`recall_deadline_passed` after); a confirmed fraud refunds what was frozen at once; unanswered, the holds lapse after 11 days.',
        security: sec,
        body: Strict({ customerId: Ref('customer', 'Your customer, the payer'), transferId: Ref('transfer', 'The P2P payment'), reason: Reason }),
        response: { 201: Type.Ref(RecallSchema) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      if (p.kind !== 'wallet') return reply.fail({ code: 'not_wallet', message: 'customers report fraud from their wallet' });
      const b = request.body;
      return idempotent(
        request,
        reply,
        async (tx) => {
          const r = await disputes.openRecall(tx, actorOf(request, b.customerId), { walletId: p.participantId, customerId: b.customerId, paymentId: b.transferId, reason: b.reason });
          return r.ok ? created(wireRecall(r.value, p.participantId)) : r.error;
        },
        { required: true },
      );
    },
  );

  app.get(
    '/v1/recalls/:recallId',
    { config: { customer: true }, schema: { tags: ['disputes'], summary: 'A fraud recall: what was frozen where, and its trail', security: sec, params: RecallParams, response: { 200: Type.Ref(RecallSchema) } } },
    async (request, reply) => {
      const r = await disputes.getRecall(request.params.recallId);
      if (r === undefined) return reply.fail({ code: 'recall_not_found', message: 'no such recall' });
      return wireRecall(r, principalOf(request).participantId);
    },
  );

  app.post(
    '/v1/recalls/:recallId/analysis',
    {
      config: { idempotency: 'required' },
      schema: {
        tags: ['disputes'],
        summary: 'Payee’s participant: the analysis of a fraud recall (accept: refund what was frozen; reject: release it)',
        security: sec,
        params: RecallParams,
        body: Strict({ decision: Type.Union([Type.Literal('accept'), Type.Literal('reject')]), evidence: Evidence }),
        response: { 200: Type.Ref(RecallSchema) },
      },
    },
    async (request, reply) => {
      const me = principalOf(request).participantId;
      return idempotent(
        request,
        reply,
        async (tx) => {
          const r = await disputes.analyseRecall(tx, actorOf(request), me, request.params.recallId, request.body);
          return r.ok ? okResponse(wireRecall(r.value, me)) : r.error;
        },
        { required: true },
      );
    },
  );
}
