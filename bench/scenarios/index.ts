import type { BenchResult } from '../recorder.ts';
import { ledgerScenario } from './ledger.ts';
import { authorizeScenario } from './authorize.ts';
import { p2pScenario } from './p2p.ts';
import { settlementScenario } from './settlement.ts';

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Yields result lines as they are measured, so a long run shows progress. */
  run(args: readonly string[]): AsyncIterable<BenchResult>;
}

/** Adding a scenario: write bench/scenarios/<name>.ts exporting a Scenario, and list it here. */
export const SCENARIOS: readonly Scenario[] = [ledgerScenario, p2pScenario, authorizeScenario, settlementScenario];
