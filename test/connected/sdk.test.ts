import { generateKeyPairSync, sign } from 'node:crypto';
import { FlattenedSign, flattenedVerify } from 'jose';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createConnector, type ConnectorHandlers } from '../../packages/participant-sdk/src/index.ts';
import { MAX_BATCH_ITEMS, signDetached, verifyDetached, publicKeyOf, SIGNATURE_HEADER, type ConnectorBatch, type ConnectorRequest } from '../../src/participant-sdk/protocol.ts';
import { ROOT } from '../support/table-ownership.ts';

/** The participant SDK on its own: what a bank gets, without a hub. */
describe('participant SDK', () => {
  const hub = generateKeyPairSync('ed25519');
  const bank = generateKeyPairSync('ed25519');
  const hubJwk = hub.publicKey.export({ format: 'jwk' });
  const request = (op: ConnectorRequest['Op'], txId = 'pay_1'): ConnectorRequest => ({
    MsgId: `${txId}:${op}`,
    CreDtTm: new Date().toISOString(),
    Op: op,
    TxId: txId,
    EndToEndId: txId,
    IntrBkSttlmAmt: { amount: '12.34', currency: 'CNY' },
    DbtrAgt: { FinInstnId: { Othr: { Id: 'par_a' } } },
    CdtrAgt: { FinInstnId: { Othr: { Id: 'par_b' } } },
    DbtrAcct: { Id: { Othr: { Id: 'ACC-1' } }, Ccy: 'CNY' },
    SttlmDdln: new Date(Date.now() + 5_000).toISOString(),
  });
  const signedBy = async (key: typeof hub.privateKey, r: ConnectorRequest, binding: { op?: string; txid?: string } = {}) => {
    const body = JSON.stringify(r);
    return { body, signature: await signDetached(body, key, { kid: 'hub', op: binding.op ?? r.Op, txid: binding.txid ?? r.TxId, iat: Math.floor(Date.now() / 1000) }) };
  };
  const make = (withSettleMany = false) => {
    const calls: string[] = [];
    const handlers: ConnectorHandlers = {
      reserve: async (r) => {
        calls.push(`reserve:${r.TxId}`);
        return r.TxId === 'pay_poor' ? { ok: false, reason: { Rsn: 'AM04' } } : { ok: true };
      },
      accept: async () => ({ ok: true }),
      commit: async (r) => {
        calls.push(`commit:${r.TxId}`);
      },
      abort: async (r) => {
        calls.push(`abort:${r.TxId}`);
      },
      ...(withSettleMany
        ? {
            settleMany: async (items: readonly { readonly request: ConnectorRequest; readonly commit: boolean }[]) => {
              calls.push(`settleMany:${items.map((i) => `${i.commit ? 'commit' : 'abort'}:${i.request.TxId}`).join(',')}`);
            },
          }
        : {}),
    };
    const connector = createConnector({ hubPublicJwk: { kty: 'OKP', crv: 'Ed25519', x: String(hubJwk.x) }, signingKey: bank.privateKey, kid: 'bank-1', handlers });
    return { connector, calls };
  };
  const batchOf = async (items: readonly ConnectorRequest[], binding: { op?: string; txid?: string } = {}, msgId = `batch-${items.length}`) => {
    const batch: ConnectorBatch = { MsgId: msgId, CreDtTm: new Date().toISOString(), Op: 'batch', NbOfTxs: items.length, TxInf: items };
    const body = JSON.stringify(batch);
    return { body, signature: await signDetached(body, hub.privateKey, { kid: 'hub', op: binding.op ?? 'batch', txid: binding.txid ?? msgId, iat: Math.floor(Date.now() / 1000) }) };
  };

  it('its detached JWS is standard: jose verifies what it signs, it verifies what jose signs, and nothing altered passes', async () => {
    const body = JSON.stringify(request('reserve'));
    const nowS = Math.floor(Date.now() / 1000);
    const ours = await signDetached(body, hub.privateKey, { kid: 'hub', op: 'reserve', txid: 'pay_1', iat: nowS });
    const [protectedB64, empty, sig] = ours.split('.');
    expect(empty).toBe('');
    const byJose = await flattenedVerify({ protected: protectedB64 ?? '', payload: Buffer.from(body).toString('base64url'), signature: sig ?? '' }, hub.publicKey, { algorithms: ['EdDSA'] });
    expect(byJose.protectedHeader).toEqual({ alg: 'EdDSA', kid: 'hub', op: 'reserve', txid: 'pay_1', iat: nowS });
    const theirs = await new FlattenedSign(new TextEncoder().encode(body)).setProtectedHeader({ alg: 'EdDSA', kid: 'bank', op: 'commit', txid: 'pay_9', iat: nowS }).sign(bank.privateKey);
    const bankKey = await publicKeyOf({ kty: 'OKP', crv: 'Ed25519', x: String(bank.publicKey.export({ format: 'jwk' }).x) });
    expect(await verifyDetached(body, `${theirs.protected ?? ''}..${theirs.signature}`, bankKey, { op: 'commit', txid: 'pay_9', nowS })).toEqual({ ok: true, header: { alg: 'EdDSA', kid: 'bank', op: 'commit', txid: 'pay_9', iat: nowS } });
    // One byte of the body, the header or the signature changed: refused.
    const hubKey = await publicKeyOf({ kty: 'OKP', crv: 'Ed25519', x: String(hubJwk.x) });
    expect((await verifyDetached(body.replace('12.34', '12.35'), ours, hubKey, { op: 'reserve', txid: 'pay_1', nowS })).ok).toBe(false);
    const otherHeader = Buffer.from(JSON.stringify({ alg: 'EdDSA', kid: 'hub', op: 'reserve', txid: 'pay_1', iat: nowS + 1 })).toString('base64url');
    expect(await verifyDetached(body, `${otherHeader}..${sig ?? ''}`, hubKey, { op: 'reserve', txid: 'pay_1', nowS })).toEqual({ ok: false, reason: 'bad_signature' });
    // One character of the signature changed (the second to last: the last one carries padding bits).
    const at = (sig ?? '').length - 2;
    const flipped = `${(sig ?? '').slice(0, at)}${(sig ?? '').charAt(at) === 'A' ? 'B' : 'A'}${(sig ?? '').slice(at + 1)}`;
    expect(flipped).not.toBe(sig);
    expect((await verifyDetached(body, `${protectedB64 ?? ''}..${flipped}`, hubKey, { op: 'reserve', txid: 'pay_1', nowS })).ok).toBe(false);
    // Signed by another key, or with a header this protocol does not accept (another alg, a critical extension).
    expect((await verifyDetached(body, ours, bankKey, { op: 'reserve', txid: 'pay_1', nowS })).ok).toBe(false);
    for (const header of [{ alg: 'EdDSA', crit: ['exp'], exp: nowS, op: 'reserve', txid: 'pay_1', iat: nowS }, { alg: 'ES256', op: 'reserve', txid: 'pay_1', iat: nowS }, { alg: 'EdDSA', b64: false, crit: ['b64'], op: 'reserve', txid: 'pay_1', iat: nowS }]) {
      const h = Buffer.from(JSON.stringify(header)).toString('base64url');
      const s = sign(null, Buffer.from(`${h}.${Buffer.from(body).toString('base64url')}`), hub.privateKey).toString('base64url');
      expect(await verifyDetached(body, `${h}..${s}`, hubKey, { op: 'reserve', txid: 'pay_1', nowS })).toEqual({ ok: false, reason: 'bad_signature' });
    }
  });

  it('imports nothing from the hub: only Node built-ins and its own files', () => {
    const dir = join(ROOT, 'src/participant-sdk');
    for (const file of readdirSync(dir)) {
      const text = readFileSync(join(dir, file), 'utf8');
      for (const m of text.matchAll(/from '([^']+)'/g)) expect(m[1], `${file} imports ${m[1]}`).toMatch(/^(node:[a-z]+|\.\/[a-z-]+\.ts)$/);
    }
  });

  it('answers a signed request once, signs its answer, and answers a duplicate from the store without calling the handler again', async () => {
    const { connector, calls } = make();
    const { body, signature } = await signedBy(hub.privateKey, request('reserve'));
    const first = await connector.handle('reserve', body, signature);
    const again = await connector.handle('reserve', body, signature);
    expect(first.status).toBe(200);
    expect(JSON.parse(first.body)).toEqual({ OrgnlMsgId: 'pay_1:reserve', TxId: 'pay_1', TxSts: 'ACSP' });
    expect(again.body).toBe(first.body);
    expect(calls).toEqual(['reserve:pay_1']);
    const bankJwk = bank.publicKey.export({ format: 'jwk' });
    const verified = await verifyDetached(first.body, first.headers[SIGNATURE_HEADER], await publicKeyOf({ kty: 'OKP', crv: 'Ed25519', x: String(bankJwk.x) }), { op: 'reserve', txid: 'pay_1', nowS: Math.floor(Date.now() / 1000) });
    expect(verified.ok).toBe(true);
  });

  it('a refusal carries its ISO reason; a commit of the payer side answers ACSC', async () => {
    const { connector } = make();
    const poor = await signedBy(hub.privateKey, request('reserve', 'pay_poor'));
    expect(JSON.parse((await connector.handle('reserve', poor.body, poor.signature)).body)).toEqual(expect.objectContaining({ TxSts: 'RJCT', StsRsnInf: { Rsn: 'AM04' } }));
    const commit = await signedBy(hub.privateKey, request('commit'));
    expect(JSON.parse((await connector.handle('commit', commit.body, commit.signature)).body).TxSts).toBe('ACSC');
  });

  it('refuses a request without the hub’s signature, signed by another key, or signed for another operation or transfer', async () => {
    const { connector, calls } = make();
    const r = request('reserve', 'pay_x');
    const plain = JSON.stringify(r);
    expect((await connector.handle('reserve', plain, undefined)).status).toBe(401);
    const forged = await signedBy(bank.privateKey, r);
    expect((await connector.handle('reserve', forged.body, forged.signature)).status).toBe(401);
    const moved = await signedBy(hub.privateKey, r, { op: 'commit' });
    expect((await connector.handle('reserve', moved.body, moved.signature)).status).toBe(401);
    const other = await signedBy(hub.privateKey, r, { txid: 'pay_y' });
    expect((await connector.handle('reserve', other.body, other.signature)).status).toBe(401);
    // The body changed after signing.
    const good = await signedBy(hub.privateKey, r);
    expect((await connector.handle('reserve', good.body.replace('12.34', '99.99'), good.signature)).status).toBe(401);
    expect(calls).toEqual([]);
  });

  it('answers a signed batch of commits and aborts item by item, once: a replay and a single request after it read the stored answers', async () => {
    const bankKey = await publicKeyOf({ kty: 'OKP', crv: 'Ed25519', x: String(bank.publicKey.export({ format: 'jwk' }).x) });
    for (const withSettleMany of [false, true]) {
      const { connector, calls } = make(withSettleMany);
      // pay_2 was committed alone before: the batch reads its answer, never commits it again.
      const alone = await signedBy(hub.privateKey, request('commit', 'pay_2'));
      expect((await connector.handle('commit', alone.body, alone.signature)).status).toBe(200);
      const items = [request('commit', 'pay_1'), request('commit', 'pay_2'), { ...request('abort', 'pay_3'), StsRsnInf: { Rsn: 'AB05' } }];
      const { body, signature } = await batchOf(items);
      const first = await connector.handle('batch', body, signature);
      expect(first.status).toBe(200);
      expect(JSON.parse(first.body)).toEqual({
        OrgnlMsgId: 'batch-3',
        TxInfAndSts: [
          { OrgnlMsgId: 'pay_1:commit', TxId: 'pay_1', TxSts: 'ACSC' },
          { OrgnlMsgId: 'pay_2:commit', TxId: 'pay_2', TxSts: 'ACSC' },
          { OrgnlMsgId: 'pay_3:abort', TxId: 'pay_3', TxSts: 'RJCT', StsRsnInf: { Rsn: 'AB05' } },
        ],
      });
      // The answer is signed once, bound to the batch (op batch, txid its MsgId).
      expect((await verifyDetached(first.body, first.headers[SIGNATURE_HEADER], bankKey, { op: 'batch', txid: 'batch-3', nowS: Math.floor(Date.now() / 1000) })).ok).toBe(true);
      expect((await verifyDetached(first.body, first.headers[SIGNATURE_HEADER], bankKey, { op: 'commit', txid: 'pay_1', nowS: Math.floor(Date.now() / 1000) })).ok).toBe(false);
      const again = await connector.handle('batch', body, signature);
      expect(JSON.parse(again.body)).toEqual(JSON.parse(first.body));
      const single = await signedBy(hub.privateKey, request('commit', 'pay_1'));
      expect(JSON.parse((await connector.handle('commit', single.body, single.signature)).body)).toEqual({ OrgnlMsgId: 'pay_1:commit', TxId: 'pay_1', TxSts: 'ACSC' });
      // A reserve after its transfer's abort came in a batch is refused with the abort's reason, the handler not asked.
      const late = await signedBy(hub.privateKey, request('reserve', 'pay_3'));
      expect(JSON.parse((await connector.handle('reserve', late.body, late.signature)).body)).toEqual(expect.objectContaining({ TxSts: 'RJCT', StsRsnInf: { Rsn: 'AB05' } }));
      expect(calls).toEqual(withSettleMany ? ['commit:pay_2', 'settleMany:commit:pay_1,abort:pay_3'] : ['commit:pay_2', 'commit:pay_1', 'abort:pay_3']);
    }
  });

  it('a batch and a request for one transfer at the same time: the handler runs once', async () => {
    const { connector, calls } = make(true);
    const single = await signedBy(hub.privateKey, request('commit', 'pay_1'));
    const { body, signature } = await batchOf([request('commit', 'pay_1'), request('commit', 'pay_2')]);
    const [a, b, c] = await Promise.all([connector.handle('commit', single.body, single.signature), connector.handle('batch', body, signature), connector.handle('batch', body, signature)]);
    expect([a.status, b.status, c.status]).toEqual([200, 200, 200]);
    expect(b.body).toBe(c.body);
    expect(calls.filter((x) => x.includes('pay_1'))).toHaveLength(1);
    expect(calls.filter((x) => x.includes('pay_2'))).toHaveLength(1);
  });

  it('refuses a batch not signed for it, with a transfer twice, a wrong count, no item or too many items, calling no handler', async () => {
    const { connector, calls } = make(true);
    const two = [request('commit', 'pay_1'), request('abort', 'pay_2')];
    const unsigned = await batchOf(two);
    expect((await connector.handle('batch', unsigned.body, undefined)).status).toBe(401);
    expect((await connector.handle('batch', unsigned.body, (await batchOf(two, { op: 'commit' })).signature)).status).toBe(401);
    expect((await connector.handle('batch', unsigned.body, (await batchOf(two, { txid: 'pay_1' })).signature)).status).toBe(401);
    expect((await connector.handle('batch', unsigned.body.replace('12.34', '99.99'), unsigned.signature)).status).toBe(401);
    for (const items of [[request('reserve', 'pay_1'), request('commit', 'pay_1')], [request('commit', 'pay_1'), request('abort', 'pay_1')], [], Array.from({ length: MAX_BATCH_ITEMS + 1 }, (_, i) => request('commit', `pay_${i}`))]) {
      const b = await batchOf(items);
      expect((await connector.handle('batch', b.body, b.signature)).status).toBe(400);
    }
    const wrongCount = JSON.stringify({ ...(JSON.parse(unsigned.body) as ConnectorBatch), NbOfTxs: 3 });
    expect((await connector.handle('batch', wrongCount, await signDetached(wrongCount, hub.privateKey, { kid: 'hub', op: 'batch', txid: 'batch-2', iat: Math.floor(Date.now() / 1000) }))).status).toBe(400);
    expect(calls).toEqual([]);
  });

  it('answers the reserves of a batch each by its own rules: refusals with their reason, once per transfer, an abort that came first wins', async () => {
    const { connector, calls } = make(true);
    const abortFirst = await batchOf([{ ...request('abort', 'pay_late'), StsRsnInf: { Rsn: 'AB05' } }], {}, 'batch-abort');
    expect((await connector.handle('batch', abortFirst.body, abortFirst.signature)).status).toBe(200);
    const { body, signature } = await batchOf([request('reserve', 'pay_1'), request('reserve', 'pay_poor'), request('reserve', 'pay_late')]);
    const first = await connector.handle('batch', body, signature);
    expect(JSON.parse(first.body).TxInfAndSts).toEqual([
      { OrgnlMsgId: 'pay_1:reserve', TxId: 'pay_1', TxSts: 'ACSP' },
      { OrgnlMsgId: 'pay_poor:reserve', TxId: 'pay_poor', TxSts: 'RJCT', StsRsnInf: { Rsn: 'AM04' } },
      { OrgnlMsgId: 'pay_late:reserve', TxId: 'pay_late', TxSts: 'RJCT', StsRsnInf: { Rsn: 'AB05' } },
    ]);
    const again = await connector.handle('batch', body, signature);
    expect(JSON.parse(again.body)).toEqual(JSON.parse(first.body));
    // The same reserve alone afterwards: the stored answer.
    const alone = await signedBy(hub.privateKey, request('reserve', 'pay_1'));
    expect(JSON.parse((await connector.handle('reserve', alone.body, alone.signature)).body).TxSts).toBe('ACSP');
    expect(calls).toEqual(['settleMany:abort:pay_late', 'reserve:pay_1', 'reserve:pay_poor']);
  });
});
