// The public interface of merchants/: what other folders may use (scripts/capability-index.py keeps it).
export * from './service.ts';
