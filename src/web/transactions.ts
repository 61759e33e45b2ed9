import { Type } from '@sinclair/typebox';
import { Strict, refuseUnknownCursor } from '../api/index.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { currencyMinorUnit, formatMoney, supportedCurrencies } from '../platform/money.ts';

/**
 * GET /v1/operator/transactions: the operator's live view of money movements — every ledger transfer, newest first,
 * with the participants on each side and, where the transfer belongs to one, the P2P payment, card payment or red
 * packet it moved money for. Search by id (transfer, payment, authorization, packet), participant (id or name) or
 * purpose. Cursor-paginated, at most 200 a page. Read-only; operator credential only.
 */
const Money = Type.Object({ amount: Type.String(), currency: Type.String() }, { additionalProperties: false });
const Side = Type.Object(
  { accountId: Type.String(), participantId: Type.Union([Type.String(), Type.Null()]), participantName: Type.Union([Type.String(), Type.Null()]), accountKind: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false },
);
const KINDS = ['p2p', 'card', 'red_packet', 'funding', 'fee', 'fx', 'other'] as const;
type Kind = (typeof KINDS)[number];
const OperatorTransaction = Type.Object(
  {
    id: Type.String({ description: 'Ledger transfer id' }),
    kind: Type.Union(KINDS.map((k) => Type.Literal(k)), { description: 'What the money moved for (from the transfer purpose)' }),
    phase: Type.String({ description: 'Ledger transfer kind: single_phase, pending, post_pending, void_pending' }),
    amount: Money,
    debit: Side,
    credit: Side,
    purpose: Type.String(),
    reference: Type.Union([
      Type.Object({ type: Type.Union([Type.Literal('p2p_payment'), Type.Literal('card_payment'), Type.Literal('red_packet')]), id: Type.String(), description: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false }),
      Type.Null(),
    ]),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'OperatorTransaction', additionalProperties: false },
);

const TX_PAGE_MAX = 200;
const kindOf = (purpose: string): Kind =>
  purpose === 'p2p' || purpose === 'position' ? 'p2p'
  : purpose.startsWith('p2p_fx') ? 'fx'
  : purpose.startsWith('card_') ? 'card'
  : purpose.startsWith('red_packet') ? 'red_packet'
  : purpose.endsWith('_fee') ? 'fee'
  : ['deposit', 'operator_funding', 'demo_opening_balance'].includes(purpose) ? 'funding'
  : 'other';

const encodeCursor = (at: Date, id: string) => Buffer.from(JSON.stringify([at.toISOString(), id])).toString('base64url');
function decodeCursor(cursor: string): { at: Date; id: string } | undefined {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string' || typeof v[1] !== 'string') return undefined;
    const at = new Date(v[0]);
    return Number.isNaN(at.getTime()) ? undefined : { at, id: v[1] };
  } catch {
    return undefined;
  }
}

interface Row {
  id: string;
  kind: string;
  amount_minor: bigint;
  currency: string;
  purpose: string;
  created_at: Date;
  debit_account_id: string;
  credit_account_id: string;
  debit_pid: string | null;
  debit_name: string | null;
  debit_kind: string | null;
  credit_pid: string | null;
  credit_name: string | null;
  credit_kind: string | null;
  payment_id: string | null;
  authorization_id: string | null;
  merchant_name: string | null;
  packet_id: string | null;
  packet_message: string | null;
}

/** Every (currency, minor units) an amount typed in a search box can mean. */
function amountCandidates(q: string): { currencies: string[]; minors: string[] } {
  const [whole = '0', fraction = ''] = q.split('.');
  const currencies: string[] = [];
  const minors: string[] = [];
  for (const currency of supportedCurrencies()) {
    const digits = currencyMinorUnit(currency);
    if (digits === undefined || fraction.length > digits) continue;
    currencies.push(currency);
    minors.push((BigInt(whole) * 10n ** BigInt(digits) + BigInt(fraction.padEnd(digits, '0') || '0')).toString());
  }
  return { currencies, minors };
}

