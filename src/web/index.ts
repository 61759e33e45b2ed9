// The public interface of web/: what other folders may use (scripts/capability-index.py keeps it).
export * from './budgets.ts';
export * from './operator-settings.ts';
export * from './routes.ts';
