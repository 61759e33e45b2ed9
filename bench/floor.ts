import Fastify from 'fastify';

/**
 * An empty route on a bare Fastify server (no logger, no hooks): the floor every HTTP bench line is compared with,
 * measured in the same run by the same load generator as the hub's requests.
 */
export async function startFloorServer(): Promise<{ base: string; close(): Promise<void> }> {
  const app = Fastify({ logger: false });
  app.get('/floor', async () => ({}));
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return { base: address, close: () => app.close() };
}
