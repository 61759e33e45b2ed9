import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { DemoScenario } from './run.ts';
import { expectStatus, openDemoHarness } from './harness.ts';
import { demoParticipantId } from './seed.ts';
import { openSentCode } from '../platform/sent-codes.ts';
import { computeTokenCryptogram } from '../emv/index.ts';
import { openSealed } from '../platform/recipient-seal.ts';
import { maskNumber } from '../cards/index.ts';
import { newDevice } from './device.ts';

interface Received {
  readonly participant: string;
  readonly type: string;
  readonly data: Record<string, any>;
}

/** The cards story: one card, many wallets. Card numbers are never printed; only masked forms. */
export const cardsScenario: DemoScenario = {
  name: 'cards',
  summary: 'a bank card in two wallets: typed once, then added by reference; consent, freeze, replace, cryptograms',
  async run(io) {
    const h = await openDemoHarness(io);
    const received: Received[] = [];
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type: string; data: Record<string, any> };
          received.push({ participant: (req.url ?? '/').slice(1), type: body.type, data: body.data });
        } catch {
          /* ignore */
        }
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const waitFor = async (pred: (r: Received) => boolean, what: string): Promise<Received> => {
      for (let i = 0; i < 100; i++) {
        const found = received.find(pred);
        if (found !== undefined) return found;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no webhook ${what} within 10 s`);
    };
    // bank-a's own webhook receiver reads the code with its webhook signing secret (the demo plays the bank here).
    const bankSecret = async () => {
      const [row] = await h.hub.db.query<{ webhook_secret_sealed: string }>('select webhook_secret_sealed from participants where id = $1', [demoParticipantId('bank-a')]);
      return h.hub.vault.open(row?.webhook_secret_sealed ?? '');
    };
    const codeFor = async (provisioningId: string) => {
      const hook = await waitFor((r) => r.participant === 'bank-a' && r.type === 'token.step_up_requested' && r.data.provisioningId === provisioningId, 'step-up to bank-a');
      return openSealed(await bankSecret(), String(hook.data.codeSealed), provisioningId);
    };
    const li = { bank: h.demo.customers.get('li-at-bank-a') ?? '', walletA: h.demo.customers.get('li-at-wallet-a') ?? '', walletB: h.demo.customers.get('li-at-wallet-b') ?? '' };
    io.stdout(`Fresh embedded hub at ${h.baseUrl}; webhooks go to a local receiver on port ${port}.\n`);
    try {
      let cardId = '';
      let cardNumber = '';
      let expiry = '';
      let cvv = '';
      let tokenA = '';
      // 李伟's two phones: each token is bound to its phone's key.
      const phone1 = newDevice();
      const phone2 = newDevice();
      let tokenB = '';
      let tokenKeyB = '';
      let tokenNumberB = '';
      let atc = 0;
      await h.step('bank-a, wallet A and wallet B register their webhook URLs', async () => {
        for (const key of ['bank-a', 'wallet-a', 'wallet-b']) expectStatus(await h.call(key, 'PATCH', '/v1/me', { webhookUrl: `http://127.0.0.1:${port}/${key}` }), 200, `webhook ${key}`);
        return true;
      });
      await h.step('bank-a issues a debit card to 李伟 and activates it (number and CVV shown once, to the bank only)', async () => {
        const issued = expectStatus(await h.call('bank-a', 'POST', '/v1/issuer/cards', { productId: 'cpr_demo_bank_a_debit', customerId: li.bank }, { 'idempotency-key': 'demo-card-1' }), 201, 'issue');
        cardId = issued.card.id;
        cardNumber = issued.cardNumber;
        expiry = issued.card.expiry;
        cvv = issued.cvv;
        expectStatus(await h.call('bank-a', 'POST', `/v1/issuer/cards/${cardId}/activate`), 200, 'activate');
        return `${cardId} ${issued.card.maskedNumber} exp ${expiry} PAR ${issued.card.par}`;
      });
      await h.step('wallet A adds the card by typing it once; bank-a sends 李伟 a code; wallet A completes the step-up', async () => {
        const prov = expectStatus(
          await h.call('wallet-a', 'POST', '/v1/wallet/tokens', { customerId: li.walletA, consent: true, deviceId: 'phone-1', devicePublicKey: phone1.publicKey, source: { type: 'typed', cardNumber, expiry, cvv } }),
          201,
          'provision',
        );
        if (prov.status !== 'pending_step_up') return false;
        const code = await codeFor(prov.id);
        const done = expectStatus(await h.call('wallet-a', 'POST', `/v1/wallet/provisionings/${prov.id}/step-up`, { code, deviceSignature: await phone1.sign({ purpose: 'step_up', provisioningId: prov.id }) }), 200, 'step-up');
        tokenA = done.token.tokenRef;
        return `step-up code from bank-a (webhook, decrypted by the bank): ${code}\n token ${tokenA}: ${maskNumber(done.tokenNumber)} (a token number from the hub range, not the card number), exp ${done.token.expiry}`;
      });
      await h.step('李伟 links his Jade Wallet record to his Lantern Pay record: asked in wallet B, confirmed with a code Lantern Pay gives only him', async () => {
        const consent = expectStatus(await h.call('wallet-b', 'POST', '/v1/customer-links', { customerId: li.walletB, participantId: demoParticipantId('wallet-a') }), 201, 'link consent');
        const code = await openSentCode(h.hub, 'customer_link.consent_requested', consent.id);
        const link = expectStatus(await h.call('wallet-b', 'POST', `/v1/customer-links/consents/${consent.id}/confirm`, { code }), 201, 'link');
        return `link ${link.id}: ${link.other.participantName} ↔ Jade Wallet, revocable on either side (a card step-up alone links nothing)`;
      });
      await h.step('wallet B adds the SAME card BY REFERENCE to wallet A’s token — no card number typed — with a new code', async () => {
        const body = { customerId: li.walletB, consent: true, deviceId: 'phone-2', devicePublicKey: phone2.publicKey, source: { type: 'token_ref', tokenRef: tokenA } };
        if (JSON.stringify(body).includes(cardNumber)) return false;
        const prov = expectStatus(await h.call('wallet-b', 'POST', '/v1/wallet/tokens', body), 201, 'provision');
        const deviceSignature = await phone2.sign({ purpose: 'step_up', provisioningId: prov.id });
        const wrong = await h.call('wallet-b', 'POST', `/v1/wallet/provisionings/${prov.id}/step-up`, { code: '000000' === (await codeFor(prov.id)) ? '111111' : '000000', deviceSignature });
        if (wrong.status !== 422) return false;
        const code = await codeFor(prov.id);
        const done = expectStatus(await h.call('wallet-b', 'POST', `/v1/wallet/provisionings/${prov.id}/step-up`, { code, deviceSignature }), 200, 'step-up');
        tokenB = done.token.tokenRef;
        tokenKeyB = done.limitedUseKey.key;
        tokenNumberB = done.tokenNumber;
        const same = done.token.par === (await h.call('wallet-a', 'GET', `/v1/wallet/tokens/${tokenA}`)).body.par;
        return same && tokenNumberB !== cardNumber ? `a wrong code first: ${wrong.body.error.code} (${wrong.body.details?.attemptsRemaining ?? wrong.body.error.details?.attemptsRemaining} attempts left); then code ${code}\n token ${tokenB}: ${maskNumber(tokenNumberB)}, same PAR as wallet A's token` : false;
      });
      await h.step("wallet B cannot see or suspend wallet A's token (404)", async () => {
        const get = await h.call('wallet-b', 'GET', `/v1/wallet/tokens/${tokenA}`);
        const act = await h.call('wallet-b', 'POST', `/v1/wallet/tokens/${tokenA}/suspend`);
        return get.status === 404 && act.status === 404;
      });
      await h.step('李伟, in wallet B, lists every wallet holding the card and revokes wallet A; wallet A gets a webhook', async () => {
        const list = expectStatus(await h.call('wallet-b', 'GET', `/v1/wallet/tokens/${tokenB}/card-wallets`), 200, 'consent list');
        const lines = list.items.map((e: any) => `${e.walletName} token …${e.tokenLast4} added ${e.addedAt} last used ${e.lastUsedAt ?? 'never'}`);
        const entryA = list.items.find((e: any) => e.walletParticipantId === demoParticipantId('wallet-a'));
        if (list.items.length !== 2 || entryA === undefined) return false;
        expectStatus(await h.call('wallet-b', 'POST', `/v1/wallet/tokens/${tokenB}/card-wallets/${entryA.id}/revoke`), 200, 'revoke');
        await waitFor((r) => r.participant === 'wallet-a' && r.type === 'token.deleted' && r.data.tokenRef === tokenA, 'token.deleted to wallet A');
        const a = await h.call('wallet-a', 'GET', `/v1/wallet/tokens/${tokenA}`);
        return a.body.status === 'deleted' ? lines.join('\n') + '\n→ wallet A token deleted; wallet A received token.deleted' : false;
      });
      const pay = (n: number) => {
        const date = new Date();
        const input = { atc: n, amountMinor: 2_300n, currencyNumeric: '156', countryNumeric: '156', transactionDate: date.toISOString().slice(2, 10).replace(/-/g, ''), transactionType: '00', unpredictableNumber: randomBytes(4).toString('hex').toUpperCase() };
        const cryptogram = computeTokenCryptogram({ tokenKeyHex: tokenKeyB, ...input });
        return h.hub.cards.walletTokens.verifyTokenPayment({ tokenNumber: tokenNumberB, atc: n, cryptogram, amountMinor: input.amountMinor, currency: 'CNY', country: 'CN', date, type: '00', unpredictableNumber: input.unpredictableNumber, channel: 'qr', requestorParticipantId: demoParticipantId('wallet-b') });
      };
      await h.step("bank-a freezes the card: wallet B's token is suspended (and told); unfreezing restores it", async () => {
        expectStatus(await h.call('bank-a', 'POST', `/v1/issuer/cards/${cardId}/freeze`), 200, 'freeze');
        const frozen = (await h.call('wallet-b', 'GET', `/v1/wallet/tokens/${tokenB}`)).body;
        await waitFor((r) => r.participant === 'wallet-b' && r.type === 'token.suspended', 'token.suspended to wallet B');
        atc += 1;
        const refused = await pay(atc);
        expectStatus(await h.call('bank-a', 'POST', `/v1/issuer/cards/${cardId}/unfreeze`), 200, 'unfreeze');
        const back = (await h.call('wallet-b', 'GET', `/v1/wallet/tokens/${tokenB}`)).body;
        return frozen.status === 'suspended' && !refused.ok && back.status === 'active' ? `frozen: token ${frozen.status}, payment refused (${refused.ok ? '' : refused.error.code}); unfrozen: token ${back.status}` : false;
      });
      await h.step('bank-a replaces the card (new number); the token keeps working and wallet B is told', async () => {
        const replaced = expectStatus(await h.call('bank-a', 'POST', `/v1/issuer/cards/${cardId}/replace`), 201, 'replace');
        const hook = await waitFor((r) => r.participant === 'wallet-b' && r.type === 'token.card_replaced', 'token.card_replaced to wallet B');
        const token = (await h.call('wallet-b', 'GET', `/v1/wallet/tokens/${tokenB}`)).body;
        atc += 1;
        const paid = await pay(atc);
        cardId = replaced.card.id;
        return token.status === 'active' && token.cardLast4 === replaced.card.last4 && paid.ok && paid.value.card.id === replaced.card.id && hook.data.cardLast4 === replaced.card.last4
          ? `new card ${replaced.card.maskedNumber} (same PAR ${replaced.card.par === token.par ? 'kept' : 'CHANGED'}); token ${tokenB} still ${token.status}, now backed by …${token.cardLast4}`
          : false;
      });
      await h.step('a cryptogram from wallet B verifies; its replay (same ATC) is rejected', async () => {
        atc += 1;
        const first = await pay(atc);
        const replay = await pay(atc);
        return first.ok && !replay.ok && replay.error.code === 'atc_replayed' ? `ATC ${atc}: verified; replay: ${replay.error.code}` : false;
      });
      await h.step('bank-a cancels the card: every token is deleted and wallet B is told', async () => {
        expectStatus(await h.call('bank-a', 'POST', `/v1/issuer/cards/${cardId}/cancel`), 200, 'cancel');
        await waitFor((r) => r.participant === 'wallet-b' && r.type === 'token.deleted' && r.data.reason === 'card_cancelled', 'token.deleted to wallet B');
        return (await h.call('wallet-b', 'GET', `/v1/wallet/tokens/${tokenB}`)).body.status === 'deleted';
      });
    } finally {
      server.close();
      await h.close();
    }
    return h.ok;
  },
};
