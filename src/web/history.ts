import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyBaseLogger } from 'fastify';
import { principalOf } from '../api/index.ts';
import { Strict } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import type { CustomerService } from '../customers/index.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { formatMoney } from '../platform/money.ts';

/**
 * GET /v1/history: the activity of the PERSON behind one of the calling participant's customers, newest first, across
 * every customer record the hub has linked to that person — at this wallet, at other wallets and at banks — and
 * across the modules that move money for them: person-to-person payments (sent or received), merchant payments (QR,
 * payment link, CPM, tap), red packets (sent or claimed) and money paid into their accounts (deposits, opening
 * balances, operator funding). Each entry names the participant it happened at. Each item carries its merchant
 * category (MCC) when there is one, for spending charts; GET /v1/history/spending sums them on the server.
 *
 * PRIVACY RULE. Records are merged only when the hub linked them through verification:
 * - customer links (the person asked in one participant's app and confirmed with a one-time code the other participant
 *   gave only to them: consent on both sides, revocable on either; a card step-up proves the card, not the person,
 *   and links nothing), and
 * - active account links (accounts: the bank's customer typed the bank's one-time consent code into the wallet),
 *   one hop from the person's records.
 * Never by matching names, phone numbers or any other attribute. A participant sees only the person behind its OWN
 * customer (another participant's customer id answers 404, as any other foreign object); a customer with no
 * verified link sees only their own entries. Other participants' customer ids are never returned.
 */
const Money = Type.Object({ amount: Type.String(), currency: Type.String() }, { additionalProperties: false });
const KINDS = ['transfer', 'merchant', 'red_packet', 'account'] as const;
type Kind = (typeof KINDS)[number];
const HistoryItem = Type.Object(
  {
    id: Type.String(),
    kind: Type.Union(KINDS.map((k) => Type.Literal(k)), { description: 'account: money paid into an account (deposit, opening balance, operator funding)' }),
    direction: Type.Union([Type.Literal('in'), Type.Literal('out')]),
    amount: Money,
    fee: Type.Union([Money, Type.Null()]),
    title: Type.String({ description: 'Merchant name, or what happened' }),
    mcc: Type.Union([Type.String(), Type.Null()]),
    channel: Type.Union([Type.String(), Type.Null()]),
    status: Type.String(),
    at: Type.String({ format: 'date-time' }),
    participantId: Type.String({ description: 'The wallet or bank where it happened' }),
    participantName: Type.String(),
    own: Type.Boolean({ description: 'true when it happened on the record asked for (the caller’s own customer); false for a linked record elsewhere' }),
  },
  { $id: 'HistoryItem', additionalProperties: false },
);
const LinkedRecordSchema = Type.Object(
  {
    participantId: Type.String(),
    participantName: Type.String(),
    participantKind: Type.String(),
    via: Type.Union([Type.Literal('self'), Type.Literal('customer_link'), Type.Literal('account_link')], { description: 'How the record was linked: itself, a customer link the person consented to on both sides, or a bank account-link consent' }),
  },
  { $id: 'HistoryLinkedRecord', additionalProperties: false },
);

export interface HistoryDeps {
  readonly db: Db;
  readonly customers: CustomerService;
}

export interface LinkedRecord {
  readonly participantId: string;
  readonly customerId: string;
  readonly participantName: string;
  readonly participantKind: string;
  readonly via: 'self' | 'customer_link' | 'account_link';
}

export interface HistoryEntry {
  id: string;
  kind: Kind;
  direction: 'in' | 'out';
  amount: { amount: string; currency: string };
  fee: { amount: string; currency: string } | null;
  title: string;
  mcc: string | null;
  channel: string | null;
  status: string;
  at: string;
  participantId: string;
  participantName: string;
  own: boolean;
}

/** At most this many customer records are merged into one history (a person has a few wallets and banks). */
export const MAX_LINKED_RECORDS = 20;
/** Money paid into a customer's account that no payment record already shows. */
const ACCOUNT_PURPOSES = ['deposit', 'demo_opening_balance', 'operator_funding'];

const iso = (d: Date | string) => (d instanceof Date ? d : new Date(d)).toISOString();
/** Routes a customer session (the customer's own app) may call. */
const CUSTOMER = { customer: true } as const;
const key = (participantId: string, customerId: string) => `${participantId}\u0000${customerId}`;

