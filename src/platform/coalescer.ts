/**
 * Reads of one kind that arrive while a previous read of that kind is running are answered together by ONE statement
 * (a DataLoader without its cache): the first read goes out at once, the ones arriving meanwhile form the next batch,
 * up to `maxBatch`. For hot, read-only lookups outside transactions (the alias directory), where each statement costs
 * far more than the rows it returns. Nothing is cached: every answer comes from a statement started after it was asked.
 */
export interface Coalescer<K, V> {
  load(key: K): Promise<V>;
}

export function createCoalescer<K, V>(loadMany: (keys: readonly K[]) => Promise<readonly V[]>, options: { maxBatch: number; maxInFlight?: number }): Coalescer<K, V> {
  const maxInFlight = options.maxInFlight ?? 1;
  const waiting: { key: K; resolve: (v: V) => void; reject: (e: unknown) => void }[] = [];
  let inFlight = 0;
  const pump = (): void => {
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
        pump();
      });
    },
  };
}
