// The public interface of cards/: what other folders may use (scripts/capability-index.py keeps it).
export * from './device-keys.ts';
export * from './errors.ts';
export * from './model.ts';
export * from './module.ts';
export * from './numbers.ts';
export * from './refs.ts';
export * from './service.ts';
export * from './token-refs.ts';
export * from './token-service.ts';