type Log = Pick<FastifyBaseLogger, 'warn'>;
/** A module whose tables are not there (not migrated on this hub) contributes nothing. */
async function safe<T>(db: Db, log: Log, sql: string, params: unknown[]): Promise<T[]> {
  try {
    return await db.query<T & Record<string, unknown>>(sql, params);
  } catch (error) {
    log.warn({ err: error }, 'history source unavailable');
    return [];
  }
}

/**
 * The customer records merged into the history of (participantId, customerId): the record itself, the records linked
 * to it with the person's consent on both sides (customer_links), and the records on the other side of an active account link
 * (account_links, confirmed with the bank's one-time code) of any of those. See the privacy rule above. The caller must
 * have checked that the customer is its own.
 */
export async function linkedRecords(db: Db, participantId: string, customerId: string, log: Log = console): Promise<LinkedRecord[]> {
  const found = new Map<string, { participantId: string; customerId: string; via: LinkedRecord['via'] }>();
  found.set(key(participantId, customerId), { participantId, customerId, via: 'self' });
  const linkedByConsent = await safe<{ participant_id: string; customer_id: string }>(
    db,
    log,
    `select other_participant_id as participant_id, other_customer_id as customer_id from customer_links
      where participant_id = $1 and customer_id = $2 and status = 'active'
      order by created_at, other_participant_id limit $3`,
    [participantId, customerId, MAX_LINKED_RECORDS],
  );
  for (const p of linkedByConsent) if (!found.has(key(p.participant_id, p.customer_id))) found.set(key(p.participant_id, p.customer_id), { participantId: p.participant_id, customerId: p.customer_id, via: 'customer_link' });
  const base = [...found.values()];
  const links = await safe<{ wallet_participant_id: string; wallet_customer_id: string; bank_participant_id: string; bank_customer_id: string }>(
    db,
    log,
    `select wallet_participant_id, wallet_customer_id, bank_participant_id, bank_customer_id from account_links
      where status = 'active'
        and ((wallet_participant_id, wallet_customer_id) in (select * from unnest($1::text[], $2::text[]))
          or (bank_participant_id, bank_customer_id) in (select * from unnest($1::text[], $2::text[])))
      order by created_at limit $3`,
    [base.map((r) => r.participantId), base.map((r) => r.customerId), MAX_LINKED_RECORDS * 2],
  );
  for (const l of links) {
    for (const [pid, cid] of [[l.wallet_participant_id, l.wallet_customer_id], [l.bank_participant_id, l.bank_customer_id]] as const) {
      if (found.size >= MAX_LINKED_RECORDS) break;
      if (!found.has(key(pid, cid))) found.set(key(pid, cid), { participantId: pid, customerId: cid, via: 'account_link' });
    }
  }
  const records = [...found.values()].slice(0, MAX_LINKED_RECORDS);
  const names = await db.query<{ id: string; name: string; kind: string }>('select id, name, kind from participants where id = any($1::text[])', [[...new Set(records.map((r) => r.participantId))]]);
  const byId = new Map(names.map((n) => [n.id, n]));
  return records.map((r) => ({ ...r, participantName: byId.get(r.participantId)?.name ?? r.participantId, participantKind: byId.get(r.participantId)?.kind ?? 'unknown' }));
}

