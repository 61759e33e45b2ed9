import { customerAccountId } from '../accounts/index.ts';
import { readFileSync } from 'node:fs';
import { conversion, DEMO_RATE_TTL_MS, DEMO_RATES_PATH, loadRatesFile } from '../fx/index.ts';
import { currencyMinorUnit } from '../platform/money.ts';
import type { AliasType } from '../aliases/index.ts';
import type { Hub } from '../main.ts';
import { DEMO_PARTICIPANTS, demoParticipantId } from './seed.ts';

/**
 * Demo data for P2P (accounts, aliases, transfers), idempotent: customer accounts with opening balances funded by recorded ledger transfers from
 * each participant's funding account (never balance edits), aliases, the demo FX provider (Pearl River Bank: its
 * positions hold the FX liquidity, its rates come from the bundled reference file) and one fee schedule.
 */
export const DEMO_ACCOUNTS: readonly { customer: string; participant: string; currency: string; opening: bigint }[] = [
  { customer: 'li-at-bank-a', participant: 'bank-a', currency: 'CNY', opening: 5_000_000n },
  { customer: 'li-at-bank-a', participant: 'bank-a', currency: 'USD', opening: 200_000n },
  { customer: 'li-at-wallet-a', participant: 'wallet-a', currency: 'CNY', opening: 100_000n },
  { customer: 'li-at-wallet-b', participant: 'wallet-b', currency: 'CNY', opening: 50_000n },
  { customer: 'zhang-at-bank-b', participant: 'bank-b', currency: 'HKD', opening: 8_000_000n },
  { customer: 'zhang-at-wallet-b', participant: 'wallet-b', currency: 'CNY', opening: 80_000n },
  { customer: 'maria-at-wallet-c', participant: 'wallet-c', currency: 'SGD', opening: 150_000n },
];

export const DEMO_ALIASES: readonly { customer: string; participant: string; currency: string; type: AliasType; value: string }[] = [
  { customer: 'li-at-wallet-a', participant: 'wallet-a', currency: 'CNY', type: 'phone', value: '+8613800138001' },
  { customer: 'li-at-wallet-a', participant: 'wallet-a', currency: 'CNY', type: 'handle', value: 'liwei' },
  { customer: 'zhang-at-wallet-b', participant: 'wallet-b', currency: 'CNY', type: 'phone', value: '+85291234567' },
  { customer: 'zhang-at-wallet-b', participant: 'wallet-b', currency: 'CNY', type: 'handle', value: 'zhangmin' },
  { customer: 'maria-at-wallet-c', participant: 'wallet-c', currency: 'SGD', type: 'phone', value: '+6581234567' },
  { customer: 'maria-at-wallet-c', participant: 'wallet-c', currency: 'SGD', type: 'handle', value: 'maria.tan' },
];

export const FX_PROVIDER = 'bank-b';
/** What the operator records as each demo participant's prefunded liquidity, per currency it holds. */
export const DEMO_LIQUIDITY_MINOR = 10_000_000_00n;
export const FX_LIQUIDITY: readonly { currency: string; amount: bigint }[] = [
  { currency: 'CNY', amount: 100_000_000_00n },
  { currency: 'HKD', amount: 100_000_000_00n },
  { currency: 'USD', amount: 10_000_000_00n },
  { currency: 'SGD', amount: 10_000_000_00n },
  { currency: 'EUR', amount: 10_000_000_00n },
];

