// The public interface of fx/: what other folders may use (scripts/capability-index.py keeps it).
export * from './providers.ts';
export * from './rates.ts';
export * from './routes.ts';
export * from './service.ts';
