import { parseAmount } from '../platform/money.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import type { WindowEntry } from './service.ts';

/**
 * Reconciliation: a participant uploads its own view of a window (CSV, the columns of the hub's transfers.csv; at least
 * transfer_id, direction, amount and currency, any others ignored) and gets the differences from the hub's legs: legs
 * only the hub has, rows only the participant has, and legs both have with a different direction, counterparty, amount
 * or currency; with both sides' totals.
 */
export const MAX_UPLOAD_ROWS = 5000;
/** The differences listed in a report (all are counted). */
export const MAX_LISTED = 200;

export interface ParticipantRow {
  readonly line: number;
  readonly transferId: string;
  readonly direction: 'sent' | 'received';
  readonly counterpartyParticipantId: string | undefined;
  readonly amountMinor: bigint;
  readonly currency: string;
}

export type DiscrepancyKind = 'missing_at_participant' | 'missing_at_hub' | 'direction' | 'counterparty' | 'amount' | 'currency' | 'duplicate';

export interface Discrepancy {
  readonly kind: DiscrepancyKind;
  readonly transferId: string;
  readonly line: number | null;
  readonly hub: { direction: 'sent' | 'received'; counterpartyParticipantId: string; amountMinor: bigint; currency: string } | null;
  readonly participant: { direction: 'sent' | 'received'; counterpartyParticipantId: string | null; amountMinor: bigint; currency: string } | null;
}

export interface DiscrepancyReport {
  readonly matched: number;
  readonly hubCount: number;
  readonly participantCount: number;
  /** Received − sent, from the hub's legs and from the upload. */
  readonly hubNetMinor: bigint;
  readonly participantNetMinor: bigint;
  readonly counts: Readonly<Record<DiscrepancyKind, number>>;
  /** The first MAX_LISTED differences, in transfer-id order (hub legs) then upload order. */
  readonly items: readonly Discrepancy[];
}

/** One CSV record per line (RFC 4180 quoting: "…", "" for a quote, commas and line breaks inside quotes). */
function* records(text: string): Generator<{ line: number; fields: string[] }> {
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (ch === '"') quoted = false;
      else {
        if (ch === '\n') line += 1;
        field += ch;
      }
      continue;
    }
    if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i += 1;
      fields.push(field);
      if (!(fields.length === 1 && fields[0] === '')) yield { line: start, fields };
      fields = [];
      field = '';
      line += 1;
      start = line;
    } else field += ch;
  }
  fields.push(field);
  if (!(fields.length === 1 && fields[0] === '')) yield { line: start, fields };
}

type CsvErr = DomainError<'settlement_csv_invalid'>;

export function parseParticipantCsv(text: string): Result<ParticipantRow[], CsvErr> {
  const it = records(text);
  const head = it.next();
  if (head.done === true) return err('settlement_csv_invalid', 'the file is empty: the first line names the columns', { line: 1 });
  const columns = head.value.fields.map((f) => f.trim().toLowerCase());
  const col = (name: string) => columns.indexOf(name);
  const need = ['transfer_id', 'direction', 'amount', 'currency'];
  const missing = need.filter((n) => col(n) < 0);
  if (missing.length > 0) return err('settlement_csv_invalid', `the first line must name the columns ${need.join(', ')} (missing: ${missing.join(', ')})`, { line: 1, missing });
  const rows: ParticipantRow[] = [];
  for (const { line, fields } of it) {
    if (rows.length >= MAX_UPLOAD_ROWS) return err('settlement_csv_invalid', `at most ${MAX_UPLOAD_ROWS} rows per upload`, { line });
    const get = (name: string) => (col(name) < 0 ? undefined : fields[col(name)]?.trim());
    const transferId = get('transfer_id') ?? '';
    const direction = get('direction');
    const currency = (get('currency') ?? '').toUpperCase();
    if (transferId === '' || transferId.length > 128) return err('settlement_csv_invalid', 'transfer_id is empty or too long', { line, column: 'transfer_id' });
    if (direction !== 'sent' && direction !== 'received') return err('settlement_csv_invalid', 'direction is sent or received', { line, column: 'direction' });
    if (!/^[A-Z]{3}$/.test(currency)) return err('settlement_csv_invalid', 'currency is an ISO 4217 code', { line, column: 'currency' });
    const amount = parseAmount(get('amount') ?? '', currency);
    if (!amount.ok || amount.value <= 0n) return err('settlement_csv_invalid', `amount is a positive decimal in ${currency}'s minor units`, { line, column: 'amount' });
    const counterparty = get('counterparty_participant_id');
    rows.push({ line, transferId, direction, counterpartyParticipantId: counterparty === undefined || counterparty === '' ? undefined : counterparty, amountMinor: amount.value, currency });
  }
  return ok(rows);
}

/** Compares the hub's legs of `participantId` (pages, in transfer-id order) with the participant's rows. */
export async function compareWithHub(participantId: string, hubPages: AsyncIterable<readonly WindowEntry[]>, rows: readonly ParticipantRow[]): Promise<DiscrepancyReport> {
  const counts: Record<DiscrepancyKind, number> = { missing_at_participant: 0, missing_at_hub: 0, direction: 0, counterparty: 0, amount: 0, currency: 0, duplicate: 0 };
  const items: Discrepancy[] = [];
  const add = (d: Discrepancy) => {
    counts[d.kind] += 1;
    if (items.length < MAX_LISTED) items.push(d);
  };
  const byId = new Map<string, ParticipantRow>();
  let participantNet = 0n;
  for (const r of rows) {
    participantNet += r.direction === 'received' ? r.amountMinor : -r.amountMinor;
    if (byId.has(r.transferId)) add({ kind: 'duplicate', transferId: r.transferId, line: r.line, hub: null, participant: wireRow(r) });
    else byId.set(r.transferId, r);
  }
  let matched = 0;
  let hubCount = 0;
  let hubNet = 0n;
  const seen = new Set<string>();
  for await (const page of hubPages) {
    for (const e of page) {
      hubCount += 1;
      const direction = e.payerParticipantId === participantId ? ('sent' as const) : ('received' as const);
      const counterparty = direction === 'sent' ? e.payeeParticipantId : e.payerParticipantId;
      hubNet += direction === 'received' ? e.amountMinor : -e.amountMinor;
      const hub = { direction, counterpartyParticipantId: counterparty, amountMinor: e.amountMinor, currency: e.currency };
      const r = byId.get(e.transferId);
      if (r === undefined) {
        add({ kind: 'missing_at_participant', transferId: e.transferId, line: null, hub, participant: null });
        continue;
      }
      seen.add(e.transferId);
      const kind: DiscrepancyKind | undefined =
        r.direction !== direction ? 'direction' : r.currency !== e.currency ? 'currency' : r.amountMinor !== e.amountMinor ? 'amount' : r.counterpartyParticipantId !== undefined && r.counterpartyParticipantId !== counterparty ? 'counterparty' : undefined;
      if (kind === undefined) matched += 1;
      else add({ kind, transferId: e.transferId, line: r.line, hub, participant: wireRow(r) });
    }
  }
  for (const r of byId.values()) if (!seen.has(r.transferId)) add({ kind: 'missing_at_hub', transferId: r.transferId, line: r.line, hub: null, participant: wireRow(r) });
  return { matched, hubCount, participantCount: rows.length, hubNetMinor: hubNet, participantNetMinor: participantNet, counts, items };
}

const wireRow = (r: ParticipantRow) => ({ direction: r.direction, counterpartyParticipantId: r.counterpartyParticipantId ?? null, amountMinor: r.amountMinor, currency: r.currency });
