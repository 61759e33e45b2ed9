import type { DomainError } from '../platform/result.ts';

/**
 * A list that pages by key issues the key of its page's last item as `nextCursor`. Any other string would still sort
 * somewhere among the keys and answer a page that looks right (everything after "abc"), or be dropped and answer the
 * first page again, so a cursor that names nothing the caller can see is refused instead (400 invalid_page). `find`
 * is the list's own scoped lookup of one item by the cursor (undefined when it is not the caller's to list); a cursor
 * `find` cannot even parse should answer undefined too.
 */
export async function refuseUnknownCursor(cursor: string | undefined, find: (cursor: string) => Promise<unknown>): Promise<DomainError<'invalid_page'> | undefined> {
  if (cursor === undefined || (await find(cursor)) !== undefined) return undefined;
  return { code: 'invalid_page', message: 'the cursor is not one this list issued: pass the nextCursor of the previous page' };
}
