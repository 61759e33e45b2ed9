// The public interface of api/: what other folders may use (scripts/capability-index.py keeps it).
export * from './context.ts';
export * from './errors.ts';
export * from './openapi.ts';
export * from './paging.ts';
export * from './refs.ts';
export * from './schemas.ts';
