import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Actor, AuditService } from '../audit/index.ts';
import type { BankCallFailure, OpenBankingClient } from '../connectors/index.ts';
import type { Connection } from '../participants/index.ts';
import type { CustomerService } from '../customers/index.ts';
import type { Ledger } from '../ledger/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { Vault } from '../platform/vault.ts';
import type { TErr } from '../transfers/index.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import { customerAccountId } from './service.ts';

/**
 * Open-banking account access (docs/ARCHITECTURE.md, "Open-banking account access"): a wallet's customer links an
 * account held at a connected bank (one that keeps its own books) by a consent the bank grants, with OAuth 2.0
 * authorization code and PKCE (RFC 7636, S256) on the bank's side, the hub being the bank's client:
 *  1. the wallet starts a consent: the hub makes the PKCE verifier and the state, keeps the verifier sealed (vault) and
 *     the state as a keyed hash, and answers the bank's authorize URL;
 *  2. the customer approves at the bank, which redirects to the wallet's redirect URI with a code and the state;
 *  3. the wallet hands the code and state to the hub, which exchanges them at the bank's token endpoint (signed by its
 *     connector key) for an access grant, kept sealed, never shown; the accounts the bank granted become account
 *     links of this consent (their id is the consent's).
 * With it the wallet reads the account's balance through the hub (the hub asks the bank with the grant) and pays from
 * it: every debit is asked of the bank at reserve time, naming the bank's consent (MndtRltdInf), and the bank refuses it
 * (MD01) once the consent is revoked. The customer revokes in the wallet (the hub ends the links and revokes the grant
 * at the bank, RFC 7009) or at the bank (the hub learns it on the next read or debit, and ends the links then).
 */
export const OPEN_BANKING_SCOPE = 'accounts payments';
/** How long the customer has to approve at the bank. */
export const AUTHORIZATION_TTL_MS = 10 * 60_000;

export type ConsentStatus = 'awaiting_authorization' | 'active' | 'revoked' | 'failed';

export interface OpenBankingConsent {
  readonly id: string;
  readonly walletParticipantId: string;
  readonly walletCustomerId: string;
  readonly bankParticipantId: string;
  readonly currency: string;
  readonly status: ConsentStatus;
  readonly scope: string;
  readonly links: readonly { readonly linkId: string; readonly accountId: string; readonly status: 'active' | 'revoked' }[];
  readonly expiresAt: Date;
  readonly createdAt: Date;
  readonly authorizedAt: Date | null;
  readonly revokedAt: Date | null;
  readonly revokedBy: 'wallet' | 'bank' | null;
}

export interface AccountBalanceAtBank {
  readonly accountId: string;
  readonly linkId: string;
  readonly balance: { readonly amount: string; readonly currency: string };
  readonly available: { readonly amount: string; readonly currency: string };
  readonly asOf: string;
}

export interface OpenBankingService {
  start(
    tx: Queryable,
    actor: Actor,
    input: { walletParticipantId: string; walletCustomerId: string; bankParticipantId: string; currency: string; redirectUri: string },
  ): Promise<Result<{ consent: OpenBankingConsent; authorizeUrl: string }, TErr>>;
  /** Exchanges the bank's code (outside any transaction), then activates the consent and its links. */
  authorize(actor: Actor, walletParticipantId: string, consentId: string, input: { code: string; state: string }): Promise<Result<OpenBankingConsent, TErr>>;
  get(participantId: string, consentId: string, q?: Queryable): Promise<OpenBankingConsent | undefined>;
  list(participantId: string, customerId: string): Promise<OpenBankingConsent[]>;
  /** The balances of the consent's accounts, read at the bank with the grant. */
  balances(participantId: string, consentId: string): Promise<Result<AccountBalanceAtBank[], TErr>>;
  /** The wallet revokes: links end at once; the grant is revoked at the bank after the commit (best effort). */
  revoke(actor: Actor, participantId: string, consentId: string): Promise<Result<OpenBankingConsent, TErr>>;
  /** A consent active for this wallet customer's debit of `accountId`: the bank's id of it (for the reserve). */
  mandateFor(q: Queryable, walletParticipantId: string, walletCustomerId: string, accountId: string): Promise<{ consentId: string; bankConsentId: string } | undefined>;
  /** Whether this wallet customer's access to `accountId` ended with a revoked consent (and no other link is active). */
  revokedFor(q: Queryable, walletParticipantId: string, walletCustomerId: string, accountId: string): Promise<boolean>;
  /** The bank said the consent no longer holds (a refused read, an MD01 debit): the links end. */
  endedAtBank(consentId: string, why: string): Promise<void>;
  /** The account a consent links (its first active one), for a payment from it. */
  sourceOf(participantId: string, consentId: string): Promise<Result<{ accountId: string; customerId: string }, TErr>>;
}

