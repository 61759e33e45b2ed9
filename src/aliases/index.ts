// The public interface of aliases/: what other folders may use (scripts/capability-index.py keeps it).
export * from './normalize.ts';
export * from './refs.ts';
export * from './service.ts';
