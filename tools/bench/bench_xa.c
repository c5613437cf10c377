/*
 * bench_xa.c — settle-bench's XA modes: each transaction moves 1 from an
 * account row in PostgreSQL to one in MariaDB, in one XA branch per
 * database, on the worker's own connections.
 *
 * --mode xa: Settle is the TM, phase 2 by the initiator (docs/XA.md):
 * settle_xa_begin_rms with both databases (the answer holds the branches'
 * XIDs), XA start / UPDATE / end / prepare at each database,
 * settle_xa_commit_by_initiator with both votes (phase "vote": the
 * decision is durable), XA COMMIT of each branch on the session that
 * prepared it and one PHASE2_COMMITTED report, sent without waiting for
 * its answer (settle_xa_report_committed(); phase "commit"): two round
 * trips to the cluster, and the worker keeps its connections.
 *
 * --mode xa --xa-leader-commits: the leader commits. settle_xa_begin,
 * settle_xa_register_rm per database, the work and prepares,
 * settle_xa_vote per branch, then settle_xa_commit(one_phase) waiting
 * until the leader has committed both branches (phase 2 done). MariaDB
 * lets another session commit a prepared branch only once the session
 * that prepared it has ended, so the worker closes its MariaDB connection
 * after each prepare and opens a new one for the next transaction; that
 * time is part of the latency and reported apart.
 *
 * --mode xa-local: the same branches with the bench as its own TM and no
 * coordinator: prepare both, then commit both on the same connections. No
 * decision is logged anywhere between the prepares and the commits, so it
 * is not a safe TM: it is the floor, what the databases' own two-phase
 * commit costs, against which --mode xa shows what Settle adds.
 *
 * Account rows 1..xa_rows of settle_bench_xa; worker i uses row
 * i % xa_rows + 1, so by default (one row per worker) no two workers wait
 * for each other's row lock.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "xa/rm.h"
#include "xa/xid.h"

#define TABLE "settle_bench_xa"
/* formatID of --mode xa-local's XIDs ("BNCH"): not settled's, so its
 * recovery scan leaves them alone. */
#define LOCAL_FORMAT_ID	 0x424e4348
#define SETTLE_FORMAT_ID 0x53544c45 /* settled's default --xa-format-id */
#define WAIT_MS		 30000
/* How long the leader leaves phase 2 to us. */
#define PHASE2_MS 5000

const char *const bench_phase_names[BENCH_PHASES] = {
    [BENCH_PH_BEGIN] = "begin",
    [BENCH_PH_PREPARE] = "prepare",
    [BENCH_PH_VOTE] = "vote",
    [BENCH_PH_COMMIT] = "commit",
};

struct bench_xa {
	int64_t pg_start, my_start; /* sums of the rows before the run */
};

static const char *kind_name(enum xa_rm_kind k)
{
	return k == XA_RM_POSTGRESQL ? "postgresql" : "mariadb";
}

static struct xa_rm *open_rm(struct bench *b, enum xa_rm_kind kind, char *err,
			     size_t errlen)
{
	struct xa_rm *rm = NULL;
	char why[512] = "";
	int rv = xa_rm_open(kind,
			    kind == XA_RM_POSTGRESQL ? b->xa_pg : b->xa_mariadb,
			    &rm, why, sizeof(why));

	if (rv != 0) {
		snprintf(err, errlen, "connect to %s: %s: %s", kind_name(kind),
			 settle_strerror(rv), why);
		return NULL;
	}
	return rm;
}

static int exec_or_say(struct xa_rm *rm, const char *sql)
{
	int rv = xa_rm_exec(rm, sql);

	if (rv != 0)
		fprintf(stderr, "settle-bench: %s: %s: %s\n", xa_rm_name(rm),
			settle_strerror(rv), xa_rm_errmsg(rm));
	return rv;
}

static int sum_rows(struct bench *b, struct xa_rm *rm, int64_t *sum)
{
	char sql[128];
	int rv;

	snprintf(sql, sizeof(sql),
		 "SELECT COALESCE(SUM(balance), 0) FROM " TABLE
		 " WHERE id <= %u",
		 b->xa_rows);
	rv = xa_rm_query_int(rm, sql, sum);
	if (rv != 0)
		fprintf(stderr, "settle-bench: %s: sum of the accounts: %s\n",
			xa_rm_name(rm), xa_rm_errmsg(rm));
	return rv;
}

