// The public interface of settlement/: what other folders may use (scripts/capability-index.py keeps it).
export * from './documents.ts';
export * from './iso20022.ts';
export * from './refs.ts';
export * from './routes.ts';
export * from './service.ts';
