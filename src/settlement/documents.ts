import type { Clock } from '../platform/clock.ts';
import type { Queryable } from '../platform/db.ts';
import { formatMoney } from '../platform/money.ts';
import { camt053Stream, pacs002, pacs008, type Party, type StatementTotals } from './iso20022.ts';
import { MAX_ENTRIES_PAGE, type SettlementService, type SettlementWindow, type WindowEntry } from './service.ts';

/** The ISO 20022 documents of a window, from the settlement tables (see iso20022.ts for the messages). */
export interface SettlementDocuments {
  /** A participant's camt.053 for a window, streamed page by page; undefined when no such window. */
  statement(q: Queryable, windowId: string, participantId: string): Promise<AsyncGenerator<string> | undefined>;
  /** The window's pacs.008 (every transfer; for the operator, or only a participant's own); undefined: no window or no transfer. */
  creditTransfers(q: Queryable, windowId: string, participantId?: string): Promise<string | undefined>;
  /** The status report of the window's pacs.008: ACSC once settled, ACSP before. */
  statusReport(q: Queryable, windowId: string, participantId?: string): Promise<string | undefined>;
}

const MAX_PACS008_TRANSFERS = 100_000;
/** Entries read per round trip for a statement: larger than an API page (fewer index descents), one page in memory. */
const STATEMENT_PAGE = 1_000;

export function createSettlementDocuments(deps: { clock: Clock; settlement: SettlementService }): SettlementDocuments {
  const { clock, settlement } = deps;
  const parties = async (q: Queryable, ids: readonly string[]) => {
    const rows = await q.query<{ id: string; name: string }>('select id, name from participants where id = any($1::text[])', [[...new Set(ids)]]);
    return new Map<string, Party>(rows.map((r) => [r.id, { id: r.id, name: r.name }]));
  };
  const all = async (q: Queryable, w: SettlementWindow, participantId: string | undefined): Promise<WindowEntry[]> => {
    const out: WindowEntry[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await settlement.entries(q, w.id, participantId, after, MAX_ENTRIES_PAGE);
      out.push(...page);
      if (page.length < MAX_ENTRIES_PAGE || out.length >= MAX_PACS008_TRANSFERS) return out;
      after = page[page.length - 1]?.transferId;
    }
  };
  const messageId = (w: SettlementWindow, kind: string, participantId?: string) => `${w.id}-${kind}${participantId === undefined ? '' : `-${participantId}`}`.slice(0, 35);

  return {
    async statement(q, windowId, participantId) {
      const w = await settlement.window(q, windowId);
      if (w === undefined) return undefined;
      // No such participant (the operator names one): nothing to state.
      const me = (await parties(q, [participantId])).get(participantId);
      if (me === undefined) return undefined;
      const [agg] = await q.query<{ dc: bigint; cc: bigint; dm: bigint; cm: bigint }>(
        `select (select count(*) from settlement_entries where window_id = $1 and payer_participant_id = $2) as dc,
                (select coalesce(sum(amount_minor), 0)::int8 from settlement_entries where window_id = $1 and payer_participant_id = $2) as dm,
                (select count(*) from settlement_entries where window_id = $1 and payee_participant_id = $2) as cc,
                (select coalesce(sum(amount_minor), 0)::int8 from settlement_entries where window_id = $1 and payee_participant_id = $2) as cm`,
        [windowId, participantId],
      );
      const totals: StatementTotals = { count: (agg?.dc ?? 0n) + (agg?.cc ?? 0n), debitCount: agg?.dc ?? 0n, creditCount: agg?.cc ?? 0n, debitMinor: agg?.dm ?? 0n, creditMinor: agg?.cm ?? 0n };
      const now = clock.now();
      async function* pages() {
        // The next page is asked for while this one is written out, so the database and the rendering overlap.
        let next: Promise<WindowEntry[]> | undefined = settlement.entries(q, windowId, participantId, undefined, STATEMENT_PAGE);
        try {
          while (next !== undefined) {
            const page: WindowEntry[] = await next;
            const last = page.at(-1)?.transferId;
            next = page.length === STATEMENT_PAGE && last !== undefined ? settlement.entries(q, windowId, participantId, last, STATEMENT_PAGE) : undefined;
            yield page;
          }
        } finally {
          // A reader that stops early leaves at most one page in flight: its failure is nobody's to handle.
          next?.catch(() => undefined);
        }
      }
      return camt053Stream(
        { messageId: messageId(w, 'camt053', participantId), createdAt: now, participant: me, currency: w.currency, windowId: w.id, from: w.openedAt, to: w.closedAt ?? now },
        totals,
        pages(),
      );
    },
    async creditTransfers(q, windowId, participantId) {
      const w = await settlement.window(q, windowId);
      if (w === undefined) return undefined;
      const entries = await all(q, w, participantId);
      if (entries.length === 0) return undefined;
      const ps = await parties(q, entries.flatMap((e) => [e.payerParticipantId, e.payeeParticipantId]));
      return pacs008({ messageId: messageId(w, 'pacs008', participantId), createdAt: w.closedAt ?? clock.now(), currency: w.currency, settlementDate: w.settledAt ?? w.closedAt ?? clock.now(), participants: ps }, entries);
    },
    async statusReport(q, windowId, participantId) {
      const w = await settlement.window(q, windowId);
      if (w === undefined) return undefined;
      const entries = await all(q, w, participantId);
      const status = w.status === 'settled' ? 'ACSC' : 'ACSP';
      return pacs002({
        messageId: messageId(w, 'pacs002', participantId),
        createdAt: (w.settledAt ?? clock.now()).toISOString(),
        originalMessageId: messageId(w, 'pacs008', participantId),
        originalMessageName: 'pacs.008.001.08',
        groupStatus: status,
        transactions: entries.map((e) => ({ originalEndToEndId: e.paymentId, originalTxId: e.transferId, status, amount: formatMoney(e.amountMinor, e.currency) })),
      });
    },
  };
}
