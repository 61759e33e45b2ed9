import { customerAccountId } from '../accounts/index.ts';
import type { Hub } from '../main.ts';
import { demoCustomerId, demoParticipantId } from './seed.ts';

/**
 * The sandbox's test cards (demo mode only: `hutong start --demo` seeds them after the demo network, and its banner and
 * docs/guides/sandbox.md list them): one active card per hosted demo bank, held by that bank's demo customer and
 * funded — a debit card by the customer's account at the bank (opened and funded by the demo network, from the bank's
 * prefunded position), a credit card by its own credit line at the product's default limit — so that a wallet can add
 * it by its number, expiry and CVV and pay with it at once. Idempotent: a restart reuses them.
 * Their numbers are random on the first start of a data directory and stay the same after; the CVV is derived, as for
 * every card, and read back with the number through the issuer's `reveal` — data of demo cards at demo banks, which
 * is why only a hub in demo mode prints it.
 */
export const SANDBOX_CARDS = [
  { bank: 'bank-a', id: 'crd_demo_test_bank_a', productId: 'cpr_demo_bank_a_debit', holder: 'li-at-bank-a', currency: 'CNY' },
  { bank: 'bank-b', id: 'crd_demo_test_bank_b', productId: 'cpr_demo_bank_b_credit', holder: 'zhang-at-bank-b', currency: 'HKD' },
] as const;

export interface SandboxCard {
  readonly bank: string;
  readonly issuerId: string;
  readonly cardId: string;
  readonly brand: string;
  readonly cardType: string;
  readonly currency: string;
  readonly holderCustomerId: string;
  readonly fundingAccountId: string;
  readonly cardNumber: string;
  /** MM/YY */
  readonly expiry: string;
  readonly cvv: string;
}

const SYSTEM = { type: 'system' } as const;

export async function seedSandboxCards(hub: Pick<Hub, 'db' | 'cards' | 'transfers'>): Promise<SandboxCard[]> {
  const out: SandboxCard[] = [];
  for (const spec of SANDBOX_CARDS) {
    const issuerId = demoParticipantId(spec.bank);
    const holder = demoCustomerId(spec.holder);
    const fundingAccountId = customerAccountId(holder, spec.currency);
    if ((await hub.cards.cards.get(issuerId, spec.id)) === undefined) {
      await hub.db.transaction(async (tx) => {
        // The demo network opened and funded this account; a data directory seeded before it had one is given one.
        const opened = await hub.transfers.accounts.openCustomerAccount(tx, SYSTEM, issuerId, holder, spec.currency);
        if (!opened.ok && opened.error.code !== 'customer_account_exists') throw new Error(`sandbox: account ${fundingAccountId}: ${opened.error.code}`);
        const issued = await hub.cards.cards.issue(tx, SYSTEM, issuerId, { id: spec.id, productId: spec.productId, customerId: holder, fundingAccountId, demoKey: `sandbox-card-${spec.bank}` });
        if (!issued.ok) throw new Error(`sandbox: card ${spec.id}: ${issued.error.code}`);
        const active = await hub.cards.cards.transition(tx, SYSTEM, issuerId, spec.id, 'activate');
        if (!active.ok) throw new Error(`sandbox: card ${spec.id}: ${active.error.code}`);
      });
    }
    const revealed = await hub.cards.cards.reveal(issuerId, spec.id);
    if (revealed === undefined) throw new Error(`sandbox: card ${spec.id} vanished`);
    const { card } = revealed;
    out.push({
      bank: spec.bank,
      issuerId,
      cardId: card.id,
      brand: card.brand,
      cardType: card.cardType,
      currency: card.currency,
      holderCustomerId: holder,
      fundingAccountId: card.fundingAccountId ?? fundingAccountId,
      cardNumber: revealed.cardNumber,
      expiry: card.expiry,
      cvv: revealed.cvv,
    });
  }
  return out;
}

/** The banner's lines for the test cards. */
export function sandboxBannerLines(cards: readonly SandboxCard[]): string[] {
  return [
    'Sandbox test cards (demo mode only; add one to a wallet with POST /v1/wallet/tokens, docs/guides/sandbox.md):',
    ...cards.map((c) => `  ${c.bank}  ${c.brand} ${c.cardType} ${c.currency}  number ${c.cardNumber}  expiry ${c.expiry}  CVV ${c.cvv}  (holder ${c.holderCustomerId}, funded by ${c.fundingAccountId})`),
  ];
}
