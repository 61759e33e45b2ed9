import type { CliIo } from '../cli/index.ts';

/** A demo scenario tells one story on a fresh embedded hub; exit code 0 only when every step behaved as expected. */
export interface DemoScenario {
  readonly name: string;
  readonly summary: string;
  run(io: CliIo): Promise<boolean>;
}

const SCENARIOS: Record<string, () => Promise<DemoScenario>> = {
  network: async () => (await import('./network.ts')).networkScenario,
  // @modules:demo-scenarios (each capability adds `hutong demo <name>` here)
  cards: async () => (await import('./story-cards.ts')).cardsScenario,
  transfers: async () => (await import('./story-transfers.ts')).transfersScenario,
  pay: async () => (await import('./story-pay.ts')).payScenario,
  settlement: async () => (await import('./story-settlement.ts')).settlementScenario,
  value: async () => (await import('./story-value.ts')).valueScenario,
};

export async function runDemo(args: string[], io: CliIo): Promise<number> {
  const [name] = args;
  if (name === undefined || name === '--list') {
    io.stdout('Demo scenarios:');
    for (const [key, load] of Object.entries(SCENARIOS)) io.stdout(`  ${key.padEnd(10)} ${(await load()).summary}`);
    return name === undefined ? 64 : 0;
  }
  const load = SCENARIOS[name];
  if (load === undefined) {
    io.stderr(`unknown demo scenario ${name}; try: ${Object.keys(SCENARIOS).join(', ')}`);
    return 64;
  }
  const scenario = await load();
  const ok = await scenario.run(io);
  io.stdout(ok ? `\n✔ demo ${name}: every step behaved as expected` : `\n✘ demo ${name}: a step did not behave as expected`);
  return ok ? 0 : 1;
}