/* The table and rows 1..xa_rows in the database of kind; *sum their
 * balances now. */
static int setup_db(struct bench *b, enum xa_rm_kind kind, int64_t *sum)
{
	char err[600], sql[256];
	struct xa_rm *rm = open_rm(b, kind, err, sizeof(err));
	int rv;

	if (rm == NULL) {
		fprintf(stderr, "settle-bench: %s\n", err);
		return -1;
	}
	if (kind == XA_RM_POSTGRESQL) {
		rv = exec_or_say(rm, "CREATE TABLE IF NOT EXISTS " TABLE
				     " (id integer PRIMARY KEY,"
				     " balance bigint NOT NULL)");
		snprintf(sql, sizeof(sql),
			 "INSERT INTO " TABLE " SELECT g, 0 FROM "
			 "generate_series(1, %u) g ON CONFLICT DO NOTHING",
			 b->xa_rows);
	} else {
		rv = exec_or_say(rm, "CREATE TABLE IF NOT EXISTS " TABLE
				     " (id INT PRIMARY KEY,"
				     " balance BIGINT NOT NULL) ENGINE=InnoDB");
		/* seq_1_to_N: MariaDB's built-in Sequence engine. */
		snprintf(sql, sizeof(sql),
			 "INSERT IGNORE INTO " TABLE
			 " (id, balance) SELECT seq, 0 FROM seq_1_to_%u",
			 b->xa_rows);
	}
	if (rv == 0)
		rv = exec_or_say(rm, sql);
	if (rv == 0)
		rv = sum_rows(b, rm, sum);
	xa_rm_close(rm);
	return rv == 0 ? 0 : -1;
}

int bench_xa_setup(struct bench *b)
{
	if (b->xa_pg == NULL || b->xa_pg[0] == '\0' || b->xa_mariadb == NULL ||
	    b->xa_mariadb[0] == '\0') {
		fprintf(stderr,
			"settle-bench: --mode %s needs both databases: "
			"--xa-pg and --xa-mariadb, or $SETTLE_TEST_PG "
			"and $SETTLE_TEST_MARIADB (scripts/xa-servers "
			"env)\n",
			b->mode == BENCH_XA ? "xa" : "xa-local");
		return -1;
	}
	if (b->xa_rows == 0)
		b->xa_rows = b->concurrency;
	b->xa = calloc(1, sizeof(*b->xa));
	if (b->xa == NULL)
		return -1;
	if (setup_db(b, XA_RM_POSTGRESQL, &b->xa->pg_start) != 0 ||
	    setup_db(b, XA_RM_MARIADB, &b->xa->my_start) != 0)
		return -1;
	return 0;
}

void bench_xa_done(struct bench *b)
{
	free(b->xa);
	b->xa = NULL;
}

/* The prepared XIDs of ours (the bench's and settled's formatIDs) left in
 * the database of rm. */
static int in_doubt(struct xa_rm *rm, size_t *n)
{
	struct xa_xid *xids = NULL;
	size_t k, i;
	int rv = xa_rm_recover(rm, XA_RM_ANY_FORMAT, &xids, &k);

	if (rv != 0) {
		fprintf(stderr, "settle-bench: %s: recover: %s\n",
			xa_rm_name(rm), xa_rm_errmsg(rm));
		return rv;
	}
	*n = 0;
	for (i = 0; i < k; i++)
		if (xids[i].format_id == LOCAL_FORMAT_ID ||
		    xids[i].format_id == SETTLE_FORMAT_ID)
			(*n)++;
	free(xids);
	return 0;
}

