import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { formatAmount } from '../platform/money.ts';
import type { WindowEntry } from './service.ts';

/**
 * ISO 20022 messages of settlement, built with fast-xml-parser's XMLBuilder (never by string concatenation):
 * - camt.053.001.08: a participant's statement of its position in one currency over one window (opening balance 0, the
 *   window's legs as entries, closing balance = its net position);
 * - pacs.008.001.08: a window's interparticipant credit transfers (one message, one CdtTrfTxInf per payment);
 * - pacs.002.001.10: the status report of a pacs.008 (no XSD at hand here: tests parse it back and compare).
 * Amounts, currencies, participant ids, end-to-end ids (payment ids) and times are the values the API shows.
 * Participants carry no BIC here: a participant is identified by its hub id (`Othr/Id`) and named (`Nm`).
 */
export const CAMT053_NS = 'urn:iso:std:iso:20022:tech:xsd:camt.053.001.08';
export const PACS008_NS = 'urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08';
export const PACS002_NS = 'urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10';

export interface Party {
  readonly id: string;
  readonly name: string;
}

// jPath: false — no callback reads a node's path, so the builder need not render it as a string for every node (it did,
// by default: an eighth of a large statement's time).
// (An option of the builder fast-xml-parser re-exports that its own option type does not list yet.)
const noPathStrings = { jPath: false };
const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@', format: false, suppressEmptyNode: false, ...noPathStrings });
/**
 * Statement entries hold only hub ids (letters, digits, `_.:-`: the Ref pattern), amounts, ISO times and fixed codes:
 * nothing to escape, so their builder skips entity processing (a third faster on a large window). Names go through
 * `builder`, which escapes.
 */
const entryBuilder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@', format: false, suppressEmptyNode: false, processEntities: false, ...noPathStrings });
const SAFE = /^[A-Za-z0-9_.:-]+$/;
const declaration = '<?xml version="1.0" encoding="UTF-8"?>';
const amt = (minor: bigint, currency: string) => ({ '@Ccy': currency, '#text': formatAmount(minor < 0n ? -minor : minor, currency) });
const dc = (minor: bigint) => (minor < 0n ? 'DBIT' : 'CRDT');
const agent = (p: Party) => ({ FinInstnId: { Nm: p.name.slice(0, 140), Othr: { Id: p.id } } });

export interface StatementInput {
  readonly messageId: string;
  readonly createdAt: Date;
  readonly participant: Party;
  readonly currency: string;
  readonly windowId: string;
  readonly from: Date;
  readonly to: Date;
}

export interface StatementTotals {
  count: bigint;
  creditCount: bigint;
  debitCount: bigint;
  creditMinor: bigint;
  debitMinor: bigint;
}

const entryOf = (e: WindowEntry, participantId: string) => {
  if (!SAFE.test(e.transferId) || !SAFE.test(e.paymentId)) throw new Error('camt.053: an entry id holds characters outside the hub id pattern');
  const credit = e.payeeParticipantId === participantId;
  return {
    NtryRef: e.transferId,
    Amt: amt(e.amountMinor, e.currency),
    CdtDbtInd: credit ? 'CRDT' : 'DBIT',
    Sts: { Cd: 'BOOK' },
    BookgDt: { DtTm: e.createdAt.toISOString() },
    BkTxCd: { Domn: { Cd: 'PMNT', Fmly: { Cd: credit ? 'RCDT' : 'ICDT', SubFmlyCd: 'DMCT' } } },
    NtryDtls: { TxDtls: { Refs: { EndToEndId: e.paymentId, TxId: e.transferId }, Amt: amt(e.amountMinor, e.currency), CdtDbtInd: credit ? 'CRDT' : 'DBIT' } },
  };
};

/**
 * Statement entries rendered from a template the library built: the entry element is built once per side (credit,
 * debit) with marker values, split at the markers, and each entry is then the template's pieces around its own values.
 * The values are checked to need no escaping (ids match SAFE, amounts are digits and a point, currencies three capital
 * letters, times ISO 8601), so the document is the one the builder would write — the stream test compares both — at a
 * fraction of the cost of building a node tree per entry (the builder was most of a large statement's time).
 */
