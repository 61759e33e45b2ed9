/**
 * Reads of one kind that arrive while a previous read of that kind is running are answered together by ONE statement
 * (a DataLoader without its cache): reads asked in one turn of the event loop go out together (the batch leaves in the
 * loop's check phase, after every I/O callback of that turn has run: a confirm batch's payments, or the requests read
 * off the sockets at once), and the ones arriving while `maxInFlight` batches run form the next, up to `maxBatch`. For
 * hot, read-only lookups outside transactions (the alias directory), where each statement costs far more than the rows
 * it returns. Nothing is cached: every answer comes from a statement started after it was asked.
 */
export interface Coalescer<K, V> {
  load(key: K): Promise<V>;
}

export function createCoalescer<K, V>(loadMany: (keys: readonly K[]) => Promise<readonly V[]>, options: { maxBatch: number; maxInFlight?: number }): Coalescer<K, V> {
  const maxInFlight = options.maxInFlight ?? 1;
  const waiting: { key: K; resolve: (v: V) => void; reject: (e: unknown) => void }[] = [];
  let inFlight = 0;
  let scheduled = false;
  const pump = (): void => {
    scheduled = false;
    while (inFlight < maxInFlight && waiting.length > 0) {
      const batch = waiting.splice(0, options.maxBatch);
      inFlight++;
      loadMany(batch.map((w) => w.key))
        .then(
          (values) => {
            if (values.length !== batch.length) throw new Error('coalescer: loadMany must answer every key');
            batch.forEach((w, i) => w.resolve(values[i]!));
          },
          (error: unknown) => batch.forEach((w) => w.reject(error)),
        )
        .catch((error: unknown) => batch.forEach((w) => w.reject(error)))
        .finally(() => {
          inFlight--;
          pump();
        });
    }
  };
  return {
    load(key) {
      return new Promise<V>((resolve, reject) => {
        waiting.push({ key, resolve, reject });
        if (!scheduled && inFlight < maxInFlight) {
          scheduled = true;
          setImmediate(pump);
        }
      });
    },
  };
}
