// The public interface of value/: what other folders may use (scripts/capability-index.py keeps it).
export * from './coupons.ts';
export * from './errors.ts';
export * from './module.ts';
export * from './pots.ts';
export * from './refs.ts';
export * from './rewards.ts';
export * from './routes.ts';
export * from './targeted.ts';
