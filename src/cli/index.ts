// The public interface of cli/: what other folders may use (scripts/capability-index.py keeps it).
export * from './cli.ts';
