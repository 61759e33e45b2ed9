// The public interface of demo/: what other folders may use (scripts/capability-index.py keeps it).
export * from './run.ts';
export * from './sandbox.ts';
export * from './seed.ts';