interface ConsentRow {
  id: string;
  wallet_participant_id: string;
  wallet_customer_id: string;
  bank_participant_id: string;
  currency: string;
  status: ConsentStatus;
  state_hash: string;
  redirect_uri: string;
  verifier_sealed: string;
  scope: string;
  bank_consent_id: string | null;
  access_token_sealed: string | null;
  expires_at: Date;
  created_at: Date;
  authorized_at: Date | null;
  revoked_at: Date | null;
  revoked_by: 'wallet' | 'bank' | null;
}

/** A redirect URI the hub passes on: https (http only on loopback), no fragment (RFC 6749 §3.1.2). */
export const isRedirectUri = (v: string) => {
  try {
    const u = new URL(v);
    return (u.protocol === 'https:' || (u.protocol === 'http:' && (u.hostname === 'localhost' || u.hostname === '127.0.0.1'))) && u.hash === '' && v.length <= 2048;
  } catch {
    return false;
  }
};

export function createOpenBankingService(deps: {
  db: Db;
  clock: Clock;
  audit: AuditService;
  events: EventOutbox;
  vault: Vault;
  customers: Pick<CustomerService, 'get' | 'findByExternalId'>;
  ledger: Pick<Ledger, 'getAccounts'>;
  bank: OpenBankingClient;
  /** The bank's connection in a currency when it keeps its own books there. */
  connection: (participantId: string, currency: string, q?: Queryable) => Promise<Connection | undefined>;
}): OpenBankingService {
  const { db, clock, audit, events, vault, bank } = deps;
  const stateHash = (consentId: string, state: string) => vault.indexHash(`ob-state:${consentId}:${state}`);

  const linksOf = async (q: Queryable, ids: readonly string[]) => {
    const rows = ids.length === 0 ? [] : await q.query<{ id: string; consent_id: string; account_id: string; status: 'active' | 'revoked' }>('select id, consent_id, account_id, status from account_links where consent_id = any($1::text[]) order by id', [ids]);
    const by = new Map<string, { linkId: string; accountId: string; status: 'active' | 'revoked' }[]>();
    for (const r of rows) by.set(r.consent_id, [...(by.get(r.consent_id) ?? []), { linkId: r.id, accountId: r.account_id, status: r.status }]);
    return by;
  };
  const toConsents = async (q: Queryable, rows: readonly ConsentRow[]): Promise<OpenBankingConsent[]> => {
    const links = await linksOf(q, rows.map((r) => r.id));
    return rows.map((r) => ({
      id: r.id,
      walletParticipantId: r.wallet_participant_id,
      walletCustomerId: r.wallet_customer_id,
      bankParticipantId: r.bank_participant_id,
      currency: r.currency,
      status: r.status,
      scope: r.scope,
      links: links.get(r.id) ?? [],
      expiresAt: r.expires_at,
      createdAt: r.created_at,
      authorizedAt: r.authorized_at,
      revokedAt: r.revoked_at,
      revokedBy: r.revoked_by,
    }));
  };
  const one = async (q: Queryable, row: ConsentRow | undefined) => (row === undefined ? undefined : (await toConsents(q, [row]))[0]);
  const read = async (q: Queryable, participantId: string, consentId: string, lock = false) =>
    (await q.query<ConsentRow>(`select * from open_banking_consents where id = $1 and wallet_participant_id = $2${lock ? ' for update' : ''}`, [consentId, participantId]))[0];

  const revokedError = (r: ConsentRow): TErr => ({
    code: 'consent_revoked',
    message: r.revoked_by === 'bank' ? 'the customer revoked this consent at the bank: link the account again to use it' : 'the customer revoked this consent in the wallet: link the account again to use it',
    details: { consentId: r.id, revokedBy: r.revoked_by, revokedAt: r.revoked_at?.toISOString() ?? null },
  });
  const usable = (r: ConsentRow | undefined): Result<ConsentRow, TErr> => {
    if (r === undefined) return err('consent_not_found', 'no such consent');
    if (r.status === 'revoked') return { ok: false, error: revokedError(r) };
    if (r.status !== 'active' || r.access_token_sealed === null) return err('consent_not_active', `the consent is ${r.status}`, { consentId: r.id, status: r.status });
    return ok(r);
  };

  /** Ends a consent and its links in `tx` (revoked by the wallet or learned from the bank); false if it was not active. */
  const end = async (tx: Queryable, actor: Actor, consentId: string, by: 'wallet' | 'bank', why: string): Promise<boolean> => {
    const [row] = await tx.query<ConsentRow>(
      `update open_banking_consents set status = 'revoked', revoked_at = $2, revoked_by = $3 where id = $1 and status = 'active' returning *`,
      [consentId, clock.now(), by],
    );
    if (row === undefined) return false;
    const links = await tx.query<{ id: string }>(`update account_links set status = 'revoked', revoked_at = coalesce(revoked_at, $2) where consent_id = $1 and status = 'active' returning id`, [consentId, clock.now()]);
    await audit.record(tx, { actor, action: 'open_banking.consent_revoked', objectType: 'open_banking_consent', objectId: consentId, details: { by, why, links: links.map((l) => l.id) } });
    for (const l of links) {
      for (const p of [row.wallet_participant_id, row.bank_participant_id]) await events.emit(tx, { participantId: p, type: 'account_link.revoked', data: { linkId: l.id } });
    }
    return true;
  };

  const service: OpenBankingService = {
    async start(tx, actor, input) {
      const customer = await deps.customers.get(input.walletParticipantId, input.walletCustomerId, tx);
      if (customer === undefined) return err('customer_not_found', 'no such customer', { customerId: input.walletCustomerId });
      if (input.bankParticipantId === input.walletParticipantId) return err('open_banking_unavailable', 'link an account held by another participant');
      const connection = await deps.connection(input.bankParticipantId, input.currency, tx);
      if (connection === undefined) return err('open_banking_unavailable', `this participant does not keep its own books in ${input.currency}: there is no account at the bank to link by consent`, { bankParticipantId: input.bankParticipantId, currency: input.currency });
      const id = newId('obc');
      const state = randomBytes(24).toString('base64url');
      const verifier = randomBytes(48).toString('base64url');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const now = clock.now();
      const [row] = await tx.query<ConsentRow>(
        `insert into open_banking_consents (id, wallet_participant_id, wallet_customer_id, bank_participant_id, currency, status, state_hash, redirect_uri, verifier_sealed, scope, expires_at, created_at)
         values ($1, $2, $3, $4, $5, 'awaiting_authorization', $6, $7, $8, $9, $10, $11) returning *`,
        [id, input.walletParticipantId, input.walletCustomerId, input.bankParticipantId, input.currency, await stateHash(id, state), input.redirectUri, await vault.seal(verifier), OPEN_BANKING_SCOPE, new Date(now.getTime() + AUTHORIZATION_TTL_MS), now],
      );
      await audit.record(tx, { actor, action: 'open_banking.consent_started', objectType: 'open_banking_consent', objectId: id, details: { bankParticipantId: input.bankParticipantId, currency: input.currency } });
      const authorizeUrl = bank.authorizeUrl(connection, { redirectUri: input.redirectUri, state, codeChallenge: challenge, scope: OPEN_BANKING_SCOPE });
      return ok({ consent: (await one(tx, row))!, authorizeUrl });
    },

    async authorize(actor, walletParticipantId, consentId, input) {
      const r = await read(db, walletParticipantId, consentId);
      if (r === undefined) return err('consent_not_found', 'no such consent');
      if (r.status === 'revoked') return { ok: false, error: revokedError(r) };
      // A retry after the answer was lost: the consent is what the first call made of it.
      if (r.status === 'active') return ok((await one(db, r))!);
      if (r.status !== 'awaiting_authorization') return err('consent_not_active', `the consent is ${r.status}: start a new one`, { consentId, status: r.status });
      if (r.expires_at.getTime() <= clock.nowMs()) return err('consent_expired', 'the customer did not approve in time: start a new consent');
      const given = Buffer.from(await stateHash(consentId, input.state));
      const expected = Buffer.from(r.state_hash);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return err('consent_state_invalid', 'the state does not match this consent’s authorization request');
      const connection = await deps.connection(r.bank_participant_id, r.currency);
      if (connection === undefined) return err('open_banking_unavailable', 'the bank no longer keeps its own books in this currency');
      const grant = await bank.exchangeCode(connection, { code: input.code, codeVerifier: await vault.open(r.verifier_sealed), redirectUri: r.redirect_uri });
      if (!grant.ok) {
        if (grant.kind !== 'refused') return err('bank_unavailable', grant.detail);
        // An authorization code is single-use: a refused exchange ends this consent.
        await db.query(`update open_banking_consents set status = 'failed' where id = $1 and status = 'awaiting_authorization'`, [consentId]);
        return err('bank_authorization_failed', `the bank refused the code: ${grant.detail}`);
      }
      const sealed = await vault.seal(grant.accessToken);
      // The bank names its own account ids: as the bank registered its customers at the hub (externalId). Read before the
      // transaction (customers and ledger accounts are their capabilities' own reads).
      const found = [];
      for (const a of grant.accounts.filter((g) => g.currency === r.currency)) {
        const c = await deps.customers.findByExternalId(r.bank_participant_id, a.id);
        if (c !== undefined) found.push(c.id);
      }
      const accounts = (await deps.ledger.getAccounts(found.map((id) => customerAccountId(id, r.currency))))
        .filter((a) => a.kind === 'customer' && !a.closed && a.customerId !== null)
        .map((a) => ({ id: a.id, customer_id: a.customerId! }))
        .sort((a, b) => a.id.localeCompare(b.id));
      const outcome = await db.transaction(async (tx): Promise<Result<OpenBankingConsent, TErr> | 'raced'> => {
        const locked = await read(tx, walletParticipantId, consentId, true);
        if (locked === undefined || locked.status !== 'awaiting_authorization') return 'raced';
        if (accounts.length === 0) {
          await tx.query(`update open_banking_consents set status = 'failed' where id = $1`, [consentId]);
          return err('bank_authorization_failed', 'the bank granted no account the hub knows in this currency');
        }
        const now = clock.now();
        const links: { linkId: string; accountId: string }[] = [];
        for (const a of accounts) {
          const [l] = await tx.query<{ id: string }>(
            `insert into account_links (id, consent_id, wallet_participant_id, wallet_customer_id, bank_participant_id, bank_customer_id, account_id, status, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, 'active', $8)
             on conflict (wallet_participant_id, wallet_customer_id, account_id) where status = 'active' do update set consent_id = excluded.consent_id
             returning id`,
            [newId('lnk'), consentId, walletParticipantId, r.wallet_customer_id, r.bank_participant_id, a.customer_id, a.id, now],
          );
          if (l !== undefined) links.push({ linkId: l.id, accountId: a.id });
        }
        const [row] = await tx.query<ConsentRow>(
          `update open_banking_consents set status = 'active', bank_consent_id = $2, access_token_sealed = $3, grant_expires_at = $4, authorized_at = $5, scope = $6 where id = $1 returning *`,
          [consentId, grant.bankConsentId, sealed, grant.expiresInS > 0 ? new Date(now.getTime() + grant.expiresInS * 1000) : null, now, grant.scope === '' ? OPEN_BANKING_SCOPE : grant.scope],
        );
        await audit.record(tx, { actor, action: 'open_banking.consent_authorized', objectType: 'open_banking_consent', objectId: consentId, details: { accounts: links.map((l) => l.accountId), scope: row?.scope } });
        await events.emit(tx, { participantId: walletParticipantId, type: 'account_link.created', data: { consentId, linkIds: links.map((l) => l.linkId) } });
        await events.emit(tx, { participantId: r.bank_participant_id, type: 'account_link.created', data: { consentId, customerId: accounts[0]!.customer_id, links } });
        return ok((await one(tx, row))!);
      });
      if (outcome === 'raced') {
        // Another request authorized (or ended) it meanwhile: this grant is not kept, so it is given back.
        await bank.revokeGrant(connection, grant.accessToken, grant.bankConsentId);
        const now = await read(db, walletParticipantId, consentId);
        return now?.status === 'active' ? ok((await one(db, now))!) : err('consent_not_active', 'the consent is no longer awaiting authorization');
      }
      return outcome;
    },

    async get(participantId, consentId, q = db) {
      return one(q, await read(q, participantId, consentId));
    },
    async list(participantId, customerId) {
      const rows = await db.query<ConsentRow>('select * from open_banking_consents where wallet_participant_id = $1 and wallet_customer_id = $2 order by created_at desc, id limit 100', [participantId, customerId]);
      return toConsents(db, rows);
    },

    async balances(participantId, consentId) {
      const r = usable(await read(db, participantId, consentId));
      if (!r.ok) return r;
      const connection = await deps.connection(r.value.bank_participant_id, r.value.currency);
      if (connection === undefined) return err('open_banking_unavailable', 'the bank no longer keeps its own books in this currency');
      const links = await db.query<{ id: string; account_id: string; bank_customer_id: string }>(
        `select id, account_id, bank_customer_id from account_links where consent_id = $1 and status = 'active' order by id`,
        [consentId],
      );
      const token = await vault.open(r.value.access_token_sealed!);
      const out: AccountBalanceAtBank[] = [];
      for (const l of links) {
        // The bank's own account id: its customer's externalId at the hub.
        const holder = await deps.customers.get(r.value.bank_participant_id, l.bank_customer_id);
        if (holder === undefined) continue;
        const b = await bank.readBalance(connection, token, holder.externalId);
        if (!b.ok) return failure(b, consentId);
        out.push({ accountId: l.account_id, linkId: l.id, balance: b.balance, available: b.available, asOf: b.asOf });
      }
      return ok(out);
    },

    async revoke(actor, participantId, consentId) {
      const done = await db.transaction(async (tx) => {
        const r = await read(tx, participantId, consentId, true);
        if (r === undefined) return undefined;
        if (r.status === 'awaiting_authorization') {
          await tx.query(`update open_banking_consents set status = 'revoked', revoked_at = $2, revoked_by = 'wallet' where id = $1`, [consentId, clock.now()]);
          await audit.record(tx, { actor, action: 'open_banking.consent_revoked', objectType: 'open_banking_consent', objectId: consentId, details: { by: 'wallet', why: 'withdrawn before approval', links: [] } });
        } else await end(tx, actor, consentId, 'wallet', 'revoked by the customer in the wallet');
        return { before: r, after: await read(tx, participantId, consentId) };
      });
      if (done === undefined) return err('consent_not_found', 'no such consent');
      const { before, after } = done;
      // The grant is given back at the bank (RFC 7009), after the commit: the hub has stopped using it either way.
      if (before.status === 'active' && before.access_token_sealed !== null && before.bank_consent_id !== null) {
        const connection = await deps.connection(before.bank_participant_id, before.currency);
        if (connection !== undefined) await bank.revokeGrant(connection, await vault.open(before.access_token_sealed), before.bank_consent_id);
      }
      return ok((await one(db, after))!);
    },

    async mandateFor(q, walletParticipantId, walletCustomerId, accountId) {
      const [m] = await q.query<{ id: string; bank_consent_id: string }>(
        `select c.id, c.bank_consent_id from account_links l join open_banking_consents c on c.id = l.consent_id
          where l.wallet_participant_id = $1 and l.wallet_customer_id = $2 and l.account_id = $3 and l.status = 'active' and c.status = 'active' and c.bank_consent_id is not null
          limit 1`,
        [walletParticipantId, walletCustomerId, accountId],
      );
      return m === undefined ? undefined : { consentId: m.id, bankConsentId: m.bank_consent_id };
    },
    async revokedFor(q, walletParticipantId, walletCustomerId, accountId) {
      const [r] = await q.query<{ revoked: boolean }>(
        `select exists (select 1 from account_links l join open_banking_consents c on c.id = l.consent_id
                         where l.wallet_participant_id = $1 and l.wallet_customer_id = $2 and l.account_id = $3 and c.status = 'revoked')
            and not exists (select 1 from account_links where wallet_participant_id = $1 and wallet_customer_id = $2 and account_id = $3 and status = 'active') as revoked`,
        [walletParticipantId, walletCustomerId, accountId],
      );
      return r?.revoked === true;
    },
    async endedAtBank(consentId, why) {
      await db.transaction((tx) => end(tx, { type: 'system' }, consentId, 'bank', why));
    },
    async sourceOf(participantId, consentId) {
      const r = usable(await read(db, participantId, consentId));
      if (!r.ok) return r;
      const [l] = await db.query<{ account_id: string }>(`select account_id from account_links where consent_id = $1 and status = 'active' order by id limit 1`, [consentId]);
      if (l === undefined) return err('consent_not_active', 'the consent links no active account', { consentId });
      return ok({ accountId: l.account_id, customerId: r.value.wallet_customer_id });
    },
  };

  /** A failed call to the bank as the API says it; a bank that no longer honours the grant ends the consent. */
  const failure = async (f: BankCallFailure, consentId: string): Promise<Result<never, TErr>> => {
    if (f.kind === 'revoked') {
      await service.endedAtBank(consentId, `the bank refused the grant (${f.detail})`);
      const [row] = await db.query<ConsentRow>('select * from open_banking_consents where id = $1', [consentId]);
      return { ok: false, error: row !== undefined && row.status === 'revoked' ? revokedError(row) : { code: 'consent_revoked', message: 'the bank no longer honours this consent' } };
    }
    return err('bank_unavailable', f.detail);
  };

  return service;
}
