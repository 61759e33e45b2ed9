import { createHmac } from 'node:crypto';
import { customerAccountId } from '../../accounts/index.ts';
import type { Hub } from '../../main.ts';
import { createHubClient } from '../../participant-sdk/index.ts';
import { demoCustomerId, demoParticipantId } from '../seed.ts';
import { DEMO_LIQUIDITY_MINOR } from '../seed-transfers.ts';
import type { ReferenceBank } from './reference-bank.ts';

/**
 * The demo network's connected bank: the reference bank (its own books) joined to the hub as a participant whose CNY
 * accounts it keeps itself. The hub knows its customers (their ids at the bank, names, aliases) and their accounts
 * only as addresses: their ledger accounts at the hub never hold money; the bank's position does.
 */
export const CONNECTED_BANK = { key: 'bank-c', name: 'Bund Street Bank 外滩银行', country: 'CN', currency: 'CNY' } as const;
/** `passcode`: how the customer signs in at the reference bank to approve a wallet's access (a simulation). */
export const CONNECTED_CUSTOMERS: readonly { key: string; bankAccount: string; name: string; phone: string; handle: string; openingMinor: bigint; passcode: string }[] = [
  { key: 'wang-at-bank-c', bankAccount: 'BSB-6200-0001', name: '王芳', phone: '+8613900139002', handle: 'wangfang', openingMinor: 2_000_000n, passcode: 'wang-2468' },
  { key: 'chen-at-bank-c', bankAccount: 'BSB-6200-0002', name: '陈杰', phone: '+8613900139003', handle: 'chenjie', openingMinor: 300_000n, passcode: 'chen-1357' },
];

export interface ConnectedBankCredential {
  readonly key: string;
  readonly participantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

/**
 * Joins the bank to the hub, idempotently: the participant and its credential, its prefunded liquidity, its connection
 * (connected in CNY, the bank's URL and public key), its customers at the bank and at the hub with their aliases.
 * `hubFetch` lets the bank reach the hub in-process (tests); otherwise `hubUrl`.
 */
export async function connectReferenceBank(hub: Hub, bank: ReferenceBank, options: { hubUrl?: string; hubFetch?: typeof fetch; deadlineMs?: number } = {}): Promise<ConnectedBankCredential> {
  const system = { type: 'system' } as const;
  const id = demoParticipantId(CONNECTED_BANK.key);
  const clientId = `cli_demo_${CONNECTED_BANK.key.replace(/-/g, '_')}`;
  const clientSecret = `sk_demo_${createHmac('sha256', await hub.vault.secret('index')).update(`demo-credential:${CONNECTED_BANK.key}`).digest('base64url')}`;
  if ((await hub.participants.get(id)) === undefined) {
    await hub.db.transaction(async (tx) => {
      const r = await hub.participants.create(tx, system, { id, demoKey: CONNECTED_BANK.key, kind: 'issuer', name: CONNECTED_BANK.name, country: CONNECTED_BANK.country, currencies: [CONNECTED_BANK.currency] });
      if (!r.ok) throw new Error(`connected bank: ${r.error.message}`);
      await hub.participants.revokeCredential(tx, system, id, r.value.credential.id);
      const fixed = await hub.participants.issueCredential(tx, system, id, { id: clientId, secret: clientSecret });
      if (!fixed.ok) throw new Error(`connected bank: ${fixed.error.message}`);
    });
  }
  const liquidityId = `seed_liq_${id}_${CONNECTED_BANK.currency}`;
  if (!(await hub.transfers.ledger.getTransfer(liquidityId)).ok) {
    await hub.db.transaction(async (tx) => {
      const r = await hub.liquidity.fundsIn(tx, system, { participantId: id, currency: CONNECTED_BANK.currency, amountMinor: DEMO_LIQUIDITY_MINOR, transferId: liquidityId, reference: 'demo prefunding' });
      if (!r.ok) throw new Error(`connected bank: liquidity ${r.error.code}`);
    });
  }
  await hub.db.transaction(async (tx) => {
    const r = await hub.connections.set(tx, system, id, { currency: CONNECTED_BANK.currency, mode: 'connected', endpointUrl: bank.url(), publicJwk: bank.publicJwk, deadlineMs: options.deadlineMs ?? 2_000 });
    if (!r.ok) throw new Error(`connected bank: connection ${r.error.message}`);
  });
  const participant = await hub.participants.get(id);
  if (participant === undefined) throw new Error('connected bank: participant missing');
  for (const c of CONNECTED_CUSTOMERS) {
    await bank.openAccount({ id: c.bankAccount, name: c.name, currency: CONNECTED_BANK.currency, balanceMinor: c.openingMinor, passcode: c.passcode });
    const customerId = demoCustomerId(c.key);
    if ((await hub.customers.get(id, customerId)) !== undefined) continue;
    await hub.db.transaction(async (tx) => {
      const made = await hub.customers.create(tx, system, participant, { externalId: c.bankAccount, name: c.name, phone: c.phone, kycLevel: 3 }, customerId);
      if (!made.ok) throw new Error(`connected bank: customer ${made.error.message}`);
      // The account's address at the hub (aliases point at it); the money stays at the bank.
      const opened = await hub.transfers.accounts.openCustomerAccount(tx, system, id, customerId, CONNECTED_BANK.currency);
      if (!opened.ok && opened.error.code !== 'customer_account_exists') throw new Error(`connected bank: account ${opened.error.code}`);
      for (const alias of [
        { type: 'phone' as const, value: c.phone },
        { type: 'handle' as const, value: c.handle },
      ]) {
        const r = await hub.transfers.aliases.register(tx, system, participant, { customerId, ...alias, accountId: customerAccountId(customerId, CONNECTED_BANK.currency) });
        if (!r.ok && r.error.code !== 'alias_taken') throw new Error(`connected bank: alias ${alias.value}: ${r.error.code}`);
      }
    });
  }
  if (options.hubUrl !== undefined || options.hubFetch !== undefined) {
    bank.setHub(createHubClient({ hubUrl: options.hubUrl ?? 'http://hub.invalid', clientId, clientSecret, ...(options.hubFetch !== undefined ? { fetch: options.hubFetch } : {}) }));
  }
  return { key: CONNECTED_BANK.key, participantId: id, clientId, clientSecret };
}
