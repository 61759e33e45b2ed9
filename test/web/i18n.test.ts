import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * The pages speak 中文 and English: every string has both, and every key the wallet page names exists (a missing key
 * would show its id on screen). The dictionaries are read from their source (web/src/shared/i18n.tsx is browser code,
 * outside the Node type-check), one `'key': 'text',` entry a line.
 */
const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');

function dictionary(source: string, name: 'en' | 'zh'): Record<string, string> {
  const start = source.indexOf(`const ${name}: Record<string, string> = {`);
  const end = source.indexOf('\n};', start);
  if (start < 0 || end < 0) throw new Error(`no dictionary ${name} in i18n.tsx`);
  const entries: Record<string, string> = {};
  for (const line of source.slice(start, end).split('\n')) {
    if (!/^\s*'/.test(line)) continue;
    const entry = /^\s*'([^']+)':\s*(['"])(.*)\2,\s*$/.exec(line);
    // An entry written some other way would be skipped silently, and its key reported missing or not checked.
    if (entry === null) throw new Error(`not one 'key': 'text', entry: ${line}`);
    entries[entry[1] ?? ''] = entry[3] ?? '';
  }
  return entries;
}

describe('the pages’ dictionaries', () => {
  const source = read('../../web/src/shared/i18n.tsx');
  const en = dictionary(source, 'en');
  const zh = dictionary(source, 'zh');

  it('have the same keys in both languages, none empty', () => {
    expect(Object.keys(en).length).toBeGreaterThan(200);
    expect(Object.keys(zh).filter((k) => !(k in en))).toEqual([]);
    expect(Object.keys(en).filter((k) => !(k in zh))).toEqual([]);
    expect(Object.entries({ ...en, ...zh }).filter(([, v]) => v.trim() === '')).toEqual([]);
  });

  it('hold every key the wallet page names', () => {
    const sources = [...['App.tsx', 'Me.tsx', 'StepUp.tsx', 'Scan.tsx', 'CardControls.tsx', 'Budget.tsx', 'accounts.tsx', 'More.tsx'].map((f) => `wallet/${f}`), 'merchant/App.tsx', 'pay/App.tsx', 'console/Settings.tsx'].map((f) => read(`../../web/src/${f}`)).join('\n');
    // Keys named literally (t('…'), or kept in state and translated later), and the families built from a value.
    const literal = [...sources.matchAll(/'((?:app|common|signin|nav|home|card|add|pay|xfer|alias|history|budget|cat|me|stepup|passkey|links|quick|scan|receive|warning|merchant|paylink|set)\.[A-Za-z.]+)'/g)].map((m) => m[1] ?? '');
    const families = [
      ...['otp', 'totp', 'passkey'].map((m) => `stepup.method.${m}`),
      'links.status.active',
      'links.status.revoked',
      // Built from a value: the merchant's tabs, channels and confirmations, the payment-link states, the history kinds,
      // the statuses every list shows (authorizations, transfers, red packets, account movements).
      ...['counter', 'payments', 'links'].map((k) => `merchant.tab.${k}`),
      ...['qr', 'cpm', 'tap', 'link', 'mpm_static'].map((c) => `merchant.channel.${c}`),
      'merchant.confirm.void',
      'merchant.confirm.refund',
      ...['open', 'expired', 'paid'].map((s) => `paylink.state.${s}`),
      // The console's settings view: rule names, actions and thresholds as they come from the hub.
      ...['velocity', 'amount_vs_history', 'new_counterparty', 'flagged_counterparty', 'large_amount'].map((r) => `set.rule.${r}`),
      ...['step_up', 'decline'].map((a) => `set.action.${a}`),
      ...['windowS', 'maxCount', 'multiple', 'minHistory', 'minRefEurCents'].map((k) => `set.param.${k}`),
      ...['transfer', 'merchant', 'red_packet', 'account'].map((k) => `history.kind.${k}`),
      ...['completed', 'captured', 'authorized', 'posted', 'pending', 'paid', 'claimed', 'declined', 'voided', 'refunded', 'expired'].map((s) => `status.${s}`),
    ];
    const missing = [...new Set([...literal, ...families])].filter((k) => !(k in en) || !(k in zh));
    expect(literal.length).toBeGreaterThan(100);
    expect(missing).toEqual([]);
  });
});