const MARK = (k: number) => `\uE000${k}\uE000`;
const MARKS = /\uE000(\d)\uE000/;
interface EntryTemplate {
  /** Literal XML pieces; between piece i and i+1 goes the value named by slots[i]. */
  readonly pieces: readonly string[];
  readonly slots: readonly number[];
}
const templateOf = (credit: boolean): EntryTemplate => {
  // Slots: 0 transferId, 1 currency, 2 amount, 3 booked at, 4 paymentId.
  const amount = { '@Ccy': MARK(1), '#text': MARK(2) };
  const xml = entryBuilder.build({
    Ntry: [
      {
        NtryRef: MARK(0),
        Amt: amount,
        CdtDbtInd: credit ? 'CRDT' : 'DBIT',
        Sts: { Cd: 'BOOK' },
        BookgDt: { DtTm: MARK(3) },
        BkTxCd: { Domn: { Cd: 'PMNT', Fmly: { Cd: credit ? 'RCDT' : 'ICDT', SubFmlyCd: 'DMCT' } } },
        NtryDtls: { TxDtls: { Refs: { EndToEndId: MARK(4), TxId: MARK(0) }, Amt: amount, CdtDbtInd: credit ? 'CRDT' : 'DBIT' } },
      },
    ],
  }) as string;
  const parts = xml.split(MARKS);
  const pieces: string[] = [];
  const slots: number[] = [];
  parts.forEach((part, i) => (i % 2 === 0 ? pieces.push(part) : slots.push(Number(part))));
  if (slots.length !== 8) throw new Error(`camt.053: the entry template has ${slots.length} value slots, expected 8`);
  return { pieces, slots };
};
const CREDIT_ENTRY = templateOf(true);
const DEBIT_ENTRY = templateOf(false);
const AMOUNT = /^[0-9]+(\.[0-9]+)?$/;
const CURRENCY = /^[A-Z]{3}$/;

function renderEntries(entries: readonly WindowEntry[], participantId: string): string {
  // Pieces joined once: `+=` would build a rope of a hundred thousand nodes per page for the reader to flatten.
  const out: string[] = [];
  const values: string[] = ['', '', '', '', ''];
  for (const e of entries) {
    if (!SAFE.test(e.transferId) || !SAFE.test(e.paymentId)) throw new Error('camt.053: an entry id holds characters outside the hub id pattern');
    const amount = formatAmount(e.amountMinor < 0n ? -e.amountMinor : e.amountMinor, e.currency);
    if (!AMOUNT.test(amount) || !CURRENCY.test(e.currency)) throw new Error('camt.053: an entry amount or currency is not in its plain form');
    values[0] = e.transferId;
    values[1] = e.currency;
    values[2] = amount;
    values[3] = e.createdAt.toISOString();
    values[4] = e.paymentId;
    const t = e.payeeParticipantId === participantId ? CREDIT_ENTRY : DEBIT_ENTRY;
    out.push(t.pieces[0] ?? '');
    for (let i = 0; i < t.slots.length; i++) out.push(values[t.slots[i] ?? 0] ?? '', t.pieces[i + 1] ?? '');
  }
  return out.join('');
}

/** The statement's document around its entries, split where the entries go (so that they can be streamed). */
function statementShell(input: StatementInput, t: StatementTotals): { head: string; tail: string } {
  const net = t.creditMinor - t.debitMinor;
  const ccy = input.currency;
  const balance = (code: 'OPBD' | 'CLBD', minor: bigint, at: Date) => ({ Tp: { CdOrPrtry: { Cd: code } }, Amt: amt(minor, ccy), CdtDbtInd: dc(minor), Dt: { DtTm: at.toISOString() } });
  const doc = {
    Document: {
      '@xmlns': CAMT053_NS,
      BkToCstmrStmt: {
        GrpHdr: { MsgId: input.messageId, CreDtTm: input.createdAt.toISOString() },
        Stmt: {
          Id: input.messageId,
          CreDtTm: input.createdAt.toISOString(),
          FrToDt: { FrDtTm: input.from.toISOString(), ToDtTm: input.to.toISOString() },
          Acct: { Id: { Othr: { Id: input.participant.id } }, Ccy: ccy, Nm: input.participant.name.slice(0, 70) },
          Bal: [balance('OPBD', 0n, input.from), balance('CLBD', net, input.to)],
          TxsSummry: {
            TtlNtries: { NbOfNtries: t.count.toString(), Sum: formatAmount(t.creditMinor + t.debitMinor, ccy), TtlNetNtry: { Amt: formatAmount(net < 0n ? -net : net, ccy), CdtDbtInd: dc(net) } },
            TtlCdtNtries: { NbOfNtries: t.creditCount.toString(), Sum: formatAmount(t.creditMinor, ccy) },
            TtlDbtNtries: { NbOfNtries: t.debitCount.toString(), Sum: formatAmount(t.debitMinor, ccy) },
          },
          AddtlStmtInf: `settlement window ${input.windowId}`,
        },
      },
    },
  };
  const xml = builder.build(doc) as string;
  // The entries go between the summary and the additional information (the schema's order).
  const at = xml.indexOf('<AddtlStmtInf>');
  if (at < 0) throw new Error('camt.053: the statement shell has no AddtlStmtInf');
  return { head: `${declaration}${xml.slice(0, at)}`, tail: xml.slice(at) };
}

