// The public interface of ledger/: what other folders may use (scripts/capability-index.py keeps it).
export * from './ledger.ts';
export * from './routes.ts';
export * from './types.ts';
