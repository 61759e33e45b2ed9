import { Type } from '@sinclair/typebox';
import { actorOf, created, okResponse, principalOf, type Idempotent } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import { CurrencyCode, Strict, refuseUnknownCursor } from '../api/index.ts';
import type { LiquidityService } from '../liquidity/index.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { formatMoney } from '../platform/money.ts';
import { Readable } from 'node:stream';
import type { SettlementDocuments } from './documents.ts';
import { compareWithHub, MAX_LISTED, MAX_UPLOAD_ROWS, parseParticipantCsv, type Discrepancy } from './reconcile.ts';
import { MAX_ENTRIES_PAGE, type SavedDiscrepancies, type SettlementSchedule, type Instruction, type NetPosition, type SettlementService, type SettlementWindow, type WindowEntry, type WindowReport } from './service.ts';

const WireMoney = Type.Object({ amount: Type.String(), currency: Type.String() }, { additionalProperties: false });
const WindowSchema = Type.Object(
  {
    id: Type.String(),
    currency: Type.String(),
    seq: Type.String({ description: 'The window’s ordinal in its currency (1, 2, …)' }),
    status: Type.Union([Type.Literal('open'), Type.Literal('closed'), Type.Literal('settled')]),
    openedAt: Type.String({ format: 'date-time' }),
    closedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    settledAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    settlementReference: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: 'SettlementWindow', additionalProperties: false, description: 'A settlement window: one is open per currency; a payment between two participants belongs to the window its position leg committed in.' },
);
const NetSchema = Type.Object(
  { participantId: Type.String(), sent: WireMoney, received: WireMoney, sentCount: Type.Integer(), receivedCount: Type.Integer(), netPosition: WireMoney },
  { $id: 'SettlementNetPosition', additionalProperties: false, description: 'A participant’s multilateral net position in a closed window: received − sent (positive: it is owed).' },
);
const InstructionSchema = Type.Object(
  { id: Type.String(), fromParticipantId: Type.String(), toParticipantId: Type.String(), amount: WireMoney },
  { $id: 'SettlementInstruction', additionalProperties: false, description: 'A transfer the settlement bank makes between two participants’ accounts to settle a window.' },
);
const ReportSchema = Type.Object(
  { window: Type.Ref(WindowSchema), netPositions: Type.Array(Type.Ref(NetSchema)), instructions: Type.Array(Type.Ref(InstructionSchema)) },
  { $id: 'SettlementReport', additionalProperties: false },
);
const EntrySchema = Type.Object(
  { transferId: Type.String(), paymentId: Type.String(), direction: Type.Union([Type.Literal('sent'), Type.Literal('received')]), counterpartyParticipantId: Type.String(), amount: WireMoney, createdAt: Type.String({ format: 'date-time' }) },
  { $id: 'SettlementEntry', additionalProperties: false, description: 'One position leg of a payment between you and another participant.' },
);

const iso = (d: Date | null) => (d === null ? null : d.toISOString());
export const wireWindow = (w: SettlementWindow) => ({
  id: w.id,
  currency: w.currency,
  seq: w.seq.toString(),
  status: w.status,
  openedAt: w.openedAt.toISOString(),
  closedAt: iso(w.closedAt),
  settledAt: iso(w.settledAt),
  settlementReference: w.settlementReference,
});
const wireNet = (n: NetPosition) => ({
  participantId: n.participantId,
  sent: formatMoney(n.sentMinor, n.currency),
  received: formatMoney(n.receivedMinor, n.currency),
  sentCount: Number(n.sentCount),
  receivedCount: Number(n.receivedCount),
  netPosition: formatMoney(n.netMinor, n.currency),
});
const wireInstruction = (i: Instruction) => ({ id: i.id, fromParticipantId: i.fromParticipantId, toParticipantId: i.toParticipantId, amount: formatMoney(i.amountMinor, i.currency) });
/** A report as one participant sees it: its own net position and the instructions it is a party to. */
const wireReport = (r: WindowReport, participantId?: string) => ({
  window: wireWindow(r.window),
  netPositions: r.netPositions.filter((n) => participantId === undefined || n.participantId === participantId).map(wireNet),
  instructions: r.instructions.filter((i) => participantId === undefined || i.fromParticipantId === participantId || i.toParticipantId === participantId).map(wireInstruction),
});
const wireEntry = (e: WindowEntry, participantId: string) => ({
  transferId: e.transferId,
  paymentId: e.paymentId,
  direction: e.payerParticipantId === participantId ? ('sent' as const) : ('received' as const),
  counterpartyParticipantId: e.payerParticipantId === participantId ? e.payeeParticipantId : e.payerParticipantId,
  amount: formatMoney(e.amountMinor, e.currency),
  createdAt: e.createdAt.toISOString(),
});

