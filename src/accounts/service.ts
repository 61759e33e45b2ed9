import { timingSafeEqual } from 'node:crypto';
import type { Actor, AuditService } from '../audit/index.ts';
import type { CustomerService } from '../customers/index.ts';
import type { Ledger } from '../ledger/index.ts';
import type { Account, AccountKind } from '../ledger/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { formatMoney, isCurrency } from '../platform/money.ts';
import { newOneTimeCode, sealForParticipant } from '../platform/recipient-seal.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { Vault } from '../platform/vault.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { TErr } from '../transfers/index.ts';

/**
 * Customer accounts held in the hub's ledger (owned by the participant, customer id set, no overdraft), the
 * participants' own system accounts, and account links: a wallet customer's consented access to accounts a bank
 * holds for the same person. Consent is a one-time 6-digit code the hub sends to the bank (webhook
 * `account_link.consent_requested`, sealed to the bank: `codeSealed`, see platform/recipient-seal.ts); the bank shows
 * it to its customer, who types it into the wallet. The hub keeps only a keyed hash of the code; it expires after
 * CONSENT_TTL_MS and locks after CONSENT_MAX_ATTEMPTS wrong tries.
 */
/** The text a bank may send its customer, with `{code}` where the opened code goes (the event never holds the code). */
export const CONSENT_MESSAGE_TEMPLATE = 'Code {code}: allow {wallet} to see your balances and pay from your accounts. Never share it with anyone else.';
export const CONSENT_TTL_MS = 10 * 60_000;
export const CONSENT_MAX_ATTEMPTS = 5;

export const customerAccountId = (customerId: string, currency: string) => `acc_${customerId}_${currency}`;
/**
 * A participant's system accounts: `funding` is its position at the hub (see src/liquidity), `settlement` the ledger's
 * mirror of its account at the settlement bank (where prefunded liquidity comes from), `fees`, `suspense` (red-packet
 * escrow) and `fx_liquidity` (an FX provider's).
 */
const SYSTEM_PREFIX = { funding: 'fund', settlement: 'sbk', fees: 'fee', suspense: 'esc', fx_liquidity: 'fxl' } as const;
export type SystemAccountKind = keyof typeof SYSTEM_PREFIX;
export const systemAccountId = (kind: SystemAccountKind, participantId: string, currency: string) => `${SYSTEM_PREFIX[kind]}_${participantId}_${currency}`;
/** Whether an account id is a participant's position (its funding account). */
export const isPositionAccount = (accountId: string) => accountId.startsWith(`${SYSTEM_PREFIX.funding}_`);

export interface AccountRef {
  readonly id: string;
  readonly ownerParticipantId: string;
  readonly customerId: string | null;
  readonly currency: string;
  readonly kind: AccountKind;
  readonly closed: boolean;
}

export interface AccountLink {
  readonly id: string;
  readonly walletParticipantId: string;
  readonly walletCustomerId: string;
  readonly bankParticipantId: string;
  readonly bankCustomerId: string;
  readonly accountId: string;
  readonly status: 'active' | 'revoked';
  readonly createdAt: Date;
  readonly revokedAt: Date | null;
}

export interface Consent {
  readonly id: string;
  readonly status: 'pending' | 'confirmed' | 'failed' | 'expired';
  readonly expiresAt: Date;
  readonly bankParticipantId: string;
}

export interface ListedAccount {
  readonly account: Account;
  readonly holderParticipantId: string;
  readonly holderName: string;
  readonly linkId: string | null;
}

export interface AccountService {
  readonly ledger: Ledger;
  ensureSystemAccount(kind: SystemAccountKind, participantId: string, currency: string): Promise<string>;
  openCustomerAccount(tx: Queryable, actor: Actor, participantId: string, customerId: string, currency: string): Promise<Result<Account, TErr>>;
  /** Cash-in of `amountMinor` of `currency` (the account's own: anything else is currency_mismatch, nothing written). */
  deposit(tx: Queryable, actor: Actor, participantId: string, accountId: string, amountMinor: bigint, currency: string, transferId: string): Promise<Result<void, TErr>>;
  ref(q: Queryable, accountId: string): Promise<AccountRef | undefined>;
  /** The account if this participant's customer may pay from it: their own account, or one linked and active. */
  debitable(q: Queryable, participantId: string, customerId: string, accountId: string): Promise<AccountRef | undefined>;
  listForCustomer(participantId: string, customerId: string): Promise<ListedAccount[]>;
  requestLink(tx: Queryable, actor: Actor, input: { walletParticipantId: string; walletCustomerId: string; bankParticipantId: string; currency?: string | undefined }): Promise<Result<Consent, TErr>>;
  confirmLink(tx: Queryable, actor: Actor, walletParticipantId: string, consentId: string, code: string): Promise<Result<AccountLink[], TErr>>;
  listLinks(participantId: string, customerId?: string): Promise<AccountLink[]>;
  /** A wallet customer's active link, its row locked (FOR SHARE) until the caller's COMMIT, so a revocation waits for it. */
  activeLink(tx: Queryable, linkId: string, walletParticipantId: string, walletCustomerId: string): Promise<AccountLink | undefined>;
  revokeLink(tx: Queryable, actor: Actor, participantId: string, linkId: string): Promise<Result<AccountLink, TErr>>;
}

