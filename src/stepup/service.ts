import { createHmac, timingSafeEqual } from 'node:crypto';
import { generateSecret, generateURI, verifySync } from 'otplib';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Actor, AuditService } from '../audit/index.ts';
import { canonicalJson } from '../audit/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import type { Vault } from '../platform/vault.ts';
import { newOneTimeCode, sealForParticipant } from '../platform/recipient-seal.ts';
import type { EventOutbox } from '../webhooks/index.ts';

/**
 * Real step-up: when risk asks for it, a payment is answered `step_up_required` with a signed step-up REQUEST (what is
 * to be approved: customer, amount, currency, payee — and which methods this customer can use). The customer's app
 * turns it into a CHALLENGE for one method:
 * - `otp`: a one-time code delivered by a participant to its own customer (the card's issuer for a token payment, the
 *   wallet or bank holding the account otherwise), sealed to that participant in the webhook; the hub keeps a keyed
 *   hash;
 * - `totp`: the customer's authenticator app, enrolled at the participant (replay of a time step refused);
 * - `passkey`: a WebAuthn assertion (user verification required) with a passkey the customer registered.
 * Completing the challenge gives proof; the retried payment names the challenge (`stepUpChallengeId`) and CONSUMES it
 * in its own transaction — only if the challenge is completed, unexpired, of the same participant and customer, and
 * bound to the same amount, currency and payee (a keyed hash, so nothing can be swapped). A challenge pays once.
 */
export type StepUpMethod = 'otp' | 'totp' | 'passkey';
export const STEP_UP_METHODS: readonly StepUpMethod[] = ['otp', 'totp', 'passkey'];
export type StepUpPurpose = 'transfer' | 'card_payment';

export type StepUpErrorCode =
  | 'challenge_not_found'
  | 'challenge_request_invalid'
  | 'challenge_method_unavailable'
  | 'challenge_state'
  | 'challenge_failed'
  | 'challenge_expired'
  | 'challenge_locked'
  | 'step_up_invalid'
  | 'authenticator_exists'
  | 'passkey_registration_invalid'
  | 'passkey_registration_not_found';

type SErr = DomainError<StepUpErrorCode | 'customer_not_found'>;

/** What a payment needs approved: who pays, how much, to whom. */
export interface StepUpBinding {
  readonly purpose: StepUpPurpose;
  readonly participantId: string;
  readonly customerId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  /** A stable description of the payee: `customer:<participant>/<customer>` or `merchant:<merchant id>`. */
  readonly payee: string;
}

/** Shown to the customer in their app, and stored with the challenge (no secret in it). */
export interface StepUpSummary {
  readonly amount: { readonly amount: string; readonly currency: string };
  readonly payeeName: string;
}

/**
 * Who delivers a one-time code, and whom they know it for: the card's issuer (its cardholder, its card) for a token
 * payment; the participant holding the account (its own customer) otherwise.
 */
export interface OtpRecipient {
  readonly participantId: string;
  readonly customerId: string;
  readonly cardId?: string;
}

/** The `stepUp` part of a `step_up_required` answer. */
export interface StepUpOffer {
  /** Signed by the hub; POST it to /v1/step-up/challenges with one of the methods. Valid for `expiresInS`. */
  readonly request: string;
  readonly methods: readonly StepUpMethod[];
  readonly expiresInS: number;
  readonly summary: StepUpSummary;
}

export interface Challenge {
  readonly id: string;
  readonly customerId: string;
  readonly purpose: StepUpPurpose;
  readonly method: StepUpMethod;
  readonly status: 'pending' | 'completed' | 'consumed' | 'failed' | 'expired';
  readonly summary: StepUpSummary;
  readonly attemptsRemaining: number;
  readonly expiresAt: Date;
  /** For a passkey challenge: the WebAuthn request options to pass to navigator.credentials.get (or @simplewebauthn/browser). */
  readonly webauthn?: PublicKeyCredentialRequestOptionsJSON;
}

export const STEP_UP_REQUEST_TTL_MS = 10 * 60_000;
export const CHALLENGE_TTL_MS = 5 * 60_000;
/** A completed challenge must be used within this time. */
export const COMPLETED_TTL_MS = 10 * 60_000;
export const CHALLENGE_MAX_ATTEMPTS = 5;
const TOTP_TOLERANCE_S = 30;
const PASSKEY_REGISTRATION_TTL_MS = 5 * 60_000;
/** Passkeys one customer may register at one participant. */
export const MAX_PASSKEYS = 10;

