-- scripts/bench --compare: the same UPDATE, committed in two phases as a
-- resource manager of an XA transaction is (one prepared transaction per
-- client at a time, named after the client).
\set aid random(1, 100000 * :scale)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
PREPARE TRANSACTION 'settle_bench_:client_id';
COMMIT PREPARED 'settle_bench_:client_id';
