import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { publicKeyOf, SIGNATURE_HEADER, signDetached, verifyDetached, type SigningKey } from '../../participant-sdk/index.ts';
import type { Db } from '../../platform/db.ts';

/**
 * The reference bank's open-banking side (its account-access API): OAuth 2.0 authorization code with PKCE (RFC 6749,
 * RFC 7636, S256 only) for the hub as its client, the customer's approval page, an account API that reads balances with
 * the access token (POST /ob/balances), token revocation (RFC 7009) by the hub, and the customer's own view of their consents with
 * revocation at the bank. A debit from a consented account is authorized at reserve time: the hub's reserve names the
 * consent (`MndtRltdInf.MndtId`) and the bank refuses it (MD01) unless the consent is active and covers the account
 * and payments.
 *
 * A simulation: the customer proves who they are with their account's passcode (a real bank signs them in its own way),
 * and the bank accepts the hub (client `hutong`) with any redirect URI the authorization request names (a real bank
 * registers them). The hub authenticates its token and revocation requests with its connector signature (a detached
 * JWS by the key it publishes at /v1/connector/jwks), and the bank signs its token and balance answers with its
 * connector key, so both sides use the keys they already exchanged.
 */
export const OPEN_BANKING_SCHEMA = `
alter table accounts add column if not exists passcode text;
create table if not exists ob_codes (
  code_hash text primary key, client_id text not null, account_id text not null, scope text not null, redirect_uri text not null,
  challenge text not null, expires_at bigint not null, used boolean not null default false
);
create table if not exists ob_consents (
  id text primary key, client_id text not null, account_id text not null, scope text not null, token_hash text not null unique,
  status text not null check (status in ('active', 'revoked')), created_at bigint not null, revoked_at bigint, revoked_by text
)
`;

export const OPEN_BANKING_CLIENT_ID = 'hutong';
const SCOPES = ['accounts', 'payments'] as const;
const CODE_TTL_MS = 60_000;
const TOKEN_TTL_S = 90 * 24 * 3600;

export interface BankConsent {
  readonly id: string;
  readonly clientId: string;
  readonly accountId: string;
  readonly scope: string;
  readonly status: 'active' | 'revoked';
  readonly createdAt: string;
  readonly revokedAt: string | null;
  readonly revokedBy: string | null;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface BankOpenBanking {
  /** Answers a request under /oauth/ or /ob/ (undefined: not an open-banking path). */
  handle(request: { method: string; path: string; query: URLSearchParams; headers: Readonly<Record<string, string | undefined>>; body: string }): Promise<HttpAnswer | undefined>;
  /** Whether a debit of `accountId` may go ahead under this consent (the reserve's check). */
  mandateAllows(consentId: string, accountId: string): Promise<boolean>;
  consents(accountId: string): Promise<BankConsent[]>;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');
const json = (status: number, body: unknown, headers: Record<string, string> = {}): HttpAnswer => ({ status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }, body: JSON.stringify(body) });
const oauthError = (status: number, error: string, description: string) => json(status, { error, error_description: description });
const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const exponent = (currency: string) => new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
export function fromMinor(minor: bigint, currency: string): string {
  const e = exponent(currency);
  const negative = minor < 0n;
  const digits = (negative ? -minor : minor).toString().padStart(e + 1, '0');
  const text = e === 0 ? digits : `${digits.slice(0, -e)}.${digits.slice(-e)}`;
  return negative ? `-${text}` : text;
}
const sameText = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};
const isUrl = (v: string) => {
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
};

