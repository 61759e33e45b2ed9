/**
 * A reason the hub cannot start that the operator must fix (a key-encrypting key that does not open the database's
 * data keys, a malformed setting): the CLI prints its message as one line on stderr and exits non-zero, without a
 * stack trace. Never for bugs.
 */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}