interface LinkRow {
  id: string;
  wallet_participant_id: string;
  wallet_customer_id: string;
  bank_participant_id: string;
  bank_customer_id: string;
  account_id: string;
  status: 'active' | 'revoked';
  created_at: Date;
  revoked_at: Date | null;
}
const toLink = (r: LinkRow): AccountLink => ({
  id: r.id,
  walletParticipantId: r.wallet_participant_id,
  walletCustomerId: r.wallet_customer_id,
  bankParticipantId: r.bank_participant_id,
  bankCustomerId: r.bank_customer_id,
  accountId: r.account_id,
  status: r.status,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

export function createAccountService(deps: {
  db: Db;
  clock: Clock;
  audit: AuditService;
  events: EventOutbox;
  vault: Vault;
  ledger: Ledger;
  customers: CustomerService;
  /** Whether a participant keeps its own books in a currency (connected): its customers' accounts here hold no money. */
  connected?: ((participantId: string, currency: string, q: Queryable) => Promise<boolean>) | undefined;
}): AccountService {
  const { db, clock, audit, events, vault, ledger, customers } = deps;
  const ensured = new Set<string>();
  const codeHash = (consentId: string, code: string) => vault.indexHash(`otp:${consentId}:${code}`);

  const ref = async (q: Queryable, accountId: string): Promise<AccountRef | undefined> => {
    const [r] = await q.query<{ id: string; owner_participant_id: string; customer_id: string | null; currency: string; kind: AccountKind; closed: boolean }>(
      'select id, owner_participant_id, customer_id, currency, kind, closed from ledger_accounts where id = $1',
      [accountId],
    );
    return r === undefined ? undefined : { id: r.id, ownerParticipantId: r.owner_participant_id, customerId: r.customer_id, currency: r.currency, kind: r.kind, closed: r.closed };
  };

  /**
   * The hub's own account of a kind for a participant and currency, created on first use. Usually called inside a
   * payment's transaction (the top-level db joins it): an advisory lock makes concurrent first uses create it once,
   * and an id is remembered only once it was seen committed, never after our own (still revocable) insert.
   */
  const ensureSystemAccount = async (kind: SystemAccountKind, participantId: string, currency: string): Promise<string> => {
    const id = systemAccountId(kind, participantId, currency);
    if (ensured.has(id)) return id;
    if ((await ref(db, id)) === undefined) {
      await db.query('select pg_advisory_xact_lock(hashtext($1))', [id]);
      if ((await ref(db, id)) === undefined) {
        // A position never goes below zero beyond its net debit cap (0 until the operator sets one): no money from nothing.
        const limits = kind === 'funding' ? { debitsMustNotExceedCredits: true, creditLimitMinor: 0n } : kind === 'suspense' || kind === 'fx_liquidity' ? { debitsMustNotExceedCredits: true } : {};
        const created = await ledger.createAccount({ id, ownerParticipantId: participantId, currency, kind, ...limits });
        if (!created.ok && created.error.code !== 'account_exists') throw new Error(`system account ${id}: ${created.error.code}`);
        return id;
      }
    }
    ensured.add(id);
    return id;
  };

  return {
    ledger,
    ensureSystemAccount,
    async openCustomerAccount(tx, actor, participantId, customerId, currency) {
      const customer = await customers.get(participantId, customerId, tx);
      if (customer === undefined) return err('customer_not_found', 'no such customer', { customerId });
      const [p] = await tx.query<{ currencies: string[] }>('select currencies from participants where id = $1', [participantId]);
      if (!isCurrency(currency) || !(p?.currencies ?? []).includes(currency)) return err('currency_not_receivable', `this participant does not hold ${currency}`, { currency });
      const id = customerAccountId(customerId, currency);
      if ((await ref(tx, id)) !== undefined) return err('customer_account_exists', 'the customer already has an account in this currency', { accountId: id });
      const created = await ledger.createAccount({ id, ownerParticipantId: participantId, customerId, currency, kind: 'customer', debitsMustNotExceedCredits: true });
      if (!created.ok) return created.error.code === 'account_exists' ? err('customer_account_exists', 'the customer already has an account in this currency', { accountId: id }) : err('ledger_rejected', created.error.message);
      await audit.record(tx, { actor, action: 'account.opened', objectType: 'account', objectId: id, details: { customerId, currency } });
      return ok(created.value);
    },
    async deposit(tx, actor, participantId, accountId, amountMinor, currency, transferId) {
      const acc = await ref(tx, accountId);
      if (acc === undefined || acc.ownerParticipantId !== participantId) return err('account_unavailable', 'no such account', { accountId });
      if (currency !== acc.currency) return err('currency_mismatch', `this account holds ${acc.currency}`, { accountId, currency: acc.currency });
      if (acc.kind === 'customer' && deps.connected !== undefined && (await deps.connected(participantId, acc.currency, tx))) {
        // A connected participant's customer account at the hub is an address only: the money is in its own core system.
        return err('account_unavailable', `you keep your customers' ${acc.currency} accounts in your own books: the hub holds no money for them`, { accountId });
      }
      const funding = await ensureSystemAccount('funding', participantId, acc.currency);
      // Money enters only from the participant's position, within its prefunded liquidity and net debit cap.
      const [r] = await ledger.applyInTx(tx, [{ id: transferId, debitAccountId: funding, creditAccountId: accountId, amountMinor, currency: acc.currency, purpose: 'deposit', metadata: { participantId } }]);
      if (r !== undefined && !r.ok && positionLimit(r.error, funding)) {
        return err('liquidity_exceeded', `this deposit would take your ${acc.currency} position past its prefunded liquidity and net debit cap`, { currency: acc.currency });
      }
      if (r === undefined || !r.ok) return err('ledger_rejected', r?.ok === false ? r.error.message : 'deposit failed');
      await audit.record(tx, { actor, action: 'account.deposit', objectType: 'account', objectId: accountId, details: { amountMinor: amountMinor.toString(), transferId } });
      // liquidity.low: this deposit took the position to within 10% of what it may use (its liquidity and net debit cap).
      const [pos] = await tx.query<{ available: bigint; cap: bigint; liquidity: bigint }>(
        `select f.credits_posted - f.debits_posted - f.debits_pending + coalesce(f.credit_limit_minor, 0) as available, coalesce(f.credit_limit_minor, 0) as cap,
                coalesce((select s.debits_posted - s.credits_posted from ledger_accounts s where s.id = $2), 0) as liquidity
           from ledger_accounts f where f.id = $1`,
        [funding, systemAccountId('settlement', participantId, acc.currency)],
      );
      if (pos !== undefined) {
        const usable = (pos.liquidity > 0n ? pos.liquidity : 0n) + pos.cap;
        const low = (available: bigint) => available * 10n <= usable;
        if (usable > 0n && low(pos.available) && !low(pos.available + amountMinor)) {
          await events.emit(tx, {
            participantId,
            type: 'liquidity.low',
            data: { available: formatMoney(pos.available, acc.currency), netDebitCap: formatMoney(pos.cap, acc.currency), liquidity: formatMoney(pos.liquidity, acc.currency) },
          });
        }
      }
      return ok(undefined);
    },
    ref,
    async debitable(q, participantId, customerId, accountId) {
      const acc = await ref(q, accountId);
      // A bank's credit line (kind credit) is debitable like a deposit account: its limit is the ledger's.
      if (acc === undefined || (acc.kind !== 'customer' && acc.kind !== 'credit') || acc.closed) return undefined;
      if (acc.ownerParticipantId === participantId && acc.customerId === customerId) return acc;
      const [link] = await q.query('select 1 as x from account_links where wallet_participant_id = $1 and wallet_customer_id = $2 and account_id = $3 and status = $4', [
        participantId,
        customerId,
        accountId,
        'active',
      ]);
      return link === undefined ? undefined : acc;
    },
    async listForCustomer(participantId, customerId) {
      const own = await ledger.listAccounts({ ownerParticipantId: participantId, customerId });
      const links = await db.query<{ id: string; account_id: string; bank_participant_id: string }>(
        `select id, account_id, bank_participant_id from account_links where wallet_participant_id = $1 and wallet_customer_id = $2 and status = 'active' order by id limit 100`,
        [participantId, customerId],
      );
      // An account at a bank that keeps its own books in its currency is an address at the hub (no balance here): its
      // balance is read at the bank (GET /v1/open-banking/consents/{id}/balances), so it is not listed with a hub balance.
      const atHub = [];
      for (const a of await ledger.getAccounts(links.map((l) => l.account_id))) {
        const holder = links.find((l) => l.account_id === a.id)?.bank_participant_id ?? '';
        if (deps.connected === undefined || !(await deps.connected(holder, a.currency, db))) atHub.push(a);
      }
      const linked = atHub;
      const names = new Map(
        (await db.query<{ id: string; name: string }>('select id, name from participants where id = any($1::text[])', [[participantId, ...links.map((l) => l.bank_participant_id)]])).map((r) => [r.id, r.name]),
      );
      const byAccount = new Map(links.map((l) => [l.account_id, l]));
      return [
        ...own.filter((a) => a.kind === 'customer').map((account) => ({ account, holderParticipantId: participantId, holderName: names.get(participantId) ?? participantId, linkId: null })),
        ...linked.map((account) => {
          const l = byAccount.get(account.id)!;
          return { account, holderParticipantId: l.bank_participant_id, holderName: names.get(l.bank_participant_id) ?? l.bank_participant_id, linkId: l.id };
        }),
      ];
    },
    async requestLink(tx, actor, input) {
      const walletCustomer = await customers.get(input.walletParticipantId, input.walletCustomerId, tx);
      if (walletCustomer === undefined) return err('customer_not_found', 'no such customer', { customerId: input.walletCustomerId });
      if (input.bankParticipantId === input.walletParticipantId) return err('bank_customer_not_found', 'link accounts held by another participant');
      // The bank's customer is the same person: matched by phone number; the code sent through the bank proves it.
      const [bankCustomer] =
        walletCustomer.phone === null
          ? []
          : await tx.query<{ id: string }>('select id from customers where participant_id = $1 and phone = $2 order by id limit 1', [input.bankParticipantId, walletCustomer.phone]);
      if (bankCustomer === undefined) return err('bank_customer_not_found', 'the bank has no customer with this phone number', { bankParticipantId: input.bankParticipantId });
      const [wallet] = await tx.query<{ name: string }>('select name from participants where id = $1', [input.walletParticipantId]);
      const id = newId('lnc');
      const code = newOneTimeCode();
      const expiresAt = new Date(clock.nowMs() + CONSENT_TTL_MS);
      await tx.query(
        `insert into account_link_consents (id, wallet_participant_id, wallet_customer_id, bank_participant_id, bank_customer_id, currency, code_hash, status, expires_at, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9)`,
        [id, input.walletParticipantId, input.walletCustomerId, input.bankParticipantId, bankCustomer.id, input.currency ?? null, await codeHash(id, code), expiresAt, clock.now()],
      );
      await audit.record(tx, { actor, action: 'account_link.consent_requested', objectType: 'account_link_consent', objectId: id, details: { bankParticipantId: input.bankParticipantId } });
      // The bank delivers the code to its customer (SMS, app): the webhook is the delivery channel, so the code travels
      // sealed to the bank (the outbox is a table); the hub keeps a hash.
      await events.emit(tx, {
        participantId: input.bankParticipantId,
        type: 'account_link.consent_requested',
        data: {
          consentId: id,
          customerId: bankCustomer.id,
          walletName: wallet?.name ?? input.walletParticipantId,
          codeSealed: await sealForParticipant(tx, vault, input.bankParticipantId, code, id),
          expiresAt: expiresAt.toISOString(),
          messageTemplate: CONSENT_MESSAGE_TEMPLATE.replace('{wallet}', wallet?.name ?? 'a wallet'),
        },
      });
      return ok({ id, status: 'pending', expiresAt, bankParticipantId: input.bankParticipantId });
    },
    async confirmLink(tx, actor, walletParticipantId, consentId, code) {
      const [c] = await tx.query<{ id: string; wallet_customer_id: string; bank_participant_id: string; bank_customer_id: string; currency: string | null; code_hash: string; attempts: number; status: string; expires_at: Date }>(
        'select * from account_link_consents where id = $1 and wallet_participant_id = $2 for update',
        [consentId, walletParticipantId],
      );
      if (c === undefined) return err('consent_not_found', 'no such consent', { consentId });
      if (c.status !== 'pending') return err(c.status === 'expired' ? 'consent_expired' : 'consent_locked', `the consent is ${c.status}`);
      if (c.expires_at.getTime() <= clock.nowMs()) return err('consent_expired', 'the code expired; ask for a new one');
      // This request's try was taken already (takeConsentTry): locked only beyond the last allowed try.
      if (c.attempts > CONSENT_MAX_ATTEMPTS) return err('consent_locked', 'too many wrong codes; ask for a new one');
      const given = Buffer.from(await codeHash(consentId, code));
      const expected = Buffer.from(c.code_hash);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return err('consent_code_invalid', 'wrong code', { attemptsLeft: Math.max(0, CONSENT_MAX_ATTEMPTS - c.attempts), consentId });
      }
      await tx.query(`update account_link_consents set status = 'confirmed' where id = $1`, [consentId]);
      const accounts = (await ledger.listAccounts({ ownerParticipantId: c.bank_participant_id, customerId: c.bank_customer_id })).filter(
        (a) => (a.kind === 'customer' || a.kind === 'credit') && !a.closed && (c.currency === null || a.currency === c.currency),
      );
      const now = clock.now();
      const links: AccountLink[] = [];
      for (const a of accounts) {
        const rows = await tx.query<LinkRow>(
          `insert into account_links (id, consent_id, wallet_participant_id, wallet_customer_id, bank_participant_id, bank_customer_id, account_id, status, created_at)
           values ($1, $2, $3, $4, $5, $6, $7, 'active', $8) on conflict do nothing returning *`,
          [newId('lnk'), consentId, walletParticipantId, c.wallet_customer_id, c.bank_participant_id, c.bank_customer_id, a.id, now],
        );
        if (rows[0] !== undefined) links.push(toLink(rows[0]));
      }
      await audit.record(tx, { actor, action: 'account_link.confirmed', objectType: 'account_link_consent', objectId: consentId, details: { accounts: links.map((l) => l.accountId) } });
      await events.emit(tx, { participantId: walletParticipantId, type: 'account_link.created', data: { consentId, linkIds: links.map((l) => l.id) } });
      await events.emit(tx, { participantId: c.bank_participant_id, type: 'account_link.created', data: { consentId, customerId: c.bank_customer_id, links: links.map((l) => ({ linkId: l.id, accountId: l.accountId })) } });
      return ok(links);
    },
    async listLinks(participantId, customerId) {
      const rows = await db.query<LinkRow>(
        `select * from account_links where (wallet_participant_id = $1 or bank_participant_id = $1)
           and ($2::text is null or wallet_customer_id = $2 or bank_customer_id = $2) order by created_at desc, id limit 200`,
        [participantId, customerId ?? null],
      );
      return rows.map(toLink);
    },
    async activeLink(tx, linkId, walletParticipantId, walletCustomerId) {
      const [row] = await tx.query<LinkRow>(
        `select * from account_links where id = $1 and wallet_participant_id = $2 and wallet_customer_id = $3 and status = 'active' for share`,
        [linkId, walletParticipantId, walletCustomerId],
      );
      return row === undefined ? undefined : toLink(row);
    },
    async revokeLink(tx, actor, participantId, linkId) {
      const rows = await tx.query<LinkRow>(
        `update account_links set status = 'revoked', revoked_at = coalesce(revoked_at, $3) where id = $1 and (wallet_participant_id = $2 or bank_participant_id = $2) returning *`,
        [linkId, participantId, clock.now()],
      );
      const row = rows[0];
      if (row === undefined) return err('link_not_found', 'no such link', { linkId });
      await audit.record(tx, { actor, action: 'account_link.revoked', objectType: 'account_link', objectId: linkId });
      for (const p of [row.wallet_participant_id, row.bank_participant_id]) await events.emit(tx, { participantId: p, type: 'account_link.revoked', data: { linkId } });
      return ok(toLink(row));
    },
  };
}

/**
 * Takes one of the consent code's tries before the code is checked, outside the request's transaction (a refused
 * request rolls back; its try must stay counted) and before its answer is sent: concurrent guesses cannot get past the
 * limit. Every try counts, the right one too; the one after the last allowed fails the consent.
 */
export async function takeConsentTry(db: Db, consentId: string): Promise<void> {
  await db.query(`update account_link_consents set attempts = attempts + 1, status = case when attempts + 1 > $2 then 'failed' else status end where id = $1 and status = 'pending'`, [
    consentId,
    CONSENT_MAX_ATTEMPTS,
  ]);
}

/** Whether a ledger refusal is a participant position's limit: a movement out of a position past its cap (src/liquidity). */
export function positionLimit(error: { code: string; details?: unknown }, positionAccountId?: string): boolean {
  const accountId = typeof error.details === 'object' && error.details !== null ? (error.details as { accountId?: unknown }).accountId : undefined;
  return (
    (error.code === 'insufficient_funds' || error.code === 'exceeds_credit_limit') &&
    typeof accountId === 'string' &&
    (positionAccountId === undefined ? isPositionAccount(accountId) : accountId === positionAccountId)
  );
}
