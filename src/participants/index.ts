// The public interface of participants/: what other folders may use (scripts/capability-index.py keeps it).
export * from './connections.ts';
export * from './model.ts';
export * from './refs.ts';
export * from './routes.ts';
export * from './service.ts';
export * from './tokens.ts';
export * from './webhook-secrets.ts';
