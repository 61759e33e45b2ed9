import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { openSentCode } from '../../src/platform/sent-codes.ts';
import { demoParticipantId } from '../../src/demo/seed.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

/**
 * A customer manages their own aliases from the wallet, under their own session: a handle is registered at once; a
 * phone number or e-mail address only after they confirm the one-time code their wallet delivered to it; they remove
 * their aliases, and only theirs.
 */
describe.each(engines)('aliases a customer adds and removes under their own session on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let n = 0;
  const key = () => ({ 'idempotency-key': `alias-self-${++n}` });
  const cus = (k: string) => t.demo.customers.get(k) ?? '';
  const li = () => cus('li-at-wallet-a');
  const liCny = () => `acc_${li()}_CNY`;
  let asLi: Record<string, string> = {};
  const aliasCount = async () => Number((await t.hub.db.query<{ n: bigint }>('select count(*) as n from aliases'))[0]?.n ?? 0n);

  beforeAll(async () => {
    clock = createFakeClock(Date.UTC(2026, 0, 15, 8, 0, 0));
    t = await startTestHub(engine, { clock, config: { accessTokenTtlS: 86_400 } });
    const s = await t.api('wallet-a').post('/v1/customer-sessions', { customerId: li() });
    expect(s.status).toBe(201);
    asLi = { authorization: `Bearer ${s.body.accessToken as string}` };
  }, 120_000);
  afterAll(async () => t?.close());

  it('registers a handle at once, and refuses a phone or e-mail without its code', async () => {
    const handle = await t.api('anonymous').post('/v1/aliases', { customerId: li(), type: 'handle', value: 'li.self', accountId: liCny() }, { ...asLi, ...key() });
    expect(handle.status).toBe(201);
    expect(handle.body).toMatchObject({ type: 'handle', value: 'li.self', accountId: liCny() });
    const before = await aliasCount();
    const phone = await t.api('anonymous').post('/v1/aliases', { customerId: li(), type: 'phone', value: '+8613911112222', accountId: liCny() }, { ...asLi, ...key() });
    expect(phone.status).toBe(403);
    expect(phone.body.error.code).toBe('alias_verification_required');
    expect(await aliasCount()).toBe(before);
  });

  it('refuses a handle that breaks the rule, saying what the rule is', async () => {
    const before = await aliasCount();
    for (const value of ['li', '_li', 'li-self', '李明明', 'l'.repeat(31)]) {
      const r = await t.api('anonymous').post('/v1/aliases', { customerId: li(), type: 'handle', value, accountId: liCny() }, { ...asLi, ...key() });
      expect(r.status, value).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_alias', details: { type: 'handle', pattern: '^[a-z0-9][a-z0-9_.]{2,29}$' } });
      expect(r.body.error.message).toContain('3 to 30 characters');
    }
    // The rule's bounds: 30 characters, a leading '@' and upper case are accepted and normalised.
    const longest = await t.api('anonymous').post('/v1/aliases', { customerId: li(), type: 'handle', value: `@Li${'x'.repeat(28)}`, accountId: liCny() }, { ...asLi, ...key() });
    expect(longest.status).toBe(201);
    expect(longest.body.value).toBe(`li${'x'.repeat(28)}`);
    expect(await aliasCount()).toBe(before + 1);
    const spec = (await t.hub.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, { post?: { requestBody: { content: Record<string, { schema: { properties: { value: { description?: string } } } }> } } }> };
    expect(spec.paths['/v1/aliases']?.post?.requestBody.content['application/json']?.schema.properties.value.description).toContain("handle: 3 to 30 characters: lower-case letters a-z, digits, '_' and '.'");
  });

  it('adds an e-mail address after the code its wallet delivered; a wrong code is refused and counted; the code never travels in clear', async () => {
    const v = await t.api('anonymous').post('/v1/aliases/verifications', { customerId: li(), type: 'email', value: 'Li.Wei.Self@Example.com', accountId: liCny() }, { ...asLi, ...key() });
    expect(v.status).toBe(201);
    expect(v.body.status).toBe('pending');
    const [evt] = await t.hub.db.query<{ participant_id: string; payload: Record<string, unknown> }>(`select participant_id, payload from events where type = 'alias.verification_requested' and payload->>'verificationId' = $1`, [v.body.id]);
    expect(evt?.participant_id).toBe(demoParticipantId('wallet-a'));
    expect(evt?.payload.value).toBe('li.wei.self@example.com');
    const code = await openSentCode(t.hub, 'alias.verification_requested', v.body.id);
    expect(JSON.stringify(evt?.payload)).not.toContain(code);
    const [row] = await t.hub.db.query<Record<string, unknown>>('select * from alias_verifications where id = $1', [v.body.id]);
    expect(JSON.stringify(row)).not.toContain(code);

    const wrong = code === '000000' ? '111111' : '000000';
    const refused = await t.api('anonymous').post(`/v1/aliases/verifications/${v.body.id}/confirm`, { code: wrong }, asLi);
    expect(refused.body.error.code).toBe('alias_code_invalid');
    expect((await t.hub.db.query<{ attempts: number }>('select attempts from alias_verifications where id = $1', [v.body.id]))[0]?.attempts).toBe(1);
    const confirmed = await t.api('anonymous').post(`/v1/aliases/verifications/${v.body.id}/confirm`, { code }, asLi);
    expect(confirmed.status).toBe(201);
    expect(confirmed.body).toMatchObject({ type: 'email', value: 'li.wei.self@example.com', accountId: liCny() });
    // Payable by it now, from another wallet.
    const found = await t.api('wallet-b').get(`/v1/aliases/lookup?customerId=${cus('zhang-at-wallet-b')}&type=email&value=li.wei.self%40example.com`);
    expect(found.status).toBe(200);
    // Confirmed once: the same code again is refused.
    const again = await t.api('anonymous').post(`/v1/aliases/verifications/${v.body.id}/confirm`, { code }, asLi);
    expect(again.body.error.code).toBe('alias_verification_locked');
  });

  it('an expired code, five wrong codes, or an alias someone holds are each refused with their code', async () => {
    const start = (value: string) => t.api('anonymous').post('/v1/aliases/verifications', { customerId: li(), type: 'phone', value, accountId: liCny() }, { ...asLi, ...key() });
    const late = await start('+8613911113333');
    const lateCode = await openSentCode(t.hub, 'alias.verification_requested', late.body.id);
    clock.advance(10 * 60_000 + 1);
    expect((await t.api('anonymous').post(`/v1/aliases/verifications/${late.body.id}/confirm`, { code: lateCode }, asLi)).body.error.code).toBe('alias_verification_expired');

    const guessed = await start('+8613911114444');
    const right = await openSentCode(t.hub, 'alias.verification_requested', guessed.body.id);
    const wrong = right === '000000' ? '111111' : '000000';
    for (let i = 0; i < 5; i++) expect((await t.api('anonymous').post(`/v1/aliases/verifications/${guessed.body.id}/confirm`, { code: wrong }, asLi)).body.error.code).toBe('alias_code_invalid');
    expect((await t.api('anonymous').post(`/v1/aliases/verifications/${guessed.body.id}/confirm`, { code: right }, asLi)).body.error.code).toBe('alias_verification_locked');

    // Guesses sent all at once get no more tries than guesses sent one by one: of twelve, at most five are checked.
    const raced = await start('+8613911115555');
    const raceCode = await openSentCode(t.hub, 'alias.verification_requested', raced.body.id);
    const raceWrong = raceCode === '000000' ? '111111' : '000000';
    const answers = await Promise.all(Array.from({ length: 12 }, () => t.api('anonymous').post(`/v1/aliases/verifications/${raced.body.id}/confirm`, { code: raceWrong }, asLi)));
    const codes = answers.map((r) => r.body.error?.code as string);
    expect(codes.filter((c) => c === 'alias_code_invalid').length).toBeLessThanOrEqual(5);
    expect(codes.filter((c) => c !== 'alias_code_invalid').every((c) => c === 'alias_verification_locked')).toBe(true);
    expect((await t.api('anonymous').post(`/v1/aliases/verifications/${raced.body.id}/confirm`, { code: raceCode }, asLi)).body.error.code).toBe('alias_verification_locked');
    expect((await t.hub.db.query('select id from aliases where value = $1', ['+8613911115555'])).length).toBe(0);

    // Maria's phone is hers (at wallet C): no code is sent for it.
    const taken = await start('+6581234567');
    expect(taken.body.error.code).toBe('alias_taken');
  });

  it('removes their own alias; another customer’s alias is not found to them', async () => {
    const mine = await t.api('anonymous').post('/v1/aliases', { customerId: li(), type: 'handle', value: 'li.remove.me', accountId: liCny() }, { ...asLi, ...key() });
    expect(mine.status).toBe(201);
    const removed = await t.api('anonymous').delete(`/v1/aliases/${mine.body.id}`, asLi);
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual({ id: mine.body.id, deleted: true });
    const [maria] = await t.hub.db.query<{ id: string }>(`select id from aliases where type = 'phone' and value = '+6581234567'`);
    const theirs = await t.api('anonymous').delete(`/v1/aliases/${maria?.id ?? ''}`, asLi);
    expect(theirs.status).toBe(404);
    expect((await t.hub.db.query('select id from aliases where id = $1', [maria?.id ?? ''])).length).toBe(1);
  });
});