export interface WebAuthnConfig {
  readonly rpId: string;
  readonly rpName: string;
  /** The origins the reference wallet (or a participant's own web app) runs on. */
  origins(): readonly string[];
}

export interface StepUpService {
  /** What a payment answers with `step_up_required`: the signed request and the methods this customer can use. */
  offer(q: Queryable, binding: StepUpBinding, summary: StepUpSummary, otp: OtpRecipient): Promise<StepUpOffer>;
  /** The keyed hash a challenge is bound by (for callers that check many challenges set-based). */
  bindingHash(binding: StepUpBinding): Promise<string>;
  createChallenge(tx: Queryable, actor: Actor, caller: { participantId: string; customerId: string | undefined }, request: string, method: StepUpMethod): Promise<Result<Challenge, SErr>>;
  completeChallenge(tx: Queryable, actor: Actor, participantId: string, challengeId: string, proof: { code: string } | { webauthn: AuthenticationResponseJSON }): Promise<Result<Challenge, SErr>>;
  getChallenge(participantId: string, challengeId: string): Promise<Challenge | undefined>;
  /**
   * Uses a completed challenge for the payment described by `binding`, inside the payment's transaction (so a payment
   * that rolls back gives it back). Refused unless the challenge is completed, unexpired, not used, and bound to
   * exactly this participant, customer, amount, currency and payee.
   */
  consume(tx: Queryable, challengeId: string, binding: StepUpBinding, usedBy: string): Promise<Result<void, DomainError<'step_up_invalid'>>>;
  enrollTotp(tx: Queryable, actor: Actor, participantId: string, customerId: string, label: string): Promise<Result<{ secret: string; otpauthUri: string }, SErr>>;
  /** Checks a TOTP code of a participant's customer; a time step used once is refused after (replay). */
  verifyTotp(tx: Queryable, participantId: string, customerId: string, code: string): Promise<boolean>;
  passkeyRegistrationOptions(tx: Queryable, participantId: string, customerId: string, userName: string): Promise<Result<{ registrationId: string; options: PublicKeyCredentialCreationOptionsJSON }, SErr>>;
  registerPasskey(tx: Queryable, actor: Actor, participantId: string, customerId: string, registrationId: string, response: RegistrationResponseJSON): Promise<Result<{ credentialId: string; createdAt: Date }, SErr>>;
  listPasskeys(participantId: string, customerId: string): Promise<{ credentialId: string; createdAt: Date; lastUsedAt: Date | null }[]>;
  /** Counts a wrong code outside the refused request's transaction (which rolls back). */
  /**
   * Takes one of a challenge's tries before its answer is checked, outside the answer's transaction (a refused answer
   * rolls back; its try must stay counted) and before the answer goes out, so concurrent guesses get no more tries than
   * sequential ones. Every try counts, the right one too.
   */
  takeTry(challengeId: string): Promise<void>;
  /** After the last try failed: the challenge is failed (a new payment attempt asks for a new one). */
  markExhausted(challengeId: string): Promise<void>;
}

interface ChallengeRow {
  id: string;
  participant_id: string;
  customer_id: string;
  purpose: StepUpPurpose;
  binding: string;
  summary: StepUpSummary;
  method: StepUpMethod;
  otp_participant_id: string | null;
  code_hash: string | null;
  webauthn_challenge: string | null;
  attempts: number;
  max_attempts: number;
  status: Challenge['status'];
  expires_at: Date;
  completed_at: Date | null;
}

interface RequestClaims {
  /** participant */ readonly p: string;
  /** customer */ readonly c: string;
  /** purpose */ readonly u: StepUpPurpose;
  /** binding hash */ readonly b: string;
  readonly s: StepUpSummary;
  /** who delivers a one-time code */ readonly o: OtpRecipient;
  readonly m: readonly StepUpMethod[];
  /** expiry, ms since epoch */ readonly e: number;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

function isClaims(v: unknown): v is RequestClaims {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.p === 'string' &&
    typeof r.c === 'string' &&
    (r.u === 'transfer' || r.u === 'card_payment') &&
    typeof r.b === 'string' &&
    typeof r.o === 'object' &&
    r.o !== null &&
    typeof (r.o as Record<string, unknown>).participantId === 'string' &&
    typeof (r.o as Record<string, unknown>).customerId === 'string' &&
    typeof r.e === 'number' &&
    Array.isArray(r.m) &&
    r.m.every((m) => (STEP_UP_METHODS as readonly unknown[]).includes(m)) &&
    typeof r.s === 'object' &&
    r.s !== null
  );
}

