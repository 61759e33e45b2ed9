import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What test/spine/table-ownership.test.ts checks: which file names which capability's tables in SQL. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = join(ROOT, 'src');
export const ALLOW_FILE = join(ROOT, 'test/spine/table-ownership.allow.json');

/** Table → the folder under src/ that owns it (docs/ARCHITECTURE.md, the map). */
export const TABLE_OWNER: Readonly<Record<string, string>> = {
  participants: 'participants', credentials: 'participants', participant_connections: 'participants',
  connector_messages: 'connectors',
  customers: 'customers', customer_links: 'customers', customer_link_consents: 'customers', persons: 'customers', person_links: 'customers',
  card_products: 'cards', cards: 'cards', card_request_keys: 'cards', card_tokens: 'cards', token_provisionings: 'cards', issuer_token_settings: 'cards', token_keys: 'cards', token_push_receipts: 'cards',
  pay_authorizations: 'payments', pay_issuer_asks: 'payments', pay_issuer_settings: 'payments', pay_qr_codes: 'payments', pay_links: 'payments', pay_refunds: 'payments', pay_risk_rules: 'payments',
  merchants: 'merchants',
  quotes: 'transfers', payments: 'transfers', money_requests: 'transfers', bill_splits: 'transfers', bill_split_members: 'transfers', red_packets: 'transfers', red_packet_members: 'transfers', red_packet_shares: 'transfers', payer_blocks: 'transfers', fee_schedules: 'transfers',
  account_links: 'accounts', account_link_consents: 'accounts', open_banking_consents: 'accounts',
  aliases: 'aliases', alias_moves: 'aliases', alias_verifications: 'aliases', alias_flags: 'aliases',
  fx_rates: 'fx', fx_liquidity_accounts: 'fx', fx_providers: 'fx', fx_provider_rates: 'fx',
  liquidity_requests: 'liquidity', liquidity_approval_thresholds: 'liquidity', cash_movements: 'cash',
  risk_rules: 'risk', risk_observations: 'risk', risk_alerts: 'risk',
  step_up_challenges: 'stepup', customer_authenticators: 'stepup', customer_passkeys: 'stepup', passkey_registrations: 'stepup',
  ledger_accounts: 'ledger', ledger_transfers: 'ledger', ledger_pending: 'ledger', ledger_history: 'ledger', ledger_transfer_failures: 'ledger',
  audit_log: 'audit', audit_checkpoints: 'audit',
  events: 'webhooks', webhook_deliveries: 'webhooks',
  idempotency_keys: 'platform', data_keys: 'platform',
  hub_heartbeat: 'system',
  customer_budgets: 'web',
  reward_rules: 'value', reward_entries: 'value', coupons: 'value', wallet_coupons: 'value', coupon_redemptions: 'value', membership_programs: 'value', membership_cards: 'value', savings_pots: 'value', offer_consents: 'value', targeted_offers: 'value', targeted_offer_eligibility: 'value', targeted_offer_acceptances: 'value',
  pay_declines: 'payments',
  offline_purses: 'offline', offline_payments: 'offline', offline_double_spends: 'offline',
  credit_statements: 'credit', credit_repayments: 'credit',
  disputes: 'disputes', dispute_steps: 'disputes', recalls: 'disputes', recall_holds: 'disputes',
  settlement_windows: 'settlement', settlement_entries: 'settlement', settlement_net_positions: 'settlement', settlement_instructions: 'settlement', settlement_currency_models: 'settlement', settlement_schedules: 'settlement', settlement_discrepancy_reports: 'settlement',
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name) ? [path] : [];
  });
}

/** Tables a source text names in SQL (after FROM, JOIN, UPDATE, INTO), of those the map knows. */
export function tablesIn(text: string): Set<string> {
  const found = new Set<string>();
  for (const m of text.matchAll(/\b(?:from|join|update|into)\s+([a-z_][a-z0-9_]*)\b/gi)) {
    const table = m[1]?.toLowerCase();
    if (table !== undefined && Object.hasOwn(TABLE_OWNER, table)) found.add(table);
  }
  return found;
}

/** file (relative to the repository) → tables of other capabilities it names. */
export function foreignAccess(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const folder = relative(SRC, file).split(sep)[0] ?? '';
    const foreign = [...tablesIn(readFileSync(file, 'utf8'))].filter((t) => TABLE_OWNER[t] !== folder).sort();
    if (foreign.length > 0) out.set(relative(ROOT, file).split(sep).join('/'), foreign);
  }
  return out;
}


// `node --import tsx test/support/table-ownership.ts --write` records today's foreign accesses (only when paying debt
// back by hand is done and the list must be rewritten; the test refuses both new and stale entries).
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1]) && process.argv.includes('--write')) {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(ALLOW_FILE, `${JSON.stringify(Object.fromEntries([...foreignAccess()].sort(([x], [y]) => x.localeCompare(y))), null, 1)}\n`);
}