/** The merged history of these records (the first is the caller's own), newest first, at most `limit` entries. */
export async function historyOf(db: Db, records: readonly LinkedRecord[], limit: number, log: Log = console): Promise<HistoryEntry[]> {
  const self = records[0];
  if (self === undefined) return [];
  const pids = records.map((r) => r.participantId);
  const cids = records.map((r) => r.customerId);
  const name = new Map(records.map((r) => [r.participantId, r.participantName]));
  const inSet = new Set(records.map((r) => key(r.participantId, r.customerId)));
  const at = (participantId: string, customerId: string) => ({
    participantId,
    participantName: name.get(participantId) ?? participantId,
    own: participantId === self.participantId && customerId === self.customerId,
  });
  const SET = '(select * from unnest($1::text[], $2::text[]))';
  const items: HistoryEntry[] = [];

  const p2p = await safe<{ id: string; payer_participant_id: string; payer_customer_id: string; payee_participant_id: string; payee_customer_id: string; send_minor: bigint; send_currency: string; receive_minor: bigint; receive_currency: string; fee_minor: bigint; status: string; created_at: Date; payer_name: string | null; payee_name: string | null }>(
    db,
    log,
    `select p.id, p.payer_participant_id, p.payer_customer_id, p.payee_participant_id, p.payee_customer_id, p.send_minor, p.send_currency, p.receive_minor, p.receive_currency,
            p.fee_minor, p.status, p.created_at,
            (select name from participants where id = p.payer_participant_id) as payer_name, (select name from participants where id = p.payee_participant_id) as payee_name
       from payments p
      where (p.payer_participant_id, p.payer_customer_id) in ${SET} or (p.payee_participant_id, p.payee_customer_id) in ${SET}
      order by p.created_at desc limit $3`,
    [pids, cids, limit],
  );
  for (const p of p2p) {
    const out = inSet.has(key(p.payer_participant_id, p.payer_customer_id));
    const inn = inSet.has(key(p.payee_participant_id, p.payee_customer_id));
    const base = { kind: 'transfer' as const, mcc: null, channel: null, status: p.status, at: iso(p.created_at) };
    if (out) items.push({ ...base, id: p.id, direction: 'out', amount: formatMoney(p.send_minor, p.send_currency), fee: formatMoney(p.fee_minor, p.send_currency), title: p.payee_name ?? '', ...at(p.payer_participant_id, p.payer_customer_id) });
    // Between two records of the same person (e.g. wallet A → wallet B): both sides are shown, each where it happened.
    if (inn) items.push({ ...base, id: out ? `${p.id}:in` : p.id, direction: 'in', amount: formatMoney(p.receive_minor, p.receive_currency), fee: null, title: p.payer_name ?? '', ...at(p.payee_participant_id, p.payee_customer_id) });
  }

  const merchant = await safe<{ id: string; payer_participant_id: string; payer_customer_id: string; amount_minor: bigint; currency: string; status: string; channel: string; mcc: string; created_at: Date; name: string; name_zh: string }>(
    db,
    log,
    `select a.id, a.payer_participant_id, a.payer_customer_id, a.amount_minor, a.currency, a.status, a.channel, a.mcc, a.created_at, m.name, m.name_zh
       from pay_authorizations a join merchants m on m.id = a.merchant_id
      where (a.payer_participant_id, a.payer_customer_id) in ${SET}
      order by a.created_at desc limit $3`,
    [pids, cids, limit],
  );
  for (const a of merchant) {
    const title = a.name_zh !== '' && a.name_zh !== a.name ? `${a.name} ${a.name_zh}` : a.name;
    items.push({ id: a.id, kind: 'merchant', direction: 'out', amount: formatMoney(a.amount_minor, a.currency), fee: null, title, mcc: a.mcc, channel: a.channel, status: a.status, at: iso(a.created_at), ...at(a.payer_participant_id, a.payer_customer_id) });
  }

  const sent = await safe<{ id: string; participant_id: string; customer_id: string; total_minor: bigint; currency: string; status: string; message: string | null; created_at: Date }>(
    db,
    log,
    `select id, participant_id, customer_id, total_minor, currency, status, message, created_at from red_packets
      where (participant_id, customer_id) in ${SET} order by created_at desc limit $3`,
    [pids, cids, limit],
  );
  for (const r of sent) {
    items.push({ id: r.id, kind: 'red_packet', direction: 'out', amount: formatMoney(r.total_minor, r.currency), fee: null, title: r.message ?? '红包', mcc: null, channel: null, status: r.status, at: iso(r.created_at), ...at(r.participant_id, r.customer_id) });
  }
  const claimed = await safe<{ packet_id: string; participant_id: string; customer_id: string; claimed_minor: bigint; currency: string; message: string | null; claimed_at: Date }>(
    db,
    log,
    `select m.packet_id, m.participant_id, m.customer_id, m.claimed_minor, r.currency, r.message, m.claimed_at from red_packet_members m join red_packets r on r.id = m.packet_id
      where (m.participant_id, m.customer_id) in ${SET} and m.claimed_minor is not null order by m.claimed_at desc limit $3`,
    [pids, cids, limit],
  );
  for (const c of claimed) {
    items.push({ id: `${c.packet_id}:claim:${c.participant_id}`, kind: 'red_packet', direction: 'in', amount: formatMoney(c.claimed_minor, c.currency), fee: null, title: c.message ?? '红包', mcc: null, channel: null, status: 'claimed', at: iso(c.claimed_at), ...at(c.participant_id, c.customer_id) });
  }

  // Money paid into the records' own accounts (bank and wallet accounts in the hub's ledger) that no payment record shows.
  // (From the transfer rows: the statement rows of ledger_history are not written for every transfer.)
  const funded = await safe<{ id: string; incoming: boolean; amount_minor: bigint; currency: string; purpose: string; created_at: Date; owner_participant_id: string; customer_id: string }>(
    db,
    log,
    `select t.id, (t.credit_account_id = a.id) as incoming, t.amount_minor, t.currency, t.purpose, t.created_at, a.owner_participant_id, a.customer_id
       from ledger_accounts a
       join ledger_transfers t on t.credit_account_id = a.id and t.kind = 'single_phase' and t.purpose = any($4::text[])
      where a.customer_id = any($2::text[]) and (a.owner_participant_id, a.customer_id) in ${SET}
      order by t.created_at desc limit $3`,
    [pids, cids, limit, ACCOUNT_PURPOSES],
  );
  for (const f of funded) {
    const where = at(f.owner_participant_id, f.customer_id);
    // A ledger transfer id may carry the other participant's customer id (acc_<customer>_<currency>): opaque elsewhere.
    const id = where.own ? f.id : `acct_${createHash('sha256').update(f.id).digest('hex').slice(0, 24)}`;
    items.push({ id, kind: 'account', direction: f.incoming ? 'in' : 'out', amount: formatMoney(f.amount_minor, f.currency), fee: null, title: f.purpose, mcc: null, channel: null, status: 'posted', at: iso(f.created_at), ...where });
  }

  items.sort((a, b) => b.at.localeCompare(a.at) || a.id.localeCompare(b.id));
  return items.slice(0, limit);
}

