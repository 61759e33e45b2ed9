import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateXML } from 'xmllint-wasm';
import { formatAmount } from '../platform/money.ts';
import { camt053, camt053Stream, pacs002, pacs008, parseIso, parsePacs002, totalsOf, type StatusReport } from './iso20022.ts';
import { instructionsFor, type NetPosition, type WindowEntry } from './service.ts';

/** The official XSDs (test/data/iso20022, see test/data/SOURCES.md): a missing one fails loudly. */
const XSD_DIR = join(import.meta.dirname, '../../test/data/iso20022');
const xsd = (name: string) => {
  const path = join(XSD_DIR, name);
  if (!existsSync(path)) throw new Error(`the official XSD ${path} is missing: test/data/SOURCES.md names where it comes from`);
  return { fileName: name, contents: readFileSync(path, 'utf8') };
};
const CAMT053 = xsd('camt.053.001.08.xsd');
const PACS008 = xsd('pacs.008.001.08.xsd');

const validate = async (xml: string, schema: { fileName: string; contents: string }) => {
  const r = await validateXML({ xml: [{ fileName: 'doc.xml', contents: xml }], schema: [schema] });
  return r.errors.map((e) => e.message);
};

const P = [
  { id: 'par_demo_bank_a', name: 'Demo Bank A' },
  { id: 'par_demo_wallet_a', name: 'Demo Wallet A & "Co" <HK>' },
  { id: 'par_demo_wallet_b', name: '互通钱包 B' },
];
const at = new Date('2026-12-07T01:02:03.456Z');
const entry = (i: number, payer: number, payee: number, amountMinor: bigint, currency = 'CNY'): WindowEntry => ({
  transferId: `pay_${String(i).padStart(16, '0')}:a1b2c3d4:pos`,
  paymentId: `pay_${String(i).padStart(16, '0')}`,
  payerParticipantId: P[payer]!.id,
  payeeParticipantId: P[payee]!.id,
  currency,
  amountMinor,
  createdAt: new Date(at.getTime() + i * 1000),
});
const statementInput = (participant: number, currency = 'CNY') => ({ messageId: `win_${currency}_7-camt053-${P[participant]!.id}`.slice(0, 35), createdAt: at, participant: P[participant]!, currency, windowId: `win_${currency}_7`, from: at, to: new Date(at.getTime() + 3_600_000) });

