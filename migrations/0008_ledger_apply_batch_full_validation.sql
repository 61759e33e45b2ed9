-- ledger_apply_batch (migration 0006) validates an account it did not only credit by all of what the batch read of it:
-- history_seq, closed and the four balances. 0006 compared history_seq and closed only.
--
-- Why: the engine now sends a batch as soon as the one before it has been sent (pipelined on one connection), computed
-- on that one's result. If that one then loses its race (HL001) and another writer has meanwhile moved the same account
-- by as many entries, history_seq alone matches while the balances do not: the batch would be applied on the strength
-- of a write that never happened. With every value compared, a batch is applied only when each row is exactly as the
-- batch assumed it, however that state came about, so its outcome is the one it would have computed from the database.
-- The rest of the function is 0006's, unchanged (its comments say why it is built as it is).
drop function ledger_apply_batch(
  text[], int8[], bool[], int8[], int8[], int8[], int8[], int8[], bool[],
  text[], text[], text[], text[],
  text[], text[], text[], int8[], text[], text[], text[], text[],
  text[], text[], text[], text[], int8[], text[], text[], text[], bool[], text[], int8[],
  text[], text[], int8[], int8[], int8[], int8[], int8[], int8[], int8[], int8[],
  int8[], int8[],
  text[], text[], text[],
  text[],
  timestamptz);

create function ledger_apply_batch(
  -- accounts, sorted by id (byte order): the history_seq and closed flag read, then the balances and history_seq after
  -- the batch, or for a shared account (a_c) the batch's changes to them
  a_id text[], a_seq0 int8[], a_closed0 bool[], a_dp int8[], a_dpo int8[], a_cp int8[], a_cpo int8[], a_seq int8[], a_c bool[],
  -- the four balances read (ignored for a shared account)
  a_dp0 int8[], a_dpo0 int8[], a_cp0 int8[], a_cpo0 int8[],
  -- pending transfers read: the state read, the state after (null: unchanged) and who resolved it
  p_id text[], p_state0 text[], p_state text[], p_rb text[],
  -- pending transfers created by the batch
  n_id text[], n_d text[], n_c text[], n_a int8[], n_cur text[], n_e text[], n_st text[], n_rb text[],
  -- transfers, with each side's statement entry (seq and the four balances after; offsets on a shared account)
  t_id text[], t_kind text[], t_d text[], t_c text[], t_a int8[], t_cur text[], t_p text[], t_m text[], t_l bool[], t_pid text[], t_t int8[],
  t_e text[], t_f text[], t_ds int8[], t_ddp int8[], t_ddpo int8[], t_dcp int8[], t_dcpo int8[], t_cs int8[], t_cdp int8[], t_cdpo int8[],
  t_ccp int8[], t_ccpo int8[],
  -- recorded failures
  f_id text[], f_code text[], f_f text[],
  -- ids whose outcome writes nothing but assumed that no transfer or failure has them
  x_id text[],
  now_ts timestamptz
) returns text
language plpgsql
-- Every statement below is a key lookup; index plans also fix the account lock order (see above). Generic plans: a
-- custom plan (the default for the first calls, and forever when the array sizes vary) re-plans every statement on
-- every call.
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set enable_hashjoin = off
set enable_mergejoin = off
set jit = off
-- Arrays are unnested in select lists (a streaming ProjectSet), not in FROM: a function scan materializes its rows in a
-- tuplestore whose memory glibc hands back to the kernel at every statement's end (brk, with a TLB shootdown on every
-- core: a large share of a small batch's time on this kind of VM).
as $$
declare
  n bigint;
  stale text;
  -- Shared accounts: ids and their values before this batch's deltas.
  s_id text[];
  s_seq int8[];
  s_dp int8[];
  s_dpo int8[];
  s_cp int8[];
  s_cpo int8[];
