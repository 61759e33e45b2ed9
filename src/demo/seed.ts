import { createHmac } from 'node:crypto';
import type { Hub } from '../main.ts';
import type { ParticipantKind } from '../participants/index.ts';

/**
 * The demo network seeded on first start: 2 banks, 3 wallets, 2 merchants and a few customers. Seeding is idempotent
 * (stable ids and demo keys): a restart creates nothing new. Demo credentials are derived from a vault secret, so
 * they are the same on every start of the same data directory and can be printed again; only their hashes are stored.
 */
export interface DemoParticipantSpec {
  readonly key: string;
  readonly kind: ParticipantKind;
  readonly name: string;
  readonly country: string;
  readonly currencies: readonly string[];
}

export const DEMO_PARTICIPANTS: readonly DemoParticipantSpec[] = [
  { key: 'bank-a', kind: 'issuer', name: 'Hutong Commercial Bank 互通商业银行', country: 'CN', currencies: ['CNY', 'USD'] },
  { key: 'bank-b', kind: 'issuer', name: 'Pearl River Bank 珠江银行', country: 'HK', currencies: ['HKD', 'CNY', 'USD'] },
  { key: 'wallet-a', kind: 'wallet', name: 'Lantern Pay 灯笼钱包', country: 'CN', currencies: ['CNY'] },
  { key: 'wallet-b', kind: 'wallet', name: 'Jade Wallet 翡翠钱包', country: 'CN', currencies: ['CNY', 'HKD'] },
  { key: 'wallet-c', kind: 'wallet', name: 'Kite Wallet', country: 'SG', currencies: ['SGD', 'USD', 'CNY'] },
  { key: 'merchant-a', kind: 'merchant', name: 'Best Transport 最佳运输', country: 'CN', currencies: ['CNY'] },
  { key: 'merchant-b', kind: 'merchant', name: 'Harbour Tea House 港湾茶馆', country: 'HK', currencies: ['HKD', 'CNY'] },
];

export interface DemoCustomerSpec {
  readonly key: string;
  readonly participantKey: string;
  readonly externalId: string;
  readonly name: string;
  readonly phone: string;
  readonly kycLevel: number;
}

/** The same people are customers of several participants; the hub links them only through verification. */
export const DEMO_CUSTOMERS: readonly DemoCustomerSpec[] = [
  { key: 'li-at-bank-a', participantKey: 'bank-a', externalId: 'A-1001', name: '李伟', phone: '+8613800138001', kycLevel: 3 },
  { key: 'li-at-wallet-a', participantKey: 'wallet-a', externalId: 'la-li-wei', name: '李伟', phone: '+8613800138001', kycLevel: 2 },
  { key: 'li-at-wallet-b', participantKey: 'wallet-b', externalId: 'jade-88001', name: '李伟', phone: '+8613800138001', kycLevel: 2 },
  { key: 'zhang-at-bank-b', participantKey: 'bank-b', externalId: 'PRB-2001', name: '张敏', phone: '+85291234567', kycLevel: 3 },
  { key: 'zhang-at-wallet-b', participantKey: 'wallet-b', externalId: 'jade-88002', name: '张敏', phone: '+85291234567', kycLevel: 2 },
  { key: 'maria-at-wallet-c', participantKey: 'wallet-c', externalId: 'kite-301', name: 'Maria Tan', phone: '+6581234567', kycLevel: 2 },
];

export interface DemoCredential {
  readonly key: string;
  readonly participantId: string;
  readonly name: string;
  readonly kind: ParticipantKind;
  readonly clientId: string;
  readonly clientSecret: string;
}

export interface DemoNetwork {
  readonly participants: readonly DemoCredential[];
  readonly customers: ReadonlyMap<string, string>; // demo key → customer id
  readonly created: boolean;
}

export const demoParticipantId = (key: string) => `par_demo_${key.replace(/-/g, '_')}`;
export const demoCustomerId = (key: string) => `cus_demo_${key.replace(/-/g, '_')}`;

export async function seedDemoNetwork(hub: Pick<Hub, 'db' | 'vault' | 'participants' | 'customers'>): Promise<DemoNetwork> {
  const { db, vault, participants, customers } = hub;
  const seedKey = await vault.secret('index');
  const derive = (label: string) => createHmac('sha256', seedKey).update(`demo-credential:${label}`).digest('base64url');
  let created = false;
  const out: DemoCredential[] = [];
  for (const spec of DEMO_PARTICIPANTS) {
    const id = demoParticipantId(spec.key);
    const clientId = `cli_demo_${spec.key.replace(/-/g, '_')}`;
    const clientSecret = `sk_demo_${derive(spec.key)}`;
    const existing = await participants.get(id);
    if (existing === undefined) {
      created = true;
      await db.transaction(async (tx) => {
        const result = await participants.create(tx, { type: 'system' }, { id, demoKey: spec.key, kind: spec.kind, name: spec.name, country: spec.country, currencies: spec.currencies });
        if (!result.ok) throw new Error(`demo seed: ${result.error.message}`);
        // Replace the random first credential with the derived demo one, so it can be printed on every start.
        await participants.revokeCredential(tx, { type: 'system' }, id, result.value.credential.id);
        const fixed = await participants.issueCredential(tx, { type: 'system' }, id, { id: clientId, secret: clientSecret });
        if (!fixed.ok) throw new Error(`demo seed: ${fixed.error.message}`);
      });
    }
    out.push({ key: spec.key, participantId: id, name: spec.name, kind: spec.kind, clientId, clientSecret });
  }
  const customerIds = new Map<string, string>();
  for (const spec of DEMO_CUSTOMERS) {
    const participantId = demoParticipantId(spec.participantKey);
    const id = demoCustomerId(spec.key);
    customerIds.set(spec.key, id);
    if ((await customers.get(participantId, id)) !== undefined) continue;
    created = true;
    const participant = await participants.get(participantId);
    if (participant === undefined) throw new Error(`demo seed: participant ${participantId} missing`);
    await db.transaction(async (tx) => {
      const result = await customers.create(tx, { type: 'system' }, participant, { externalId: spec.externalId, name: spec.name, phone: spec.phone, kycLevel: spec.kycLevel }, id);
      if (!result.ok) throw new Error(`demo seed: ${result.error.message}`);
    });
  }
  // @modules:demo-seed (each capability seeds its demo data here, idempotently)
  await (await import('./seed-cards.ts')).seedDemoCards(hub, customerIds);
  await (await import('./seed-transfers.ts')).seedDemoTransfers(hub, customerIds);
  await (await import('./seed-payments.ts')).seedDemoPayments(hub);
  return { participants: out, customers: customerIds, created };
}