export async function seedDemoTransfers(hubLike: object, customerIds: ReadonlyMap<string, string>): Promise<void> {
  if (!('transfers' in hubLike)) return;
  const hub = hubLike as Hub;
  const { db } = hub;
  const { ledger, accounts, aliases, fx, transfers } = hub.transfers;
  const system = { type: 'system' } as const;
  // The demo network's operator loads the reference rates (limits and risk weigh amounts in EUR by them) from the
  // bundled file, once, as a real operator does with POST /v1/operator/fx/rates; a hub outside demo mode has none
  // until its operator loads its own.
  if ((await fx.table()).asOf === null) {
    const loaded = await db.transaction((tx) => fx.refresh(tx, system, readFileSync(DEMO_RATES_PATH, 'utf8')));
    if (!loaded.ok) throw new Error(`demo rates: ${loaded.error.message}`);
  }

  // The operator records each demo participant's prefunded liquidity first: every opening balance below comes out of
  // the participant's position, as money always does (no money from nothing).
  const specs = DEMO_PARTICIPANTS.map((p) => ({ participantId: demoParticipantId(p.key), currencies: new Set(p.currencies) }));
  const provider = demoParticipantId(FX_PROVIDER);
  for (const { currency } of FX_LIQUIDITY) specs.find((p) => p.participantId === provider)?.currencies.add(currency);
  for (const { participantId, currencies } of specs) {
    for (const currency of currencies) {
      const transferId = `seed_liq_${participantId}_${currency}`.slice(0, 64);
      if ((await ledger.getTransfer(transferId)).ok) continue;
      const fx = participantId === provider ? (FX_LIQUIDITY.find((f) => f.currency === currency)?.amount ?? 0n) : 0n;
      await db.transaction(async (tx) => {
        const r = await hub.liquidity.fundsIn(tx, system, { participantId, currency, amountMinor: DEMO_LIQUIDITY_MINOR + fx, transferId, reference: 'demo prefunding' });
        if (!r.ok) throw new Error(`demo seed: liquidity ${participantId} ${currency}: ${r.error.code}`);
      });
    }
  }

  const fund = async (participantId: string, accountId: string, currency: string, amountMinor: bigint, transferId: string) => {
    const funding = await accounts.ensureSystemAccount('funding', participantId, currency);
    await db.transaction(async (tx) => {
      const [r] = await ledger.applyInTx(tx, [{ id: transferId, debitAccountId: funding, creditAccountId: accountId, amountMinor, currency, purpose: 'demo_opening_balance' }]);
      if (r === undefined || !r.ok) throw new Error(`demo seed: funding ${accountId}: ${r?.ok === false ? r.error.code : '?'}`);
    });
  };

  // The demo FX provider (Pearl River Bank) is an FX provider participant: its positions hold the FX liquidity recorded
  // above, and it posts rates for every pair of its currencies, derived from the bundled reference file (the demo
  // provider's only source): two size tiers, 0.5% and 0.3% under the mid rate, up to one million units sent.
  await postDemoProviderRates(hub);

  for (const spec of DEMO_ACCOUNTS) {
    const customerId = customerIds.get(spec.customer);
    if (customerId === undefined) continue;
    const participantId = demoParticipantId(spec.participant);
    const id = customerAccountId(customerId, spec.currency);
    if ((await accounts.ref(db, id)) === undefined) {
      await db.transaction(async (tx) => {
        const r = await accounts.openCustomerAccount(tx, system, participantId, customerId, spec.currency);
        if (!r.ok && r.error.code !== 'customer_account_exists') throw new Error(`demo seed: account ${id}: ${r.error.code}`);
      });
    }
    await fund(participantId, id, spec.currency, spec.opening, `seed_open_${id}`.slice(0, 64));
  }

  for (const spec of DEMO_ALIASES) {
    const customerId = customerIds.get(spec.customer);
    if (customerId === undefined) continue;
    const participant = await hub.participants.get(demoParticipantId(spec.participant));
    if (participant === undefined) continue;
    await db.transaction(async (tx) => {
      const r = await aliases.register(tx, system, participant, { customerId, type: spec.type, value: spec.value, accountId: customerAccountId(customerId, spec.currency) });
      if (!r.ok && r.error.code !== 'alias_taken') throw new Error(`demo seed: alias ${spec.value}: ${r.error.code}`);
    });
  }

  await db.transaction(async (tx) => {
    const r = await transfers.setFee(tx, system, { payerParticipantId: demoParticipantId('wallet-a'), payeeParticipantId: demoParticipantId('wallet-c'), fixedMinor: 100n, fixedCurrency: 'CNY', bps: 25 });
    if (!r.ok) throw new Error('demo seed: fee');
  });
}

/** The demo provider's tiers: up to this many units sent at 50 bps under the mid rate, then up to the cap at 30 bps. */
const DEMO_TIERS: readonly { upToUnits: bigint | null; spreadBps: number }[] = [
  { upToUnits: 10_000n, spreadBps: 50 },
  { upToUnits: 1_000_000n, spreadBps: 30 },
];

/**
 * Registers the demo FX provider and posts its rates for every ordered pair of the FX currencies (unless a rate it
 * posted earlier still stands for more than a day): idempotent, run at every demo start.
 */
export async function postDemoProviderRates(hub: Hub): Promise<number> {
  const { db } = hub;
  const { fx } = hub.transfers;
  const provider = demoParticipantId(FX_PROVIDER);
  const system = { type: 'system' } as const;
  // The bundled file is the demo provider's own source, read here: not the hub's reference table (which the operator
  // may have replaced with its own rates for limits and risk).
  const file = loadRatesFile();
  if (!file.ok) throw new Error(`demo rates: ${file.error.message}`);
  const table = file.value;
  const now = hub.clock.nowMs();
  let posted = 0;
  await db.transaction(async (tx) => {
    await fx.providers.register(tx, system, provider);
    const standing = await fx.providers.current(tx, { providerId: provider });
    for (const { currency: from } of FX_LIQUIDITY) {
      for (const { currency: to } of FX_LIQUIDITY) {
        if (from === to) continue;
        if (standing.some((r) => r.sendCurrency === from && r.receiveCurrency === to && r.expiresAt.getTime() - now > 86_400_000)) continue;
        const unit = 10n ** BigInt(currencyMinorUnit(from) ?? 2);
        let min = 1n;
        const tiers = [];
        for (const t of DEMO_TIERS) {
          const c = conversion(table, from, to, t.spreadBps);
          if (!c.ok) break;
          const max = t.upToUnits === null ? null : t.upToUnits * unit;
          tiers.push({ minMinor: min, maxMinor: max, rate: c.value.rate });
          if (max === null) break;
          min = max + 1n;
        }
        if (tiers.length === 0) continue;
        const r = await fx.providers.post(tx, system, provider, { sendCurrency: from, receiveCurrency: to, tiers, expiresAt: new Date(now + DEMO_RATE_TTL_MS) });
        if (!r.ok) throw new Error(`demo seed: FX rate ${from}/${to}: ${r.error.code}`);
        posted += 1;
      }
    }
  });
  return posted;
}