/** One page of transfers, newest first (exported for the console and tests). */
export async function listOperatorTransactions(db: Db, options: { q?: string | undefined; limit: number; cursor?: { at: Date; id: string } | undefined }) {
  const q = options.q?.trim() ?? '';
  const like = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  // An amount ("12.34", "88") finds transfers of that amount in every currency it can be written in: the pairs
  // (currency, minor units) for each currency whose minor unit fits its decimals.
  const amounts = /^[0-9]{1,15}(\.[0-9]{1,3})?$/.test(q) ? amountCandidates(q) : { currencies: [] as string[], minors: [] as string[] };
  const rows = await db.query<Row & Record<string, unknown>>(
    `select t.id, t.kind, t.amount_minor, t.currency, t.purpose, t.created_at, t.debit_account_id, t.credit_account_id,
            da.owner_participant_id as debit_pid, dp.name as debit_name, da.kind as debit_kind,
            ca.owner_participant_id as credit_pid, cp.name as credit_name, ca.kind as credit_kind,
            pm.id as payment_id, pa.id as authorization_id, m.name as merchant_name, rp.id as packet_id, rp.message as packet_message
       from ledger_transfers t
       left join ledger_accounts da on da.id = t.debit_account_id
       left join participants dp on dp.id = da.owner_participant_id
       left join ledger_accounts ca on ca.id = t.credit_account_id
       left join participants cp on cp.id = ca.owner_participant_id
       left join payments pm on pm.id = t.metadata->>'paymentId'
       left join pay_authorizations pa on pa.id = t.metadata->>'authorizationId'
       left join merchants m on m.id = pa.merchant_id
       left join red_packets rp on rp.id = t.metadata->>'packetId'
      where ($1 = '' or t.id ilike $2 or t.purpose ilike $2 or dp.name ilike $2 or cp.name ilike $2
             or da.owner_participant_id = $1 or ca.owner_participant_id = $1
             or t.metadata->>'paymentId' = $1 or t.metadata->>'authorizationId' = $1 or t.metadata->>'packetId' = $1
             or (t.currency, t.amount_minor) in (select * from unnest($6::text[], $7::int8[]))
             or t.debit_account_id in (select account_id from aliases where value = $1 or value = lower($1))
             or t.credit_account_id in (select account_id from aliases where value = $1 or value = lower($1)))
        and ($3::timestamptz is null or (t.created_at, t.id) < ($3::timestamptz, $4::text))
      order by t.created_at desc, t.id desc
      limit $5`,
    [q, like, options.cursor?.at ?? null, options.cursor?.id ?? '', options.limit + 1, amounts.currencies, amounts.minors],
  );
  const page = rows.slice(0, options.limit);
  const last = page.at(-1);
  return {
    items: page.map((r) => ({
      id: r.id,
      kind: kindOf(r.purpose),
      phase: r.kind,
      amount: formatMoney(r.amount_minor, r.currency),
      debit: { accountId: r.debit_account_id, participantId: r.debit_pid, participantName: r.debit_name, accountKind: r.debit_kind },
      credit: { accountId: r.credit_account_id, participantId: r.credit_pid, participantName: r.credit_name, accountKind: r.credit_kind },
      purpose: r.purpose,
      reference:
        r.payment_id !== null ? { type: 'p2p_payment' as const, id: r.payment_id, description: null }
        : r.authorization_id !== null ? { type: 'card_payment' as const, id: r.authorization_id, description: r.merchant_name }
        : r.packet_id !== null ? { type: 'red_packet' as const, id: r.packet_id, description: r.packet_message }
        : null,
      createdAt: (r.created_at instanceof Date ? r.created_at : new Date(r.created_at)).toISOString(),
    })),
    nextCursor: rows.length > options.limit && last !== undefined ? encodeCursor(last.created_at instanceof Date ? last.created_at : new Date(last.created_at), last.id) : null,
  };
}

export function registerOperatorTransactionRoutes(app: HttpServer, deps: { db: Db }): void {
  app.addSchema(OperatorTransaction);
  app.get(
    '/v1/operator/transactions',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['operator'],
        summary: 'Live money movements: ledger transfers with their participants and payment records, newest first, searchable',
        description:
          'Every ledger transfer, joined with the P2P payment, card payment or red packet it belongs to. `q` matches a transfer, payment, authorization or packet id, ' +
          'a participant id or name (substring, case-insensitive) or a purpose. Page size 1–200 (default 50); pass `nextCursor` as `cursor` for the next page.',
        security: [{ operator: [] }],
        querystring: Strict({
          q: Type.Optional(Type.String({ maxLength: 100, description: 'Search: id, participant id or name, purpose' })),
          limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: `Page size, 1–${TX_PAGE_MAX} (default 50)` })),
          cursor: Type.Optional(Type.String({ maxLength: 300, pattern: '^[A-Za-z0-9_-]+$', description: 'The `nextCursor` of the previous page (any other cursor: 400 invalid_page)' })),
        }),
        response: { 200: Type.Object({ items: Type.Array(Type.Ref(OperatorTransaction)), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const limit = Math.min(Math.max(Number(request.query.limit ?? 50), 1), TX_PAGE_MAX);
      // The cursor names the previous page's last transfer, by id and time: a transfer that is not there (or not then) is none.
      const refused = await refuseUnknownCursor(request.query.cursor, async (encoded) => {
        const decoded = decodeCursor(encoded);
        if (decoded === undefined) return undefined;
        const [row] = await deps.db.query<{ created_at: Date }>('select created_at from ledger_transfers where id = $1', [decoded.id]);
        return row !== undefined && new Date(row.created_at).getTime() === decoded.at.getTime() ? decoded : undefined;
      });
      if (refused !== undefined) return reply.fail(refused);
      const cursor = request.query.cursor !== undefined ? decodeCursor(request.query.cursor) : undefined;
      return listOperatorTransactions(deps.db, { q: request.query.q, limit, cursor });
    },
  );
}