int bench_xa_verify(struct bench *b, uint64_t committed, bool *ok)
{
	enum xa_rm_kind kinds[2] = {XA_RM_POSTGRESQL, XA_RM_MARIADB};
	int64_t want[2] = {b->xa->pg_start - (int64_t)committed,
			   b->xa->my_start + (int64_t)committed};
	char err[600];
	int i;

	*ok = true;
	for (i = 0; i < 2; i++) {
		struct xa_rm *rm = open_rm(b, kinds[i], err, sizeof(err));
		int64_t sum = 0;
		size_t n = 0;

		if (rm == NULL) {
			fprintf(stderr, "settle-bench: verify: %s\n", err);
			return -1;
		}
		if (sum_rows(b, rm, &sum) != 0 || in_doubt(rm, &n) != 0) {
			xa_rm_close(rm);
			return -1;
		}
		xa_rm_close(rm);
		/* Sums, not balances: they are the bench's own counters. */
		if (sum != want[i]) {
			fprintf(
			    stderr,
			    "settle-bench: verify: %s accounts moved by "
			    "%" PRId64 ", %" PRIu64 " commits counted\n",
			    kind_name(kinds[i]),
			    sum - (i == 0 ? b->xa->pg_start : b->xa->my_start),
			    committed);
			*ok = false;
		}
		if (n != 0) {
			fprintf(stderr,
				"settle-bench: verify: %zu XID(s) left "
				"prepared in %s\n",
				n, kind_name(kinds[i]));
			*ok = false;
		}
	}
	return 0;
}

/* ---- One transaction ----------------------------------------------------- */

struct branch {
	enum xa_rm_kind kind;
	struct xa_rm **rm; /* the worker's connection, NULL when closed */
	struct xa_xid xid;
	uint32_t id; /* --mode xa: its branch id */
	bool started, prepared;
	enum xa_rm_vote vote;
};

static int rm_failed(struct bench_worker *w, struct branch *br,
		     const char *verb, int rv);

static void drop(struct xa_rm **rm)
{
	xa_rm_close(*rm);
	*rm = NULL;
}

/* Open br's connection if the worker has none (timing MariaDB's). */
static int connect_branch(struct bench_worker *w, struct branch *br)
{
	char err[600];
	uint64_t t0;

	if (*br->rm != NULL)
		return 0;
	t0 = bench_mono_us();
	*br->rm = open_rm(w->b, br->kind, err, sizeof(err));
	if (*br->rm == NULL) {
		bench_fail(w, "%s", err);
		return -1;
	}
	if (br->kind == XA_RM_MARIADB) {
		/* Its id tells when the session has ended (detach_wait). */
		if (w->b->mode == BENCH_XA &&
		    xa_rm_query_int(*br->rm, "SELECT CONNECTION_ID()",
				    &w->my_id) != 0) {
			bench_fail(w, "mariadb: connection id: %s",
				   xa_rm_errmsg(*br->rm));
			drop(br->rm);
			return -1;
		}
		w->connects++;
		w->connect_us += bench_mono_us() - t0;
	}
	return 0;
}

/*
 * End the MariaDB session that prepared br, and wait until the server has
 * let go of it. MariaDB 10.11 can lose a branch whose XA COMMIT from
 * another session (the leader's) comes soon after the end of the session
 * that prepared it: the commit answers OK, yet the branch stays prepared,
 * invisible to XA RECOVER, holding its row locks until the server
 * restarts (seen under this bench at concurrency 16). Voting only once the
 * old session has left the process list (checked on the connection the
 * next transaction uses anyway) made it rarer and ended the leader's
 * retries of attached branches, but did not remove it
 * (docs/BENCHMARKS.md): the check after the run still catches it.
 */
static int detach_wait(struct bench_worker *w, struct branch *br)
{
	int64_t old = w->my_id, n = 1;
	char sql[128];
	int i, rv;

	drop(br->rm);
	if (connect_branch(w, br) != 0)
		return -1;
	snprintf(sql, sizeof(sql),
		 "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
		 "WHERE ID = %" PRId64,
		 old);
	for (i = 0; i < 5000; i++) {
		rv = xa_rm_query_int(*br->rm, sql, &n);
		if (rv != 0)
			return rm_failed(w, br, "process list", rv);
		if (n == 0)
			return 0;
		usleep(200);
	}
	bench_fail(w, "mariadb: session %" PRId64 " still there after 1 s",
		   old);
	return -1;
}

