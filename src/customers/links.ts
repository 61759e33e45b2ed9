import { timingSafeEqual } from 'node:crypto';
import type { Actor, AuditService } from '../audit/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import type { Vault } from '../platform/vault.ts';
import { newOneTimeCode, sealForParticipant } from '../platform/recipient-seal.ts';
import type { EventOutbox } from '../webhooks/index.ts';

/**
 * Customer links: one person's records at two participants, linked only with that person's consent on BOTH sides.
 * - In participant A's app the customer asks to link their record at participant B (A's side: the customer's own
 *   request, in a customer session or through A's back end).
 * - The hub finds B's customer with the same verified phone number and asks B to deliver a one-time code to that
 *   customer (webhook `customer_link.consent_requested`, the code sealed to B): only someone B authenticates as that
 *   customer sees it (B's side).
 * - The customer types the code into A's app: the link is made, both participants are told, and either side (or the
 *   customer in either app) can revoke it at any time.
 * A link is what lets one participant name the other's objects for that person (a card held at the bank, a token in
 * the other wallet: see the grants in src/cards/refs.ts and src/cards/token-refs.ts) and what merges their histories.
 * Possessing a card (a step-up code) proves the card, never the person: it links nothing.
 */
export type CustomerLinkErrorCode =
  | 'link_customer_not_found'
  | 'customer_link_exists'
  | 'customer_link_not_found'
  | 'customer_link_consent_not_found'
  | 'customer_link_consent_expired'
  | 'customer_link_consent_locked'
  | 'customer_link_code_invalid';

type LErr = DomainError<CustomerLinkErrorCode | 'customer_not_found'>;

export const LINK_CONSENT_TTL_MS = 10 * 60_000;
export const LINK_CONSENT_MAX_ATTEMPTS = 5;
/** Links one customer record may hold (each link widens what the other side may name). */
export const MAX_LINKS_PER_CUSTOMER = 20;

export interface CustomerLink {
  readonly id: string;
  readonly customerId: string;
  readonly other: { readonly participantId: string; readonly participantName: string; readonly customerId: string };
  readonly status: 'active' | 'revoked';
  readonly createdAt: Date;
  readonly revokedAt: Date | null;
}

export interface LinkConsent {
  readonly id: string;
  readonly status: 'pending' | 'confirmed' | 'failed' | 'expired';
  readonly otherParticipantId: string;
  readonly expiresAt: Date;
}

export interface CustomerLinkService {
  request(tx: Queryable, actor: Actor, input: { participantId: string; customerId: string; otherParticipantId: string }): Promise<Result<LinkConsent, LErr>>;
  confirm(tx: Queryable, actor: Actor, participantId: string, consentId: string, code: string): Promise<Result<CustomerLink, LErr>>;
  list(participantId: string, customerId: string): Promise<CustomerLink[]>;
  revoke(tx: Queryable, actor: Actor, participantId: string, linkId: string): Promise<Result<CustomerLink, LErr>>;
  /** The records actively linked to this one (direct links only), for merged histories. */
  linked(participantId: string, customerId: string, q?: Queryable): Promise<{ participantId: string; customerId: string }[]>;
  /** Counts a wrong code outside the refused request's transaction (which rolls back). */
  /** Takes one of the consent code's tries before it is checked (see the step-up challenges' takeTry): every try counts. */
  takeTry(consentId: string): Promise<void>;
}

interface LinkRow {
  id: string;
  participant_id: string;
  customer_id: string;
  other_participant_id: string;
  other_customer_id: string;
  other_name: string;
  status: 'active' | 'revoked';
  created_at: Date;
  revoked_at: Date | null;
}

