import { createApi, type Api } from '../shared/api.ts';
import type { TokenCryptogramScheme } from '../../../src/emv/token-cryptogram.ts';

/** A demo wallet session: a short-lived wallet access token from POST /demo/v1/session, renewed before it expires. */
export interface WalletSession {
  readonly wallet: string;
  readonly participantId: string;
  readonly walletName: string;
  readonly customerId: string;
  readonly customerName: string;
  token: string;
  expiresAtMs: number;
}

const KEY = 'hutong.wallet.session';

export function loadSession(): WalletSession | undefined {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw === null ? undefined : (JSON.parse(raw) as WalletSession);
  } catch {
    return undefined;
  }
}

export function saveSession(s: WalletSession | undefined): void {
  if (s === undefined) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, JSON.stringify(s));
}

const anonymous = createApi(async () => undefined);

export async function openSession(wallet: string, customerId: string): Promise<WalletSession> {
  const r = await anonymous.post<{ accessToken: string; expiresInS: number; wallet: { participantId: string; name: string }; customer: { id: string; name: string } }>('/demo/v1/session', { wallet, customerId });
  return {
    wallet,
    participantId: r.wallet.participantId,
    walletName: r.wallet.name,
    customerId: r.customer.id,
    customerName: r.customer.name,
    token: r.accessToken,
    expiresAtMs: Date.now() + r.expiresInS * 1000,
  };
}

export function sessionApi(session: WalletSession, onExpired: () => void): Api {
  let renewing: Promise<void> | undefined;
  return createApi(async () => {
    if (Date.now() > session.expiresAtMs - 30_000) {
      renewing ??= openSession(session.wallet, session.customerId)
        .then((fresh) => {
          session.token = fresh.token;
          session.expiresAtMs = fresh.expiresAtMs;
          saveSession(session);
        })
        .finally(() => {
          renewing = undefined;
        });
      await renewing;
    }
    return session.token;
  }, onExpired);
}

/**
 * The device's own store of its tokens (what a phone keeps in its secure element), by token reference: the token number
 * and its current LIMITED-USE key, which signs the counters firstAtc..lastAtc until keyExpiresAt; the device key (see
 * device-key.ts) obtains the next one.
 */
export interface DeviceToken {
  readonly tokenRef: string;
  readonly tokenNumber: string;
  readonly tokenKey: string;
  readonly expiry: string;
  readonly keyCounter: number;
  readonly firstAtc: number;
  readonly lastAtc: number;
  readonly keyExpiresAt: string;
  /** The cryptogram the token makes (its card product's); absent for tokens stored before schemes: visa_cvn18. */
  readonly scheme?: TokenCryptogramScheme;
  atc: number;
}

/** A limited-use key as the hub answers it (at provisioning and replenishment). */
export interface LimitedUseKeyWire {
  readonly keyCounter: number;
  readonly firstAtc: number;
  readonly lastAtc: number;
  readonly expiresAt: string;
  readonly key: string;
}

const deviceKey = (participantId: string, tokenRef: string) => `hutong.device.${participantId}.${tokenRef}`;

export function deviceId(): string {
  let id = localStorage.getItem('hutong.deviceId');
  if (id === null) {
    id = `web-${Math.random().toString(36).slice(2, 10)}`;
    localStorage.setItem('hutong.deviceId', id);
  }
  return id;
}

export function saveDeviceToken(participantId: string, t: DeviceToken): void {
  localStorage.setItem(deviceKey(participantId, t.tokenRef), JSON.stringify(t));
}

export function loadDeviceToken(participantId: string, tokenRef: string): DeviceToken | undefined {
  const raw = localStorage.getItem(deviceKey(participantId, tokenRef));
  return raw === null ? undefined : (JSON.parse(raw) as DeviceToken);
}

/** The next application transaction counter for a token (never reused: the issuer rejects a replayed ATC). */
export function nextAtc(participantId: string, tokenRef: string): number | undefined {
  const t = loadDeviceToken(participantId, tokenRef);
  if (t === undefined) return undefined;
  // A new key starts past the counters the hub has seen: jump to it, never back.
  t.atc = Math.max(t.atc + 1, t.firstAtc);
  saveDeviceToken(participantId, t);
  return t.atc;
}

/** Stores a new limited-use key for a token the device holds (keeping its counter). */
export function saveLimitedUseKey(participantId: string, base: { tokenRef: string; tokenNumber: string; expiry: string; atc: number; scheme?: TokenCryptogramScheme }, k: LimitedUseKeyWire): void {
  saveDeviceToken(participantId, { ...base, tokenKey: k.key, keyCounter: k.keyCounter, firstAtc: k.firstAtc, lastAtc: k.lastAtc, keyExpiresAt: k.expiresAt });
}

/**
 * Before a payment: when the token's key cannot sign the next counter (used up, expired, or within a minute of it),
 * asks the hub for the next key with a request the device key signs. Tokens stored before keys were limited have
 * no key counter: they are left alone (the hub answers key_exhausted, and the card is added again).
 */
export async function ensureFreshKey(api: Api, participantId: string, tokenRef: string, sign: (statement: Record<string, string | number>) => Promise<string>): Promise<void> {
  const t = loadDeviceToken(participantId, tokenRef);
  if (t === undefined || typeof t.keyCounter !== 'number') return;
  const spent = Math.max(t.atc + 1, t.firstAtc) > t.lastAtc;
  const expiring = Date.parse(t.keyExpiresAt) - Date.now() < 60_000;
  if (!spent && !expiring) return;
  const deviceSignature = await sign({ purpose: 'replenish', tokenRef, keyCounter: t.keyCounter });
  const fresh = await api.post<LimitedUseKeyWire>(`/v1/wallet/tokens/${encodeURIComponent(tokenRef)}/keys`, { deviceSignature });
  saveLimitedUseKey(participantId, t, fresh);
}
