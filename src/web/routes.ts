import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import { Type } from '@sinclair/typebox';
import { Strict } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import type { CustomerService } from '../customers/index.ts';
import type { TokenService } from '../participants/index.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import type { Vault } from '../platform/vault.ts';
import { PACKAGE_ROOT } from '../platform/paths.ts';
import { sentCode } from '../platform/sent-codes.ts';
import { formatMoney } from '../platform/money.ts';
import type { Clock } from '../platform/clock.ts';
import type { PaymentService } from '../payments/index.ts';
import { registerHistoryRoutes } from './history.ts';
import { registerBudgetRoutes, type BudgetService } from './budgets.ts';
import { registerOperatorTransactionRoutes } from './transactions.ts';

/**
 * The faces of the hub: the operator console (/console), the reference wallet app (/wallet), the merchant counter
 * (/merchant), the issuer desk (/issuer) and the hosted page of a payment link (/pay/<link id>, with its public data at
 * GET /v1/public/payment-links/:linkId), built by Vite into web/dist (`npm run build`, also run by
 * `npm install`/`npm ci` through the `prepare` script) and served here.
 *
 * Demo-only helpers under /demo/v1 (enabled only in demo mode: `hutong start --demo`, HUTONG_DEMO=1):
 * - GET /demo/v1/directory: the demo wallets and their customers (the wallet page's sign-in) and the demo banks (with
 *   the other wallets, what the page offers to link a customer's records at).
 * - POST /demo/v1/desk-session: the same for a demo merchant (the counter) or a demo bank (the issuer desk).
 * - POST /demo/v1/session: a short-lived access token for a DEMO wallet, acting for one of its customers, so that the
 *   browser never holds a client secret. It is a stand-in for the wallet's own back end (which would hold the
 *   credential and call the hub); anyone who can reach a demo hub can use it, which is why it is demo-only.
 * - GET /demo/v1/step-up-codes/:provisioningId: the one-time code a demo bank would text its cardholder. The hub only
 *   has it sealed to the bank (webhook payload); the demo plays the bank and opens it with the bank's webhook secret.
 */
export interface WebRouteDeps {
  readonly db: Db;
  readonly vault: Vault;
  readonly tokens: TokenService;
  readonly customers: CustomerService;
  /** Whether a payment link has expired, on the hosted page (/v1/public/payment-links/:linkId). */
  readonly clock: Clock;
  /** The published payment links, for their hosted page. */
  readonly paymentLinks: Pick<PaymentService, 'getLink'>;
  /** Customers' budgets and low-balance alerts (./budgets.ts). */
  readonly budgets: BudgetService;
  /** The demo helpers answer only when true (the demo network is seeded). */
  readonly demoEnabled: boolean;
  /** Where the Vite build lives (default: web/dist of the repository). */
  readonly distDir?: string;
}

export const DEFAULT_DIST_DIR = join(PACKAGE_ROOT, 'web', 'dist');
const PAGES = ['wallet', 'console', 'merchant', 'issuer'] as const;

const notBuilt = (page: string) =>
  `<!doctype html><html lang="en"><meta charset="utf-8"><title>Hutong ${page}: not built</title>` +
  `<body style="font-family:system-ui;max-width:40rem;margin:3rem auto"><h1>The ${page} page is not built</h1>` +
  `<p>The hub serves the pages from <code>web/dist</code>, which the Vite build makes. Run <code>npm run build:web</code> ` +
  `(it also runs on <code>npm install</code> / <code>npm ci</code>), then reload.</p><p>页面尚未构建：请运行 <code>npm run build:web</code>。</p></body></html>`;

const SessionBody = Strict({
  wallet: Type.String({ pattern: '^wallet-[a-z0-9-]{1,20}$', description: 'Demo wallet key, e.g. wallet-a' }),
  customerId: Ref('customer', 'A customer of that demo wallet'),
});

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
export const isLoopback = (address: string | undefined): boolean => address !== undefined && LOOPBACK.has(address);

const demoWalletId = (key: string) => `par_demo_${key.replace(/-/g, '_')}`;

