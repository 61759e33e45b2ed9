// The public interface of system/: what other folders may use (scripts/capability-index.py keeps it).
export * from './routes.ts';