static int rm_failed(struct bench_worker *w, struct branch *br,
		     const char *verb, int rv)
{
	bench_fail(w, "%s %s: %s: %s", verb, kind_name(br->kind),
		   settle_strerror(rv), xa_rm_errmsg(*br->rm));
	return -1;
}

/* Start, the UPDATE, prepare: br's vote in br->vote. delta: the amount
 * added to the worker's row. */
static int work_and_prepare(struct bench_worker *w, struct branch *br,
			    int delta)
{
	char sql[128];
	int rv;

	if (connect_branch(w, br) != 0)
		return -1;
	rv = xa_rm_start(*br->rm, &br->xid);
	if (rv != 0)
		return rm_failed(w, br, "start", rv);
	br->started = true;
	snprintf(sql, sizeof(sql),
		 "UPDATE " TABLE " SET balance = balance + %d WHERE id = %u",
		 delta, w->index % w->b->xa_rows + 1);
	rv = xa_rm_exec(*br->rm, sql);
	if (rv != 0)
		return rm_failed(w, br, "update", rv);
	rv = xa_rm_end(*br->rm, &br->xid);
	if (rv != 0)
		return rm_failed(w, br, "end", rv);
	rv = xa_rm_prepare(*br->rm, &br->xid, &br->vote);
	if (rv != 0)
		return rm_failed(w, br, "prepare", rv);
	br->prepared = br->vote == XA_RM_VOTE_OK;
	return 0;
}

/* Undo what a failed transaction left at the databases: the branches
 * started and not prepared die with their connection; prepared ones are
 * rolled back (xa-local) or left to the coordinator (xa). */
static void undo_local(struct bench_worker *w, struct branch *br, size_t n)
{
	char err[600];
	size_t i;

	for (i = 0; i < n; i++) {
		if (br[i].prepared) {
			if (*br[i].rm == NULL)
				*br[i].rm =
				    open_rm(w->b, br[i].kind, err, sizeof(err));
			if (*br[i].rm != NULL &&
			    xa_rm_rollback(*br[i].rm, &br[i].xid) == 0)
				continue;
		}
		if (br[i].started && *br[i].rm != NULL)
			drop(br[i].rm);
	}
}

/* t[]: the end of each phase (0 when skipped), after t0. */
static void count(struct bench_worker *w, uint64_t t0,
		  const uint64_t t[BENCH_PHASES], bool committed)
{
	uint64_t prev = t0;
	int i;

	bench_record(w, t0);
	for (i = 0; committed && i < BENCH_PHASES; i++) {
		if (t[i] == 0)
			continue;
		w->phase_us[i] += t[i] - prev;
		prev = t[i];
	}
	if (committed)
		w->committed++;
	else
		w->aborted++;
}

static void one_local(struct bench_worker *w)
{
	struct branch br[2] = {
	    {.kind = XA_RM_POSTGRESQL, .rm = (struct xa_rm **)&w->pg},
	    {.kind = XA_RM_MARIADB, .rm = (struct xa_rm **)&w->my},
	};
	char gtrid[64];
	int n, rv;
	size_t i;
	uint64_t t0 = bench_mono_us(), t[BENCH_PHASES] = {0};

	n = snprintf(gtrid, sizeof(gtrid), "bench-%ld-%u-%" PRIu64,
		     (long)getpid(), w->index, ++w->xa_seq);
	for (i = 0; i < 2; i++) {
		if (xa_xid_init(&br[i].xid, LOCAL_FORMAT_ID, gtrid, (size_t)n,
				i == 0 ? "1" : "2", 1) != 0) {
			bench_fail(w, "bad local XID");
			return;
		}
		if (work_and_prepare(w, &br[i], i == 0 ? -1 : 1) != 0)
			goto undo;
		if (br[i].vote != XA_RM_VOTE_OK) {
			bench_fail(w, "%s voted %s", kind_name(br[i].kind),
				   xa_rm_vote_name(br[i].vote));
			goto undo;
		}
	}
	/* Both prepared: the decision is commit (logged nowhere). */
	t[BENCH_PH_PREPARE] = bench_mono_us();
	for (i = 0; i < 2; i++) {
		rv = xa_rm_commit(*br[i].rm, &br[i].xid, false);
		if (rv != 0) {
			/* Half committed: only an operator could repair
			 * this, which is why a real TM logs its decision. */
			rm_failed(w, &br[i], "commit", rv);
			drop(br[i].rm);
			return;
		}
	}
	t[BENCH_PH_COMMIT] = bench_mono_us();
	count(w, t0, t, true);
	return;
undo:
	undo_local(w, br, 2);
}

