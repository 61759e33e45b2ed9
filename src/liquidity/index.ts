// The public interface of liquidity/: what other folders may use (scripts/capability-index.py keeps it).
export * from './refs.ts';
export * from './requests.ts';
export * from './routes.ts';
export * from './service.ts';
