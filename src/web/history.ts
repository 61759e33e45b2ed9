import { Type } from '@sinclair/typebox';
import { principalOf } from '../api/context.ts';
import { Id, Strict } from '../api/schemas.ts';
import type { CustomerService } from '../customers/service.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { formatMoney } from '../platform/money.ts';

/**
 * GET /v1/history: one customer's activity at the calling participant, newest first, across the modules that move
 * money for them: person-to-person payments (sent or received), merchant payments (QR, payment link, CPM, tap) and
 * red packets (sent or claimed). Read-only, scoped to the caller: another participant's customer answers 404.
 * Each item carries its merchant category (MCC) when there is one, for spending charts.
 */
const Money = Type.Object({ amount: Type.String(), currency: Type.String() }, { additionalProperties: false });
const HistoryItem = Type.Object(
  {
    id: Type.String(),
    kind: Type.Union([Type.Literal('transfer'), Type.Literal('merchant'), Type.Literal('red_packet')]),
    direction: Type.Union([Type.Literal('in'), Type.Literal('out')]),
    amount: Money,
    fee: Type.Union([Money, Type.Null()]),
    title: Type.String({ description: 'Merchant name, or what happened' }),
    mcc: Type.Union([Type.String(), Type.Null()]),
    channel: Type.Union([Type.String(), Type.Null()]),
    status: Type.String(),
    at: Type.String({ format: 'date-time' }),
  },
  { $id: 'HistoryItem', additionalProperties: false },
);

export interface HistoryDeps {
  readonly db: Db;
  readonly customers: CustomerService;
}

const iso = (d: Date | string) => (d instanceof Date ? d : new Date(d)).toISOString();

export function registerHistoryRoutes(app: HttpServer, deps: HistoryDeps): void {
  app.addSchema(HistoryItem);
  app.get(
    '/v1/history',
    {
      schema: {
        tags: ['history'],
        summary: "A customer's unified history: transfers, merchant payments and red packets, newest first",
        security: [{ participant: [] }],
        querystring: Strict({ customerId: Id('Your customer'), limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: '1–200, default 100' })) }),
        response: { 200: Type.Object({ items: Type.Array(Type.Ref(HistoryItem)) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const participantId = principalOf(request).participantId;
      const { customerId } = request.query;
      if ((await deps.customers.get(participantId, customerId)) === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      const limit = Math.min(Math.max(Number(request.query.limit ?? 100), 1), 200);
      const items: { id: string; kind: 'transfer' | 'merchant' | 'red_packet'; direction: 'in' | 'out'; amount: { amount: string; currency: string }; fee: { amount: string; currency: string } | null; title: string; mcc: string | null; channel: string | null; status: string; at: string }[] = [];
      const safe = async <T>(sql: string, params: unknown[]): Promise<T[]> => {
        try {
          return await deps.db.query<T & Record<string, unknown>>(sql, params);
        } catch (error) {
          // A module whose tables are not there (not migrated on this hub) contributes nothing.
          request.log.warn({ err: error }, 'history source unavailable');
          return [];
        }
      };
      const p2p = await safe<{ id: string; out: boolean; send_minor: bigint; send_currency: string; receive_minor: bigint; receive_currency: string; fee_minor: bigint; status: string; created_at: Date; counterparty: string | null }>(
        `select p.id, (p.payer_participant_id = $1 and p.payer_customer_id = $2) as out, p.send_minor, p.send_currency, p.receive_minor, p.receive_currency, p.fee_minor, p.status, p.created_at,
                (select name from participants where id = case when p.payer_participant_id = $1 and p.payer_customer_id = $2 then p.payee_participant_id else p.payer_participant_id end) as counterparty
           from payments p
          where (p.payer_participant_id = $1 and p.payer_customer_id = $2) or (p.payee_participant_id = $1 and p.payee_customer_id = $2)
          order by p.created_at desc limit $3`,
        [participantId, customerId, limit],
      );
      for (const p of p2p) {
        items.push({
          id: p.id,
          kind: 'transfer',
          direction: p.out ? 'out' : 'in',
          amount: p.out ? formatMoney(p.send_minor, p.send_currency) : formatMoney(p.receive_minor, p.receive_currency),
          fee: p.out ? formatMoney(p.fee_minor, p.send_currency) : null,
          title: p.counterparty ?? '',
          mcc: null,
          channel: null,
          status: p.status,
          at: iso(p.created_at),
        });
      }
      const merchant = await safe<{ id: string; amount_minor: bigint; refunded_minor: bigint; currency: string; status: string; channel: string; mcc: string; created_at: Date; name: string; name_zh: string }>(
        `select a.id, a.amount_minor, a.refunded_minor, a.currency, a.status, a.channel, a.mcc, a.created_at, m.name, m.name_zh
           from pay_authorizations a join merchants m on m.id = a.merchant_id
          where a.payer_participant_id = $1 and a.payer_customer_id = $2
          order by a.created_at desc limit $3`,
        [participantId, customerId, limit],
      );
      for (const a of merchant) {
        items.push({ id: a.id, kind: 'merchant', direction: 'out', amount: formatMoney(a.amount_minor, a.currency), fee: null, title: a.name_zh !== '' && a.name_zh !== a.name ? `${a.name} ${a.name_zh}` : a.name, mcc: a.mcc, channel: a.channel, status: a.status, at: iso(a.created_at) });
      }
      const sent = await safe<{ id: string; total_minor: bigint; refunded_minor: bigint; currency: string; status: string; message: string | null; created_at: Date }>(
        'select id, total_minor, refunded_minor, currency, status, message, created_at from red_packets where participant_id = $1 and customer_id = $2 order by created_at desc limit $3',
        [participantId, customerId, limit],
      );
      for (const r of sent) {
        items.push({ id: r.id, kind: 'red_packet', direction: 'out', amount: formatMoney(r.total_minor, r.currency), fee: null, title: r.message ?? '红包', mcc: null, channel: null, status: r.status, at: iso(r.created_at) });
      }
      const claimed = await safe<{ packet_id: string; claimed_minor: bigint; currency: string; message: string | null; claimed_at: Date }>(
        `select m.packet_id, m.claimed_minor, r.currency, r.message, m.claimed_at from red_packet_members m join red_packets r on r.id = m.packet_id
          where m.participant_id = $1 and m.customer_id = $2 and m.claimed_minor is not null order by m.claimed_at desc limit $3`,
        [participantId, customerId, limit],
      );
      for (const c of claimed) {
        items.push({ id: `${c.packet_id}:claim`, kind: 'red_packet', direction: 'in', amount: formatMoney(c.claimed_minor, c.currency), fee: null, title: c.message ?? '红包', mcc: null, channel: null, status: 'claimed', at: iso(c.claimed_at) });
      }
      items.sort((a, b) => b.at.localeCompare(a.at));
      return { items: items.slice(0, limit) };
    },
  );
}