export function createStepUpService(deps: { db: Db; clock: Clock; vault: Vault; audit: AuditService; events: EventOutbox; webauthn: WebAuthnConfig }): StepUpService {
  const { db, clock, vault, audit, events, webauthn } = deps;
  const signingKey = () => vault.secret('index');
  const sign = async (payload: string) => createHmac('sha256', await signingKey()).update(`hutong:step-up-request:v1:${payload}`).digest('base64url');
  const codeHash = (challengeId: string, code: string) => vault.indexHash(`step-up-code:${challengeId}:${code}`);

  const bindingHash = (b: StepUpBinding) =>
    vault.indexHash(`step-up-binding:${canonicalJson({ purpose: b.purpose, participantId: b.participantId, customerId: b.customerId, amountMinor: b.amountMinor.toString(), currency: b.currency, payee: b.payee })}`);

  const toChallenge = (r: ChallengeRow, webauthnOptions?: PublicKeyCredentialRequestOptionsJSON): Challenge => ({
    id: r.id,
    customerId: r.customer_id,
    purpose: r.purpose,
    method: r.method,
    status: r.status === 'pending' && r.expires_at.getTime() <= clock.nowMs() ? 'expired' : r.status,
    summary: r.summary,
    attemptsRemaining: Math.max(0, r.max_attempts - r.attempts),
    expiresAt: r.expires_at,
    ...(webauthnOptions !== undefined ? { webauthn: webauthnOptions } : {}),
  });

  const methodsFor = async (q: Queryable, participantId: string, customerId: string): Promise<StepUpMethod[]> => {
    const [row] = await q.query<{ totp: boolean; passkey: boolean }>(
      `select exists (select 1 from customer_authenticators where participant_id = $1 and customer_id = $2) as totp,
              exists (select 1 from customer_passkeys where participant_id = $1 and customer_id = $2) as passkey`,
      [participantId, customerId],
    );
    return ['otp', ...(row?.totp === true ? (['totp'] as const) : []), ...(row?.passkey === true ? (['passkey'] as const) : [])];
  };

  const verifyTotp: StepUpService['verifyTotp'] = async (tx, participantId, customerId, code) => {
    if (!/^[0-9]{6}$/.test(code)) return false;
    const [auth] = await tx.query<{ secret_sealed: string; last_time_step: bigint | null }>(
      'select secret_sealed, last_time_step from customer_authenticators where participant_id = $1 and customer_id = $2 for update',
      [participantId, customerId],
    );
    if (auth === undefined) return false;
    const epoch = Math.floor(clock.nowMs() / 1000);
    const result = verifySync({ secret: await vault.open(auth.secret_sealed), token: code, epoch, epochTolerance: TOTP_TOLERANCE_S });
    if (!result.valid) return false;
    const step = 'timeStep' in result && typeof result.timeStep === 'number' ? result.timeStep : Math.floor(epoch / 30);
    // A TOTP code is good once: a time step at or before the last one used is a replay.
    if (auth.last_time_step !== null && BigInt(step) <= auth.last_time_step) return false;
    await tx.query('update customer_authenticators set last_time_step = $3 where participant_id = $1 and customer_id = $2', [participantId, customerId, step]);
    return true;
  };

  const challengeRow = async (q: Queryable, participantId: string, id: string, lock = false) => {
    const [row] = await q.query<ChallengeRow>(`select * from step_up_challenges where id = $1 and participant_id = $2${lock ? ' for update' : ''}`, [id, participantId]);
    return row;
  };

  return {
    bindingHash,
    async offer(q, binding, summary, otp) {
      const claims: RequestClaims = {
        p: binding.participantId,
        c: binding.customerId,
        u: binding.purpose,
        b: await bindingHash(binding),
        s: summary,
        o: otp,
        m: await methodsFor(q, binding.participantId, binding.customerId),
        e: clock.nowMs() + STEP_UP_REQUEST_TTL_MS,
      };
      const payload = b64(JSON.stringify(claims));
      return { request: `${payload}.${await sign(payload)}`, methods: claims.m, expiresInS: STEP_UP_REQUEST_TTL_MS / 1000, summary };
    },

    async createChallenge(tx, actor, caller, request, method) {
      const invalid = err('challenge_request_invalid', 'not a step-up request from this hub, or it expired: retry the payment for a fresh one');
      const [payload, signature] = request.split('.');
      if (payload === undefined || signature === undefined || request.split('.').length !== 2) return invalid;
      const expected = Buffer.from(await sign(payload));
      const given = Buffer.from(signature);
      if (expected.length !== given.length || !timingSafeEqual(expected, given)) return invalid;
      let claims: unknown;
      try {
        claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      } catch {
        return invalid;
      }
      if (!isClaims(claims) || claims.e <= clock.nowMs()) return invalid;
      // Only the participant that was asked, for its customer (a customer session: only that customer).
      if (claims.p !== caller.participantId || (caller.customerId !== undefined && claims.c !== caller.customerId)) return invalid;
      const available = await methodsFor(tx, claims.p, claims.c);
      if (!available.includes(method)) {
        return err('challenge_method_unavailable', method === 'totp' ? 'this customer has no authenticator app enrolled' : method === 'passkey' ? 'this customer has no passkey registered' : 'this method is not available', { methods: available });
      }
      const id = newId('stu');
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + CHALLENGE_TTL_MS);
      let code: string | undefined;
      let options: PublicKeyCredentialRequestOptionsJSON | undefined;
      if (method === 'otp') code = newOneTimeCode();
      if (method === 'passkey') {
        const keys = await tx.query<{ credential_id: string; transports: string[] }>('select credential_id, transports from customer_passkeys where participant_id = $1 and customer_id = $2 order by created_at limit $3', [
          claims.p,
          claims.c,
          MAX_PASSKEYS,
        ]);
        options = await generateAuthenticationOptions({
          rpID: webauthn.rpId,
          allowCredentials: keys.map((k) => ({ id: k.credential_id, transports: k.transports as AuthenticatorTransportFuture[] })),
          userVerification: 'required',
          timeout: CHALLENGE_TTL_MS,
        });
      }
      const [row] = await tx.query<ChallengeRow>(
        `insert into step_up_challenges (id, participant_id, customer_id, purpose, binding, summary, method, otp_participant_id, code_hash, webauthn_challenge,
                                         attempts, max_attempts, status, expires_at, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, 'pending', $12, $13) returning *`,
        [id, claims.p, claims.c, claims.u, claims.b, claims.s, method, method === 'otp' ? claims.o.participantId : null, code === undefined ? null : await codeHash(id, code), options?.challenge ?? null, CHALLENGE_MAX_ATTEMPTS, expiresAt, now],
      );
      if (row === undefined) throw new Error('insert returned nothing');
      await audit.record(tx, { actor, action: 'step_up.challenge_created', objectType: 'step_up_challenge', objectId: id, details: { method, purpose: claims.u, customerId: claims.c } });
      if (code !== undefined) {
        // The participant that knows this customer delivers the code (SMS, its app); the outbox holds it sealed to them.
        await events.emit(tx, {
          participantId: claims.o.participantId,
          type: 'step_up.code_requested',
          data: {
            challengeId: id,
            customerId: claims.o.customerId,
            ...(claims.o.cardId !== undefined ? { cardId: claims.o.cardId } : {}),
            walletParticipantId: claims.p,
            purpose: claims.u,
            amount: claims.s.amount,
            payeeName: claims.s.payeeName,
            expiresAt: expiresAt.toISOString(),
            codeSealed: await sealForParticipant(tx, vault, claims.o.participantId, code, id),
          },
        });
      }
      return ok(toChallenge(row, options));
    },

    async completeChallenge(tx, actor, participantId, challengeId, proof) {
      const row = await challengeRow(tx, participantId, challengeId, true);
      if (row === undefined) return err('challenge_not_found', 'no such challenge');
      const now = clock.now();
      if (row.status !== 'pending') return err('challenge_state', `the challenge is ${row.status}`, { status: row.status });
      if (row.expires_at <= now) {
        await tx.query(`update step_up_challenges set status = 'expired' where id = $1`, [row.id]);
        return err('challenge_expired', 'the challenge expired; retry the payment for a new one');
      }
      // This answer's try was taken already (takeTry): locked only beyond the last allowed try.
      if (row.attempts > row.max_attempts) return err('challenge_locked', 'too many wrong answers; retry the payment for a new challenge');
      let valid = false;
      if (row.method === 'otp' && 'code' in proof && row.code_hash !== null) {
        const given = Buffer.from(await codeHash(row.id, proof.code));
        const expected = Buffer.from(row.code_hash);
        valid = given.length === expected.length && timingSafeEqual(given, expected);
      } else if (row.method === 'totp' && 'code' in proof) {
        valid = await verifyTotp(tx, row.participant_id, row.customer_id, proof.code);
      } else if (row.method === 'passkey' && 'webauthn' in proof && row.webauthn_challenge !== null) {
        const [key] = await tx.query<{ credential_id: string; public_key: string; counter: bigint; transports: string[] }>(
          'select credential_id, public_key, counter, transports from customer_passkeys where credential_id = $1 and participant_id = $2 and customer_id = $3 for update',
          [proof.webauthn.id, row.participant_id, row.customer_id],
        );
        if (key !== undefined) {
          try {
            const verified = await verifyAuthenticationResponse({
              response: proof.webauthn,
              expectedChallenge: row.webauthn_challenge,
              expectedOrigin: [...webauthn.origins()],
              expectedRPID: webauthn.rpId,
              credential: { id: key.credential_id, publicKey: new Uint8Array(Buffer.from(key.public_key, 'base64url')), counter: Number(key.counter), transports: key.transports as AuthenticatorTransportFuture[] },
              requireUserVerification: true,
            });
            if (verified.verified) {
              valid = true;
              await tx.query('update customer_passkeys set counter = $2, last_used_at = $3 where credential_id = $1', [key.credential_id, verified.authenticationInfo.newCounter, now]);
            }
          } catch {
            valid = false; // a malformed or forged assertion is a wrong answer, counted like a wrong code
          }
        }
      }
      if (!valid) {
        const remaining = row.max_attempts - row.attempts;
        return remaining <= 0
          ? err('challenge_locked', 'too many wrong answers; retry the payment for a new challenge', { attemptsRemaining: 0 })
          : err('challenge_failed', 'the answer was not accepted', { attemptsRemaining: remaining });
      }
      const [done] = await tx.query<ChallengeRow>(
        `update step_up_challenges set status = 'completed', completed_at = $2, code_hash = null, webauthn_challenge = null, expires_at = $3 where id = $1 returning *`,
        [row.id, now, new Date(now.getTime() + COMPLETED_TTL_MS)],
      );
      if (done === undefined) throw new Error('challenge vanished');
      await audit.record(tx, { actor, action: 'step_up.challenge_completed', objectType: 'step_up_challenge', objectId: row.id, details: { method: row.method, customerId: row.customer_id } });
      return ok(toChallenge(done));
    },

    async getChallenge(participantId, challengeId) {
      const row = await challengeRow(db, participantId, challengeId);
      return row === undefined ? undefined : toChallenge(row);
    },

    async consume(tx, challengeId, binding, usedBy) {
      const hash = await bindingHash(binding);
      const rows = await tx.query<{ id: string }>(
        `update step_up_challenges set status = 'consumed', consumed_at = $5, consumed_by = $6
          where id = $1 and participant_id = $2 and customer_id = $3 and binding = $4 and status = 'completed' and expires_at > $5 returning id`,
        [challengeId, binding.participantId, binding.customerId, hash, clock.now(), usedBy],
      );
      if (rows.length === 1) return ok(undefined);
      return err('step_up_invalid', 'the step-up challenge is not a completed, unused, unexpired challenge for this payment: retry without it for a new one');
    },

    async enrollTotp(tx, actor, participantId, customerId, label) {
      const secret = generateSecret();
      const rows = await tx.query<{ customer_id: string }>(
        `insert into customer_authenticators (participant_id, customer_id, secret_sealed, created_at) values ($1, $2, $3, $4) on conflict do nothing returning customer_id`,
        [participantId, customerId, await vault.seal(secret), clock.now()],
      );
      if (rows.length === 0) return err('authenticator_exists', 'this customer already has an authenticator');
      await audit.record(tx, { actor, action: 'customer.authenticator_enrolled', objectType: 'customer', objectId: customerId });
      return ok({ secret, otpauthUri: generateURI({ issuer: 'Hutong', label, secret }) });
    },
    verifyTotp,

    async passkeyRegistrationOptions(tx, participantId, customerId, userName) {
      const existing = await tx.query<{ credential_id: string; transports: string[] }>('select credential_id, transports from customer_passkeys where participant_id = $1 and customer_id = $2 limit $3', [
        participantId,
        customerId,
        MAX_PASSKEYS + 1,
      ]);
      if (existing.length >= MAX_PASSKEYS) return err('passkey_registration_invalid', `at most ${MAX_PASSKEYS} passkeys per customer`);
      const options = await generateRegistrationOptions({
        rpName: webauthn.rpName,
        rpID: webauthn.rpId,
        userName,
        // An opaque user handle: never the customer id itself (it would reach the authenticator and any relying party).
        userID: new Uint8Array(createHmac('sha256', await signingKey()).update(`passkey-user:${participantId}:${customerId}`).digest()),
        attestationType: 'none',
        excludeCredentials: existing.map((k) => ({ id: k.credential_id, transports: k.transports as AuthenticatorTransportFuture[] })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
        timeout: PASSKEY_REGISTRATION_TTL_MS,
      });
      const id = newId('pkr');
      const now = clock.now();
      await tx.query(`insert into passkey_registrations (id, participant_id, customer_id, challenge, status, expires_at, created_at) values ($1, $2, $3, $4, 'pending', $5, $6)`, [
        id,
        participantId,
        customerId,
        options.challenge,
        new Date(now.getTime() + PASSKEY_REGISTRATION_TTL_MS),
        now,
      ]);
      return ok({ registrationId: id, options });
    },

    async registerPasskey(tx, actor, participantId, customerId, registrationId, response) {
      const [reg] = await tx.query<{ challenge: string; status: string; expires_at: Date }>(
        `select challenge, status, expires_at from passkey_registrations where id = $1 and participant_id = $2 and customer_id = $3 for update`,
        [registrationId, participantId, customerId],
      );
      const invalid = (why: string) => err('passkey_registration_invalid', why);
      if (reg === undefined || reg.status !== 'pending') return invalid('no pending registration with this id: ask for new options');
      if (reg.expires_at.getTime() <= clock.nowMs()) return invalid('the registration options expired: ask for new ones');
      let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
      try {
        verified = await verifyRegistrationResponse({ response, expectedChallenge: reg.challenge, expectedOrigin: [...webauthn.origins()], expectedRPID: webauthn.rpId, requireUserVerification: true });
      } catch (error) {
        return invalid(`the passkey was not accepted: ${error instanceof Error ? error.message : 'invalid response'}`);
      }
      if (!verified.verified) return invalid('the passkey was not accepted');
      const { credential } = verified.registrationInfo;
      const now = clock.now();
      const rows = await tx.query<{ credential_id: string }>(
        `insert into customer_passkeys (credential_id, participant_id, customer_id, public_key, counter, transports, created_at) values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (credential_id) do nothing returning credential_id`,
        [credential.id, participantId, customerId, Buffer.from(credential.publicKey).toString('base64url'), credential.counter, credential.transports ?? [], now],
      );
      if (rows.length === 0) return invalid('this passkey is registered already');
      await tx.query(`update passkey_registrations set status = 'done' where id = $1`, [registrationId]);
      await audit.record(tx, { actor, action: 'customer.passkey_registered', objectType: 'customer', objectId: customerId, details: { credentialId: credential.id } });
      return ok({ credentialId: credential.id, createdAt: now });
    },

    async listPasskeys(participantId, customerId) {
      const rows = await db.query<{ credential_id: string; created_at: Date; last_used_at: Date | null }>(
        'select credential_id, created_at, last_used_at from customer_passkeys where participant_id = $1 and customer_id = $2 order by created_at limit $3',
        [participantId, customerId, MAX_PASSKEYS],
      );
      return rows.map((r) => ({ credentialId: r.credential_id, createdAt: r.created_at, lastUsedAt: r.last_used_at }));
    },

    async takeTry(challengeId) {
      await db.query(`update step_up_challenges set attempts = attempts + 1, status = case when attempts + 1 > max_attempts then 'failed' else status end where id = $1 and status = 'pending'`, [challengeId]);
    },
    async markExhausted(challengeId) {
      await db.query(`update step_up_challenges set status = 'failed' where id = $1 and status = 'pending' and attempts >= max_attempts`, [challengeId]);
    },
  };
}
