// The public interface of connectors/: what other folders may use (scripts/capability-index.py keeps it).
export * from './routes.ts';
export * from './service.ts';