export function createBankOpenBanking(deps: { db: Db; signingKey: SigningKey; kid: string; hubPublicJwk: { kty: string; crv: string; x: string }; bankName: string; nowMs?: () => number }): BankOpenBanking {
  const { db } = deps;
  const nowMs = deps.nowMs ?? (() => Date.now());
  const hubKey = publicKeyOf(deps.hubPublicJwk);

  const signed = async (op: string, txid: string, body: unknown): Promise<HttpAnswer> => {
    const text = JSON.stringify(body);
    const signature = await signDetached(text, deps.signingKey, { kid: deps.kid, op, txid, iat: Math.floor(nowMs() / 1000) });
    return { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', [SIGNATURE_HEADER]: signature }, body: text };
  };
  const fromHub = async (body: string, signature: string | undefined, op: string, txid: string) =>
    (await verifyDetached(body, signature, await hubKey, { op, txid, nowS: Math.floor(nowMs() / 1000) })).ok;

  /** The customer, by account and passcode (the simulation's sign-in). */
  const customer = async (accountId: string | null | undefined, passcode: string | null | undefined) => {
    if (typeof accountId !== 'string' || typeof passcode !== 'string') return undefined;
    const [a] = await db.query<{ id: string; name: string; currency: string; passcode: string | null; closed: boolean }>('select id, name, currency, passcode, closed from accounts where id = $1', [accountId]);
    return a !== undefined && a.passcode !== null && !a.closed && sameText(a.passcode, passcode) ? a : undefined;
  };

  /** The authorization request's parameters, checked; a string says what is wrong. */
  const authorizationRequest = (p: URLSearchParams) => {
    const get = (k: string) => p.get(k) ?? '';
    if (get('response_type') !== 'code') return 'response_type must be code';
    if (get('client_id') !== OPEN_BANKING_CLIENT_ID) return 'unknown client_id';
    if (!isUrl(get('redirect_uri'))) return 'redirect_uri must be an http(s) URL';
    if (get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43,128}$/.test(get('code_challenge'))) return 'PKCE is required: code_challenge (S256)';
    if (get('state').length < 8 || get('state').length > 256) return 'state is required';
    const scope = get('scope').split(' ').filter((s) => s !== '');
    if (scope.length === 0 || scope.some((s) => !(SCOPES as readonly string[]).includes(s))) return `scope must be among: ${SCOPES.join(' ')}`;
    return { clientId: get('client_id'), redirectUri: get('redirect_uri'), challenge: get('code_challenge'), state: get('state'), scope: scope.join(' ') };
  };

  const page = (title: string, body: string, status = 200): HttpAnswer => ({
    status,
    headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action *" },
    body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title></head><body style="font-family:sans-serif;max-width:32rem;margin:2rem auto">${body}</body></html>`,
  });

  const toConsent = (r: { id: string; client_id: string; account_id: string; scope: string; status: 'active' | 'revoked'; created_at: bigint; revoked_at: bigint | null; revoked_by: string | null }): BankConsent => ({
    id: r.id,
    clientId: r.client_id,
    accountId: r.account_id,
    scope: r.scope,
    status: r.status,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    revokedAt: r.revoked_at === null ? null : new Date(Number(r.revoked_at)).toISOString(),
    revokedBy: r.revoked_by,
  });
  const consents = async (accountId: string) =>
    (await db.query<Parameters<typeof toConsent>[0]>('select * from ob_consents where account_id = $1 order by created_at desc, id', [accountId])).map(toConsent);

  return {
    consents,
    async mandateAllows(consentId, accountId) {
      const [c] = await db.query<{ status: string; account_id: string; scope: string }>('select status, account_id, scope from ob_consents where id = $1', [consentId]);
      return c !== undefined && c.status === 'active' && c.account_id === accountId && c.scope.split(' ').includes('payments');
    },
    async handle(req) {
      const { method, path, query, headers, body } = req;
      if (path === '/oauth/authorize' && method === 'GET') {
        const a = authorizationRequest(query);
        if (typeof a === 'string') return page('Request refused', `<p>${escape(a)}</p>`, 400);
        const hidden = [...query.entries()].map(([k, v]) => `<input type="hidden" name="${escape(k)}" value="${escape(v)}">`).join('');
        return page(
          `${deps.bankName}: approve access`,
          `<h1>${escape(deps.bankName)}</h1><p>Hutong asks, for your wallet, to <strong>${a.scope.split(' ').map((s) => (s === 'accounts' ? 'see your balance' : 'pay from your account when you ask')).join(' and ')}</strong>.</p>` +
            `<form method="post" action="/oauth/authorize">${hidden}<label>Account <input name="account" autocomplete="username"></label><br><label>Passcode <input name="passcode" type="password" autocomplete="current-password"></label><br>` +
            `<button name="decision" value="approve">Approve</button> <button name="decision" value="deny">Deny</button></form>`,
        );
      }
      if (path === '/oauth/authorize' && method === 'POST') {
        const form = new URLSearchParams(body);
        const a = authorizationRequest(form);
        if (typeof a === 'string') return page('Request refused', `<p>${escape(a)}</p>`, 400);
        const back = new URL(a.redirectUri);
        back.searchParams.set('state', a.state);
        if (form.get('decision') !== 'approve') {
          back.searchParams.set('error', 'access_denied');
          return { status: 302, headers: { location: back.toString() }, body: '' };
        }
        const who = await customer(form.get('account'), form.get('passcode'));
        if (who === undefined) return page('Not signed in', '<p>The account or passcode is wrong.</p>', 401);
        const code = randomBytes(24).toString('base64url');
        await db.query('insert into ob_codes (code_hash, client_id, account_id, scope, redirect_uri, challenge, expires_at) values ($1, $2, $3, $4, $5, $6, $7)', [
          sha256(code),
          a.clientId,
          who.id,
          a.scope,
          a.redirectUri,
          a.challenge,
          nowMs() + CODE_TTL_MS,
        ]);
        back.searchParams.set('code', code);
        return { status: 302, headers: { location: back.toString() }, body: '' };
      }
      if (path === '/oauth/token' && method === 'POST') {
        let p: Record<string, unknown>;
        try {
          p = JSON.parse(body) as Record<string, unknown>;
        } catch {
          return oauthError(400, 'invalid_request', 'JSON body expected');
        }
        const code = typeof p.code === 'string' ? p.code : '';
        if (!(await fromHub(body, headers[SIGNATURE_HEADER], 'token', code))) return oauthError(401, 'invalid_client', 'the request is not signed by the hub');
        if (p.grant_type !== 'authorization_code') return oauthError(400, 'unsupported_grant_type', 'authorization_code only');
        const granted = await db.transaction(async (tx) => {
          const [c] = await tx.query<{ client_id: string; account_id: string; scope: string; redirect_uri: string; challenge: string; expires_at: bigint; used: boolean }>('select * from ob_codes where code_hash = $1 for update', [sha256(code)]);
          if (c === undefined || c.used || Number(c.expires_at) < nowMs()) return 'the code is unknown, used or expired';
          await tx.query('update ob_codes set used = true where code_hash = $1', [sha256(code)]);
          if (p.client_id !== c.client_id || p.redirect_uri !== c.redirect_uri) return 'client_id or redirect_uri does not match the authorization request';
          if (typeof p.code_verifier !== 'string' || !/^[A-Za-z0-9._~-]{43,128}$/.test(p.code_verifier) || !sameText(sha256(p.code_verifier), c.challenge)) return 'the PKCE code_verifier does not match';
          const token = randomBytes(32).toString('base64url');
          const id = `bcons_${randomBytes(9).toString('base64url')}`;
          await tx.query(`insert into ob_consents (id, client_id, account_id, scope, token_hash, status, created_at) values ($1, $2, $3, $4, $5, 'active', $6)`, [id, c.client_id, c.account_id, c.scope, sha256(token), nowMs()]);
          const [acc] = await tx.query<{ currency: string; name: string }>('select currency, name from accounts where id = $1', [c.account_id]);
          return { token, id, scope: c.scope, account: { id: c.account_id, currency: acc?.currency ?? '', name: acc?.name ?? '' } };
        });
        if (typeof granted === 'string') return oauthError(400, 'invalid_grant', granted);
        return signed('token', code, { access_token: granted.token, token_type: 'Bearer', expires_in: TOKEN_TTL_S, scope: granted.scope, consent_id: granted.id, accounts: [granted.account] });
      }
      if (path === '/oauth/revoke' && method === 'POST') {
        let p: Record<string, unknown>;
        try {
          p = JSON.parse(body) as Record<string, unknown>;
        } catch {
          return oauthError(400, 'invalid_request', 'JSON body expected');
        }
        const consentId = typeof p.consent_id === 'string' ? p.consent_id : '';
        if (!(await fromHub(body, headers[SIGNATURE_HEADER], 'revoke', consentId))) return oauthError(401, 'invalid_client', 'the request is not signed by the hub');
        // RFC 7009: an unknown or already revoked token is answered 200 as well.
        if (typeof p.token === 'string') {
          await db.query(`update ob_consents set status = 'revoked', revoked_at = $2, revoked_by = 'client' where token_hash = $1 and id = $3 and status = 'active'`, [sha256(p.token), nowMs(), consentId]);
        }
        return json(200, {});
      }
      if (path === '/ob/balances' && method === 'POST') {
        let p: Record<string, unknown>;
        try {
          p = JSON.parse(body) as Record<string, unknown>;
        } catch {
          return json(400, { error: 'invalid_request' });
        }
        const accountId = typeof p.account_id === 'string' ? p.account_id : '';
        if (!(await fromHub(body, headers[SIGNATURE_HEADER], 'balance', accountId))) return json(401, { error: 'invalid_client' });
        const auth = headers.authorization ?? '';
        const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
        const [c] = await db.query<{ id: string; account_id: string; scope: string; status: string }>('select id, account_id, scope, status from ob_consents where token_hash = $1', [sha256(token)]);
        if (c === undefined) return json(401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
        if (c.status !== 'active') return json(401, { error: 'consent_revoked', consent_id: c.id }, { 'www-authenticate': 'Bearer error="invalid_token"' });
        if (c.account_id !== accountId || !c.scope.split(' ').includes('accounts')) return json(403, { error: 'insufficient_scope' });
        const [a] = await db.query<{ currency: string; balance_minor: bigint }>('select currency, balance_minor from accounts where id = $1', [accountId]);
        if (a === undefined) return json(404, { error: 'not_found' });
        const [held] = await db.query<{ s: bigint | null }>(`select sum(amount_minor)::int8 as s from holds where account_id = $1 and side = 'debit' and state = 'held'`, [accountId]);
        return signed('balance', accountId, {
          accountId,
          balance: { amount: fromMinor(a.balance_minor, a.currency), currency: a.currency },
          available: { amount: fromMinor(a.balance_minor - (held?.s ?? 0n), a.currency), currency: a.currency },
          asOf: new Date(nowMs()).toISOString(),
        });
      }
      if (path === '/ob/consents' && method === 'GET') {
        const who = await customer(query.get('account'), headers['x-customer-passcode']);
        if (who === undefined) return json(401, { error: 'not signed in: account and x-customer-passcode' });
        return json(200, { items: await consents(who.id) });
      }
      const revoke = /^\/ob\/consents\/([^/]+)\/revoke$/.exec(path);
      if (revoke !== null && method === 'POST') {
        const who = await customer(query.get('account'), headers['x-customer-passcode']);
        if (who === undefined) return json(401, { error: 'not signed in: account and x-customer-passcode' });
        const rows = await db.query<Parameters<typeof toConsent>[0]>(
          `update ob_consents set status = 'revoked', revoked_at = coalesce(revoked_at, $3), revoked_by = coalesce(revoked_by, 'customer') where id = $1 and account_id = $2 returning *`,
          [decodeURIComponent(revoke[1] ?? ''), who.id, nowMs()],
        );
        return rows[0] === undefined ? json(404, { error: 'no such consent' }) : json(200, toConsent(rows[0]));
      }
      if (path.startsWith('/oauth/') || path.startsWith('/ob/')) return json(404, { error: 'not found' });
      return undefined;
    },
  };
}

/** Reads a Node request and answers it with the open-banking side, or passes it on (the connector). */
export function withOpenBanking(ob: BankOpenBanking, next: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://bank.invalid');
    if (!url.pathname.startsWith('/oauth/') && !url.pathname.startsWith('/ob/')) return next(req, res);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 65_536) chunks.push(c);
    });
    req.on('end', () => {
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k] = typeof v === 'string' ? v : undefined;
      const answer = size > 65_536 ? Promise.resolve(json(413, { error: 'too large' })) : ob.handle({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers, body: Buffer.concat(chunks).toString('utf8') });
      answer.then(
        (a) => {
          const r = a ?? json(404, { error: 'not found' });
          res.writeHead(r.status, r.headers);
          res.end(r.body);
        },
        () => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: 'handler failed' }));
        },
      );
    });
  };
}