const toLink = (r: LinkRow): CustomerLink => ({
  id: r.id,
  customerId: r.customer_id,
  other: { participantId: r.other_participant_id, participantName: r.other_name, customerId: r.other_customer_id },
  status: r.status,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

const LINK_SELECT = `select l.*, p.name as other_name from customer_links l join participants p on p.id = l.other_participant_id`;

export function createCustomerLinkService(deps: { db: Db; clock: Clock; vault: Vault; audit: AuditService; events: EventOutbox }): CustomerLinkService {
  const { db, clock, vault, audit, events } = deps;
  const codeHash = (consentId: string, code: string) => vault.indexHash(`customer-link:${consentId}:${code}`);

  return {
    async request(tx, actor, input) {
      const [me] = await tx.query<{ phone: string | null; name: string }>(
        `select c.phone, p.name from customers c join participants p on p.id = c.participant_id where c.id = $1 and c.participant_id = $2`,
        [input.customerId, input.participantId],
      );
      if (me === undefined) return err('customer_not_found', 'no such customer');
      if (input.otherParticipantId === input.participantId) return err('link_customer_not_found', 'link a record at another participant');
      // The same person at the other participant: found by the verified phone number both hold; the code that only the
      // other participant's authenticated customer receives is what proves it.
      const [other] =
        me.phone === null
          ? []
          : await tx.query<{ id: string }>('select id from customers where participant_id = $1 and phone = $2 order by id limit 1', [input.otherParticipantId, me.phone]);
      if (other === undefined) return err('link_customer_not_found', 'the other participant has no customer with this phone number', { participantId: input.otherParticipantId });
      const [existing] = await tx.query<{ id: string }>(
        `select id from customer_links where participant_id = $1 and customer_id = $2 and other_participant_id = $3 and other_customer_id = $4 and status = 'active'`,
        [input.participantId, input.customerId, input.otherParticipantId, other.id],
      );
      if (existing !== undefined) return err('customer_link_exists', 'these records are linked already', { linkId: existing.id });
      const [{ n } = { n: 0n }] = await tx.query<{ n: bigint }>(`select count(*) as n from customer_links where participant_id = $1 and customer_id = $2 and status = 'active'`, [input.participantId, input.customerId]);
      if (n >= BigInt(MAX_LINKS_PER_CUSTOMER)) return err('customer_link_exists', `a customer record holds at most ${MAX_LINKS_PER_CUSTOMER} links; revoke one first`);
      const id = newId('clc');
      const code = newOneTimeCode();
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + LINK_CONSENT_TTL_MS);
      await tx.query(
        `insert into customer_link_consents (id, participant_id, customer_id, other_participant_id, other_customer_id, code_hash, status, expires_at, created_at)
         values ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)`,
        [id, input.participantId, input.customerId, input.otherParticipantId, other.id, await codeHash(id, code), expiresAt, now],
      );
      await audit.record(tx, { actor, action: 'customer_link.consent_requested', objectType: 'customer_link_consent', objectId: id, details: { otherParticipantId: input.otherParticipantId } });
      await events.emit(tx, {
        participantId: input.otherParticipantId,
        type: 'customer_link.consent_requested',
        data: {
          consentId: id,
          customerId: other.id,
          requesterName: me.name,
          expiresAt: expiresAt.toISOString(),
          // Show it only to this customer, after you authenticated them: with it they link their record at the requester.
          codeSealed: await sealForParticipant(tx, vault, input.otherParticipantId, code, id),
        },
      });
      return ok({ id, status: 'pending', otherParticipantId: input.otherParticipantId, expiresAt });
    },

    async confirm(tx, actor, participantId, consentId, code) {
      const [c] = await tx.query<{ customer_id: string; other_participant_id: string; other_customer_id: string; code_hash: string; attempts: number; status: string; expires_at: Date }>(
        'select * from customer_link_consents where id = $1 and participant_id = $2 for update',
        [consentId, participantId],
      );
      if (c === undefined) return err('customer_link_consent_not_found', 'no such consent');
      if (c.status !== 'pending') return err(c.status === 'expired' ? 'customer_link_consent_expired' : 'customer_link_consent_locked', `the consent is ${c.status}`);
      if (c.expires_at.getTime() <= clock.nowMs()) return err('customer_link_consent_expired', 'the code expired; ask for a new one');
      // This request's try was taken already (takeTry).
      if (c.attempts > LINK_CONSENT_MAX_ATTEMPTS) return err('customer_link_consent_locked', 'too many wrong codes; ask for a new one');
      const given = Buffer.from(await codeHash(consentId, code));
      const expected = Buffer.from(c.code_hash);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return err('customer_link_code_invalid', 'wrong code', { attemptsRemaining: Math.max(0, LINK_CONSENT_MAX_ATTEMPTS - c.attempts) });
      }
      await tx.query(`update customer_link_consents set status = 'confirmed', code_hash = '' where id = $1`, [consentId]);
      const id = newId('cln');
      const now = clock.now();
      // Both sides' rows, in one statement; an active link between the two records already made meanwhile wins.
      const rows = await tx.query<{ id: string }>(
        `insert into customer_links (id, participant_id, customer_id, other_participant_id, other_customer_id, consent_id, status, created_at)
         select $1, v.p, v.c, v.op, v.oc, $6, 'active', $7
           from (values ($2, $3, $4, $5), ($4, $5, $2, $3)) as v(p, c, op, oc)
          where not exists (select 1 from customer_links x where x.participant_id = $2 and x.customer_id = $3 and x.other_participant_id = $4 and x.other_customer_id = $5 and x.status = 'active')
         returning id`,
        [id, participantId, c.customer_id, c.other_participant_id, c.other_customer_id, consentId, now],
      );
      if (rows.length === 0) return err('customer_link_exists', 'these records are linked already');
      await audit.record(tx, { actor, action: 'customer_link.created', objectType: 'customer_link', objectId: id, details: { consentId, otherParticipantId: c.other_participant_id } });
      await events.emit(tx, { participantId, type: 'customer_link.created', data: { linkId: id, customerId: c.customer_id, otherParticipantId: c.other_participant_id } });
      await events.emit(tx, { participantId: c.other_participant_id, type: 'customer_link.created', data: { linkId: id, customerId: c.other_customer_id, otherParticipantId: participantId } });
      const [link] = await tx.query<LinkRow>(`${LINK_SELECT} where l.id = $1 and l.participant_id = $2`, [id, participantId]);
      if (link === undefined) throw new Error('link vanished');
      return ok(toLink(link));
    },

    async list(participantId, customerId) {
      const rows = await db.query<LinkRow>(`${LINK_SELECT} where l.participant_id = $1 and l.customer_id = $2 order by l.created_at desc, l.id limit $3`, [participantId, customerId, MAX_LINKS_PER_CUSTOMER * 5]);
      return rows.map(toLink);
    },

    async revoke(tx, actor, participantId, linkId) {
      const rows = await tx.query<{ participant_id: string; customer_id: string }>(
        `update customer_links set status = 'revoked', revoked_at = $3, revoked_by = $2
          where id = $1 and status = 'active' and exists (select 1 from customer_links mine where mine.id = $1 and mine.participant_id = $2)
          returning participant_id, customer_id`,
        [linkId, participantId, clock.now()],
      );
      const [mine] = await tx.query<LinkRow>(`${LINK_SELECT} where l.id = $1 and l.participant_id = $2`, [linkId, participantId]);
      if (mine === undefined) return err('customer_link_not_found', 'no such link');
      if (rows.length > 0) {
        await audit.record(tx, { actor, action: 'customer_link.revoked', objectType: 'customer_link', objectId: linkId });
        for (const r of rows) await events.emit(tx, { participantId: r.participant_id, type: 'customer_link.revoked', data: { linkId, customerId: r.customer_id, by: participantId } });
      }
      return ok(toLink(mine));
    },

    async linked(participantId, customerId, q = db) {
      const rows = await q.query<{ other_participant_id: string; other_customer_id: string }>(
        `select other_participant_id, other_customer_id from customer_links where participant_id = $1 and customer_id = $2 and status = 'active' order by created_at limit $3`,
        [participantId, customerId, MAX_LINKS_PER_CUSTOMER],
      );
      return rows.map((r) => ({ participantId: r.other_participant_id, customerId: r.other_customer_id }));
    },

    async takeTry(consentId) {
      await db.query(`update customer_link_consents set attempts = attempts + 1, status = case when attempts + 1 > $2 then 'failed' else status end where id = $1 and status = 'pending'`, [
        consentId,
        LINK_CONSENT_MAX_ATTEMPTS,
      ]);
    },
  };
}
