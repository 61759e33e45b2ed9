-- The batching engine (ledger.submit) is gone: every movement of money goes through ledger.applyInTx, inside the
-- transaction of the service that moves it (issue 16). Its one-statement write, ledger_apply_batch (migrations 0006
-- and 0008), has no caller left. Dropped by name, whatever its signature.
do $$
declare
  f regprocedure;
begin
  for f in select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where p.proname = 'ledger_apply_batch' and n.nspname = current_schema()
  loop
    execute 'drop function ' || f::text;
  end loop;
end
$$;