const wireSide = (side: Discrepancy['hub'] | Discrepancy['participant']) =>
  side === null ? null : { direction: side.direction, counterpartyParticipantId: side.counterpartyParticipantId, amount: formatMoney(side.amountMinor, side.currency) };
const wireDiscrepancies = (d: SavedDiscrepancies) => ({
  id: d.id,
  windowId: d.windowId,
  participantId: d.participantId,
  matched: d.report.matched,
  hubCount: d.report.hubCount,
  participantCount: d.report.participantCount,
  hubNet: formatMoney(d.report.hubNetMinor, d.currency),
  participantNet: formatMoney(d.report.participantNetMinor, d.currency),
  counts: { ...d.report.counts },
  items: d.report.items.map((i) => ({ kind: i.kind, transferId: i.transferId, line: i.line, hub: wireSide(i.hub), participant: wireSide(i.participant) })),
  createdAt: d.createdAt.toISOString(),
});

/** A CSV field: quoted when it holds a comma, quote or line break; a leading =, +, - or @ is neutralised (spreadsheets). */
const csvField = (v: string) => {
  const safe = /^[=+\-@]/.test(v) && !/^-?[0-9.]+$/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
};

const WindowParams = Strict({ windowId: Ref('settlement_window', 'The settlement window') });
const operator = { auth: 'operator' } as const;
const opSec = [{ operator: [] }];
const sec = [{ participant: [] }];

