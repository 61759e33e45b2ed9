import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALLOW_FILE, foreignAccess, ROOT, TABLE_OWNER, tablesIn } from '../support/table-ownership.ts';
/**
 * Each table has one owning capability: only its folder writes SQL against it; the others call its service. This test
 * reads every table name that follows FROM, JOIN, UPDATE, INTO or DELETE FROM in the source of src/ and compares the
 * file's folder with the table's owner. Reads and writes that predate the rule are listed in
 * `table-ownership.allow.json` (file → tables): a debt to pay back, never to grow — a new one fails here, and an entry
 * no longer needed fails too, so the list only shrinks.
 */
describe('table ownership', () => {
  const allowed = JSON.parse(readFileSync(ALLOW_FILE, 'utf8')) as Record<string, string[]>;
  const actual = foreignAccess();

  it('no file names another capability’s table beyond the recorded debt', () => {
    const fresh: string[] = [];
    for (const [file, tables] of actual) for (const t of tables) if (!(allowed[file] ?? []).includes(t)) fresh.push(`${file} → ${t} (owned by ${TABLE_OWNER[t] ?? '?'})`);
    expect(fresh, 'call the owning capability’s service instead of its SQL').toEqual([]);
  });

  it('the recorded debt only shrinks: an entry no longer needed must be removed', () => {
    const stale: string[] = [];
    for (const [file, tables] of Object.entries(allowed)) for (const t of tables) if (!(actual.get(file) ?? []).includes(t)) stale.push(`${file} → ${t}`);
    expect(stale, `remove these from ${relative(ROOT, ALLOW_FILE)}`).toEqual([]);
  });

  it('every table of the migrations has an owner, and the scan finds table names in SQL', () => {
    const created = new Set<string>();
    for (const name of readdirSync(join(ROOT, 'migrations'))) {
      for (const m of readFileSync(join(ROOT, 'migrations', name), 'utf8').matchAll(/create table (?:if not exists )?([a-z_0-9]+)/gi)) if (m[1] !== undefined) created.add(m[1].toLowerCase());
    }
    created.delete('schema_migrations');
    expect([...created].filter((t) => !Object.hasOwn(TABLE_OWNER, t))).toEqual([]);
    expect([...tablesIn('select * from cards c join card_tokens t on … ; update ledger_accounts set …; insert into events')].sort()).toEqual(['card_tokens', 'cards', 'events', 'ledger_accounts']);
  });
});
