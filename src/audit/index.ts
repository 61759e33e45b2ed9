// The public interface of audit/: what other folders may use (scripts/capability-index.py keeps it).
export * from './cli.ts';
export * from './routes.ts';
export * from './service.ts';
