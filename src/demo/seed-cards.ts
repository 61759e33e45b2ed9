import type { Hub } from '../main.ts';
import { demoParticipantId } from './seed.ts';

/** Demo card products at each demo bank, and one active debit card for 李伟 at bank-a. Idempotent; prints nothing. */
export const DEMO_CARD_PRODUCTS = [
  { key: 'bank-a', id: 'cpr_demo_bank_a_debit', name: 'Hutong UnionCard Debit 互通借记卡', binPrefix: '62280012', brand: 'UnionPay', currency: 'CNY', cardType: 'debit' as const },
  { key: 'bank-b', id: 'cpr_demo_bank_b_credit', name: 'Pearl River Platinum Credit', binPrefix: '52960001', brand: 'Mastercard', currency: 'HKD', cardType: 'credit' as const, defaultCreditLimitMinor: 5_000_000n },
];
export const DEMO_CARD_ID = 'crd_demo_li_bank_a';

export async function seedDemoCards(hub: Pick<Hub, 'db'> & Partial<Pick<Hub, 'cards'>>, customerIds: ReadonlyMap<string, string>): Promise<void> {
  const module = hub.cards;
  if (module === undefined) return;
  const { cards } = module;
  const system = { type: 'system' } as const;
  for (const spec of DEMO_CARD_PRODUCTS) {
    const issuerId = demoParticipantId(spec.key);
    if ((await cards.getProduct(issuerId, spec.id)) !== undefined) continue;
    await hub.db.transaction(async (tx) => {
      const { key, ...input } = spec;
      const result = await cards.createProduct(tx, system, issuerId, { ...input, demoKey: `product-${key}` });
      if (!result.ok) throw new Error(`demo seed: ${result.error.message}`);
    });
  }
  const issuerId = demoParticipantId('bank-a');
  const customerId = customerIds.get('li-at-bank-a');
  if (customerId === undefined || (await cards.get(issuerId, DEMO_CARD_ID)) !== undefined) return;
  await hub.db.transaction(async (tx) => {
    const issued = await cards.issue(tx, system, issuerId, { productId: 'cpr_demo_bank_a_debit', customerId, id: DEMO_CARD_ID, demoKey: 'card-li-at-bank-a' });
    if (!issued.ok) throw new Error(`demo seed: ${issued.error.message}`);
    const active = await cards.transition(tx, system, issuerId, DEMO_CARD_ID, 'activate');
    if (!active.ok) throw new Error(`demo seed: ${active.error.message}`);
  });
}