static int vote_of(enum xa_rm_vote v)
{
	return v == XA_RM_VOTE_OK	? SETTLE__V1__XA_VOTE__VOTE_OK
	       : v == XA_RM_VOTE_RDONLY ? SETTLE__V1__XA_VOTE__VOTE_READ_ONLY
					: SETTLE__V1__XA_VOTE__VOTE_ROLLBACK;
}

/*
 * Our failure before the decision: the leader rolls back what was
 * prepared; what was not dies with its connection. A MariaDB session
 * holding a prepared branch must end too, or the leader could not roll it
 * back.
 */
static void give_up(struct bench_worker *w, settle_client *c, const char *gid,
		    struct branch *br)
{
	for (size_t i = 0; i < 2; i++)
		if (*br[i].rm != NULL && (br[i].kind == XA_RM_MARIADB ||
					  (br[i].started && !br[i].prepared)))
			drop(br[i].rm);
	if (settle_rollback(c, gid, "settle-bench: initiator failed", 0, NULL,
			    NULL) != 0)
		bench_fail(w, "rollback: %s", settle_client_errmsg(c));
}

/* Our vote for br, as Settle takes it. */
static struct settle_xa_branch_vote vote_for(const struct branch *br)
{
	struct settle_xa_branch_vote v = {.branch_id = br->id,
					  .vote = vote_of(br->vote)};

	if (v.vote == SETTLE__V1__XA_VOTE__VOTE_ROLLBACK)
		v.error = "rolled back by the database";
	return v;
}

/*
 * The votes sent one by one and the leader committing (a cluster below
 * feature level 6): the MariaDB session must end before the votes.
 */
static void leader_commits(struct bench_worker *w, settle_client *c,
			   const char *gid, struct branch *br,
			   const struct settle_xa_branch_vote *votes,
			   uint64_t t0, uint64_t t[BENCH_PHASES])
{
	int state = 0;
	bool finished = false;

	if (detach_wait(w, &br[1]) != 0)
		return;
	for (size_t i = 0; i < 2 && state != SETTLE__V1__TX_STATE__ROLLING_BACK;
	     i++)
		if (settle_xa_vote(c, gid, votes[i].branch_id, votes[i].vote,
				   votes[i].error, &state, NULL) != 0) {
			bench_fail(w, "vote: %s", settle_client_errmsg(c));
			return;
		}
	if (state != SETTLE__V1__TX_STATE__ACTIVE) {
		/* A rollback vote decided it. */
		count(w, t0, t, false);
		return;
	}
	if (settle_xa_commit(c, gid, true, WAIT_MS, &state, &finished) != 0 ||
	    !finished) {
		bench_fail(w, "commit: %s",
			   finished ? settle_client_errmsg(c)
				    : "phase 2 not finished after 30 s");
		return;
	}
	t[BENCH_PH_COMMIT] = bench_mono_us();
	count(w, t0, t, state == SETTLE__V1__TX_STATE__COMMITTED);
}

/*
 * Phase 2 by the initiator, in three calls to the cluster: Begin with both
 * RM branches; after the work and the prepares, Commit with both votes
 * (the decision is durable when it answers); then, each branch committed
 * on the session that prepared it, one report for both, not waited for. A
 * branch whose commit fails is handed back to the leader.
 */
