import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import type { Clock } from '../platform/clock.ts';
import type { Vault } from '../platform/vault.ts';
import { PARTICIPANT_KINDS, type ParticipantKind } from './model.ts';

const isKind = (v: unknown): v is ParticipantKind => typeof v === 'string' && (PARTICIPANT_KINDS as readonly string[]).includes(v);

/**
 * OAuth 2.0 client credentials → short-lived HS256 JWTs (jose). The signing key is a vault secret shared by every hub
 * process over the same database, so any process verifies any token without a network hop.
 */
const ISSUER = 'hutong';
const AUDIENCE = 'hutong-api';

export interface AccessClaims {
  readonly participantId: string;
  readonly credentialId: string;
  readonly kind: ParticipantKind;
  /**
   * A customer session: the token acts for this one customer of the participant only (claim `cus`). Such tokens reach
   * only the operations a customer's own app needs (routes with `config.customer`), and every id they name resolves
   * only inside that customer's objects (src/api/refs.ts).
   */
  readonly customerId?: string;
}

export interface TokenService {
  /** `ttlS` shortens the lifetime (customer sessions); never longer than the configured one. */
  issue(claims: AccessClaims, options?: { ttlS?: number }): Promise<{ accessToken: string; expiresInS: number }>;
  verify(token: string): Promise<AccessClaims | undefined>;
}

/** Bound on remembered verified tokens (one per credential per 5 minutes in practice); the oldest go first. */
const VERIFIED_CACHE_MAX = 10_000;

export function createTokenService(deps: { vault: Vault; clock: Clock; ttlS: number }): TokenService {
  const key = () => deps.vault.secret('jwt');
  // A token verified once needs no second signature check until it expires: the signature cannot change, and the
  // per-request credential check (participants.checkAccess) is what makes revocation immediate. This keeps WebCrypto
  // (a thread-pool round trip per HMAC) off the hot path of every request.
  const verified = new Map<string, { claims: AccessClaims; expMs: number }>();
  return {
    async issue(claims, options = {}) {
      const nowS = Math.floor(deps.clock.nowMs() / 1000);
      const ttlS = Math.min(options.ttlS ?? deps.ttlS, deps.ttlS);
      const accessToken = await new SignJWT({ cid: claims.credentialId, knd: claims.kind, ...(claims.customerId !== undefined ? { cus: claims.customerId } : {}) })
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
        .setSubject(claims.participantId)
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt(nowS)
        .setExpirationTime(nowS + ttlS)
        .sign(await key());
      return { accessToken, expiresInS: ttlS };
    },
    async verify(token) {
      const known = verified.get(token);
      if (known !== undefined) {
        if (deps.clock.nowMs() < known.expMs) return known.claims;
        verified.delete(token);
        return undefined;
      }
      try {
        const { payload } = await jwtVerify(token, await key(), {
          issuer: ISSUER,
          audience: AUDIENCE,
          algorithms: ['HS256'],
          currentDate: deps.clock.now(),
          typ: 'at+jwt',
        });
        if (typeof payload.sub !== 'string' || typeof payload.cid !== 'string' || !isKind(payload.knd) || typeof payload.exp !== 'number') return undefined;
        if (payload.cus !== undefined && typeof payload.cus !== 'string') return undefined;
        const claims: AccessClaims = { participantId: payload.sub, credentialId: payload.cid, kind: payload.knd, ...(typeof payload.cus === 'string' ? { customerId: payload.cus } : {}) };
        if (verified.size >= VERIFIED_CACHE_MAX) verified.delete(verified.keys().next().value!);
        verified.set(token, { claims, expMs: payload.exp * 1000 });
        return claims;
      } catch (error) {
        if (error instanceof joseErrors.JOSEError) return undefined;
        throw error;
      }
    },
  };
}
