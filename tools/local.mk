# tools: baselines that scripts/bench --compare measures beside Settle in
# the same run. Not installed: they measure this machine, not Settle.

# The disk's 4 KiB write + fdatasync rate.
noinst_PROGRAMS += tools/settle-fsync-rate
tools_settle_fsync_rate_SOURCES = tools/fsync_rate.c

# canonical/raft's own commit rate on 3 local processes.
noinst_PROGRAMS += tools/settle-raft-rate
tools_settle_raft_rate_SOURCES = tools/raft_rate.c
tools_settle_raft_rate_LDADD = $(RAFT_LIBS) $(UV_LIBS)

# pgbench scripts of the PostgreSQL rows: plain commit and two-phase.
EXTRA_DIST += tools/pgbench-commit.sql tools/pgbench-2pc.sql