/** Spending categories from the merchant category code (ISO 18245); the wallet's charts use the same buckets. */
export function spendingCategory(kind: Kind, mcc: string | null): string {
  if (kind === 'red_packet') return 'packet';
  if (kind === 'transfer') return 'transfer';
  if (kind === 'account') return 'other';
  const n = Number(mcc ?? 0);
  if (n >= 4000 && n < 4800) return 'transport';
  if (n >= 5811 && n <= 5814) return 'food';
  if (n >= 5400 && n < 5500) return 'groceries';
  return 'shopping';
}

const SPENDING_SOURCE_CAP = 5000;

export interface SpendingSum {
  key: string;
  currency: string;
  minor: bigint;
  count: number;
}

/**
 * Spending of the person behind the merged records (outgoing merchant payments less refunds, P2P payments sent with
 * fees, red packets sent less what came back), summed by category or by month (YYYY-MM, UTC) and currency. Used by
 * GET /v1/history/spending and by the budgets (./budgets.ts).
 */
export async function spendingOf(db: Db, records: readonly LinkedRecord[], by: 'category' | 'month', currency: string | undefined, log: Log = console): Promise<SpendingSum[]> {
  const pids = records.map((r) => r.participantId);
  const cids = records.map((r) => r.customerId);
  const SET = '(select * from unnest($1::text[], $2::text[]))';
  type Row = { kind: Kind; mcc: string | null; month: string; currency: string; total: bigint | string; n: bigint | string };
  const params = [pids, cids, currency ?? null, SPENDING_SOURCE_CAP];
  const month = (col: string) => `to_char(${col} at time zone 'UTC', 'YYYY-MM')`;
  const rows = [
    ...(await safe<Row>(
      db,
      log,
      `select 'merchant' as kind, mcc, ${month('created_at')} as month, currency, sum(amount_minor - refunded_minor) as total, count(*) as n
         from (select * from pay_authorizations where (payer_participant_id, payer_customer_id) in ${SET} and status in ('authorized', 'captured')
                 and ($3::text is null or currency = $3) order by created_at desc limit $4) a
        group by mcc, month, currency`,
      params,
    )),
    ...(await safe<Row>(
      db,
      log,
      `select 'transfer' as kind, null as mcc, ${month('created_at')} as month, send_currency as currency, sum(send_minor + fee_minor) as total, count(*) as n
         from (select * from payments p where (payer_participant_id, payer_customer_id) in ${SET} and ($3::text is null or send_currency = $3)
                 -- a payment between two records of the same person is not spending
                 and not (payee_participant_id, payee_customer_id) in ${SET}
               order by created_at desc limit $4) p
        group by month, send_currency`,
      params,
    )),
    ...(await safe<Row>(
      db,
      log,
      `select 'red_packet' as kind, null as mcc, ${month('created_at')} as month, currency, sum(total_minor - refunded_minor) as total, count(*) as n
         from (select * from red_packets where (participant_id, customer_id) in ${SET} and status <> 'failed' and ($3::text is null or currency = $3) order by created_at desc limit $4) r
        group by month, currency`,
      params,
    )),
  ];
  const sums = new Map<string, SpendingSum>();
  for (const r of rows) {
    const k = by === 'category' ? spendingCategory(r.kind, r.mcc) : r.month;
    const id = `${k}\u0000${r.currency}`;
    const s = sums.get(id) ?? { key: k, currency: r.currency, minor: 0n, count: 0 };
    s.minor += BigInt(r.total);
    s.count += Number(r.n);
    sums.set(id, s);
  }
  return [...sums.values()];
}