export const totalsOf = (entries: readonly WindowEntry[], participantId: string): StatementTotals => {
  const t: StatementTotals = { count: 0n, creditCount: 0n, debitCount: 0n, creditMinor: 0n, debitMinor: 0n };
  for (const e of entries) addToTotals(t, e, participantId);
  return t;
};
export const addToTotals = (t: StatementTotals, e: WindowEntry, participantId: string) => {
  t.count += 1n;
  if (e.payeeParticipantId === participantId) {
    t.creditCount += 1n;
    t.creditMinor += e.amountMinor;
  } else {
    t.debitCount += 1n;
    t.debitMinor += e.amountMinor;
  }
};

/** A whole camt.053 statement in memory (small windows, tests). */
export function camt053(input: StatementInput, entries: readonly WindowEntry[]): string {
  const { head, tail } = statementShell(input, totalsOf(entries, input.participant.id));
  return head + (entries.length === 0 ? '' : (entryBuilder.build({ Ntry: entries.map((e) => entryOf(e, input.participant.id)) }) as string)) + tail;
}

/**
 * A camt.053 statement written in pieces: the totals first (one aggregate query), then the entries page by page, each
 * page rendered from the library-built entry template; memory stays that of one page whatever the window's size.
 */
/** Entries per string a statement yields: about 90 KB, under V8's large-object size. */
const STREAM_CHUNK_ENTRIES = 100;

export async function* camt053Stream(input: StatementInput, totals: StatementTotals, pages: AsyncIterable<readonly WindowEntry[]>): AsyncGenerator<string> {
  const { head, tail } = statementShell(input, totals);
  yield head;
  // Written out in small pieces: each dies young (a page's text as one string would be a large object, old at birth).
  for await (const page of pages) {
    for (let at = 0; at < page.length; at += STREAM_CHUNK_ENTRIES) yield renderEntries(page.slice(at, at + STREAM_CHUNK_ENTRIES), input.participant.id);
  }
  yield tail;
}

export interface CreditTransfersInput {
  readonly messageId: string;
  readonly createdAt: Date;
  readonly currency: string;
  readonly settlementDate: Date;
  readonly participants: ReadonlyMap<string, Party>;
}

/** pacs.008.001.08: a window's credit transfers between participants, one CdtTrfTxInf each (at least one). */
export function pacs008(input: CreditTransfersInput, entries: readonly WindowEntry[]): string {
  if (entries.length === 0) throw new Error('pacs.008 needs at least one transfer');
  const party = (id: string): Party => input.participants.get(id) ?? { id, name: id };
  const total = entries.reduce((s, e) => s + e.amountMinor, 0n);
  const doc = {
    Document: {
      '@xmlns': PACS008_NS,
      FIToFICstmrCdtTrf: {
        GrpHdr: {
          MsgId: input.messageId,
          CreDtTm: input.createdAt.toISOString(),
          NbOfTxs: entries.length.toString(),
          CtrlSum: formatAmount(total, input.currency),
          TtlIntrBkSttlmAmt: amt(total, input.currency),
          IntrBkSttlmDt: input.settlementDate.toISOString().slice(0, 10),
          SttlmInf: { SttlmMtd: 'CLRG', ClrSys: { Prtry: 'HUTONG' } },
        },
        CdtTrfTxInf: entries.map((e) => ({
          PmtId: { InstrId: e.transferId, EndToEndId: e.paymentId, TxId: e.transferId },
          IntrBkSttlmAmt: amt(e.amountMinor, e.currency),
          AccptncDtTm: e.createdAt.toISOString(),
          ChrgBr: 'SLEV',
          Dbtr: { Nm: party(e.payerParticipantId).name.slice(0, 140) },
          DbtrAgt: agent(party(e.payerParticipantId)),
          CdtrAgt: agent(party(e.payeeParticipantId)),
          Cdtr: { Nm: party(e.payeeParticipantId).name.slice(0, 140) },
        })),
      },
    },
  };
  return declaration + (builder.build(doc) as string);
}

