import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface HttpMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly duration: Histogram<'method' | 'route'>;
}

/** One registry per hub instance (tests run several hubs in one process). */
export function createMetrics(): HttpMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hutong_' });
  return {
    registry,
    requests: new Counter({
      name: 'hutong_http_requests_total',
      help: 'HTTP requests by method, route template and status code',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'hutong_http_request_duration_seconds',
      help: 'HTTP request latency by method and route template',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}

/**
 * Counters a component keeps itself (the ledger's), published as they are at each scrape: set from the
 * component's own value on collect, so the scrape and the component never disagree.
 */
export function registerCounterSnapshot<K extends string>(registry: Registry, prefix: string, help: Readonly<Record<K, string>>, read: () => Readonly<Record<K, number>>): void {
  for (const key of Object.keys(help) as K[]) {
    new Counter({
      name: `${prefix}${key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_total`,
      help: help[key],
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read()[key]);
      },
    });
  }
}
