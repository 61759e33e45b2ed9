/**
 * Expected failures are values: services return a Result whose error carries a stable code. The HTTP edge maps each
 * code to a status exactly once (src/api/errors.ts). Throw only for bugs and broken infrastructure.
 */
export interface DomainError<C extends string = string> {
  readonly code: C;
  readonly message: string;
  readonly details?: object;
}

export type Ok<T> = { readonly ok: true; readonly value: T };
export type Err<E> = { readonly ok: false; readonly error: E };
export type Result<T, E extends DomainError = DomainError> = Ok<T> | Err<E>;

export function ok<T>(value: T): Ok<T> {
  return { ok: true, value };
}

export function err<C extends string>(code: C, message: string, details?: object): Err<DomainError<C>> {
  return { ok: false, error: details === undefined ? { code, message } : { code, message, details } };
}
