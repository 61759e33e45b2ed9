// The public interface of webhooks/: what other folders may use (scripts/capability-index.py keeps it).
export * from './catalogue.ts';
export * from './dispatcher.ts';
export * from './events.ts';
export * from './refs.ts';
export * from './routes.ts';
export * from './secrets.ts';
export * from './signing.ts';
