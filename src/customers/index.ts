// The public interface of customers/: what other folders may use (scripts/capability-index.py keeps it).
export * from './data-rights.ts';
export * from './link-routes.ts';
export * from './links.ts';
export * from './refs.ts';
export * from './routes.ts';
export * from './service.ts';