export interface StatusReport {
  readonly messageId: string;
  readonly createdAt: string;
  readonly originalMessageId: string;
  readonly originalMessageName: string;
  readonly groupStatus: string;
  readonly transactions: readonly { readonly originalEndToEndId: string; readonly originalTxId: string; readonly status: string; readonly amount: { amount: string; currency: string } }[];
}

/** pacs.002.001.10: the status of each transfer of a pacs.008 (ACSC: settled; ACSP: accepted, settlement in process). */
export function pacs002(report: StatusReport): string {
  const doc = {
    Document: {
      '@xmlns': PACS002_NS,
      FIToFIPmtStsRpt: {
        GrpHdr: { MsgId: report.messageId, CreDtTm: report.createdAt },
        OrgnlGrpInfAndSts: { OrgnlMsgId: report.originalMessageId, OrgnlMsgNmId: report.originalMessageName, GrpSts: report.groupStatus },
        TxInfAndSts: report.transactions.map((t) => ({
          OrgnlEndToEndId: t.originalEndToEndId,
          OrgnlTxId: t.originalTxId,
          TxSts: t.status,
          OrgnlTxRef: { IntrBkSttlmAmt: { '@Ccy': t.amount.currency, '#text': t.amount.amount } },
        })),
      },
    },
  };
  return declaration + (builder.build(doc) as string);
}

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', parseTagValue: false, parseAttributeValue: false, isArray: (name) => name === 'TxInfAndSts' || name === 'Ntry' || name === 'CdtTrfTxInf' || name === 'Bal' });

/** A parsed XML node: elements by name, attributes as `@name`, text as `#text`. */
type XmlNode = { readonly [name: string]: unknown };
const isNode = (v: unknown): v is XmlNode => typeof v === 'object' && v !== null && !Array.isArray(v);
const child = (node: unknown, ...path: readonly string[]): unknown => path.reduce<unknown>((n, name) => (isNode(n) ? n[name] : undefined), node);
/** The text at `path`; a missing field is an error naming it (the document is not one this module produced). */
const textAt = (node: unknown, ...path: readonly string[]): string => {
  const v = child(node, ...path);
  if (typeof v === 'string' || typeof v === 'number') return String(v);
  throw new Error(`pacs.002: ${path.join('/')} is missing`);
};

/** Parses a pacs.002 produced above back into its values (every field as text). */
export function parsePacs002(xml: string): StatusReport {
  const r = child(parser.parse(xml) as unknown, 'Document', 'FIToFIPmtStsRpt');
  if (!isNode(r)) throw new Error('not a pacs.002 FIToFIPmtStsRpt');
  const transactions = child(r, 'TxInfAndSts');
  return {
    messageId: textAt(r, 'GrpHdr', 'MsgId'),
    createdAt: textAt(r, 'GrpHdr', 'CreDtTm'),
    originalMessageId: textAt(r, 'OrgnlGrpInfAndSts', 'OrgnlMsgId'),
    originalMessageName: textAt(r, 'OrgnlGrpInfAndSts', 'OrgnlMsgNmId'),
    groupStatus: textAt(r, 'OrgnlGrpInfAndSts', 'GrpSts'),
    transactions: (Array.isArray(transactions) ? transactions : []).map((t: unknown) => ({
      originalEndToEndId: textAt(t, 'OrgnlEndToEndId'),
      originalTxId: textAt(t, 'OrgnlTxId'),
      status: textAt(t, 'TxSts'),
      amount: { amount: textAt(t, 'OrgnlTxRef', 'IntrBkSttlmAmt', '#text'), currency: textAt(t, 'OrgnlTxRef', 'IntrBkSttlmAmt', '@Ccy') },
    })),
  };
}

/** Any of these documents parsed, for reading totals back (tests, the demo story): untyped, as XML is. */
export function parseIso(xml: string): unknown {
  return parser.parse(xml);
}
