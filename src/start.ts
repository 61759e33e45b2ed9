import { loadConfig } from './platform/config.ts';
import { createHub } from './main.ts';
import { seedDemoNetwork } from './demo/seed.ts';
import type { CliIo } from './cli.ts';

/** `hutong start`: the hub on its configured engine, the demo network seeded, a banner that says what to try. */
export async function startCommand(io: CliIo, args: readonly string[] = []): Promise<number> {
  const startedMs = Date.now();
  const config = loadConfig(process.env, args.includes('--demo') ? { demo: true } : {});
  const hub = await createHub(config);
  const demo = config.demo ? await seedDemoNetwork(hub) : undefined;
  hub.startBackground();
  await hub.listen();
  const base = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${config.port}`;
  const lines = [
    '',
    `Hutong hub ready at ${base} in ${Date.now() - startedMs} ms (${hub.db.engine === 'pglite' ? `embedded PGlite, data in ${config.dataDir}` : 'PostgreSQL'})`,
    `  API docs:     ${base}/docs   (OpenAPI: ${base}/openapi.json)`,
    `  Health:       ${base}/health   Metrics: ${base}/metrics (operator credential)`,
    `  Operator credential: ${hub.operatorToken}`,
  ];
  if (demo !== undefined) {
    lines.push('', `Demo network (${demo.created ? 'seeded now' : 'already seeded'}): client_id / client_secret`);
    for (const p of demo.participants) lines.push(`  ${p.kind.padEnd(8)} ${p.name.padEnd(34)} ${p.clientId}  ${p.clientSecret}`);
    const wallet = demo.participants.find((p) => p.kind === 'wallet');
    if (wallet !== undefined) {
      lines.push(
        '',
        'Try it:',
        `  TOKEN=$(curl -s ${base}/oauth/token -d grant_type=client_credentials -d client_id=${wallet.clientId} -d client_secret=${wallet.clientSecret} | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')`,
        `  curl -s ${base}/v1/customers -H "Authorization: Bearer $TOKEN"`,
        `  curl -s ${base}/v1/operator/participants -H "Authorization: Bearer ${hub.operatorToken}"`,
      );
    }
  }
  lines.push('', 'Ctrl-C stops the hub (in-flight requests finish first).', '');
  io.stdout(lines.join('\n'));

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      io.stderr(`\n${signal}: shutting down…`);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await hub.close();
  io.stderr('stopped cleanly');
  return 0;
}
