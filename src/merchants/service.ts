import type { Actor, AuditService } from '../audit/index.ts';
import type { Ledger } from '../ledger/index.ts';
import type { ParticipantKind } from '../participants/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { isCurrency } from '../platform/money.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { PErr } from '../payments/index.ts';

/**
 * Merchants: a merchant participant (kind `merchant`) has its own profile; an acquirer participant may hold many.
 * Each merchant has an MCC, a country and city, a name in Latin and in Chinese script, and a settlement account in
 * the ledger (kind `merchant`, owned by the participant that acts for it), where every captured payment ends.
 */
export interface Merchant {
  readonly id: string;
  readonly ownerParticipantId: string;
  readonly merchantParticipantId: string | null;
  readonly name: string;
  readonly nameZh: string;
  readonly mcc: string;
  readonly country: string;
  readonly city: string;
  readonly currency: string;
  readonly settlementAccountId: string;
  readonly feeBps: number;
  readonly createdAt: Date;
}

export interface NewMerchantInput {
  readonly name: string;
  readonly nameZh: string;
  readonly mcc: string;
  readonly country: string;
  readonly city: string;
  readonly currency: string;
  readonly feeBps?: number;
  readonly id?: string;
  readonly demoKey?: string;
}

interface MerchantRow {
  id: string;
  owner_participant_id: string;
  merchant_participant_id: string | null;
  name: string;
  name_zh: string;
  mcc: string;
  country: string;
  city: string;
  currency: string;
  settlement_account_id: string;
  fee_bps: number;
  created_at: Date;
}

const toMerchant = (r: MerchantRow): Merchant => ({
  id: r.id,
  ownerParticipantId: r.owner_participant_id,
  merchantParticipantId: r.merchant_participant_id,
  name: r.name,
  nameZh: r.name_zh,
  mcc: r.mcc,
  country: r.country,
  city: r.city,
  currency: r.currency,
  settlementAccountId: r.settlement_account_id,
  feeBps: r.fee_bps,
  createdAt: r.created_at,
});

export const settlementAccountId = (merchantId: string, currency: string) => `mst_${merchantId}_${currency}`;

/** EMV MPM limits: name ≤ 25 characters, city ≤ 15 (tags 59, 60); the Chinese name goes in template 64. */
const LATIN = /^[\x20-\x7E]+$/;

export interface MerchantService {
  create(tx: Queryable, actor: Actor, caller: { participantId: string; kind: ParticipantKind }, input: NewMerchantInput): Promise<Result<Merchant, PErr>>;
  /** Scoped: another participant's merchant is not found. */
  get(ownerParticipantId: string, merchantId: string, q?: Queryable): Promise<Merchant | undefined>;
  /** Unscoped, for resolving a scanned code or a link. */
  getById(merchantId: string, q?: Queryable): Promise<Merchant | undefined>;
  /** getById for many merchants in one statement (unknown ids are absent from the map). */
  getManyById(merchantIds: readonly string[], q?: Queryable): Promise<Map<string, Merchant>>;
  list(ownerParticipantId: string, options: { afterId?: string; limit: number }): Promise<Merchant[]>;
}

export function createMerchantService(deps: { db: Db; clock: Clock; audit: AuditService; events: EventOutbox; ledger: Ledger }): MerchantService {
  const { db, clock, audit, events, ledger } = deps;
  const getById = async (merchantId: string, q: Queryable = db) => {
    const [row] = await q.query<MerchantRow>('select * from merchants where id = $1', [merchantId]);
    return row === undefined ? undefined : toMerchant(row);
  };
  return {
    getById,
    async getManyById(merchantIds, q = db) {
      if (merchantIds.length === 0) return new Map();
      const rows = await q.query<MerchantRow>('select * from merchants where id = any($1::text[])', [[...new Set(merchantIds)]]);
      return new Map(rows.map((r) => [r.id, toMerchant(r)]));
    },
    async get(owner, merchantId, q = db) {
      const m = await getById(merchantId, q);
      return m !== undefined && m.ownerParticipantId === owner ? m : undefined;
    },
    async list(owner, options) {
      const rows = await db.query<MerchantRow>('select * from merchants where owner_participant_id = $1 and ($2::text is null or id > $2) order by id limit $3', [owner, options.afterId ?? null, options.limit]);
      return rows.map(toMerchant);
    },
    async create(tx, actor, caller, input) {
      if (caller.kind !== 'merchant' && caller.kind !== 'acquirer') return err('not_merchant', 'only merchants and acquirers have merchant profiles');
      if (!/^[0-9]{4}$/.test(input.mcc)) return err('merchant_invalid', 'mcc must be 4 digits');
      if (!/^[A-Z]{2}$/.test(input.country)) return err('merchant_invalid', 'country must be ISO 3166-1 alpha-2');
      if (!isCurrency(input.currency)) return err('merchant_invalid', `${input.currency} is not a supported currency`);
      if (!LATIN.test(input.name) || [...input.name].length > 25) return err('merchant_invalid', 'name: 1–25 printable Latin characters (EMV tag 59)');
      if (!LATIN.test(input.city) || [...input.city].length > 15) return err('merchant_invalid', 'city: 1–15 printable Latin characters (EMV tag 60)');
      if (input.nameZh.length === 0 || [...input.nameZh].length > 25) return err('merchant_invalid', 'nameZh: 1–25 characters (EMV template 64)');
      if (caller.kind === 'merchant') {
        const [existing] = await tx.query<{ id: string }>('select id from merchants where merchant_participant_id = $1', [caller.participantId]);
        if (existing !== undefined) return err('merchant_invalid', 'this merchant participant already has its profile', { merchantId: existing.id });
      }
      const id = input.id ?? newId('mer');
      const accountId = settlementAccountId(id, input.currency);
      const account = await ledger.createAccount({ id: accountId, ownerParticipantId: caller.participantId, currency: input.currency, kind: 'merchant' });
      if (!account.ok && account.error.code !== 'account_exists') return err('payment_ledger_rejected', account.error.message);
      const [row] = await tx.query<MerchantRow>(
        `insert into merchants (id, owner_participant_id, merchant_participant_id, name, name_zh, mcc, country, city, currency, settlement_account_id, fee_bps, demo_key, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) returning *`,
        [id, caller.participantId, caller.kind === 'merchant' ? caller.participantId : null, input.name, input.nameZh, input.mcc, input.country, input.city, input.currency, accountId, input.feeBps ?? 0, input.demoKey ?? null, clock.now()],
      );
      if (row === undefined) throw new Error('merchant insert returned nothing');
      await audit.record(tx, { actor, action: 'merchant.created', objectType: 'merchant', objectId: id, details: { mcc: input.mcc, country: input.country, settlementAccountId: accountId } });
      await events.emit(tx, { participantId: caller.participantId, type: 'merchant.created', data: { merchantId: id, settlementAccountId: accountId } });
      return ok(toMerchant(row));
    },
  };
}
