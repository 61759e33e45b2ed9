-- An answer stored under an Idempotency-Key may carry a secret shown once (a new client secret, a webhook signing
-- secret). Such fields are stored sealed by the vault; this column lists their paths in response_body (dot-separated
-- keys), so that a replay opens exactly those fields and never a value that merely looks sealed (a client's echo).
alter table idempotency_keys add column response_sealed text[];
