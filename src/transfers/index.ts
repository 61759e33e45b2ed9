// The public interface of transfers/: what other folders may use (scripts/capability-index.py keeps it).
export * from './errors.ts';
export * from './module.ts';
export * from './refs.ts';
