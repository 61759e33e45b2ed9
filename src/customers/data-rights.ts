import type { Actor, AuditService } from '../audit/index.ts';
import type { CardService } from '../cards/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { formatMoney } from '../platform/money.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import type { Vault } from '../platform/vault.ts';
import type { WalletTokenService } from '../cards/index.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { CustomerExport } from './export-schema.ts';
import { toCustomer, type Customer, type CustomerErrorCode, type CustomerRow } from './service.ts';

/**
 * Data protection for one customer of a participant: an export of everything the hub holds about them (access and
 * portability), and erasure (pseudonymisation) of their personal data.
 *
 * The export walks every table that names a customer (see the migrations): the customer record; their ledger
 * accounts, balances and transfers; cards (masked), wallet tokens (no token number or key) and provisionings (no
 * codes); aliases and their moves; account links and consents (no codes); person links; P2P quotes and payments, money
 * requests, split bills and red packets; card payments; payer blocks; risk observations and alerts; whether an
 * authenticator is enrolled (never its seed); and the audit records that name them. Every list is capped
 * (EXPORT_LIMITS); a capped list is named in `truncated`, with a note on where to read the rest. A counterparty is
 * named by its participant, never by its customer id (the ids of linked bank accounts stay: the wallet pays from them
 * by that id), and a record another participant wrote is shown without that participant's customer.
 *
 * Erasure pseudonymises instead of deleting rows that other records point at: the name becomes ERASED_NAME, the phone
 * goes, the external id becomes a keyed-hash pseudonym (unique per participant as the original was). What exists only
 * to reach or verify the person is removed: aliases (and their pending moves and flags), authenticators, person links,
 * pending account-link consents; active account links are revoked, wallet tokens deleted, cards cancelled (their
 * tokens at every wallet deleted, each wallet told), pending provisionings expired; the customer's personal data is
 * scrubbed from the participant's stored idempotent responses. Ledger accounts and transfers, audit records and
 * payment records stay as they are, so the books and the audit chain still verify; they name the customer by id
 * only. Refused while the customer holds money or a pending hold.
 */
export type CustomerDataErrorCode = Extract<CustomerErrorCode, 'customer_not_found' | 'customer_has_balance'>;

/** What an erased customer is called from then on. */
export const ERASED_NAME = 'Erased customer';
const ERASED_VALUE = '[erased]';

export const EXPORT_LIMITS = {
  /** Rows per list section. */
  section: 1_000,
  /** Ledger transfers, most recent first, over all of the customer's accounts. */
  transfers: 1_000,
  /** Audit records naming the customer, most recent first. */
  audit: 1_000,
  /** Accounts and cards whose transfers and records are gathered (a customer has a handful). */
  accounts: 100,
} as const;

/**
 * Bound on stored idempotent responses scrubbed by one erasure. Answers are kept 48 hours (IDEMPOTENCY_LIMITS): one
 * customer's would pass this only through a runaway client, and any left over expire with the retention.
 */
const MAX_SCRUBBED_RESPONSES = 10_000;

type MoneyJson = { amount: string; currency: string };
const money = (minor: bigint, currency: string): MoneyJson => formatMoney(minor, currency);
const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

export interface ErasureOutcome {
  readonly customer: Customer;
  readonly erasedAt: Date;
  readonly alreadyErased: boolean;
  readonly removed: {
    aliases: number;
    authenticators: number;
    customerLinks: number;
    passkeys: number;
    pendingConsents: number;
    accountLinksRevoked: number;
    tokensDeleted: number;
    cardsCancelled: number;
    provisioningsExpired: number;
    storedResponsesScrubbed: number;
  };
}

export interface CustomerDataRights {
  /** Everything the hub holds about one of the participant's customers; records the access in the audit trail. */
  exportCustomer(participantId: string, customerId: string, actor: Actor): Promise<Result<CustomerExport, DomainError<CustomerDataErrorCode>>>;
  /** Pseudonymises the customer's personal data in the caller's transaction (see above). */
  erase(tx: Queryable, actor: Actor, participantId: string, customerId: string): Promise<Result<ErasureOutcome, DomainError<CustomerDataErrorCode>>>;
}


interface AccountRow {
  id: string;
  currency: string;
  kind: string;
  closed: boolean;
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
  created_at: Date;
}

/** Replaces personal values inside a stored JSON response; returns the new value and whether anything changed. */
function scrubJson(value: unknown, replace: (s: string) => string | null): { value: unknown; changed: boolean } {
  if (typeof value === 'string') {
    const next = replace(value);
    return { value: next, changed: next !== value };
  }
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((v) => {
      const r = scrubJson(v, replace);
      changed ||= r.changed;
      return r.value;
    });
    return { value: out, changed };
  }
  if (value !== null && typeof value === 'object') {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = scrubJson(v, replace);
      changed ||= r.changed;
      out[k] = r.value;
    }
    return { value: out, changed };
  }
  return { value, changed: false };
}

