#!/usr/bin/env node
// The CLI runs the TypeScript sources directly through tsx, so `npx hutong` works right after `npm install`
// with no build step.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli/cli.ts');
process.exitCode = await runCli(process.argv.slice(2));
