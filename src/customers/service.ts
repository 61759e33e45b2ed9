import { parsePhoneNumberFromString } from 'libphonenumber-js';
import type { Actor, AuditService } from '../audit/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';

/**
 * A participant knows its customers by its own id (`externalId`). The hub keeps the least it needs: a name for
 * verification of payee (shown masked to others), a phone for step-up delivery, and the KYC level that sets limits.
 */
export type CustomerErrorCode = 'customer_not_found' | 'customer_exists' | 'invalid_phone' | 'customer_has_balance';

export interface Customer {
  readonly id: string;
  readonly participantId: string;
  readonly externalId: string;
  readonly name: string;
  readonly phone: string | null;
  readonly kycLevel: number;
  readonly createdAt: Date;
}

export interface CustomerRow {
  id: string;
  participant_id: string;
  external_id: string;
  name: string;
  phone: string | null;
  kyc_level: number;
  created_at: Date;
}

export const toCustomer = (r: CustomerRow): Customer => ({
  id: r.id,
  participantId: r.participant_id,
  externalId: r.external_id,
  name: r.name,
  phone: r.phone,
  kycLevel: r.kyc_level,
  createdAt: r.created_at,
});

/** Parses a phone number to E.164; a number without a country code is read in the participant's country. */
export function normalizePhone(phone: string, defaultCountry: string): string | undefined {
  const parsed = parsePhoneNumberFromString(phone, defaultCountry as Parameters<typeof parsePhoneNumberFromString>[1]);
  return parsed?.isValid() === true ? parsed.number : undefined;
}

export interface CreateCustomerInput {
  readonly externalId: string;
  readonly name: string;
  readonly phone?: string | undefined;
  readonly kycLevel?: number | undefined;
}

export interface CustomerService {
  create(tx: Queryable, actor: Actor, participant: { id: string; country: string }, input: CreateCustomerInput, id?: string): Promise<Result<Customer, DomainError<CustomerErrorCode>>>;
  /** Scoped: another participant's customer is not found. */
  get(participantId: string, id: string, q?: Queryable): Promise<Customer | undefined>;
  findByExternalId(participantId: string, externalId: string): Promise<Customer | undefined>;
  list(participantId: string, options: { afterId?: string; limit: number }): Promise<Customer[]>;
}

export function createCustomerService(deps: { db: Db; clock: Clock; audit: AuditService }): CustomerService {
  const { db, clock, audit } = deps;
  return {
    async create(tx, actor, participant, input, id) {
      let phone: string | null = null;
      if (input.phone !== undefined) {
        const normalized = normalizePhone(input.phone, participant.country);
        if (normalized === undefined) return err('invalid_phone', 'phone is not a valid phone number', { field: 'phone' });
        phone = normalized;
      }
      const customerId = id ?? newId('cus');
      const rows = await tx.query<CustomerRow>(
        `insert into customers (id, participant_id, external_id, name, phone, kyc_level, created_at)
         values ($1, $2, $3, $4, $5, $6, $7) on conflict (participant_id, external_id) do nothing returning *`,
        [customerId, participant.id, input.externalId, input.name, phone, input.kycLevel ?? 1, clock.now()],
      );
      const row = rows[0];
      if (row === undefined) return err('customer_exists', 'a customer with this externalId exists', { externalId: input.externalId });
      await audit.record(tx, { actor, action: 'customer.created', objectType: 'customer', objectId: row.id, details: { kycLevel: row.kyc_level } });
      return ok(toCustomer(row));
    },
    async get(participantId, id, q = db) {
      const [row] = await q.query<CustomerRow>('select * from customers where id = $1 and participant_id = $2', [id, participantId]);
      return row === undefined ? undefined : toCustomer(row);
    },
    async findByExternalId(participantId, externalId) {
      const [row] = await db.query<CustomerRow>('select * from customers where participant_id = $1 and external_id = $2', [participantId, externalId]);
      return row === undefined ? undefined : toCustomer(row);
    },
    async list(participantId, options) {
      const rows = await db.query<CustomerRow>(
        'select * from customers where participant_id = $1 and ($2::text is null or id > $2) order by id limit $3',
        [participantId, options.afterId ?? null, options.limit],
      );
      return rows.map(toCustomer);
    },
  };
}
