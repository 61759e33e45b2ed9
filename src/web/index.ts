// The public interface of web/: what other folders may use (scripts/capability-index.py keeps it).
export * from './routes.ts';
