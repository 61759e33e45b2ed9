// The public interface of demo/: what other folders may use (scripts/capability-index.py keeps it).
export * from './bank/cli.ts';
export * from './bank/in-process.ts';
export * from './run.ts';
export * from './sandbox.ts';
export * from './seed.ts';