describe('ISO 20022 settlement messages', () => {
  it('a camt.053.001.08 statement validates against the official XSD and carries the API’s values', async () => {
    const entries = [entry(1, 0, 1, 12_34n), entry(2, 1, 0, 5_00n), entry(3, 0, 2, 1n)];
    const xml = camt053(statementInput(0), entries.filter((e) => e.payerParticipantId === P[0]!.id || e.payeeParticipantId === P[0]!.id));
    expect(await validate(xml, CAMT053)).toEqual([]);
    const stmt = (parseIso(xml) as any).Document.BkToCstmrStmt.Stmt;
    expect(stmt.Acct.Id.Othr.Id).toBe('par_demo_bank_a');
    expect(stmt.TxsSummry.TtlNetNtry ?? stmt.TxsSummry.TtlNtries.TtlNetNtry).toEqual({ Amt: '7.35', CdtDbtInd: 'DBIT' });
    expect(stmt.Bal[1]).toMatchObject({ Tp: { CdOrPrtry: { Cd: 'CLBD' } }, Amt: { '#text': '7.35', '@Ccy': 'CNY' }, CdtDbtInd: 'DBIT' });
    expect(stmt.Ntry.map((n: any) => n.NtryDtls.TxDtls.Refs.EndToEndId)).toEqual(entries.map((e) => e.paymentId));
    // Currencies without minor units and with three are written with their own digits.
    const jpy = camt053(statementInput(1, 'JPY'), [entry(4, 1, 2, 1500n, 'JPY')]);
    expect(await validate(jpy, CAMT053)).toEqual([]);
    expect((parseIso(jpy) as any).Document.BkToCstmrStmt.Stmt.Ntry[0].Amt).toEqual({ '#text': '1500', '@Ccy': 'JPY' });
    const bhd = camt053(statementInput(1, 'BHD'), [entry(5, 1, 2, 1500n, 'BHD')]);
    expect(await validate(bhd, CAMT053)).toEqual([]);
    // The validator does reject: a statement without its account is not camt.053.
    expect((await validate(xml.replace(/<Acct>.*<\/Acct>/, ''), CAMT053)).length).toBeGreaterThan(0);
    // An empty window is a valid statement too.
    expect(await validate(camt053(statementInput(2), []), CAMT053)).toEqual([]);
  });

  it('the streamed statement (entries from the library-built template) is the same document as the one built at once', async () => {
    for (const currency of ['CNY', 'JPY', 'BHD']) {
      // Credits and debits of participant 2, amounts from 1 minor unit up.
      const entries = Array.from({ length: 25 }, (_, i) => (i % 3 === 0 ? entry(i, 2, i % 2, BigInt(1 + i * 997), currency) : entry(i, i % 2, 2, BigInt(100 + i), currency)));
      const pages = async function* () {
        for (let i = 0; i < entries.length; i += 10) yield entries.slice(i, i + 10);
      };
      let streamed = '';
      for await (const part of camt053Stream(statementInput(2, currency), totalsOf(entries, P[2]!.id), pages())) streamed += part;
      expect(streamed).toBe(camt053(statementInput(2, currency), entries));
      expect(streamed).toContain('<CdtDbtInd>DBIT</CdtDbtInd>');
      expect(streamed).toContain('<CdtDbtInd>CRDT</CdtDbtInd>');
      expect(await validate(streamed, CAMT053)).toEqual([]);
    }
    // A value that would need escaping never reaches the template.
    const bad = { ...entry(99, 0, 2, 5n), paymentId: 'pay_<x>' };
    const stream = camt053Stream(statementInput(2), totalsOf([bad], P[2]!.id), (async function* () {
      yield [bad];
    })());
    await expect((async () => {
      for await (const _part of stream) void _part;
    })()).rejects.toThrow(/hub id pattern/);
  });

  it('a pacs.008.001.08 validates against the official XSD; its pacs.002 parses back to the same values', async () => {
    const entries = [entry(1, 0, 1, 12_34n), entry(2, 1, 2, 5_00n)];
    const xml = pacs008({ messageId: 'win_CNY_7-pacs008', createdAt: at, currency: 'CNY', settlementDate: at, participants: new Map(P.map((p) => [p.id, p])) }, entries);
    expect(await validate(xml, PACS008)).toEqual([]);
    const doc = (parseIso(xml) as any).Document.FIToFICstmrCdtTrf;
    expect(doc.GrpHdr).toMatchObject({ NbOfTxs: '2', CtrlSum: '17.34', TtlIntrBkSttlmAmt: { '#text': '17.34', '@Ccy': 'CNY' } });
    expect(doc.CdtTrfTxInf[0]).toMatchObject({ PmtId: { EndToEndId: entries[0]!.paymentId }, DbtrAgt: { FinInstnId: { Othr: { Id: 'par_demo_bank_a' } } }, CdtrAgt: { FinInstnId: { Othr: { Id: 'par_demo_wallet_a' } } } });
    const report: StatusReport = {
      messageId: 'win_CNY_7-pacs002',
      createdAt: at.toISOString(),
      originalMessageId: 'win_CNY_7-pacs008',
      originalMessageName: 'pacs.008.001.08',
      groupStatus: 'ACSC',
      transactions: entries.map((e) => ({ originalEndToEndId: e.paymentId, originalTxId: e.transferId, status: 'ACSC', amount: { amount: formatAmount(e.amountMinor, e.currency), currency: e.currency } })),
    };
    expect(parsePacs002(pacs002(report))).toEqual(report);
  });

  it('property: over random windows, the statements’ totals equal the legs’, the nets sum to zero and the instructions carry them', async () => {
    const arbEntries = fc.array(fc.record({ payer: fc.integer({ min: 0, max: 2 }), shift: fc.integer({ min: 1, max: 2 }), amount: fc.bigInt({ min: 1n, max: 10n ** 12n }) }), { minLength: 0, maxLength: 30 });
    await fc.assert(
      fc.asyncProperty(arbEntries, fc.constantFrom('CNY', 'JPY', 'BHD'), async (raw, currency) => {
        const entries = raw.map((r, i) => entry(i, r.payer, (r.payer + r.shift) % 3, r.amount, currency));
        const nets: NetPosition[] = [];
        for (const [k, p] of P.entries()) {
          const mine = entries.filter((e) => e.payerParticipantId === p.id || e.payeeParticipantId === p.id);
          const xml = camt053(statementInput(k, currency), mine);
          const stmt = (parseIso(xml) as any).Document.BkToCstmrStmt.Stmt;
          const sent = mine.filter((e) => e.payerParticipantId === p.id).reduce((s, e) => s + e.amountMinor, 0n);
          const received = mine.filter((e) => e.payeeParticipantId === p.id).reduce((s, e) => s + e.amountMinor, 0n);
          const net = received - sent;
          expect(stmt.TxsSummry.TtlNtries.NbOfNtries).toBe(String(mine.length));
          expect(stmt.TxsSummry.TtlCdtNtries.Sum).toBe(formatAmount(received, currency));
          expect(stmt.TxsSummry.TtlDbtNtries.Sum).toBe(formatAmount(sent, currency));
          expect(stmt.TxsSummry.TtlNtries.TtlNetNtry).toEqual({ Amt: formatAmount(net < 0n ? -net : net, currency), CdtDbtInd: net < 0n ? 'DBIT' : 'CRDT' });
          // The entries add up to the closing balance.
          const fromEntries = ((stmt.Ntry ?? []) as any[]).reduce((s: bigint, n: any) => s + (n.CdtDbtInd === 'CRDT' ? 1n : -1n) * BigInt(String(n.Amt['#text']).replace('.', '')), 0n);
          expect(fromEntries).toBe(net);
          nets.push({ participantId: p.id, currency, sentMinor: sent, receivedMinor: received, sentCount: 0n, receivedCount: 0n, netMinor: net });
        }
        expect(nets.reduce((s, n) => s + n.netMinor, 0n)).toBe(0n);
        const moved = new Map<string, bigint>();
        for (const i of instructionsFor('w', currency, nets)) {
          moved.set(i.fromParticipantId, (moved.get(i.fromParticipantId) ?? 0n) - i.amountMinor);
          moved.set(i.toParticipantId, (moved.get(i.toParticipantId) ?? 0n) + i.amountMinor);
        }
        for (const n of nets) expect(moved.get(n.participantId) ?? 0n).toBe(n.netMinor);
        if (entries.length > 0) {
          const xml = pacs008({ messageId: 'w-pacs008', createdAt: at, currency, settlementDate: at, participants: new Map(P.map((p) => [p.id, p])) }, entries);
          expect((parseIso(xml) as any).Document.FIToFICstmrCdtTrf.GrpHdr.CtrlSum).toBe(formatAmount(entries.reduce((s, e) => s + e.amountMinor, 0n), currency));
        }
      }),
      { numRuns: 60 },
    );
    // A few random windows through the validator as well (it is slower).
    for (const n of [1, 7, 30]) {
      const entries = Array.from({ length: n }, (_, i) => entry(i, i % 3, (i + 1) % 3, BigInt(1 + i * 997)));
      expect(await validate(camt053(statementInput(0), entries.filter((e) => e.payerParticipantId === P[0]!.id || e.payeeParticipantId === P[0]!.id)), CAMT053)).toEqual([]);
      expect(await validate(pacs008({ messageId: 'w-pacs008', createdAt: at, currency: 'CNY', settlementDate: at, participants: new Map(P.map((p) => [p.id, p])) }, entries), PACS008)).toEqual([]);
    }
  });
});
