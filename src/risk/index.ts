// The public interface of risk/: what other folders may use (scripts/capability-index.py keeps it).
export * from './refs.ts';
export * from './service.ts';
