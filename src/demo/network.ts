import type { DemoScenario } from './run.ts';
import { expectStatus, openDemoHarness } from './harness.ts';

/** The spine's story: participants, credentials, customers, idempotency, isolation, audit. */
export const networkScenario: DemoScenario = {
  name: 'network',
  summary: 'participants, credentials, customers, idempotent retries, isolation and the audit chain',
  async run(io) {
    const h = await openDemoHarness(io);
    io.stdout(`Fresh embedded hub at ${h.baseUrl} with the demo network:`);
    for (const p of h.demo.participants) io.stdout(`  ${p.kind.padEnd(8)} ${p.name}`);
    io.stdout('');
    try {
      let createdId = '';
      await h.step('the operator onboards a new wallet and receives its credential once', async () => {
        const body = expectStatus(
          await h.call('operator', 'POST', '/v1/operator/participants', { kind: 'wallet', name: 'Orchid Pay', country: 'MY', currencies: ['MYR'] }),
          201,
          'create participant',
        );
        createdId = body.participant.id;
        return `${body.participant.id} client_id=${body.credential.clientId} (secret shown once, stored hashed)`;
      });
      await h.step('wallet A registers a customer with an Idempotency-Key, and a retry replays the same answer', async () => {
        const headers = { 'idempotency-key': 'demo-customer-1' };
        const first = expectStatus(await h.call('wallet-a', 'POST', '/v1/customers', { externalId: 'la-demo-1', name: 'Chen Jie', phone: '13900139000' }, headers), 201, 'create');
        const again = expectStatus(await h.call('wallet-a', 'POST', '/v1/customers', { externalId: 'la-demo-1', name: 'Chen Jie', phone: '13900139000' }, headers), 201, 'replay');
        if (first.id !== again.id) throw new Error('replay returned a different customer');
        return `${first.id}, phone stored as ${first.phone}`;
      });
      await h.step("wallet B cannot see wallet A's customer (404)", async () => {
        const customers = expectStatus(await h.call('wallet-a', 'GET', '/v1/customers?externalId=la-demo-1'), 200, 'list');
        const res = await h.call('wallet-b', 'GET', `/v1/customers/${customers.items[0].id}`);
        return res.status === 404 && res.body.error.code === 'customer_not_found';
      });
      await h.step('bad input is refused with a clear code and nothing is written', async () => {
        const res = await h.call('wallet-a', 'POST', '/v1/customers', { externalId: 'x', name: 'X', favouriteColour: 'red' });
        return res.status === 400 && res.body.error.code === 'unknown_field' ? `400 ${res.body.error.code}: ${res.body.error.message}` : false;
      });
      await h.step('the operator suspends the new wallet', async () => {
        const body = expectStatus(await h.call('operator', 'POST', `/v1/operator/participants/${createdId}/suspend`), 200, 'suspend');
        return body.status === 'suspended';
      });
      await h.step('the audit chain verifies', async () => {
        const body = expectStatus(await h.call('operator', 'POST', '/v1/operator/audit/verify'), 200, 'verify');
        return body.ok === true ? `${body.checked} records, head ${String(body.headHash).slice(0, 16)}…` : false;
      });
    } finally {
      await h.close();
    }
    return h.ok;
  },
};