export function registerHistoryRoutes(app: HttpServer, deps: HistoryDeps): void {
  app.addSchema(HistoryItem);
  app.addSchema(LinkedRecordSchema);
  const HistoryQuery = Strict({ customerId: Ref('customer', 'Your customer'), limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: '1–200, default 100' })) });

  app.get(
    '/v1/history',
    { config: CUSTOMER,
      schema: {
        tags: ['history'],
        summary: "The unified history of the person behind your customer, across every wallet and bank the hub verified as theirs, newest first",
        description:
          'Merges only customer records linked through verification (a card step-up code, a bank account-link consent code), never by name or phone. ' +
          'Each item names the participant it happened at (`own` is false for a linked record at another participant). A customer with no verified link sees only their own entries. ' +
          "Another participant's customer answers 404.",
        security: [{ participant: [] }],
        querystring: HistoryQuery,
        response: { 200: Type.Object({ items: Type.Array(Type.Ref(HistoryItem)), linked: Type.Array(Type.Ref(LinkedRecordSchema), { description: 'The records merged (no customer ids of other participants)' }) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const participantId = principalOf(request).participantId;
      const { customerId } = request.query;
      if ((await deps.customers.get(participantId, customerId)) === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      const limit = Math.min(Math.max(Number(request.query.limit ?? 100), 1), 200);
      const records = await linkedRecords(deps.db, participantId, customerId, request.log);
      const items = await historyOf(deps.db, records, limit, request.log);
      return { items, linked: records.map(({ participantId: p, participantName, participantKind, via }) => ({ participantId: p, participantName, participantKind, via })) };
    },
  );

  app.get(
    '/v1/history/spending',
    { config: CUSTOMER,
      schema: {
        tags: ['history'],
        summary: 'Spending of the person behind your customer (all verified-linked records), summed by category or by month',
        description:
          'Outgoing merchant payments (less refunds), P2P payments sent (with fees) and red packets sent, summed on the server over the whole history ' +
          '(not a page of it). Categories come from the merchant category code: transport, food, groceries, shopping, transfer, packet. Same privacy rule as GET /v1/history.',
        security: [{ participant: [] }],
        querystring: Strict({
          customerId: Ref('customer', 'Your customer'),
          by: Type.Union([Type.Literal('category'), Type.Literal('month')]),
          currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$', description: 'Only this currency' })),
        }),
        response: {
          200: Type.Object(
            {
              by: Type.String(),
              buckets: Type.Array(Type.Object({ key: Type.String({ description: 'Category, or month YYYY-MM (UTC)' }), amount: Money, count: Type.Integer() }, { additionalProperties: false })),
            },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (request, reply) => {
      const participantId = principalOf(request).participantId;
      const { customerId, by, currency } = request.query;
      if ((await deps.customers.get(participantId, customerId)) === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      const records = await linkedRecords(deps.db, participantId, customerId, request.log);
      const sums = await spendingOf(deps.db, records, by, currency, request.log);
      const buckets = sums
        .filter((s) => s.minor > 0n)
        .sort((a, b) => (by === 'month' ? a.key.localeCompare(b.key) : b.minor > a.minor ? 1 : b.minor < a.minor ? -1 : a.key.localeCompare(b.key)) || a.currency.localeCompare(b.currency))
        .map((s) => ({ key: s.key, amount: formatMoney(s.minor, s.currency), count: s.count }));
      return { by, buckets };
    },
  );
}