static void one_by_initiator(struct bench_worker *w, settle_client *c)
{
	struct bench *b = w->b;
	struct branch br[2] = {
	    {.kind = XA_RM_POSTGRESQL, .rm = (struct xa_rm **)&w->pg},
	    {.kind = XA_RM_MARIADB, .rm = (struct xa_rm **)&w->my},
	};
	struct settle_xa_rm_branch rms[2] = {{.rm = b->xa_pg_rm},
					     {.rm = b->xa_mariadb_rm}};
	struct settle_xa_branch_vote votes[2];
	char gid[SETTLE_GID_BUFSIZE];
	int state = 0, rv;
	bool all = true;
	size_t i;
	uint64_t t0 = bench_mono_us(), t[BENCH_PHASES] = {0};

	rv = settle_xa_begin_rms(c, NULL, WAIT_MS, rms, 2, gid, sizeof(gid));
	if (rv != 0) {
		bench_fail(w, "begin: %s", settle_client_errmsg(c));
		return;
	}
	for (i = 0; i < 2; i++) {
		br[i].id = rms[i].branch_id;
		if (xa_xid_decode(rms[i].xid, rms[i].xid_len, &br[i].xid) !=
		    0) {
			bench_fail(w, "begin: undecodable XID");
			goto rollback;
		}
	}
	t[BENCH_PH_BEGIN] = bench_mono_us();
	for (i = 0; i < 2; i++) {
		if (work_and_prepare(w, &br[i], i == 0 ? -1 : 1) != 0)
			goto rollback;
		votes[i] = vote_for(&br[i]);
	}
	t[BENCH_PH_PREPARE] = bench_mono_us();
	rv = settle_xa_commit_by_initiator(c, gid, votes, 2, PHASE2_MS, &state);
	if (rv == SETTLE_ENOMETHOD) {
		/* Below feature level 6 (an older member, or a cluster just
		 * started): the leader commits, as with --xa-leader-commits. */
		leader_commits(w, c, gid, br, votes, t0, t);
		return;
	}
	if (rv != 0 || state != SETTLE__V1__TX_STATE__COMMITTING) {
		/* Rolled back (a rollback vote, the deadline) or failed: our
		 * session must let go of the MariaDB branch for the leader
		 * to finish it, whichever way it was decided. */
		if (rv != 0 || state != SETTLE__V1__TX_STATE__ROLLING_BACK)
			bench_fail(w, "commit: %s",
				   rv != 0 ? settle_client_errmsg(c)
					   : settle_tx_state_name(state));
		drop((struct xa_rm **)&w->my);
		if (rv == 0 && state == SETTLE__V1__TX_STATE__ROLLING_BACK)
			count(w, t0, t, false);
		return;
	}
	t[BENCH_PH_VOTE] = bench_mono_us();
	for (i = 0; i < 2; i++) {
		rv = xa_rm_commit(*br[i].rm, &br[i].xid, false);
		if (rv == 0)
			continue;
		all = false;
		rm_failed(w, &br[i], "commit", rv);
		drop(br[i].rm);
		if (settle_xa_vote(
			c, gid, br[i].id, SETTLE__V1__XA_VOTE__PHASE2_NOT_DONE,
			"the initiator's commit failed", NULL, NULL) != 0)
			bench_fail(w, "hand back %s: %s", kind_name(br[i].kind),
				   settle_client_errmsg(c));
	}
	if (!all) {
		/* Decided: the leader commits what we could not. */
		count(w, t0, t, true);
		return;
	}
	/* The report without its answer: decided already, the transaction
	 * loses nothing if the report is lost (the leader commits what it
	 * is not told of), and the worker saves a round trip. */
	if (settle_xa_report_committed(c, gid) != 0)
		bench_fail(w, "report: %s", settle_client_errmsg(c));
	else
		snprintf(w->last_report, sizeof w->last_report, "%s", gid);
	t[BENCH_PH_COMMIT] = bench_mono_us();
	count(w, t0, t, true);
	return;

rollback:
	give_up(w, c, gid, br);
}

