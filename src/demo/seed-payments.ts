import type { Hub } from '../main.ts';
import { demoParticipantId } from './seed.ts';

/** The two demo merchants get their merchant profiles and settlement accounts. Idempotent; prints nothing. */
export const DEMO_MERCHANTS = [
  { key: 'merchant-a', id: 'mer_demo_merchant_a', name: 'Best Transport', nameZh: '最佳运输', mcc: '4121', country: 'CN', city: 'Beijing', currency: 'CNY', feeBps: 60 },
  { key: 'merchant-b', id: 'mer_demo_merchant_b', name: 'Harbour Tea House', nameZh: '港湾茶馆', mcc: '5814', country: 'HK', city: 'Hong Kong', currency: 'HKD', feeBps: 0 },
] as const;

export async function seedDemoPayments(hub: Pick<Hub, 'db'> & Partial<Pick<Hub, 'payments'>>): Promise<void> {
  const module = hub.payments;
  if (module === undefined) return;
  for (const spec of DEMO_MERCHANTS) {
    const participantId = demoParticipantId(spec.key);
    if ((await module.merchants.getById(spec.id)) !== undefined) continue;
    await hub.db.transaction(async (tx) => {
      const { key, ...input } = spec;
      const r = await module.merchants.create(tx, { type: 'system' }, { participantId, kind: 'merchant' }, { ...input, demoKey: `merchant-${key}` });
      if (!r.ok) throw new Error(`demo seed: ${r.error.message}`);
    });
  }
}