export async function registerWebRoutes(app: HttpServer, deps: WebRouteDeps): Promise<void> {
  const distDir = deps.distDir ?? DEFAULT_DIST_DIR;

  await app.register(async (scope) => {
    // Static files are public and are not part of the API document.
    scope.addHook('onRoute', (route) => {
      route.config = { ...route.config, auth: 'none' };
      route.schema = { ...route.schema, hide: true };
    });
    if (existsSync(join(distDir, 'assets'))) {
      await scope.register(fastifyStatic, { root: join(distDir, 'assets'), prefix: '/app/assets/', decorateReply: false, index: false, maxAge: '1h', immutable: true });
    }
    for (const page of PAGES) {
      const handler = async (_request: unknown, reply: import('fastify').FastifyReply) => {
        const file = join(distDir, page, 'index.html');
        if (!existsSync(file)) return reply.code(503).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(notBuilt(page));
        return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(readFileSync(file));
      };
      scope.get(`/${page}`, handler);
      scope.get(`/${page}/`, handler);
    }
    // The hosted page of a payment link (/pay/<link id>): public, like the link itself; it reads
    // GET /v1/public/payment-links/:linkId and offers the reference wallet (/wallet?link=<id>) or any wallet's scan.
    scope.get('/pay/:linkId', async (_request, reply) => {
      const file = join(distDir, 'pay', 'index.html');
      if (!existsSync(file)) return reply.code(503).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(notBuilt('pay'));
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(readFileSync(file));
    });
    scope.get('/', async (_request, reply) => reply.redirect('/wallet'));
  });

  registerHistoryRoutes(app, { db: deps.db, customers: deps.customers });
  registerBudgetRoutes(app, { budgets: deps.budgets, customers: deps.customers });
  registerOperatorTransactionRoutes(app, { db: deps.db });

  app.get(
    '/v1/public/payment-links/:linkId',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['payment-links'],
        summary: 'A payment link as its hosted page shows it (public: whoever holds the link may see what it asks for)',
        description:
          'What /pay/<link id> shows before any wallet is involved: the merchant, the amount, the description and whether it can still be paid. ' +
          'Paying goes through a wallet (POST /v1/payment-links/:linkId/pay with a customer session).',
        params: Strict({ linkId: Ref('payment_link', 'Payment link id (published by its merchant)') }),
        response: {
          200: Type.Object(
            {
              id: Type.String(),
              merchant: Type.Object({ name: Type.String(), nameZh: Type.Union([Type.String(), Type.Null()]), city: Type.Union([Type.String(), Type.Null()]), country: Type.String() }, { additionalProperties: false }),
              amount: Type.Object({ amount: Type.String(), currency: Type.String() }, { additionalProperties: false }),
              description: Type.String(),
              multipleUse: Type.Boolean(),
              expiresAt: Type.String(),
              state: Type.Union([Type.Literal('open'), Type.Literal('expired'), Type.Literal('paid')]),
            },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (request, reply) => {
      const found = await deps.paymentLinks.getLink(request.params.linkId);
      if (found === undefined) return reply.fail({ code: 'payment_link_not_found', message: 'no such payment link' });
      const { link: l, merchant: m } = found;
      const state = !l.multipleUse && l.payCount > 0 ? 'paid' : l.expiresAt.getTime() <= deps.clock.nowMs() ? 'expired' : 'open';
      return {
        id: l.id,
        merchant: { name: m.name, nameZh: m.nameZh, city: m.city, country: m.country },
        amount: formatMoney(l.amountMinor, l.currency),
        description: l.description,
        multipleUse: l.multipleUse,
        expiresAt: l.expiresAt.toISOString(),
        state,
      } as const;
    },
  );

  const disabled = { code: 'not_found', message: 'demo helpers are enabled only in demo mode (hutong start --demo), for callers on this machine' };
  /** Demo helpers answer only in demo mode and only to a caller on this machine (loopback), whatever address the hub binds. */
  const demoAllowed = (request: FastifyRequest) => deps.demoEnabled && isLoopback(request.socket.remoteAddress);

  app.get(
    '/demo/v1/directory',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['demo'],
        summary: 'Demo only: the demo wallets and their customers, for the reference wallet app sign-in, and the demo banks',
        description: 'The banks (and the other wallets) are what the reference wallet offers to link a customer’s records at (POST /v1/customer-links).',
        response: {
          200: Type.Object({
            wallets: Type.Array(
              Type.Object({
                key: Type.String(),
                participantId: Type.String(),
                name: Type.String(),
                customers: Type.Array(Type.Object({ id: Type.String(), name: Type.String() }, { additionalProperties: false })),
              }, { additionalProperties: false }),
            ),
            banks: Type.Array(Type.Object({ key: Type.String(), participantId: Type.String(), name: Type.String() }, { additionalProperties: false })),
          }, { additionalProperties: false }),
        },
      },
    },
    async (request, reply) => {
      if (!demoAllowed(request)) return reply.fail(disabled);
      const wallets = await deps.db.query<{ id: string; name: string; demo_key: string }>(
        "select id, name, demo_key from participants where kind = 'wallet' and status = 'active' and demo_key is not null order by demo_key limit 20",
      );
      const out = [];
      for (const w of wallets) {
        const customers = await deps.db.query<{ id: string; name: string }>("select id, name from customers where participant_id = $1 and id like 'cus_demo_%' order by id limit 20", [w.id]);
        out.push({ key: w.demo_key, participantId: w.id, name: w.name, customers });
      }
      const banks = await deps.db.query<{ id: string; name: string; demo_key: string }>(
        "select id, name, demo_key from participants where kind = 'issuer' and status = 'active' and demo_key is not null order by demo_key limit 20",
      );
      return { wallets: out, banks: banks.map((b) => ({ key: b.demo_key, participantId: b.id, name: b.name })) };
    },
  );

  app.post(
    '/demo/v1/session',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['demo'],
        summary: 'Demo only: a short-lived access token for a demo wallet acting for one of its customers',
        description:
          'Stands in for a wallet back end, so that the reference wallet app in the browser never holds a client secret. ' +
          'Answers 404 unless the hub runs in demo mode (hutong start --demo); only demo wallets (seeded, with a demo key) and their customers qualify. ' +
          'The token is an ordinary participant access token (same lifetime as POST /oauth/token).',
        body: SessionBody,
        response: {
          200: Type.Object({
            accessToken: Type.String(),
            expiresInS: Type.Integer(),
            wallet: Type.Object({ key: Type.String(), participantId: Type.String(), name: Type.String() }, { additionalProperties: false }),
            customer: Type.Object({ id: Type.String(), name: Type.String(), phone: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false }),
          }, { additionalProperties: false }),
        },
      },
    },
    async (request, reply) => {
      if (!demoAllowed(request)) return reply.fail(disabled);
      const participantId = demoWalletId(request.body.wallet);
      const [wallet] = await deps.db.query<{ id: string; name: string; kind: string; status: string; demo_key: string | null }>(
        'select id, name, kind, status, demo_key from participants where id = $1',
        [participantId],
      );
      if (wallet === undefined || wallet.kind !== 'wallet' || wallet.demo_key !== request.body.wallet) return reply.fail({ code: 'not_found', message: 'no such demo wallet' });
      if (wallet.status !== 'active') return reply.fail({ code: 'participant_suspended', message: 'this demo wallet is suspended' });
      const customer = await deps.customers.get(participantId, request.body.customerId);
      if (customer === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer at this demo wallet' });
      // The wallet's demo credential (client id cli_demo_<key>); if the operator revoked it, any other active one.
      const [credential] = await deps.db.query<{ id: string }>(
        'select id from credentials where participant_id = $1 and revoked_at is null order by (id = $2) desc, created_at desc limit 1',
        [participantId, `cli_demo_${request.body.wallet.replace(/-/g, '_')}`],
      );
      if (credential === undefined) return reply.fail({ code: 'unauthorized', message: 'this demo wallet has no active credential' });
      // A customer session: the token acts for this one customer only (src/api/refs.ts), never as the wallet's back end.
      const token = await deps.tokens.issue({ participantId, credentialId: credential.id, kind: 'wallet', customerId: customer.id });
      return {
        accessToken: token.accessToken,
        expiresInS: token.expiresInS,
        wallet: { key: request.body.wallet, participantId, name: wallet.name },
        customer: { id: customer.id, name: customer.name, phone: customer.phone ?? null },
      };
    },
  );

  app.post(
    '/demo/v1/desk-session',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['demo'],
        summary: 'Demo only: a short-lived access token for a demo merchant (the counter, /merchant) or a demo bank (the issuer desk, /issuer)',
        description:
          'Stands in for the merchant’s or the bank’s own back end, so that the page in the browser never holds a client secret. ' +
          'Answers 404 unless the hub runs in demo mode, for callers on this machine; only demo merchants and demo banks (seeded, with a demo key) qualify.',
        body: Strict({ participant: Type.String({ pattern: '^(merchant|bank)-[a-z0-9-]{1,20}$', description: 'Demo merchant or bank key, e.g. merchant-a, bank-a' }) }),
        response: {
          200: Type.Object({ accessToken: Type.String(), expiresInS: Type.Integer(), participant: Type.Object({ key: Type.String(), participantId: Type.String(), name: Type.String(), kind: Type.String() }, { additionalProperties: false }) }, { additionalProperties: false }),
        },
      },
    },
    async (request, reply) => {
      if (!demoAllowed(request)) return reply.fail(disabled);
      const key = request.body.participant;
      const kind = key.startsWith('bank-') ? 'issuer' : 'merchant';
      const participantId = demoWalletId(key);
      const [found] = await deps.db.query<{ name: string; kind: string; status: string; demo_key: string | null }>('select name, kind, status, demo_key from participants where id = $1', [participantId]);
      if (found === undefined || found.kind !== kind || found.demo_key !== key) return reply.fail({ code: 'not_found', message: `no such demo ${kind}` });
      if (found.status !== 'active') return reply.fail({ code: 'participant_suspended', message: `this demo ${kind} is suspended` });
      const [credential] = await deps.db.query<{ id: string }>('select id from credentials where participant_id = $1 and revoked_at is null order by created_at desc limit 1', [participantId]);
      if (credential === undefined) return reply.fail({ code: 'unauthorized', message: `this demo ${kind} has no active credential` });
      const token = await deps.tokens.issue({ participantId, credentialId: credential.id, kind });
      return { accessToken: token.accessToken, expiresInS: token.expiresInS, participant: { key, participantId, name: found.name, kind } };
    },
  );

  app.post(
    '/demo/v1/issuer-session',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['demo'],
        summary: 'Demo only: the operator gets a short-lived access token for a demo bank (the console’s issuer view)',
        description: 'Operator credential required. Answers 404 unless the hub runs with the demo network; only demo issuers (seeded, with a demo key) qualify.',
        security: [{ operator: [] }],
        body: Strict({ bank: Type.String({ pattern: '^bank-[a-z0-9-]{1,20}$', description: 'Demo bank key, e.g. bank-a' }) }),
        response: {
          200: Type.Object({ accessToken: Type.String(), expiresInS: Type.Integer(), bank: Type.Object({ key: Type.String(), participantId: Type.String(), name: Type.String() }, { additionalProperties: false }) }, { additionalProperties: false }),
        },
      },
    },
    async (request, reply) => {
      if (!demoAllowed(request)) return reply.fail(disabled);
      const participantId = demoWalletId(request.body.bank);
      const [bank] = await deps.db.query<{ name: string; kind: string; status: string; demo_key: string | null }>('select name, kind, status, demo_key from participants where id = $1', [participantId]);
      if (bank === undefined || bank.kind !== 'issuer' || bank.demo_key !== request.body.bank) return reply.fail({ code: 'not_found', message: 'no such demo bank' });
      if (bank.status !== 'active') return reply.fail({ code: 'participant_suspended', message: 'this demo bank is suspended' });
      const [credential] = await deps.db.query<{ id: string }>('select id from credentials where participant_id = $1 and revoked_at is null order by created_at desc limit 1', [participantId]);
      if (credential === undefined) return reply.fail({ code: 'unauthorized', message: 'this demo bank has no active credential' });
      const token = await deps.tokens.issue({ participantId, credentialId: credential.id, kind: 'issuer' });
      return { accessToken: token.accessToken, expiresInS: token.expiresInS, bank: { key: request.body.bank, participantId, name: bank.name } };
    },
  );

  /**
   * Demo only: the one-time codes the hub sends a participant to show its customer travel sealed to that participant in
   * a webhook; in the demo, the demo bank or wallet that received it is played here (opened with its webhook secret),
   * so the reference wallet can show "the SMS". Only for an object the caller holds (the ownership check resolves the
   * id), only when the recipient is a demo participant, only in demo mode, only on loopback.
   */
  const codeRoutes = [
    { path: '/demo/v1/step-up-codes/:id', kind: 'provisioning', event: 'token.step_up_requested', what: "a card provisioning's step-up" },
    { path: '/demo/v1/codes/step-up-challenges/:id', kind: 'step_up_challenge', event: 'step_up.code_requested', what: "a payment's step-up challenge" },
    { path: '/demo/v1/codes/customer-link-consents/:id', kind: 'customer_link_consent', event: 'customer_link.consent_requested', what: 'a customer link consent' },
    { path: '/demo/v1/codes/alias-verifications/:id', kind: 'alias_verification', event: 'alias.verification_requested', what: 'a new alias (phone or e-mail)' },
    { path: '/demo/v1/codes/account-link-consents/:id', kind: 'account_link_consent', event: 'account_link.consent_requested', what: 'an account link consent' },
  ] as const;
  for (const route of codeRoutes) {
    app.get(
      route.path,
      {
        config: { customer: true },
        schema: {
          tags: ['demo'],
          summary: `Demo only: the one-time code a demo participant would give its customer for ${route.what}`,
          description:
            'The hub keeps only a keyed hash of the code; the code travels sealed to the participant that delivers it (`codeSealed` in its webhook). ' +
            'Here the demo plays that participant when it is a demo bank or wallet. Only for an object you hold, only in demo mode, only on loopback.',
          security: [{ participant: [] }],
          params: Strict({ id: Ref(route.kind, 'The object the code is for') }),
          response: { 200: Type.Object({ id: Type.String(), code: Type.String(), deliveredBy: Type.String() }, { additionalProperties: false }) },
        },
      },
      async (request, reply) => {
        if (!demoAllowed(request)) return reply.fail(disabled);
        const sent = await sentCode(deps, route.event, request.params.id);
        if (sent === undefined || !sent.demoParticipant) return reply.fail({ code: 'not_found', message: 'no code was sent to a demo participant for this object' });
        const [by] = await deps.db.query<{ name: string }>('select name from participants where id = $1', [sent.participantId]);
        return { id: request.params.id, code: sent.code, deliveredBy: by?.name ?? sent.participantId };
      },
    );
  }
}
