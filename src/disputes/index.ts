// The public interface of disputes/: what other folders may use (scripts/capability-index.py keeps it).
export * from './errors.ts';
export * from './refs.ts';
export * from './routes.ts';
export * from './service.ts';
