import { cpuCalibrationMs } from './calibrate.ts';
import type { BenchResult } from './recorder.ts';
import { SCENARIOS } from './scenarios/index.ts';

/** npm run bench -- <scenario> [--json] [scenario options] */
const args = process.argv.slice(2);
const json = args.includes('--json');
const positional = args.filter((a) => !a.startsWith('--'));
const name = positional[0];
const scenario = SCENARIOS.find((s) => s.name === name);
if (scenario === undefined) {
  console.error(`usage: npm run bench -- <scenario> [--json]\nscenarios:\n${SCENARIOS.map((s) => `  ${s.name.padEnd(16)} ${s.description}`).join('\n')}`);
  process.exit(2);
}

const COLUMNS = ['scenario', 'engine', 'ops_per_s', 'p50_ms', 'p99_ms'] as const;
const rows: BenchResult[] = [];
// Measured once before the scenario: every line carries it (see bench/calibrate.ts).
const calibrationMs = cpuCalibrationMs();
for await (const scenarioResult of scenario.run(args.slice(1))) {
  const result: BenchResult = { ...scenarioResult, cpu_calib_ms: calibrationMs };
  rows.push(result);
  if (json) console.log(JSON.stringify(result));
  else console.error(`… ${result.scenario} on ${result.engine}: ${result.ops_per_s} ops/s`);
}
if (!json) {
  const extras = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => !(COLUMNS as readonly string[]).includes(k));
  const header = [...COLUMNS, ...extras];
  const table = [header, ...rows.map((r) => header.map((h) => String(r[h] ?? '')))];
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
}
process.exit(0);
