// The public interface of connectors/: what other folders may use (scripts/capability-index.py keeps it).
export * from './refusals.ts';
export * from './routes.ts';
export * from './service.ts';
