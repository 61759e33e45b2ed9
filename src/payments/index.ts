// The public interface of payments/: what other folders may use (scripts/capability-index.py keeps it).
export * from './errors.ts';
export * from './module.ts';
export * from './refs.ts';
export * from './service.ts';
export * from './offers.ts';
export * from './insights.ts';
