import type { DemoScenario } from './run.ts';
import { expectStatus, openDemoHarness } from './harness.ts';
import { openSentCode } from '../platform/sent-codes.ts';
import { demoParticipantId } from './seed.ts';
import type { FakeClock } from '../platform/clock.ts';

/** The transfers story: link bank accounts, verification of payee, pay in one and two currencies, request, split, red packet. */
export const transfersScenario: DemoScenario = {
  name: 'transfers',
  summary: 'link bank accounts, alias lookup, pay across wallets (one and two currencies), request, split, red packet',
  async run(io) {
    const h = await openDemoHarness(io);
    const cus = (k: string) => h.demo.customers.get(k)!;
    let n = 0;
    const key = () => ({ 'idempotency-key': `demo-transfers-${++n}` });
    const li = cus('li-at-wallet-a');
    try {
      await h.step('Lantern Pay asks Hutong Commercial Bank to link 李伟’s accounts; the bank delivers a one-time code', async () => {
        const consent = expectStatus(await h.call('wallet-a', 'POST', '/v1/account-links', { customerId: li, bankParticipantId: demoParticipantId('bank-a') }), 201, 'consent');
        // The demo plays the bank: the code reaches it sealed to its webhook secret, never in clear in the hub.
        const code = await openSentCode(h.hub, 'account_link.consent_requested', consent.id);
        const links = expectStatus(await h.call('wallet-a', 'POST', `/v1/account-links/consents/${consent.id}/confirm`, { code }), 201, 'confirm');
        const accounts = expectStatus(await h.call('wallet-a', 'GET', `/v1/accounts?customerId=${li}`), 200, 'accounts');
        return `code ${code} (sealed to the bank in its webhook; the hub keeps a hash) → ${links.items.length} accounts linked\n` + accounts.items.map((a: any) => `${a.heldBy.name}: ${a.balance.amount} ${a.currency}`).join('\n');
      });
      await h.step('verification of payee: @zhangmin is a masked name at a named wallet, no account details', async () => {
        const r = expectStatus(await h.call('wallet-a', 'GET', `/v1/aliases/lookup?customerId=${li}&type=handle&value=zhangmin`), 200, 'lookup');
        return r.maskedName === '张*' ? `${r.maskedName} at ${r.participantName}, receives ${r.currency}` : false;
      });
      await h.step('李伟 pays 张敏 ¥88.00 from his linked bank account (one currency), credited at once', async () => {
        const q = expectStatus(await h.call('wallet-a', 'POST', '/v1/transfers/quotes', { customerId: li, sourceAccountId: `acc_${cus('li-at-bank-a')}_CNY`, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '88.00', currency: 'CNY' } }), 201, 'quote');
        const p = expectStatus(await h.call('wallet-a', 'POST', '/v1/transfers/payments', { quoteId: q.id }, key()), 201, 'pay');
        const seen = expectStatus(await h.call('wallet-b', 'GET', `/v1/transfers/payments/${p.id}`), 200, 'status');
        return `${p.id} ${p.status}; Jade Wallet sees ${seen.receiveAmount.amount} ${seen.receiveAmount.currency} received`;
      });
      await h.step('李伟 pays Maria (Kite Wallet, SGD) ¥100.00: FX quote with spread and fee, locked 30 s', async () => {
        const q = expectStatus(await h.call('wallet-a', 'POST', '/v1/transfers/quotes', { customerId: li, payee: { type: 'handle', value: 'maria.tan' }, sendAmount: { amount: '100.00', currency: 'CNY' } }), 201, 'quote');
        const p = expectStatus(await h.call('wallet-a', 'POST', '/v1/transfers/payments', { quoteId: q.id }, key()), 201, 'pay');
        const reuse = await h.call('wallet-a', 'POST', '/v1/transfers/payments', { quoteId: q.id }, key());
        return reuse.body?.error?.code === 'quote_already_used'
          ? `send ${q.sendAmount.amount} CNY + fee ${q.fee.amount} → ${q.receiveAmount.amount} SGD at ${q.rate} (mid ${q.midRate}, ${q.spreadBps} bps); ${p.status}; reusing the quote → ${reuse.body.error.code}`
          : false;
      });
      await h.step('Maria requests S$5.00 from 张敏; the request warns, never debits, and is paid only on approval', async () => {
        const r = expectStatus(await h.call('wallet-c', 'POST', '/v1/transfers/requests', { customerId: cus('maria-at-wallet-c'), payer: { type: 'handle', value: 'zhangmin' }, amount: { amount: '5.00', currency: 'SGD' } }), 201, 'request');
        const q = expectStatus(await h.call('wallet-b', 'POST', `/v1/transfers/requests/${r.id}/approve`, { customerId: cus('zhang-at-wallet-b') }), 201, 'approve');
        expectStatus(await h.call('wallet-b', 'POST', '/v1/transfers/payments', { quoteId: q.id }, key()), 201, 'pay');
        const after = expectStatus(await h.call('wallet-c', 'GET', `/v1/transfers/requests/${r.id}`), 200, 'status');
        return after.status === 'paid' ? `firstTime=${r.firstTime}; warning: "${r.warning}"\n张敏 paid ${q.totalDebit.amount} CNY → status ${after.status}` : false;
      });
      await h.step('张敏 splits a ¥100.00 dinner equally with 李伟, who approves his share', async () => {
        const s = expectStatus(
          await h.call('wallet-b', 'POST', '/v1/transfers/splits', { customerId: cus('zhang-at-wallet-b'), total: { amount: '100.00', currency: 'CNY' }, method: 'equal', members: [{ alias: { type: 'handle', value: 'zhangmin' } }, { alias: { type: 'handle', value: 'liwei' } }] }),
          201,
          'split',
        );
        const req = s.members.find((m: any) => !m.isPayer);
        const q = expectStatus(await h.call('wallet-a', 'POST', `/v1/transfers/requests/${req.requestId}/approve`, { customerId: li }), 201, 'approve');
        expectStatus(await h.call('wallet-a', 'POST', '/v1/transfers/payments', { quoteId: q.id }, key()), 201, 'pay');
        const after = expectStatus(await h.call('wallet-b', 'GET', `/v1/transfers/splits/${s.id}`), 200, 'split');
        return after.paidCount === 2 ? s.members.map((m: any) => `${m.maskedName} owes ${m.amount.amount}`).join(', ') + ` → paid ${after.paidCount}/2` : false;
      });
      await h.step('李伟 sends a ¥20.00 red packet (3 random shares) to a group with 张敏; one claim, a second claim refused', async () => {
        const p = expectStatus(await h.call('wallet-a', 'POST', '/v1/transfers/red-packets', { customerId: li, total: { amount: '20.00', currency: 'CNY' }, shares: 3, mode: 'random', members: [{ type: 'handle', value: 'zhangmin' }] }, key()), 201, 'packet');
        const c = expectStatus(await h.call('wallet-b', 'POST', `/v1/transfers/red-packets/${p.id}/claim`, { customerId: cus('zhang-at-wallet-b') }, key()), 201, 'claim');
        const again = await h.call('wallet-b', 'POST', `/v1/transfers/red-packets/${p.id}/claim`, { customerId: cus('zhang-at-wallet-b') }, key());
        // Expiry: the sweeper runs on the hub's clock; the demo hub uses the system clock, so move the packet's deadline instead.
        await h.hub.db.query('update red_packets set expires_at = $2 where id = $1', [p.id, new Date(Date.now() - 1000)]);
        const swept = await h.hub.transfers.sweep();
        const view = await h.hub.transfers.transfers.getRedPacket(demoParticipantId('wallet-a'), p.id);
        return again.body?.error?.code === 'red_packet_already_claimed' && view?.status === 'refunded'
          ? `张* claimed ${c.amount.amount}; second claim → ${again.body.error.code}; after expiry ${swept.refunded} packet refunded ${(Number(view.refundedMinor) / 100).toFixed(2)} CNY to the sender through the ledger`
          : false;
      });
      await h.step('the books balance', async () => {
        const v = await h.hub.transfers.ledger.checkInvariants();
        return v.length === 0 ? 'no invariant violations' : false;
      });
    } finally {
      await h.close();
    }
    void (null as unknown as FakeClock);
    return h.ok;
  },
};