export function registerSettlementRoutes(app: HttpServer, deps: { db: Db; settlement: SettlementService; documents: SettlementDocuments; liquidity: LiquidityService; idempotent: Idempotent }): void {
  const { db, settlement, documents, liquidity, idempotent } = deps;
  for (const s of [WindowSchema, NetSchema, InstructionSchema, ReportSchema, EntrySchema]) app.addSchema(s);

  const PositionsSchema = Type.Object(
    {
      items: Type.Array(
        Type.Object(
          { currency: Type.String(), unsettledPosition: WireMoney, liquidity: WireMoney, balance: WireMoney, reserved: WireMoney, netDebitCap: WireMoney, available: WireMoney },
          { additionalProperties: false },
        ),
      ),
    },
    { additionalProperties: false },
  );
  /** A participant's positions with its net position in the windows not yet settled, per currency. */
  const positionsOf = async (participantId: string) => {
    const [positions, unsettled] = await Promise.all([liquidity.positions(participantId), settlement.unsettled(db, participantId)]);
    const currencies = [...new Set([...positions.map((p) => p.currency), ...unsettled.keys()])].sort();
    return {
      items: currencies.map((currency) => {
        const p = positions.find((x) => x.currency === currency);
        const m = (v: bigint | undefined) => formatMoney(v ?? 0n, currency);
        return {
          currency,
          unsettledPosition: m(unsettled.get(currency)),
          liquidity: m(p?.liquidityMinor),
          balance: m(p?.balanceMinor),
          reserved: m(p?.reservedMinor),
          netDebitCap: m(p?.netDebitCapMinor),
          available: m(p?.availableMinor),
        };
      }),
    };
  };
  app.get(
    '/v1/settlement/positions',
    { schema: { tags: ['settlement'], summary: 'Your positions: liquidity, balance and cap per currency, and your net position in the windows not yet settled', security: sec, response: { 200: PositionsSchema } } },
    async (request) => positionsOf(principalOf(request).participantId),
  );
  app.get(
    '/v1/operator/settlement/participants/:participantId/positions',
    {
      config: operator,
      schema: {
        tags: ['operator'],
        summary: "A participant's positions as it sees them: liquidity, balance and cap per currency, and its net position in the windows not yet settled",
        security: opSec,
        params: Strict({ participantId: Ref('participant', 'The participant') }),
        response: { 200: PositionsSchema },
      },
    },
    async (request, reply) => {
      const found = await liquidity.participantExists(db, request.params.participantId);
      if (!found) return reply.fail({ code: 'participant_not_found', message: 'no such participant' });
      return positionsOf(request.params.participantId);
    },
  );

  const ListQuery = Strict({ currency: Type.Optional(CurrencyCode), limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })) });
  const listLimit = (s: string | undefined) => Math.min(Math.max(Number(s ?? 50), 1), 200);
  app.get(
    '/v1/settlement/windows',
    { schema: { tags: ['settlement'], summary: 'Settlement windows you have a position in (and the open ones), newest first', security: sec, querystring: ListQuery, response: { 200: Type.Object({ items: Type.Array(Type.Ref(WindowSchema)) }, { additionalProperties: false }) } } },
    async (request) => ({
      items: (await settlement.windows(db, { currency: request.query.currency, participantId: principalOf(request).participantId, limit: listLimit(request.query.limit) })).map(wireWindow),
    }),
  );
  app.get(
    '/v1/settlement/windows/:windowId',
    { schema: { tags: ['settlement'], summary: 'A settlement window: your net position and the instructions you are a party to', security: sec, params: WindowParams, response: { 200: Type.Ref(ReportSchema) } } },
    async (request, reply) => {
      const r = await settlement.report(db, request.params.windowId);
      if (r === undefined) return reply.fail({ code: 'settlement_window_not_found', message: 'no such settlement window' });
      return wireReport(r, principalOf(request).participantId);
    },
  );

  const PageQuery = Strict({
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$', description: 'The `nextCursor` of the previous page (any other cursor: 400 invalid_page)' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: `1–${MAX_ENTRIES_PAGE} (default 100)` })),
  });
  const pageLimit = (s: string | undefined) => Math.min(Math.max(Number(s ?? 100), 1), MAX_ENTRIES_PAGE);
  app.get(
    '/v1/settlement/windows/:windowId/transfers',
    {
      schema: {
        tags: ['settlement'],
        summary: 'Your transfers in a settlement window (cursor-paginated), with the totals of the page',
        description: 'Reconciliation: over every page, received − sent equals your net position in the window.',
        security: sec,
        params: WindowParams,
        querystring: PageQuery,
        response: {
          200: Type.Object({ items: Type.Array(Type.Ref(EntrySchema)), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false }),
        },
      },
    },
    async (request, reply) => {
      const me = principalOf(request).participantId;
      if ((await settlement.window(db, request.params.windowId)) === undefined) return reply.fail({ code: 'settlement_window_not_found', message: 'no such settlement window' });
      const limit = pageLimit(request.query.limit);
      const refused = await refuseUnknownCursor(request.query.cursor, (transferId) => settlement.entryOf(db, request.params.windowId, me, transferId));
      if (refused !== undefined) return reply.fail(refused);
      const rows = await settlement.entries(db, request.params.windowId, me, request.query.cursor, limit);
      return { items: rows.map((e) => wireEntry(e, me)), nextCursor: rows.length === limit ? (rows[rows.length - 1]?.transferId ?? null) : null };
    },
  );
  app.get(
    '/v1/settlement/windows/:windowId/transfers.csv',
    {
      schema: {
        tags: ['settlement'],
        summary: 'Your transfers in a settlement window as CSV (cursor-paginated like the JSON list: the next cursor is in the `X-Next-Cursor` header)',
        security: sec,
        params: WindowParams,
        querystring: PageQuery,
        response: { 200: Type.Unsafe<string>({ type: 'string', description: 'text/csv: transfer_id,payment_id,direction,counterparty_participant_id,amount,currency,created_at' }) },
      },
    },
    async (request, reply) => {
      const me = principalOf(request).participantId;
      if ((await settlement.window(db, request.params.windowId)) === undefined) return reply.fail({ code: 'settlement_window_not_found', message: 'no such settlement window' });
      const limit = pageLimit(request.query.limit);
      const refused = await refuseUnknownCursor(request.query.cursor, (transferId) => settlement.entryOf(db, request.params.windowId, me, transferId));
      if (refused !== undefined) return reply.fail(refused);
      const rows = await settlement.entries(db, request.params.windowId, me, request.query.cursor, limit);
      const lines = ['transfer_id,payment_id,direction,counterparty_participant_id,amount,currency,created_at'];
      for (const e of rows) {
        const w = wireEntry(e, me);
        lines.push([w.transferId, w.paymentId, w.direction, w.counterpartyParticipantId, w.amount.amount, w.amount.currency, w.createdAt].map(csvField).join(','));
      }
      const next = rows.length === limit ? rows[rows.length - 1]?.transferId : undefined;
      if (next !== undefined) reply.header('x-next-cursor', next);
      return reply.type('text/csv; charset=utf-8').send(`${lines.join('\r\n')}\r\n`);
    },
  );

  // ---- reconciliation: the participant's own view against the hub's ---------------------------------------------------
  const DiffSide = Type.Union([
    Type.Object({ direction: Type.Union([Type.Literal('sent'), Type.Literal('received')]), counterpartyParticipantId: Type.Union([Type.String(), Type.Null()]), amount: WireMoney }, { additionalProperties: false }),
    Type.Null(),
  ]);
  const DiscrepancyReportSchema = Type.Object(
    {
      id: Type.String(),
      windowId: Type.String(),
      participantId: Type.String(),
      matched: Type.Integer(),
      hubCount: Type.Integer(),
      participantCount: Type.Integer(),
      hubNet: WireMoney,
      participantNet: WireMoney,
      counts: Type.Record(Type.String(), Type.Integer(), { description: 'missing_at_participant, missing_at_hub, direction, counterparty, amount, currency, duplicate' }),
      items: Type.Array(Type.Object({ kind: Type.String(), transferId: Type.String(), line: Type.Union([Type.Integer(), Type.Null()]), hub: DiffSide, participant: DiffSide }, { additionalProperties: false }), { description: `The first ${MAX_LISTED} differences` }),
      createdAt: Type.String({ format: 'date-time' }),
    },
    { $id: 'SettlementDiscrepancyReport', additionalProperties: false, description: "A participant's view of a window compared with the hub's legs." },
  );
  app.addSchema(DiscrepancyReportSchema);
  app.post(
    '/v1/settlement/windows/:windowId/discrepancies',
    { config: { idempotency: 'optional' },
      schema: {
        tags: ['settlement'],
        summary: 'Upload your own view of a window (CSV) and get its differences from the hub’s legs',
        description: `The CSV has the columns of transfers.csv (at least transfer_id, direction, amount and currency; counterparty_participant_id is compared when given), one header line, at most ${MAX_UPLOAD_ROWS} rows. The report is kept: the operator sees it.`,
        security: sec,
        params: WindowParams,
        body: Strict({ csv: Type.String({ minLength: 1, maxLength: 60_000, description: 'The CSV text' }) }),
        response: { 201: Type.Ref(DiscrepancyReportSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const me = principalOf(request).participantId;
        const w = await settlement.window(tx, request.params.windowId);
        if (w === undefined) return { code: 'settlement_window_not_found', message: 'no such settlement window' };
        const parsed = parseParticipantCsv(request.body.csv);
        if (!parsed.ok) return parsed.error;
        const windowId = w.id;
        async function* pages() {
          let after: string | undefined;
          for (;;) {
            const page = await settlement.entries(tx, windowId, me, after, MAX_ENTRIES_PAGE);
            yield page;
            if (page.length < MAX_ENTRIES_PAGE) return;
            after = page[page.length - 1]?.transferId;
          }
        }
        const report = await compareWithHub(me, pages(), parsed.value);
        const saved = await settlement.saveDiscrepancies(tx, actorOf(request), { windowId: w.id, participantId: me, currency: w.currency, report });
        return created(wireDiscrepancies(saved));
      }),
  );
  app.get(
    '/v1/operator/settlement/discrepancies',
    { config: operator,
      schema: {
        tags: ['operator'],
        summary: 'Discrepancy reports participants asked for, newest first',
        security: opSec,
        querystring: Strict({ windowId: Type.Optional(Ref('settlement_window', 'Only the reports of this window')), limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })) }),
        response: { 200: Type.Object({ items: Type.Array(Type.Ref(DiscrepancyReportSchema)) }, { additionalProperties: false }) },
      },
    },
    async (request) => ({ items: (await settlement.discrepancies(db, { windowId: request.query.windowId, limit: listLimit(request.query.limit) })).map(wireDiscrepancies) }),
  );

  // ---- ISO 20022 downloads ----------------------------------------------------------------------------------------
  const xml = (what: string) => ({ 200: Type.Unsafe<string | Readable>({ type: 'string', description: `application/xml: ${what}` }) });
  const notFound = { code: 'settlement_window_not_found' as const, message: 'no such settlement window, or nothing in it for you' };
  app.get(
    '/v1/settlement/windows/:windowId/camt053',
    { schema: { tags: ['settlement'], summary: 'Your ISO 20022 camt.053.001.08 statement of a window (your position legs, opening and closing balance)', security: sec, params: WindowParams, response: xml('camt.053.001.08') } },
    async (request, reply) => {
      const stream = await documents.statement(db, request.params.windowId, principalOf(request).participantId);
      if (stream === undefined) return reply.fail(notFound);
      return reply.type('application/xml; charset=utf-8').send(Readable.from(stream));
    },
  );
  for (const [path, who] of [['/v1/settlement/windows/:windowId', 'participant'], ['/v1/operator/settlement/windows/:windowId', 'operator']] as const) {
    const config = who === 'operator' ? operator : undefined;
    const security = who === 'operator' ? opSec : sec;
    const tags = [who === 'operator' ? 'operator' : 'settlement'];
    app.get(
      `${path}/pacs008`,
      { ...(config === undefined ? {} : { config }), schema: { tags, summary: who === 'operator' ? "A window's ISO 20022 pacs.008.001.08 (every credit transfer between participants)" : 'Your ISO 20022 pacs.008.001.08 of a window (the credit transfers you sent or received)', security, params: WindowParams, response: xml('pacs.008.001.08') } },
      async (request, reply) => {
        const doc = await documents.creditTransfers(db, request.params.windowId, who === 'operator' ? undefined : principalOf(request).participantId);
        if (doc === undefined) return reply.fail(notFound);
        return reply.type('application/xml; charset=utf-8').send(doc);
      },
    );
    app.get(
      `${path}/pacs002`,
      { ...(config === undefined ? {} : { config }), schema: { tags, summary: "The ISO 20022 pacs.002 status report of the window's pacs.008 (ACSC settled, ACSP in process)", security, params: WindowParams, response: xml('pacs.002.001.10') } },
      async (request, reply) => {
        const doc = await documents.statusReport(db, request.params.windowId, who === 'operator' ? undefined : principalOf(request).participantId);
        if (doc === undefined) return reply.fail(notFound);
        return reply.type('application/xml; charset=utf-8').send(doc);
      },
    );
  }

  // ---- operator --------------------------------------------------------------------------------------------------
  app.get(
    '/v1/operator/settlement/windows/:windowId/participants/:participantId/camt053',
    {
      config: operator,
      schema: {
        tags: ['operator'],
        summary: "A participant's ISO 20022 camt.053.001.08 statement of a window, as the participant downloads it",
        security: opSec,
        params: Strict({ windowId: Ref('settlement_window', 'The settlement window'), participantId: Ref('participant', 'The participant') }),
        response: xml('camt.053.001.08'),
      },
    },
    async (request, reply) => {
      const stream = await documents.statement(db, request.params.windowId, request.params.participantId);
      if (stream === undefined) return reply.fail({ code: 'settlement_window_not_found', message: 'no such settlement window, or nothing in it for this participant' });
      return reply.type('application/xml; charset=utf-8').send(Readable.from(stream));
    },
  );
  app.get(
    '/v1/operator/settlement/windows',
    { config: operator, schema: { tags: ['operator'], summary: 'Settlement windows, newest first', security: opSec, querystring: ListQuery, response: { 200: Type.Object({ items: Type.Array(Type.Ref(WindowSchema)) }, { additionalProperties: false }) } } },
    async (request) => ({ items: (await settlement.windows(db, { currency: request.query.currency, limit: listLimit(request.query.limit) })).map(wireWindow) }),
  );
  app.get(
    '/v1/operator/settlement/windows/:windowId',
    { config: operator, schema: { tags: ['operator'], summary: 'A settlement window with every net position and instruction', security: opSec, params: WindowParams, response: { 200: Type.Ref(ReportSchema) } } },
    async (request, reply) => {
      const r = await settlement.report(db, request.params.windowId);
      if (r === undefined) return reply.fail({ code: 'settlement_window_not_found', message: 'no such settlement window' });
      return wireReport(r);
    },
  );
  const CurrencyParams = Strict({ currency: CurrencyCode });
  const ModelSchema = Type.Union([Type.Literal('deferred_net'), Type.Literal('immediate_gross')], {
    description: 'deferred_net: windows close into net positions the settlement bank settles; immediate_gross: each payment between participants moves their liquidity at once',
  });
  const ScheduleSchema = Type.Union([
    Type.Object(
      { everyMinutes: Type.Union([Type.Integer(), Type.Null()]), cutoffUtc: Type.Union([Type.String(), Type.Null()]), nextCloseAt: Type.String({ format: 'date-time' }) },
      { additionalProperties: false },
    ),
    Type.Null(),
  ]);
  const CurrencySettingsSchema = Type.Object({ currency: Type.String(), model: ModelSchema, schedule: ScheduleSchema }, { additionalProperties: false });
  const wireSchedule = (s: SettlementSchedule | null | undefined) => (s === null || s === undefined ? null : { everyMinutes: s.everyMinutes, cutoffUtc: s.cutoffUtc, nextCloseAt: s.nextCloseAt.toISOString() });
  app.get(
    '/v1/operator/settlement/currencies',
    { config: operator, schema: { tags: ['operator'], summary: 'How each currency settles (model) and when its window closes by itself (schedule); a currency not listed settles deferred net and closes only when the operator closes it', security: opSec, response: { 200: Type.Object({ items: Type.Array(CurrencySettingsSchema) }, { additionalProperties: false }) } } },
    async () => {
      const [models, schedules] = await Promise.all([settlement.models(db), settlement.schedules(db)]);
      const currencies = [...new Set([...models.map((m) => m.currency), ...schedules.map((x) => x.currency)])].sort();
      return { items: currencies.map((c) => ({ currency: c, model: models.find((m) => m.currency === c)?.model ?? ('deferred_net' as const), schedule: wireSchedule(schedules.find((x) => x.currency === c)) })) };
    },
  );
  app.post(
    '/v1/operator/settlement/currencies/:currency/model',
    { config: { ...operator, idempotency: 'optional' },
      schema: { tags: ['operator'], summary: "Set a currency's settlement model; payments committed from now on settle by it", security: opSec, params: CurrencyParams, body: Strict({ model: ModelSchema }), response: { 200: CurrencySettingsSchema } },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await settlement.setModel(tx, actorOf(request), { currency: request.params.currency, model: request.body.model });
        if (!r.ok) return r.error;
        const schedules = await settlement.schedules(tx);
        return okResponse({ currency: r.value.currency, model: r.value.model, schedule: wireSchedule(schedules.find((x) => x.currency === r.value.currency)) });
      }),
  );
  app.post(
    '/v1/operator/settlement/currencies/:currency/schedule',
    { config: { ...operator, idempotency: 'optional' },
      schema: {
        tags: ['operator'],
        summary: "Close a currency's window by itself: every N minutes, or daily at a cut-off time (UTC); an empty body removes the schedule",
        security: opSec,
        params: CurrencyParams,
        body: Strict({
          everyMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_080, description: 'Close every N minutes, counted from now' })),
          cutoffUtc: Type.Optional(Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'Close daily at HH:MM UTC' })),
        }),
        response: { 200: CurrencySettingsSchema },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await settlement.setSchedule(tx, actorOf(request), { currency: request.params.currency, everyMinutes: request.body.everyMinutes, cutoffUtc: request.body.cutoffUtc });
        if (!r.ok) return r.error;
        const models = await settlement.models(tx);
        return okResponse({ currency: request.params.currency, model: models.find((m) => m.currency === request.params.currency)?.model ?? ('deferred_net' as const), schedule: wireSchedule(r.value) });
      }),
  );
  app.post(
    '/v1/operator/settlement/windows/close',
    { config: { ...operator, idempotency: 'optional' },
      schema: {
        tags: ['operator'],
        summary: 'Close the open settlement window of a currency: net positions and instructions; a new window opens at once',
        security: opSec,
        body: Strict({ currency: CurrencyCode }),
        response: { 200: Type.Ref(ReportSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await settlement.close(tx, actorOf(request), request.body.currency);
        return r.ok ? okResponse(wireReport(r.value)) : r.error;
      }),
  );
  app.post(
    '/v1/operator/settlement/windows/:windowId/settlement',
    { config: { ...operator, idempotency: 'optional' },
      schema: {
        tags: ['operator'],
        summary: 'Record that the settlement bank confirmed a closed window’s instructions: liquidity moves, the window is settled',
        description: 'Recording it again changes nothing and answers the settled window.',
        security: opSec,
        params: WindowParams,
        body: Strict({ reference: Type.String({ minLength: 1, maxLength: 64, description: 'The settlement bank’s reference' }) }),
        response: { 200: Type.Ref(ReportSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await settlement.recordSettlement(tx, actorOf(request), { windowId: request.params.windowId, reference: request.body.reference });
        return r.ok ? okResponse(wireReport(r.value)) : r.error;
      }),
  );
}
