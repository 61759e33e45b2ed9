// The public interface of accounts/: what other folders may use (scripts/capability-index.py keeps it).
export * from './refs.ts';
export * from './service.ts';
export * from './open-banking.ts';