static void one_settled(struct bench_worker *w, settle_client *c)
{
	struct bench *b = w->b;
	struct branch br[2] = {
	    {.kind = XA_RM_POSTGRESQL, .rm = (struct xa_rm **)&w->pg},
	    {.kind = XA_RM_MARIADB, .rm = (struct xa_rm **)&w->my},
	};
	const char *names[2] = {b->xa_pg_rm, b->xa_mariadb_rm};
	char gid[SETTLE_GID_BUFSIZE];
	uint32_t ids[2];
	int state = 0, rv;
	bool finished = false, voted_rollback = false;
	size_t i;
	uint64_t t0 = bench_mono_us(), t[BENCH_PHASES] = {0};

	rv = settle_xa_begin(c, NULL, NULL, 0, false, WAIT_MS, gid, sizeof(gid),
			     NULL);
	if (rv != 0) {
		bench_fail(w, "begin: %s", settle_client_errmsg(c));
		return;
	}
	for (i = 0; i < 2; i++) {
		uint8_t wire[SETTLE_XID_WIRE_MAX];
		size_t len = 0;

		rv = settle_xa_register_rm(c, gid, names[i], &ids[i], wire,
					   sizeof(wire), &len);
		if (rv != 0) {
			bench_fail(w, "register %s: %s", names[i],
				   settle_client_errmsg(c));
			goto rollback;
		}
		br[i].id = ids[i];
		if (xa_xid_decode(wire, len, &br[i].xid) != 0) {
			bench_fail(w, "register %s: undecodable XID", names[i]);
			goto rollback;
		}
	}
	t[BENCH_PH_BEGIN] = bench_mono_us();
	for (i = 0; i < 2; i++) {
		if (work_and_prepare(w, &br[i], i == 0 ? -1 : 1) != 0)
			goto rollback;
		/* The leader commits the MariaDB branch from its own
		 * session: ours must end first. */
		if (br[i].kind == XA_RM_MARIADB && detach_wait(w, &br[i]) != 0)
			goto rollback;
	}
	t[BENCH_PH_PREPARE] = bench_mono_us();
	for (i = 0; i < 2; i++) {
		int v = vote_of(br[i].vote);

		rv = settle_xa_vote(c, gid, ids[i], v,
				    v == SETTLE__V1__XA_VOTE__VOTE_ROLLBACK
					? "rolled back by the database"
					: NULL,
				    &state, NULL);
		if (rv != 0) {
			bench_fail(w, "vote %s: %s", names[i],
				   settle_client_errmsg(c));
			/* The leader rolls back at the deadline, once our
			 * session has let go of the MariaDB branch. */
			drop((struct xa_rm **)&w->my);
			return;
		}
		if (v == SETTLE__V1__XA_VOTE__VOTE_ROLLBACK) {
			voted_rollback = true;
			break;
		}
	}
	t[BENCH_PH_VOTE] = bench_mono_us();
	if (voted_rollback)
		rv = settle_wait(c, gid, WAIT_MS, &state, &finished);
	else
		rv = settle_xa_commit(c, gid, true, WAIT_MS, &state, &finished);
	if (rv != 0 || !finished) {
		bench_fail(w, "%s: %s", voted_rollback ? "wait" : "commit",
			   rv != 0 ? settle_client_errmsg(c)
				   : "phase 2 not finished after 30 s");
		return;
	}
	t[BENCH_PH_COMMIT] = bench_mono_us();
	count(w, t0, t, state == SETTLE__V1__TX_STATE__COMMITTED);
	return;

rollback:
	give_up(w, c, gid, br);
}

void bench_xa_worker(struct bench_worker *w, settle_client *c)
{
	while (bench_mono_us() / 1000 < w->b->end_ms) {
		uint64_t errors = w->errors;

		if (w->b->mode == BENCH_XA && w->b->xa_leader_commits)
			one_settled(w, c);
		else if (w->b->mode == BENCH_XA)
			one_by_initiator(w, c);
		else
			one_local(w);
		/* A database that refuses connections must not be hammered
		 * in a tight loop. */
		if (w->errors != errors)
			usleep(10000);
	}
	/* The last report again, waited for this time: the connection
	 * closes as the bench exits, perhaps before the first reached the
	 * leader. The same vote again answers OK. */
	if (w->last_report[0] != '\0' &&
	    settle_xa_vote(c, w->last_report, 0,
			   SETTLE__V1__XA_VOTE__PHASE2_COMMITTED, NULL, NULL,
			   NULL) != 0)
		bench_fail(w, "last report: %s", settle_client_errmsg(c));
	xa_rm_close(w->pg);
	xa_rm_close(w->my);
	w->pg = w->my = NULL;
}