/** `%…%` LIKE pattern matching a value as it appears inside a JSON document's text. */
const likeInJson = (value: string) => `%${JSON.stringify(value).slice(1, -1).replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export function createCustomerDataRights(deps: {
  db: Db;
  clock: Clock;
  vault: Vault;
  audit: AuditService;
  events: EventOutbox;
  cards: CardService;
  walletTokens: WalletTokenService;
}): CustomerDataRights {
  const { db, clock, vault, audit, events, cards, walletTokens } = deps;

  const erasedAt = async (q: Queryable, customerId: string): Promise<Date | null> => {
    const [row] = await q.query<{ at: Date }>(
      `select at from audit_log where object_type = 'customer' and object_id = $1 and action = 'customer.erased' order by id limit 1`,
      [customerId],
    );
    return row?.at ?? null;
  };

  const customerAccounts = (q: Queryable, participantId: string, customerId: string) =>
    q.query<AccountRow>(
      `select id, currency, kind, closed, debits_pending, debits_posted, credits_pending, credits_posted, created_at
         from ledger_accounts where customer_id = $1 and owner_participant_id = $2 order by id limit $3`,
      [customerId, participantId, EXPORT_LIMITS.accounts],
    );

  /** Accounts that still hold money or a pending amount, pending card holds and unfinished red packets. */
  const fundsHeld = async (q: Queryable, participantId: string, customerId: string) => {
    const [accounts, holds, packets] = await Promise.all([
      q.query<AccountRow>(
        `select id, currency, kind, closed, debits_pending, debits_posted, credits_pending, credits_posted, created_at
           from ledger_accounts
          where (customer_id = $1 and owner_participant_id = $2)
             or id in (select funding_account_id from cards where customer_id = $1 and issuer_participant_id = $2 and funding_account_id is not null)
          order by id`,
        [customerId, participantId],
      ),
      q.query<{ n: bigint }>(
        `select count(*) as n from pay_authorizations
          where status = 'authorized'
            and ((payer_participant_id = $2 and payer_customer_id = $1) or card_id in (select id from cards where customer_id = $1 and issuer_participant_id = $2))`,
        [customerId, participantId],
      ),
      // A packet still being funded by the sender's bank, open, or whose rest is going back to that bank holds money.
      q.query<{ n: bigint }>(`select count(*) as n from red_packets where participant_id = $2 and customer_id = $1 and status in ('funding', 'open', 'refunding')`, [customerId, participantId]),
    ]);
    const withMoney = accounts.filter((a) => a.debits_posted !== a.credits_posted || a.debits_pending !== 0n || a.credits_pending !== 0n);
    return {
      accounts: withMoney.map((a) => ({
        accountId: a.id,
        balance: money(a.credits_posted - a.debits_posted, a.currency),
        pendingDebits: money(a.debits_pending, a.currency),
        pendingCredits: money(a.credits_pending, a.currency),
      })),
      pendingCardHolds: Number(holds[0]?.n ?? 0n),
      openRedPackets: Number(packets[0]?.n ?? 0n),
    };
  };

  /** A capped list: the rows, and whether the cap cut it (one more row than the cap is asked for). */
  const capped = async <T extends object>(q: Queryable, name: string, truncated: string[], sql: string, params: unknown[], limit: number = EXPORT_LIMITS.section): Promise<T[]> => {
    const rows = await q.query<T>(`${sql} limit ${limit + 1}`, params);
    if (rows.length > limit) {
      truncated.push(name);
      return rows.slice(0, limit);
    }
    return rows;
  };

  return {
    async exportCustomer(participantId, customerId, actor) {
      return db.transaction(
        async (tx) => {
          const [c] = await tx.query<CustomerRow>('select * from customers where id = $1 and participant_id = $2', [customerId, participantId]);
          if (c === undefined) return err('customer_not_found', 'no such customer');
          const truncated: string[] = [];
          const P = participantId;
          const X = customerId;

          const accounts = await customerAccounts(tx, P, X);
          const accountIds = accounts.map((a) => a.id);

          // Ledger transfers: per account and side, newest first through the statement indexes, then merged.
          const perSide = await Promise.all(
            accountIds.flatMap((id) =>
              (['debit', 'credit'] as const).map((side) =>
                tx
                  .query<{ id: string; kind: string; amount_minor: bigint; currency: string; purpose: string; pending_id: string | null; created_at: Date; seq: bigint }>(
                    `select id, kind, amount_minor, currency, purpose, pending_id, created_at, ${side}_seq as seq
                       from ledger_transfers where ${side}_account_id = $1 order by ${side}_seq desc limit $2`,
                    [id, EXPORT_LIMITS.transfers + 1],
                  )
                  .then((rows) => rows.map((r) => ({ ...r, accountId: id, side }))),
              ),
            ),
          );
          const allTransfers = perSide.flat().sort((a, b) => b.created_at.getTime() - a.created_at.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
          if (allTransfers.length > EXPORT_LIMITS.transfers) truncated.push('ledgerTransfers');
          const ledgerTransfers = allTransfers.slice(0, EXPORT_LIMITS.transfers).map((t) => ({
            id: t.id,
            accountId: t.accountId,
            side: t.side,
            kind: t.kind,
            amount: money(t.amount_minor, t.currency),
            purpose: t.purpose,
            pendingId: t.pending_id,
            createdAt: t.created_at.toISOString(),
          }));

          const cardRows = await tx.query<{
            id: string;
            product_id: string;
            pan_first6: string;
            pan_last4: string;
            pan_length: number;
            expiry: string;
            status: string;
            funding_account_id: string | null;
            credit_limit_minor: bigint | null;
            currency: string;
            card_type: string;
            controls: Record<string, unknown>;
            replaces_card_id: string | null;
            replaced_by_card_id: string | null;
            created_at: Date;
            updated_at: Date;
          }>(
            `select c.id, c.product_id, c.pan_first6, c.pan_last4, p.pan_length, c.expiry, c.status, c.funding_account_id, c.credit_limit_minor, p.currency, p.card_type,
                    c.controls, c.replaces_card_id, c.replaced_by_card_id, c.created_at, c.updated_at
               from cards c join card_products p on p.id = c.product_id
              where c.customer_id = $1 and c.issuer_participant_id = $2 order by c.created_at, c.id limit $3`,
            [X, P, EXPORT_LIMITS.accounts],
          );
          const cardIds = cardRows.map((r) => r.id);
          const cardsOut = cardRows.map((r) => ({
            id: r.id,
            productId: r.product_id,
            type: r.card_type,
            maskedNumber: `${r.pan_first6}${'*'.repeat(Math.max(0, r.pan_length - 10))}${r.pan_last4}`,
            expiry: r.expiry,
            status: r.status,
            fundingAccountId: r.funding_account_id,
            creditLimit: r.credit_limit_minor === null ? null : money(r.credit_limit_minor, r.currency),
            controls: r.controls,
            replacesCardId: r.replaces_card_id,
            replacedByCardId: r.replaced_by_card_id,
            createdAt: r.created_at.toISOString(),
            updatedAt: r.updated_at.toISOString(),
          }));

          // Tokens: the wallet's own tokens for this customer, and (for an issuer) the tokens of this customer's cards at
          // any wallet. Never the token number or key; a token reference only for the wallet's own tokens.
          const tokenRows = await capped<{
            id: string;
            token_ref: string;
            card_id: string;
            issuer_participant_id: string;
            requestor_participant_id: string;
            token_last4: string;
            expiry: string;
            status: string;
            channels: string[];
            device_id: string | null;
            last_used_at: Date | null;
            created_at: Date;
          }>(
            tx,
            'tokens',
            truncated,
            `select id, token_ref, card_id, issuer_participant_id, requestor_participant_id, token_last4, expiry, status, channels, device_id, last_used_at, created_at
               from card_tokens where (customer_id = $1 and requestor_participant_id = $2) or card_id = any($3::text[]) order by created_at, id`,
            [X, P, cardIds],
          );
          const tokens = tokenRows.map((r) => ({
            id: r.id,
            tokenRef: r.requestor_participant_id === P ? r.token_ref : null,
            cardId: r.card_id,
            issuerParticipantId: r.issuer_participant_id,
            walletParticipantId: r.requestor_participant_id,
            last4: r.token_last4,
            expiry: r.expiry,
            status: r.status,
            channels: [...r.channels],
            deviceId: r.requestor_participant_id === P ? r.device_id : null,
            lastUsedAt: iso(r.last_used_at),
            createdAt: r.created_at.toISOString(),
          }));

          const provisioningRows = await capped<{
            id: string;
            card_id: string;
            requestor_participant_id: string;
            issuer_participant_id: string;
            method: string;
            status: string;
            step_up_method: string | null;
            attempts: number;
            expires_at: Date | null;
            token_id: string | null;
            created_at: Date;
            updated_at: Date;
          }>(
            tx,
            'provisionings',
            truncated,
            `select id, card_id, requestor_participant_id, issuer_participant_id, method, status, step_up_method, attempts, expires_at, token_id, created_at, updated_at
               from token_provisionings where (customer_id = $1 and requestor_participant_id = $2) or card_id = any($3::text[]) order by created_at, id`,
            [X, P, cardIds],
          );
          const provisionings = provisioningRows.map((r) => ({
            id: r.id,
            cardId: r.card_id,
            walletParticipantId: r.requestor_participant_id,
            issuerParticipantId: r.issuer_participant_id,
            method: r.method,
            status: r.status,
            stepUpMethod: r.step_up_method,
            attempts: r.attempts,
            expiresAt: iso(r.expires_at),
            tokenId: r.token_id,
            createdAt: r.created_at.toISOString(),
            updatedAt: r.updated_at.toISOString(),
          }));

          const aliasRows = await capped<{ id: string; type: string; value: string; account_id: string; created_at: Date; updated_at: Date }>(
            tx,
            'aliases',
            truncated,
            'select id, type, value, account_id, created_at, updated_at from aliases where participant_id = $1 and customer_id = $2 order by created_at, id',
            [P, X],
          );

          const moveRows = await capped<{ id: string; alias_id: string; to_participant_id: string; to_customer_id: string; status: string; attempts: number; expires_at: Date; created_at: Date }>(
            tx,
            'aliasMoves',
            truncated,
            `select id, alias_id, to_participant_id, to_customer_id, status, attempts, expires_at, created_at from alias_moves
              where (to_participant_id = $1 and to_customer_id = $2) or alias_id = any($3::text[]) order by created_at, id`,
            [P, X, aliasRows.map((a) => a.id)],
          );

          const linkRows = await capped<{ id: string; wallet_participant_id: string; wallet_customer_id: string; bank_participant_id: string; account_id: string; status: string; created_at: Date; revoked_at: Date | null }>(
            tx,
            'accountLinks',
            truncated,
            `select id, wallet_participant_id, wallet_customer_id, bank_participant_id, account_id, status, created_at, revoked_at from account_links
              where (wallet_participant_id = $1 and wallet_customer_id = $2) or (bank_participant_id = $1 and bank_customer_id = $2) order by created_at, id`,
            [P, X],
          );
          const consentRows = await capped<{ id: string; wallet_participant_id: string; wallet_customer_id: string; bank_participant_id: string; currency: string | null; status: string; attempts: number; expires_at: Date; created_at: Date }>(
            tx,
            'accountLinkConsents',
            truncated,
            `select id, wallet_participant_id, wallet_customer_id, bank_participant_id, currency, status, attempts, expires_at, created_at from account_link_consents
              where (wallet_participant_id = $1 and wallet_customer_id = $2) or (bank_participant_id = $1 and bank_customer_id = $2) order by created_at, id`,
            [P, X],
          );
          const role = (r: { wallet_participant_id: string; wallet_customer_id: string }) => (r.wallet_participant_id === P && r.wallet_customer_id === X ? ('wallet' as const) : ('bank' as const));

          // Links to the same person's records elsewhere: which participant, not their id of the person.
          const customerLinkRows = await tx.query<{ id: string; other_participant_id: string; status: string; created_at: Date; revoked_at: Date | null }>(
            'select id, other_participant_id, status, created_at, revoked_at from customer_links where participant_id = $1 and customer_id = $2 order by created_at, id limit 1000',
            [P, X],
          );
          const passkeyRows = await tx.query<{ credential_id: string; created_at: Date; last_used_at: Date | null }>(
            'select credential_id, created_at, last_used_at from customer_passkeys where participant_id = $1 and customer_id = $2 order by created_at limit 100',
            [P, X],
          );

          const paymentRows = await capped<{
            id: string;
            payer_participant_id: string;
            payer_customer_id: string;
            payee_participant_id: string;
            source_account_id: string;
            payee_account_id: string;
            send_minor: bigint;
            send_currency: string;
            receive_minor: bigint;
            receive_currency: string;
            fee_minor: bigint;
            rate: string | null;
            request_id: string | null;
            status: string;
            created_at: Date;
          }>(
            tx,
            'payments',
            truncated,
            `select id, payer_participant_id, payer_customer_id, payee_participant_id, source_account_id, payee_account_id, send_minor, send_currency, receive_minor, receive_currency,
                    fee_minor, rate, request_id, status, created_at
               from payments where (payer_participant_id = $1 and payer_customer_id = $2) or (payee_participant_id = $1 and payee_customer_id = $2)
              order by created_at desc, id`,
            [P, X],
          );
          const payments = paymentRows.map((r) => {
            const asPayer = r.payer_participant_id === P && r.payer_customer_id === X;
            return {
              id: r.id,
              role: asPayer ? ('payer' as const) : ('payee' as const),
              counterpartyParticipantId: asPayer ? r.payee_participant_id : r.payer_participant_id,
              accountId: asPayer ? r.source_account_id : r.payee_account_id,
              sent: money(r.send_minor, r.send_currency),
              received: money(r.receive_minor, r.receive_currency),
              fee: money(r.fee_minor, r.send_currency),
              rate: r.rate,
              requestId: r.request_id,
              status: r.status,
              createdAt: r.created_at.toISOString(),
            };
          });

          const quoteRows = await capped<{
            id: string;
            payer_participant_id: string;
            payer_customer_id: string;
            payee_participant_id: string;
            send_minor: bigint;
            send_currency: string;
            receive_minor: bigint;
            receive_currency: string;
            fee_minor: bigint;
            rate: string | null;
            status: string;
            request_id: string | null;
            expires_at: Date;
            created_at: Date;
          }>(
            tx,
            'quotes',
            truncated,
            `select id, payer_participant_id, payer_customer_id, payee_participant_id, send_minor, send_currency, receive_minor, receive_currency, fee_minor, rate, status, request_id,
                    expires_at, created_at
               from quotes where (payer_participant_id = $1 and payer_customer_id = $2) or (payee_participant_id = $1 and payee_customer_id = $2)
              order by created_at desc, id`,
            [P, X],
          );
          const quotes = quoteRows.map((r) => {
            const asPayer = r.payer_participant_id === P && r.payer_customer_id === X;
            return {
              id: r.id,
              role: asPayer ? ('payer' as const) : ('payee' as const),
              counterpartyParticipantId: asPayer ? r.payee_participant_id : r.payer_participant_id,
              send: money(r.send_minor, r.send_currency),
              receive: money(r.receive_minor, r.receive_currency),
              fee: money(r.fee_minor, r.send_currency),
              rate: r.rate,
              status: r.status,
              requestId: r.request_id,
              expiresAt: r.expires_at.toISOString(),
              createdAt: r.created_at.toISOString(),
            };
          });

          const requestRows = await capped<{
            id: string;
            requester_participant_id: string;
            requester_customer_id: string;
            payer_participant_id: string;
            amount_minor: bigint;
            currency: string;
            note: string | null;
            status: string;
            split_id: string | null;
            payment_id: string | null;
            expires_at: Date;
            created_at: Date;
          }>(
            tx,
            'moneyRequests',
            truncated,
            `select id, requester_participant_id, requester_customer_id, payer_participant_id, amount_minor, currency, note, status, split_id, payment_id, expires_at, created_at
               from money_requests where (requester_participant_id = $1 and requester_customer_id = $2) or (payer_participant_id = $1 and payer_customer_id = $2)
              order by created_at desc, id`,
            [P, X],
          );
          const moneyRequests = requestRows.map((r) => {
            const asRequester = r.requester_participant_id === P && r.requester_customer_id === X;
            return {
              id: r.id,
              role: asRequester ? ('requester' as const) : ('payer' as const),
              counterpartyParticipantId: asRequester ? r.payer_participant_id : r.requester_participant_id,
              amount: money(r.amount_minor, r.currency),
              note: r.note,
              status: r.status,
              splitId: r.split_id,
              paymentId: r.payment_id,
              expiresAt: r.expires_at.toISOString(),
              createdAt: r.created_at.toISOString(),
            };
          });

          const splitRows = await capped<{ id: string; created_by_customer: boolean; total_minor: bigint; currency: string; method: string; note: string | null; share_minor: bigint | null; created_at: Date }>(
            tx,
            'splits',
            truncated,
            `select s.id, (s.participant_id = $1 and s.customer_id = $2) as created_by_customer, s.total_minor, s.currency, s.method, s.note,
                    (select sum(m.amount_minor) from bill_split_members m where m.split_id = s.id and m.participant_id = $1 and m.customer_id = $2)::int8 as share_minor, s.created_at
               from bill_splits s
              where (s.participant_id = $1 and s.customer_id = $2)
                 or s.id in (select split_id from bill_split_members where participant_id = $1 and customer_id = $2)
              order by s.created_at desc, s.id`,
            [P, X],
          );
          const splits = splitRows.map((r) => ({
            id: r.id,
            role: r.created_by_customer ? ('creator' as const) : ('member' as const),
            total: money(r.total_minor, r.currency),
            share: r.share_minor === null ? null : money(r.share_minor, r.currency),
            method: r.method,
            note: r.note,
            createdAt: r.created_at.toISOString(),
          }));

          const packetRows = await capped<{
            id: string;
            sent_by_customer: boolean;
            total_minor: bigint;
            currency: string;
            share_count: number;
            mode: string;
            message: string | null;
            status: string;
            refunded_minor: bigint;
            claimed_minor: bigint | null;
            claimed_at: Date | null;
            expires_at: Date;
            created_at: Date;
          }>(
            tx,
            'redPackets',
            truncated,
            `select p.id, (p.participant_id = $1 and p.customer_id = $2) as sent_by_customer, p.total_minor, p.currency, p.share_count, p.mode, p.message, p.status,
                    p.refunded_minor, m.claimed_minor, m.claimed_at, p.expires_at, p.created_at
               from red_packets p left join red_packet_members m on m.packet_id = p.id and m.participant_id = $1 and m.customer_id = $2
              where (p.participant_id = $1 and p.customer_id = $2) or m.packet_id is not null
              order by p.created_at desc, p.id`,
            [P, X],
          );
          const redPackets = packetRows.map((r) => ({
            id: r.id,
            role: r.sent_by_customer ? ('sender' as const) : ('recipient' as const),
            total: money(r.total_minor, r.currency),
            shares: r.share_count,
            mode: r.mode,
            message: r.message,
            status: r.status,
            claimed: r.claimed_minor === null ? null : money(r.claimed_minor, r.currency),
            claimedAt: iso(r.claimed_at),
            refunded: r.sent_by_customer ? money(r.refunded_minor, r.currency) : null,
            expiresAt: r.expires_at.toISOString(),
            createdAt: r.created_at.toISOString(),
          }));

          const cardPaymentRows = await capped<{
            id: string;
            merchant_id: string;
            channel: string;
            status: string;
            source_kind: string;
            card_id: string | null;
            token_id: string | null;
            payer_participant_id: string | null;
            payer_customer_id: string | null;
            amount_minor: bigint;
            captured_minor: bigint;
            refunded_minor: bigint;
            currency: string;
            auth_code: string;
            decided_by: string;
            country: string;
            mcc: string;
            created_at: Date;
            updated_at: Date;
          }>(
            tx,
            'cardPayments',
            truncated,
            `select id, merchant_id, channel, status, source_kind, card_id, token_id, payer_participant_id, payer_customer_id, amount_minor, captured_minor, refunded_minor, currency,
                    auth_code, decided_by, country, mcc, created_at, updated_at
               from pay_authorizations where (payer_participant_id = $1 and payer_customer_id = $2) or card_id = any($3::text[])
              order by created_at desc, id`,
            [P, X, cardIds],
          );
          const cardPayments = cardPaymentRows.map((r) => ({
            id: r.id,
            role: r.payer_participant_id === P && r.payer_customer_id === X ? ('payer' as const) : ('cardholder' as const),
            merchantId: r.merchant_id,
            channel: r.channel,
            status: r.status,
            sourceKind: r.source_kind,
            cardId: r.card_id !== null && cardIds.includes(r.card_id) ? r.card_id : null,
            amount: money(r.amount_minor, r.currency),
            captured: money(r.captured_minor, r.currency),
            refunded: money(r.refunded_minor, r.currency),
            authCode: r.auth_code,
            decidedBy: r.decided_by,
            country: r.country,
            mcc: r.mcc,
            createdAt: r.created_at.toISOString(),
            updatedAt: r.updated_at.toISOString(),
          }));

          const blockRows = await capped<{ blocked_participant_id: string; created_at: Date }>(
            tx,
            'payerBlocks',
            truncated,
            'select blocked_participant_id, created_at from payer_blocks where payer_participant_id = $1 and payer_customer_id = $2 order by created_at, blocked_participant_id',
            [P, X],
          );
          const observationRows = await capped<{ channel: string; ref_eur_cents: bigint; at: Date }>(
            tx,
            'riskObservations',
            truncated,
            'select channel, ref_eur_cents, at from risk_observations where participant_id = $1 and customer_id = $2 order by at desc, id desc',
            [P, X],
          );

          const alertRows = await capped<{ id: string; channel: string; decision: string; score: number; reasons: Record<string, unknown>[]; status: string; resolution: string | null; created_at: Date; resolved_at: Date | null }>(
            tx,
            'riskAlerts',
            truncated,
            'select id, channel, decision, score, reasons, status, resolution, created_at, resolved_at from risk_alerts where participant_id = $1 and customer_id = $2 order by created_at desc, id',
            [P, X],
          );
          const riskAlerts = alertRows.map((r) => ({
            id: r.id,
            channel: r.channel,
            decision: r.decision,
            score: r.score,
            reasons: r.reasons,
            status: r.status,
            resolution: r.resolution,
            createdAt: r.created_at.toISOString(),
            resolvedAt: iso(r.resolved_at),
          }));

          const [authenticator] = await tx.query<{ created_at: Date }>('select created_at from customer_authenticators where participant_id = $1 and customer_id = $2', [P, X]);

          // Audit records naming the customer: as the acting customer, as the object, in the details, or about one of
          // their objects (cards, tokens, accounts, aliases, provisionings, payments, requests, packets, splits, links).
          const objects: [string, string][] = [
            ['customer', X],
            ...cardIds.map((id): [string, string] => ['card', id]),
            ...tokenRows.map((t): [string, string] => ['token', t.id]),
            ...accountIds.flatMap((id): [string, string][] => [
              ['account', id],
              ['ledger_account', id],
            ]),
            ...aliasRows.map((a): [string, string] => ['alias', a.id]),
            ...provisioningRows.map((p): [string, string] => ['token_provisioning', p.id]),
            ...paymentRows.map((p): [string, string] => ['payment', p.id]),
            ...cardPaymentRows.map((p): [string, string] => ['payment', p.id]),
            ...requestRows.map((r): [string, string] => ['money_request', r.id]),
            ...moveRows.map((r): [string, string] => ['alias', r.alias_id]),
            ...packetRows.map((r): [string, string] => ['red_packet', r.id]),
            ...splitRows.map((r): [string, string] => ['bill_split', r.id]),
            ...linkRows.map((r): [string, string] => ['account_link', r.id]),
            ...consentRows.map((r): [string, string] => ['account_link_consent', r.id]),
            ...alertRows.map((r): [string, string] => ['risk_alert', r.id]),
          ];
          const auditRows = await capped<{
            id: bigint;
            at: Date;
            actor_type: string;
            actor_participant_id: string | null;
            actor_customer_id: string | null;
            action: string;
            object_type: string;
            object_id: string;
            details: Record<string, unknown>;
          }>(
            tx,
            'auditRecords',
            truncated,
            `select id, at, actor_type, actor_participant_id, actor_customer_id, action, object_type, object_id, details from audit_log
              where id in (select a.id from audit_log a join unnest($1::text[], $2::text[]) as o(object_type, object_id) on a.object_type = o.object_type and a.object_id = o.object_id
                           union
                           select a.id from audit_log a where a.actor_participant_id = $3 and (a.actor_customer_id = $4 or a.details->>'customerId' = $4))
              order by id desc`,
            [objects.map((o) => o[0]), objects.map((o) => o[1]), P, X],
            EXPORT_LIMITS.audit,
          );
          // A record another participant wrote about one of the customer's objects (a wallet adding their card) may name
          // that participant's own customer: that id is theirs, not part of this export.
          const auditRecords = auditRows.map((r) => {
            const own = r.actor_participant_id === P;
            const { customerId: detailsCustomer, ...otherDetails } = r.details;
            return {
              id: r.id.toString(),
              at: r.at.toISOString(),
              actor: { type: r.actor_type, participantId: r.actor_participant_id, customerId: own || r.actor_customer_id === X ? r.actor_customer_id : null },
              action: r.action,
              object: { type: r.object_type, id: r.object_id },
              details: own || detailsCustomer === undefined || detailsCustomer === X ? r.details : otherDetails,
            };
          });

          const erased = await erasedAt(tx, X);
          // Reading a person's data is itself recorded (who exported whose data, when).
          await audit.record(tx, { actor, action: 'customer.exported', objectType: 'customer', objectId: X, details: { truncated } });

          const notes = [
            `Lists hold at most ${EXPORT_LIMITS.section} entries (ledger transfers and audit records ${EXPORT_LIMITS.transfers}, most recent first); a list cut there is named in "truncated".`,
            'Every ledger transfer of an account, however old, is in its statement: GET /v1/ledger/accounts/{accountId}/statement.',
            'Counterparties are named by their participant only; card numbers are masked; token numbers, token keys, authenticator seeds and one-time codes are never exported.',
            'Webhook events the hub sent you about this customer are not repeated here (GET /v1/webhooks/deliveries).',
          ];
          return ok({
            exportedAt: clock.now().toISOString(),
            customer: { id: c.id, externalId: c.external_id, name: c.name, phone: c.phone, kycLevel: c.kyc_level, createdAt: c.created_at.toISOString(), erasedAt: iso(erased) },
            accounts: accounts.map((a) => ({
              id: a.id,
              kind: a.kind,
              currency: a.currency,
              closed: a.closed,
              balance: money(a.credits_posted - a.debits_posted, a.currency),
              pendingDebits: money(a.debits_pending, a.currency),
              pendingCredits: money(a.credits_pending, a.currency),
              createdAt: a.created_at.toISOString(),
            })),
            ledgerTransfers,
            cards: cardsOut,
            tokens,
            provisionings,
            aliases: aliasRows.map((a) => ({ id: a.id, type: a.type, value: a.value, accountId: a.account_id, createdAt: a.created_at.toISOString(), updatedAt: a.updated_at.toISOString() })),
            aliasMoves: moveRows.map((r) => ({
              id: r.id,
              aliasId: r.alias_id,
              direction: r.to_participant_id === P && r.to_customer_id === X ? ('in' as const) : ('out' as const),
              toParticipantId: r.to_participant_id,
              status: r.status,
              attempts: r.attempts,
              expiresAt: r.expires_at.toISOString(),
              createdAt: r.created_at.toISOString(),
            })),
            accountLinks: linkRows.map((r) => ({
              id: r.id,
              role: role(r),
              walletParticipantId: r.wallet_participant_id,
              bankParticipantId: r.bank_participant_id,
              accountId: r.account_id,
              status: r.status,
              createdAt: r.created_at.toISOString(),
              revokedAt: iso(r.revoked_at),
            })),
            accountLinkConsents: consentRows.map((r) => ({
              id: r.id,
              role: role(r),
              walletParticipantId: r.wallet_participant_id,
              bankParticipantId: r.bank_participant_id,
              currency: r.currency,
              status: r.status,
              attempts: r.attempts,
              expiresAt: r.expires_at.toISOString(),
              createdAt: r.created_at.toISOString(),
            })),
            customerLinks: customerLinkRows.map((r) => ({ linkId: r.id, otherParticipantId: r.other_participant_id, status: r.status, createdAt: r.created_at.toISOString(), revokedAt: r.revoked_at?.toISOString() ?? null })),
            passkeys: passkeyRows.map((r) => ({ credentialId: r.credential_id, createdAt: r.created_at.toISOString(), lastUsedAt: r.last_used_at?.toISOString() ?? null })),
            payments,
            quotes,
            moneyRequests,
            splits,
            redPackets,
            cardPayments,
            payerBlocks: blockRows.map((r) => ({ blockedParticipantId: r.blocked_participant_id, createdAt: r.created_at.toISOString() })),
            riskObservations: observationRows.map((r) => ({ channel: r.channel, amount: { amount: formatMoney(r.ref_eur_cents, 'EUR').amount, currency: 'EUR' as const }, at: r.at.toISOString() })),
            riskAlerts,
            authenticator: { enrolled: authenticator !== undefined, enrolledAt: iso(authenticator?.created_at ?? null) },
            auditRecords,
            truncated,
            notes,
          });
        },
        { isolation: 'repeatable read', retries: 3 },
      );
    },

    async erase(tx, actor, participantId, customerId) {
      const P = participantId;
      const X = customerId;
      const [c] = await tx.query<CustomerRow>('select * from customers where id = $1 and participant_id = $2 for update', [X, P]);
      if (c === undefined) return err('customer_not_found', 'no such customer');
      const already = await erasedAt(tx, X);
      if (already !== null) {
        return ok({
          customer: toCustomer(c),
          erasedAt: already,
          alreadyErased: true,
          removed: { aliases: 0, authenticators: 0, customerLinks: 0, passkeys: 0, pendingConsents: 0, accountLinksRevoked: 0, tokensDeleted: 0, cardsCancelled: 0, provisioningsExpired: 0, storedResponsesScrubbed: 0 },
        });
      }

      const held = await fundsHeld(tx, P, X);
      if (held.accounts.length > 0 || held.pendingCardHolds > 0 || held.openRedPackets > 0) {
        const what = [
          held.accounts.length > 0 ? `a balance or pending amount on ${held.accounts.map((a) => a.accountId).join(', ')}` : undefined,
          held.pendingCardHolds > 0 ? `${held.pendingCardHolds} pending card hold(s)` : undefined,
          held.openRedPackets > 0 ? `${held.openRedPackets} open red packet(s)` : undefined,
        ].filter((s) => s !== undefined);
        return err('customer_has_balance', `the customer still holds money: ${what.join('; ')}. Pay out or settle it first, then erase`, held);
      }

      const now = clock.now();
      const pseudonym = `erased_${(await vault.indexHash(`customer-erasure:v1:${P}:${c.external_id}`)).slice(0, 32)}`;

      // Cards (issuer side): cancelled through the card lifecycle, which deletes their tokens at every wallet and tells
      // each wallet. Tokens (wallet side): deleted as the wallet would, which tells the issuer.
      const cancellable = await tx.query<{ id: string }>(
        `select id from cards where customer_id = $1 and issuer_participant_id = $2 and status not in ('replaced', 'cancelled') order by id`,
        [X, P],
      );
      for (const card of cancellable) {
        const cancelled = await cards.transition(tx, actor, P, card.id, 'cancel');
        if (!cancelled.ok) throw new Error(`erasure: cancelling card ${card.id}: ${cancelled.error.code}`);
      }
      const walletTokenRefs = await tx.query<{ token_ref: string }>(
        `select token_ref from card_tokens where customer_id = $1 and requestor_participant_id = $2 and status <> 'deleted' order by id`,
        [X, P],
      );
      for (const { token_ref } of walletTokenRefs) {
        const token = await walletTokens.getForWallet(P, token_ref, tx);
        if (token === undefined) throw new Error('erasure: token vanished');
        const deleted = await walletTokens.act(tx, actor, { kind: 'wallet', participantId: P }, token, 'delete');
        if (!deleted.ok) throw new Error(`erasure: deleting token ${token.id}: ${deleted.error.code}`);
      }
      const expired = await tx.query<{ id: string }>(
        `update token_provisionings set status = 'expired', updated_at = $3
          where status = 'pending_step_up'
            and ((customer_id = $1 and requestor_participant_id = $2) or card_id in (select id from cards where customer_id = $1 and issuer_participant_id = $2))
         returning id`,
        [X, P, now],
      );

      // Aliases point others at the person (a phone number, an e-mail, a handle): removed, with their pending moves and
      // the flags on them, and moves that would point an alias at this customer.
      const aliases = await tx.query<{ id: string; value: string }>('delete from aliases where participant_id = $1 and customer_id = $2 returning id, value', [P, X]);
      const aliasIds = aliases.map((a) => a.id);
      await tx.query(`delete from alias_moves where status = 'pending' and (alias_id = any($1::text[]) or (to_participant_id = $2 and to_customer_id = $3))`, [aliasIds, P, X]);
      await tx.query('delete from alias_flags where alias_id = any($1::text[])', [aliasIds]);

      const authenticators = await tx.query<{ customer_id: string }>('delete from customer_authenticators where participant_id = $1 and customer_id = $2 returning customer_id', [P, X]);
      // Links to the person's records elsewhere: revoked on both sides (both told), and link consents in flight dropped.
      const customerLinks = await tx.query<{ id: string; participant_id: string; customer_id: string }>(
        `update customer_links set status = 'revoked', revoked_at = $3, revoked_by = $1
          where status = 'active' and id in (select id from customer_links where participant_id = $1 and customer_id = $2)
         returning id, participant_id, customer_id`,
        [P, X, now],
      );
      for (const l of customerLinks) await events.emit(tx, { participantId: l.participant_id, type: 'customer_link.revoked', data: { linkId: l.id, customerId: l.customer_id, by: P, reason: 'customer_erased' } });
      await tx.query(`delete from customer_link_consents where status = 'pending' and ((participant_id = $1 and customer_id = $2) or (other_participant_id = $1 and other_customer_id = $2))`, [P, X]);
      const passkeys = await tx.query<{ credential_id: string }>('delete from customer_passkeys where participant_id = $1 and customer_id = $2 returning credential_id', [P, X]);
      await tx.query(`delete from passkey_registrations where participant_id = $1 and customer_id = $2`, [P, X]);
      await tx.query(`update step_up_challenges set status = 'expired', code_hash = null, webauthn_challenge = null where participant_id = $1 and customer_id = $2 and status in ('pending', 'completed')`, [P, X]);
      const consents = await tx.query<{ id: string }>(
        `delete from account_link_consents
          where status = 'pending' and ((wallet_participant_id = $1 and wallet_customer_id = $2) or (bank_participant_id = $1 and bank_customer_id = $2))
         returning id`,
        [P, X],
      );
      // Active account links give a wallet access to the person's bank accounts (or the bank's accounts to a wallet):
      // revoked as either side would revoke them, both sides told.
      const links = await tx.query<{ id: string; wallet_participant_id: string; bank_participant_id: string }>(
        `update account_links set status = 'revoked', revoked_at = $3
          where status = 'active' and ((wallet_participant_id = $1 and wallet_customer_id = $2) or (bank_participant_id = $1 and bank_customer_id = $2))
         returning id, wallet_participant_id, bank_participant_id`,
        [P, X, now],
      );
      for (const link of links) {
        await audit.record(tx, { actor, action: 'account_link.revoked', objectType: 'account_link', objectId: link.id, details: { reason: 'customer_erased' } });
        for (const p of [link.wallet_participant_id, link.bank_participant_id]) await events.emit(tx, { participantId: p, type: 'account_link.revoked', data: { linkId: link.id } });
      }

      const [updated] = await tx.query<CustomerRow>('update customers set name = $3, phone = null, external_id = $4 where id = $1 and participant_id = $2 returning *', [X, P, ERASED_NAME, pseudonym]);
      if (updated === undefined) throw new Error('erasure: customer vanished');

      const scrubbed = await scrubStoredResponses(tx, P, X, {
        name: c.name,
        phone: c.phone,
        externalId: c.external_id,
        pseudonym,
        aliasValues: aliases.map((a) => a.value),
      });

      const removed = {
        aliases: aliases.length,
        authenticators: authenticators.length,
        customerLinks: customerLinks.filter((l) => l.participant_id === P && l.customer_id === X).length,
        passkeys: passkeys.length,
        pendingConsents: consents.length,
        accountLinksRevoked: links.length,
        tokensDeleted: walletTokenRefs.length,
        cardsCancelled: cancellable.length,
        provisioningsExpired: expired.length,
        storedResponsesScrubbed: scrubbed,
      };
      await audit.record(tx, { actor, action: 'customer.erased', objectType: 'customer', objectId: X, details: { externalId: pseudonym, removed } });
      await events.emit(tx, { participantId: P, type: 'customer.erased', data: { customerId: X, externalId: pseudonym, erasedAt: now.toISOString() } });
      return ok({ customer: toCustomer(updated), erasedAt: now, alreadyErased: false, removed });
    },
  };
}

/**
 * Scrubs the customer's personal data from the participant's stored idempotent answers (kept 48 hours so that a retry
 * replays them): the answers that name the customer's id (their creation, their aliases…) get the old name and phone
 * replaced wherever they appear in a string, the old external id and alias values where they are a whole value.
 * Answers that do not name the customer are left alone, even if they carry the same name (another person may have it).
 */
async function scrubStoredResponses(
  tx: Queryable,
  participantId: string,
  customerId: string,
  personal: { name: string; phone: string | null; externalId: string; pseudonym: string; aliasValues: readonly string[] },
): Promise<number> {
  const rows = await tx.query<{ key: string; response_body: unknown }>(
    `select key, response_body from idempotency_keys
      where scope = $1 and response_body is not null and response_body::text like $2
      order by key limit $3 for update`,
    [participantId, likeInJson(customerId), MAX_SCRUBBED_RESPONSES],
  );
  // Whole values: the old external id becomes the pseudonym, the phone null (as on the record), an alias value a marker.
  const whole = new Map<string, string | null>([[personal.externalId, personal.pseudonym], ...personal.aliasValues.map((v): [string, string] => [v, ERASED_VALUE])]);
  if (personal.phone !== null) whole.set(personal.phone, null);
  whole.set(personal.name, ERASED_NAME);
  // Inside longer strings (a message that quotes them): the name and the phone.
  const inside: [string, string][] = [[personal.name, ERASED_NAME], ...(personal.phone !== null ? [[personal.phone, ERASED_VALUE] as [string, string]] : [])];
  const replace = (s: string): string | null => {
    if (whole.has(s)) return whole.get(s) ?? null;
    let out = s;
    for (const [from, to] of inside) if (from !== '' && out.includes(from)) out = out.split(from).join(to);
    return out;
  };
  let changed = 0;
  for (const row of rows) {
    const scrubbed = scrubJson(row.response_body, replace);
    if (!scrubbed.changed) continue;
    await tx.query('update idempotency_keys set response_body = $3 where scope = $1 and key = $2', [participantId, row.key, scrubbed.value]);
    changed++;
  }
  return changed;
}
