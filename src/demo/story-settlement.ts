import type { DemoScenario } from './run.ts';
import { expectStatus, openDemoHarness } from './harness.ts';
import { demoParticipantId } from './seed.ts';
import { parseIso, parsePacs002 } from '../settlement/index.ts';

const minorOf = (amount: string) => {
  const [whole = '0', frac = ''] = amount.replace('-', '').split('.');
  const v = BigInt(whole + frac.padEnd(2, '0'));
  return amount.startsWith('-') ? -v : v;
};

/** The settlement story: payments between participants move their positions; the operator closes the window and settles. */
export const settlementScenario: DemoScenario = {
  name: 'settlement',
  summary: 'payments between wallets move positions; close the CNY window, download camt.053 and pacs.008, settle, net positions',
  async run(io) {
    const h = await openDemoHarness(io);
    const cus = (k: string) => h.demo.customers.get(k) ?? k;
    let n = 0;
    const key = () => ({ 'idempotency-key': `demo-settlement-${++n}` });
    const walletA = demoParticipantId('wallet-a');
    const walletB = demoParticipantId('wallet-b');
    const name = (id: string) => h.demo.participants.find((p) => demoParticipantId(p.key) === id)?.key ?? id;
    const pay = async (as: string, customer: string, handle: string, amount: string) => {
      const q = expectStatus(await h.call(as, 'POST', '/v1/transfers/quotes', { customerId: cus(customer), payee: { type: 'handle', value: handle }, sendAmount: { amount, currency: 'CNY' } }), 201, 'quote');
      return expectStatus(await h.call(as, 'POST', '/v1/transfers/payments', { quoteId: q.id }, key()), 201, 'pay');
    };
    let windowId = '';
    try {
      await h.step('李伟 (Lantern Pay) pays 张敏 (Jade Wallet) ¥120.00 and ¥30.50; 张敏 pays back ¥20.00', async () => {
        const before = expectStatus(await h.call('wallet-a', 'GET', '/v1/settlement/positions'), 200, 'positions');
        const u0 = minorOf(before.items.find((p: any) => p.currency === 'CNY')?.unsettledPosition.amount ?? '0');
        const paid = [await pay('wallet-a', 'li-at-wallet-a', 'zhangmin', '120.00'), await pay('wallet-a', 'li-at-wallet-a', 'zhangmin', '30.50'), await pay('wallet-b', 'zhang-at-wallet-b', 'liwei', '20.00')];
        const legs = await h.hub.db.query<{ purpose: string; debit_account_id: string; credit_account_id: string }>(`select purpose, debit_account_id, credit_account_id from ledger_transfers where id = any($1::text[]) and purpose = 'position'`, [paid.flatMap((p) => p.transferIds)]);
        const after = expectStatus(await h.call('wallet-a', 'GET', '/v1/settlement/positions'), 200, 'positions');
        const u1 = minorOf(after.items.find((p: any) => p.currency === 'CNY')?.unsettledPosition.amount ?? '0');
        return legs.length === 3 && u1 - u0 === -130_50n
          ? `3 payments, each with its position leg in the same linked chain (${legs.map((l) => `${l.debit_account_id} → ${l.credit_account_id}`).join('; ')})\nLantern Pay's unsettled CNY position moved by -130.50`
          : false;
      });
      await h.step('the operator closes the CNY settlement window: multilateral net positions (sum zero) and instructions; a new window opens', async () => {
        const r = expectStatus(await h.call('operator', 'POST', '/v1/operator/settlement/windows/close', { currency: 'CNY' }, key()), 200, 'close');
        windowId = r.window.id;
        const sum = r.netPositions.reduce((s: bigint, p: any) => s + minorOf(p.netPosition.amount), 0n);
        const open = expectStatus(await h.call('wallet-a', 'GET', '/v1/settlement/windows?currency=CNY'), 200, 'windows');
        const table = ['participant        sent          received      net position', ...r.netPositions.map((p: any) => `${name(p.participantId).padEnd(18)} ${p.sent.amount.padStart(12)}  ${p.received.amount.padStart(12)}  ${p.netPosition.amount.padStart(12)}`)];
        const instr = r.instructions.map((i: any) => `${name(i.fromParticipantId)} pays ${name(i.toParticipantId)} ${i.amount.amount} ${i.amount.currency}`);
        return sum === 0n && open.items.some((w: any) => w.status === 'open' && w.id !== windowId) ? `${windowId} closed\n${table.join('\n')}\nnets sum to ${sum}\ninstructions: ${instr.join('; ') || 'none'}` : false;
      });
      await h.step('Lantern Pay reconciles: its transfers (JSON pages and CSV) add up to its net position', async () => {
        const report = expectStatus(await h.call('wallet-a', 'GET', `/v1/settlement/windows/${windowId}`), 200, 'window');
        const net = minorOf(report.netPositions[0]?.netPosition.amount ?? '0');
        let cursor: string | null = null;
        let total = 0n;
        let count = 0;
        do {
          const page: any = expectStatus(await h.call('wallet-a', 'GET', `/v1/settlement/windows/${windowId}/transfers?limit=2${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`), 200, 'transfers');
          for (const e of page.items) total += (e.direction === 'received' ? 1n : -1n) * minorOf(e.amount.amount);
          count += page.items.length;
          cursor = page.nextCursor;
        } while (cursor !== null);
        const csv = await h.call('wallet-a', 'GET', `/v1/settlement/windows/${windowId}/transfers.csv`);
        const rows = String(csv.body).trim().split('\r\n').length - 1;
        return total === net && rows === count ? `${count} transfers, received − sent = ${report.netPositions[0]?.netPosition.amount} CNY = its net position; the CSV has the same ${rows} rows` : false;
      });
      await h.step('downloads: Lantern Pay’s camt.053.001.08 statement and the window’s pacs.008.001.08 carry the window’s values', async () => {
        const camt = await h.call('wallet-a', 'GET', `/v1/settlement/windows/${windowId}/camt053`);
        const pacs = await h.call('operator', 'GET', `/v1/operator/settlement/windows/${windowId}/pacs008`);
        if (camt.status !== 200 || pacs.status !== 200) return false;
        const stmt = (parseIso(String(camt.body)) as any).Document.BkToCstmrStmt.Stmt;
        const group = (parseIso(String(pacs.body)) as any).Document.FIToFICstmrCdtTrf.GrpHdr;
        const netXml = stmt.TxsSummry.TtlNtries.TtlNetNtry;
        return `camt.053: ${stmt.TxsSummry.TtlNtries.NbOfNtries} entries, net ${netXml.CdtDbtInd === 'DBIT' ? '-' : ''}${netXml.Amt} CNY (${String(camt.body).length} bytes)\npacs.008: ${group.NbOfTxs} credit transfers, control sum ${group.CtrlSum} CNY (${String(pacs.body).length} bytes)`;
      });
      await h.step('the operator records the settlement bank’s confirmation: liquidity moves, the window is settled; recording it again changes nothing', async () => {
        const liq = async (as: string) => minorOf((expectStatus(await h.call(as, 'GET', '/v1/settlement/positions'), 200, 'positions').items.find((p: any) => p.currency === 'CNY')?.liquidity.amount ?? '0'));
        const [a0, b0] = [await liq('wallet-a'), await liq('wallet-b')];
        const s1 = expectStatus(await h.call('operator', 'POST', `/v1/operator/settlement/windows/${windowId}/settlement`, { reference: 'CNAPS-2026-12-07-001' }, key()), 200, 'settle');
        const s2 = expectStatus(await h.call('operator', 'POST', `/v1/operator/settlement/windows/${windowId}/settlement`, { reference: 'CNAPS-2026-12-07-001' }, key()), 200, 'settle again');
        const [a1, b1] = [await liq('wallet-a'), await liq('wallet-b')];
        const netA = minorOf(s1.netPositions.find((p: any) => p.participantId === walletA)?.netPosition.amount ?? '0');
        const netB = minorOf(s1.netPositions.find((p: any) => p.participantId === walletB)?.netPosition.amount ?? '0');
        const status = parsePacs002(String((await h.call('wallet-a', 'GET', `/v1/settlement/windows/${windowId}/pacs002`)).body));
        return s1.window.status === 'settled' && s2.window.settledAt === s1.window.settledAt && a1 - a0 === netA && b1 - b0 === netB && status.groupStatus === 'ACSC'
          ? `settled (${s1.window.settlementReference}); liquidity Lantern Pay ${(Number(a1 - a0) / 100).toFixed(2)}, Jade Wallet +${(Number(b1 - b0) / 100).toFixed(2)} CNY; second record: unchanged\npacs.002: ${status.transactions.length} payments ${status.groupStatus}`
          : false;
      });
      await h.step('the books balance', async () => {
        const v = await h.hub.ledger.checkInvariants();
        return v.length === 0 ? 'no invariant violations' : false;
      });
    } finally {
      await h.close();
    }
    return h.ok;
  },
};
