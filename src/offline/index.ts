// The public interface of offline/: what other folders may use (scripts/capability-index.py keeps it).
export * from './certificate.ts';
export * from './refs.ts';
export * from './routes.ts';
export * from './service.ts';
export * from './token.ts';