begin
  if cardinality(p_id) > 0 then
    select count(*) into n from (
      select 1 from ledger_pending p join unnest(p_id, p_state0) as u(id, st) on p.transfer_id = u.id
       where p.state = u.st order by p.transfer_id for update of p) locked;
    if n <> cardinality(p_id) then
      raise exception 'ledger: a pending transfer changed since the batch read it' using errcode = 'HL001';
    end if;
    update ledger_pending p set state = u.st, resolved_by = u.rb, resolved_at = now_ts
      from (select unnest(p_id) as id, unnest(p_state) as st, unnest(p_rb) as rb) u where p.transfer_id = u.id and u.st is not null;
  end if;
  if true = any(a_c) then
    with updated as (
      update ledger_accounts a
         set debits_pending = case when u.c then a.debits_pending + u.dp else u.dp end,
             debits_posted = case when u.c then a.debits_posted + u.dpo else u.dpo end,
             credits_pending = case when u.c then a.credits_pending + u.cp else u.cp end,
             credits_posted = case when u.c then a.credits_posted + u.cpo else u.cpo end,
             history_seq = case when u.c then a.history_seq + u.seq else u.seq end,
             updated_at = case when u.c or u.seq <> u.seq0 then now_ts else a.updated_at end
        from (select unnest(a_id) as id, unnest(a_seq0) as seq0, unnest(a_closed0) as closed0, unnest(a_dp) as dp, unnest(a_dpo) as dpo,
                     unnest(a_cp) as cp, unnest(a_cpo) as cpo, unnest(a_seq) as seq, unnest(a_c) as c, unnest(a_dp0) as dp0,
                     unnest(a_dpo0) as dpo0, unnest(a_cp0) as cp0, unnest(a_cpo0) as cpo0) u
       where a.id = u.id and case when u.c then not a.closed
                                  else a.history_seq = u.seq0 and a.closed = u.closed0 and a.debits_pending = u.dp0 and a.debits_posted = u.dpo0
                                       and a.credits_pending = u.cp0 and a.credits_posted = u.cpo0 end
      returning a.id, u.c, a.history_seq - u.seq as seq, a.debits_pending - u.dp as dp, a.debits_posted - u.dpo as dpo,
                a.credits_pending - u.cp as cp, a.credits_posted - u.cpo as cpo)
    select count(*), array_agg(id) filter (where c), array_agg(seq) filter (where c), array_agg(dp) filter (where c),
           array_agg(dpo) filter (where c), array_agg(cp) filter (where c), array_agg(cpo) filter (where c)
      into n, s_id, s_seq, s_dp, s_dpo, s_cp, s_cpo
      from updated;
  elsif cardinality(a_id) > 0 then
    update ledger_accounts a
       set debits_pending = u.dp, debits_posted = u.dpo, credits_pending = u.cp, credits_posted = u.cpo, history_seq = u.seq,
           updated_at = case when u.seq = u.seq0 then a.updated_at else now_ts end
      from (select unnest(a_id) as id, unnest(a_seq0) as seq0, unnest(a_closed0) as closed0, unnest(a_dp) as dp, unnest(a_dpo) as dpo,
                   unnest(a_cp) as cp, unnest(a_cpo) as cpo, unnest(a_seq) as seq, unnest(a_dp0) as dp0, unnest(a_dpo0) as dpo0,
                   unnest(a_cp0) as cp0, unnest(a_cpo0) as cpo0) u
     where a.id = u.id and a.history_seq = u.seq0 and a.closed = u.closed0 and a.debits_pending = u.dp0 and a.debits_posted = u.dpo0
       and a.credits_pending = u.cp0 and a.credits_posted = u.cpo0;
    get diagnostics n = row_count;
  else
    n := 0;
  end if;
  if n <> cardinality(a_id) then
    -- The rows that changed, as they are now (the rows this update did change carry this transaction's xmin): the
    -- engine refreshes what it remembered of them and computes the batch again.
    select coalesce(json_agg(json_build_array(a.id, a.currency, a.closed, a.debits_must_not_exceed_credits, a.credits_must_not_exceed_debits,
                    a.credit_limit_minor::text, a.debits_pending::text, a.debits_posted::text, a.credits_pending::text, a.credits_posted::text,
                    a.history_seq::text)), '[]')::text
      into stale
      from ledger_accounts a where a.id = any(a_id) and not (a.xmin = xid(pg_current_xact_id()));
    raise exception 'ledger: an account changed since the batch read it' using errcode = 'HL001', detail = stale;
  end if;
  if cardinality(t_id) > 0 and s_id is null then
    insert into ledger_transfers (id, kind, debit_account_id, credit_account_id, amount_minor, currency, purpose, metadata, linked, pending_id,
           timeout_ms, expires_at, fingerprint, created_at, debit_seq, debit_debits_pending, debit_debits_posted, debit_credits_pending,
           debit_credits_posted, credit_seq, credit_debits_pending, credit_debits_posted, credit_credits_pending, credit_credits_posted)
    select unnest(t_id), unnest(t_kind), unnest(t_d), unnest(t_c), unnest(t_a), unnest(t_cur), unnest(t_p), unnest(t_m)::jsonb, unnest(t_l),
           unnest(t_pid), unnest(t_t), unnest(t_e)::timestamptz, unnest(t_f), now_ts, unnest(t_ds), unnest(t_ddp), unnest(t_ddpo), unnest(t_dcp),
           unnest(t_dcpo), unnest(t_cs), unnest(t_cdp), unnest(t_cdpo), unnest(t_ccp), unnest(t_ccpo);
  elsif cardinality(t_id) > 0 then
    -- A shared account's entries: its values before the batch plus the offsets (a shared account is only credited).
    insert into ledger_transfers (id, kind, debit_account_id, credit_account_id, amount_minor, currency, purpose, metadata, linked, pending_id,
           timeout_ms, expires_at, fingerprint, created_at, debit_seq, debit_debits_pending, debit_debits_posted, debit_credits_pending,
           debit_credits_posted, credit_seq, credit_debits_pending, credit_debits_posted, credit_credits_pending, credit_credits_posted)
    select u.id, u.kind, u.d, u.c, u.a, u.cur, u.p, u.m::jsonb, u.l, u.pid, u.t, u.e::timestamptz, u.f, now_ts, u.ds, u.ddp, u.ddpo, u.dcp, u.dcpo,
           u.cs + coalesce(s_seq[u.i], 0), u.cdp + coalesce(s_dp[u.i], 0), u.cdpo + coalesce(s_dpo[u.i], 0), u.ccp + coalesce(s_cp[u.i], 0),
           u.ccpo + coalesce(s_cpo[u.i], 0)
      from (select unnest(t_id) as id, unnest(t_kind) as kind, unnest(t_d) as d, unnest(t_c) as c, unnest(t_a) as a, unnest(t_cur) as cur,
                   unnest(t_p) as p, unnest(t_m) as m, unnest(t_l) as l, unnest(t_pid) as pid, unnest(t_t) as t, unnest(t_e) as e, unnest(t_f) as f,
                   unnest(t_ds) as ds, unnest(t_ddp) as ddp, unnest(t_ddpo) as ddpo, unnest(t_dcp) as dcp, unnest(t_dcpo) as dcpo,
                   unnest(t_cs) as cs, unnest(t_cdp) as cdp, unnest(t_cdpo) as cdpo, unnest(t_ccp) as ccp, unnest(t_ccpo) as ccpo,
                   array_position(s_id, unnest(t_c)) as i) u;
  end if;
  if cardinality(n_id) > 0 then
    insert into ledger_pending (transfer_id, debit_account_id, credit_account_id, amount_minor, currency, expires_at, state, resolved_by, resolved_at)
    select u.id, u.d, u.c, u.a, u.cur, u.e::timestamptz, u.st, u.rb, case when u.st = 'pending' then null else now_ts end
      from (select unnest(n_id) as id, unnest(n_d) as d, unnest(n_c) as c, unnest(n_a) as a, unnest(n_cur) as cur, unnest(n_e) as e,
                   unnest(n_st) as st, unnest(n_rb) as rb) u;
  end if;
  if cardinality(f_id) > 0 then
    insert into ledger_transfer_failures (id, code, fingerprint, created_at)
    select unnest(f_id), unnest(f_code), unnest(f_f), now_ts;
  end if;
  -- After the account locks, each statement with a fresh snapshot: sees every batch that committed before ours locked.
  if exists (select 1 from ledger_transfer_failures where id = any(t_id))
     or (cardinality(f_id) > 0 and exists (select 1 from ledger_transfers where id = any(f_id)))
     or (cardinality(x_id) > 0 and (exists (select 1 from ledger_transfers where id = any(x_id))
                                    or exists (select 1 from ledger_transfer_failures where id = any(x_id)))) then
    raise exception 'ledger: a transfer id of the batch appeared since the batch read it' using errcode = 'HL001';
  end if;
  if s_id is null then
    return null;
  end if;
  return (select json_agg(json_build_array(s_id[i], s_seq[i]::text, s_dp[i]::text, s_dpo[i]::text, s_cp[i]::text, s_cpo[i]::text))::text
            from generate_subscripts(s_id, 1) as i);
end
$$;
