import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { Hub } from '../main.ts';
import { demoParticipantId, type DemoNetwork } from './seed.ts';
import { computeTokenCryptogram } from '../emv/index.ts';
import { openSentCode, sentCode } from '../platform/sent-codes.ts';
import { newDevice, type Device } from './device.ts';

export type Call = (as: string, method: 'GET' | 'POST' | 'PATCH', url: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: any }>;

/**
 * A caller whose wallets bind every token to a device: a POST /v1/wallet/tokens without `devicePublicKey` gets the key
 * of the device named by its `deviceId` (one device per wallet and device id, made on first use), and a step-up answer
 * without `deviceSignature` is signed by the device its provisioning was made for. Everything else passes through.
 */
export function withDevices(call: Call): Call {
  const devices = new Map<string, Device>();
  const byProvisioning = new Map<string, Device>();
  return async (as, method, url, body, headers) => {
    if (method === 'POST' && url === '/v1/wallet/tokens' && typeof body === 'object' && body !== null && !('devicePublicKey' in body)) {
      const deviceKey = `${as}/${String((body as { deviceId?: unknown }).deviceId ?? randomBytes(4).toString('hex'))}`;
      const device = devices.get(deviceKey) ?? newDevice();
      devices.set(deviceKey, device);
      const res = await call(as, method, url, { ...body, devicePublicKey: device.publicKey }, headers);
      if (typeof res.body?.id === 'string') byProvisioning.set(res.body.id, device);
      return res;
    }
    const stepUp = /^\/v1\/wallet\/provisionings\/([^/]+)\/step-up$/.exec(url);
    if (method === 'POST' && stepUp !== null && typeof body === 'object' && body !== null && !('deviceSignature' in body)) {
      const provisioningId = stepUp[1] ?? '';
      const device = byProvisioning.get(provisioningId);
      if (device !== undefined) return call(as, method, url, { ...body, deviceSignature: await device.sign({ purpose: 'step_up', provisioningId }) }, headers);
    }
    return call(as, method, url, body, headers);
  };
}

/** Drives the card story through the HTTP API of an in-process hub. */
export function story(hub: Pick<Hub, 'db' | 'vault' | 'cards'>, call: Call, demo: DemoNetwork) {
  const cust = (k: string) => demo.customers.get(k) ?? '';
  const stepUpCode = (provisioningId: string): Promise<string> => openSentCode(hub, 'token.step_up_requested', provisioningId);
  /** The customer links their record at `wallet` with their record at `other`, consenting on both sides. */
  const linkCustomer = async (wallet: string, customerKey: string, other: string): Promise<string> => {
    const consent = await call(wallet, 'POST', '/v1/customer-links', { customerId: cust(customerKey), participantId: demoParticipantId(other) });
    expect(consent.status).toBe(201);
    const sent = await sentCode(hub, 'customer_link.consent_requested', consent.body.id);
    expect(sent?.participantId).toBe(demoParticipantId(other));
    const link = await call(wallet, 'POST', `/v1/customer-links/consents/${consent.body.id}/confirm`, { code: sent?.code });
    expect(link.status).toBe(201);
    return link.body.id;
  };
  return {
    stepUpCode,
    linkCustomer,
    async issue(): Promise<{ cardId: string; cardNumber: string; expiry: string; cvv: string; par: string }> {
      const res = await call('bank-a', 'POST', '/v1/issuer/cards', { productId: 'cpr_demo_bank_a_debit', customerId: cust('li-at-bank-a') });
      expect(res.status).toBe(201);
      expect((await call('bank-a', 'POST', `/v1/issuer/cards/${res.body.card.id}/activate`)).status).toBe(200);
      return { cardId: res.body.card.id, cardNumber: res.body.cardNumber, expiry: res.body.card.expiry, cvv: res.body.cvv, par: res.body.card.par };
    },
    async provision(wallet: 'wallet-a' | 'wallet-b', source: unknown, deviceId = `dev-${randomBytes(3).toString('hex')}`): Promise<{ tokenRef: string; tokenNumber: string; tokenKey: string; par: string }> {
      const customerId = cust(wallet === 'wallet-a' ? 'li-at-wallet-a' : 'li-at-wallet-b');
      const device = newDevice();
      const prov = await call(wallet, 'POST', '/v1/wallet/tokens', { customerId, consent: true, deviceId, devicePublicKey: device.publicKey, source });
      expect(prov.status).toBe(201);
      expect(prov.body.status).toBe('pending_step_up');
      const deviceSignature = await device.sign({ purpose: 'step_up', provisioningId: prov.body.id });
      const done = await call(wallet, 'POST', `/v1/wallet/provisionings/${prov.body.id}/step-up`, { code: await stepUpCode(prov.body.id), deviceSignature });
      expect(done.status).toBe(200);
      return { tokenRef: done.body.token.tokenRef, tokenNumber: done.body.tokenNumber, tokenKey: done.body.limitedUseKey.key, par: done.body.token.par };
    },
  };
}

export function payment(tokenKey: string, tokenNumber: string, atc: number, requestor = demoParticipantId('wallet-b')) {
  const date = new Date(Date.UTC(2026, 0, 15));
  const un = randomBytes(4).toString('hex').toUpperCase();
  const cryptogram = computeTokenCryptogram({ tokenKeyHex: tokenKey, atc, amountMinor: 1234n, currencyNumeric: '156', countryNumeric: '156', transactionDate: '260115', transactionType: '00', unpredictableNumber: un });
  return { tokenNumber, atc, cryptogram, amountMinor: 1234n, currency: 'CNY', country: 'CN', date, type: '00', unpredictableNumber: un, channel: 'qr' as const, requestorParticipantId: requestor };
}

