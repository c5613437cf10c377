/*
 * The leader's XA decisions (coordinator/xa_logic.c) and its RM
 * configuration (--xa-rm, --xa-rm-file in coordinator/config.c).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/config.h"
#include "coordinator/xa.h"
#include "error.h"
#include "xa/rm.h"

#define COMMITTING   SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING
#define ROLLING_BACK SETTLE__V1__BRANCH_STATE__XA_BRANCH_ROLLING_BACK
#define OK	     SETTLE__V1__OUTCOME__OUTCOME_OK
#define RETRY	     SETTLE__V1__OUTCOME__OUTCOME_RETRY
#define FAILURE	     SETTLE__V1__OUTCOME__OUTCOME_FAILURE
#define NONE	     SETTLE__V1__HEURISTIC__HEURISTIC_NONE
#define HAZARD	     SETTLE__V1__HEURISTIC__HEUR_HAZARD

struct verdict {
	Settle__V1__CmdXaResult r;
	char err[512];
};

/* v->r.error points into v->err. */
static void classify(struct verdict *v, int phase, uint32_t attempt,
		     bool voted_ok, int rv, const char *text)
{
	struct coord_xa_call call = {
	    .phase = phase, .attempt = attempt, .voted_ok = voted_ok};

	settle__v1__cmd_xa_result__init(&v->r);
	coord_xa_classify(&call, rv, text, 20, 12345, &v->r, v->err,
			  sizeof v->err);
}

/* ---- Classification of an RM's phase-2 answer ---------------------------- */

Test(xa_classify, ok_is_done_without_heuristic)
{
	struct verdict v;

	classify(&v, COMMITTING, 1, true, 0, "");

	cr_expect_eq(v.r.outcome, OK);
	cr_expect_eq(v.r.heuristic, NONE);
	cr_expect_eq(v.r.phase, COMMITTING);
	cr_expect_eq(v.r.attempt, 1);
	cr_expect_eq(v.r.next_retry_ms, 0);
	cr_expect_str_eq(v.r.error, "");
	classify(&v, ROLLING_BACK, 3, false, 0, NULL);
	cr_expect_eq(v.r.outcome, OK);
	cr_expect_eq(v.r.phase, ROLLING_BACK);
}

Test(xa_classify, nota_at_first_commit_of_prepared_branch_is_a_hazard)
{
	struct verdict v;

	classify(&v, COMMITTING, 1, true, XA_RM_ENOTA, "x");

	cr_expect_eq(v.r.outcome, OK);
	cr_expect_eq(v.r.heuristic, HAZARD);
	cr_expect(strstr(v.r.error, "unknown to the RM at the first commit") !=
		      NULL,
		  "%s", v.r.error);
	classify(&v, ROLLING_BACK, 1, true, XA_RM_ENOTA, "x");
	cr_expect_eq(v.r.heuristic, HAZARD);
	cr_expect(strstr(v.r.error, "first rollback") != NULL, "%s", v.r.error);
}

Test(xa_classify, nota_later_or_unvoted_is_plain_done)
{
	/* An earlier attempt's reply was lost: it did the work. */
	struct verdict v;

	classify(&v, COMMITTING, 2, true, XA_RM_ENOTA, "");

	cr_expect_eq(v.r.outcome, OK);
	cr_expect_eq(v.r.heuristic, NONE);
	/* Rolling back a branch that never voted: never prepared. */
	classify(&v, ROLLING_BACK, 1, false, XA_RM_ENOTA, "");
	cr_expect_eq(v.r.outcome, OK);
	cr_expect_eq(v.r.heuristic, NONE);
}

Test(xa_classify, nota_at_first_call_of_an_inherited_decision_is_done)
{
	/* Decided under an earlier leader, which may have committed at the
	 * RM and died before recording it: NOTA is that commit, not
	 * somebody else's work. */
	struct coord_xa_call call = {.phase = COMMITTING,
				     .attempt = 1,
				     .voted_ok = true,
				     .inherited = true};
	struct verdict v;

	settle__v1__cmd_xa_result__init(&v.r);
	coord_xa_classify(&call, XA_RM_ENOTA, "", 20, 12345, &v.r, v.err,
			  sizeof v.err);
	cr_expect_eq(v.r.outcome, OK);
	cr_expect_eq(v.r.heuristic, NONE);
	call.phase = ROLLING_BACK;
	settle__v1__cmd_xa_result__init(&v.r);
	coord_xa_classify(&call, XA_RM_ENOTA, "", 20, 12345, &v.r, v.err,
			  sizeof v.err);
	cr_expect_eq(v.r.outcome, OK);
	cr_expect_eq(v.r.heuristic, NONE);
}

Test(xa_classify, transient_retries_forever)
{
	struct verdict v;

	classify(&v, COMMITTING, 1, true, XA_RM_ETRANSIENT, "server down");

	cr_expect_eq(v.r.outcome, RETRY);
	cr_expect_eq(v.r.next_retry_ms, 12345);
	cr_expect(strstr(v.r.error, "server down") != NULL, "%s", v.r.error);
	classify(&v, COMMITTING, 1000, true, XA_RM_ETRANSIENT, "down");
	cr_expect_eq(v.r.outcome, RETRY, "no bound on a lost connection");
}

Test(xa_classify, rollback_on_commit_is_heuristic_rollback)
{
	struct verdict v;

	classify(&v, COMMITTING, 1, true, XA_RM_EROLLBACK, "deadlock");

	cr_expect_eq(v.r.outcome, OK);
	cr_expect_eq(v.r.heuristic, SETTLE__V1__HEURISTIC__HEUR_ROLLBACK);
	cr_expect(strstr(v.r.error, "deadlock") != NULL);
	classify(&v, ROLLING_BACK, 1, true, XA_RM_EROLLBACK, "");
	cr_expect_eq(v.r.outcome, OK);
	cr_expect_eq(v.r.heuristic, NONE);
}

Test(xa_classify, rm_errors_retry_then_fail_for_an_operator)
{
	int errs[] = {XA_RM_ERMERR, XA_RM_EPROTO, XA_RM_EINVAL, XA_RM_EDUPID,
		      SETTLE_ENOMEM};

	for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		struct verdict v;

		classify(&v, COMMITTING, 19, true, errs[i], "boom");

		cr_expect_eq(v.r.outcome, RETRY, "error %d", errs[i]);
		cr_expect_eq(v.r.next_retry_ms, 12345);
		cr_expect(strstr(v.r.error, "boom") != NULL);
		classify(&v, COMMITTING, 20, true, errs[i], "boom");
		cr_expect_eq(v.r.outcome, FAILURE, "error %d", errs[i]);
		cr_expect_eq(v.r.heuristic, NONE);
	}
	{
		struct verdict v;

		classify(&v, ROLLING_BACK, 1, false, XA_RM_ERMERR,
			 "permission denied");

		cr_expect_str_eq(v.r.error, "RMERR: permission denied");
	}
}

Test(xa_classify, error_text_is_bounded)
{
	char big[2000];
	struct coord_xa_call call = {.phase = COMMITTING, .attempt = 1};
	Settle__V1__CmdXaResult r = SETTLE__V1__CMD_XA_RESULT__INIT;
	char err[64];

	memset(big, 'e', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	coord_xa_classify(&call, XA_RM_ERMERR, big, 20, 1, &r, err, sizeof err);
	cr_expect_eq(strlen(r.error), sizeof err - 1);
}

Test(xa_classify, one_phase_unknown_is_a_committed_hazard)
{
	Settle__V1__CmdXaResult r = SETTLE__V1__CMD_XA_RESULT__INIT;

	coord_xa_one_phase_unknown(&r);
	cr_expect_eq(r.phase, SETTLE__V1__BRANCH_STATE__XA_BRANCH_ONE_PHASE);
	cr_expect_eq(r.outcome, OK);
	cr_expect_eq(r.heuristic, HAZARD);
	cr_expect_str_eq(r.error,
			 "the initiator never reported the one-phase outcome");
}

/* ---- Which XIDs are ours ------------------------------------------------- */

static struct xa_xid xid(int64_t fmt, const char *g, const char *q)
{
	struct xa_xid x;

	cr_assert_eq(xa_xid_init(&x, fmt, g, strlen(g), q, strlen(q)), 0);
	return x;
}

Test(xa_owner, gid_and_branch_from_gtrid_and_bqual)
{
	char gid[WAL_GID_MAX + 1];
	uint32_t bid = 0;
	struct xa_xid x = xid(0x53544c45, "tx-0001", "12");

	cr_assert_eq(coord_xa_xid_owner(&x, 0x53544c45, gid, &bid), 0);
	cr_expect_str_eq(gid, "tx-0001");
	cr_expect_eq(bid, 12);
	x = xid(0x53544c45, "g", "4294967295");
	cr_assert_eq(coord_xa_xid_owner(&x, 0x53544c45, gid, &bid), 0);
	cr_expect_eq(bid, 4294967295u);
}

Test(xa_owner, foreign_or_malformed_xids_are_not_ours)
{
	char gid[WAL_GID_MAX + 1];
	uint32_t bid;
	struct xa_xid bad[] = {
	    xid(7, "tx", "1"),			 /* another formatID */
	    xid(0x53544c45, "t x", "1"),	 /* a space */
	    xid(0x53544c45, "t\x01", "1"),	 /* control byte */
	    xid(0x53544c45, "tx", "01"),	 /* not canonical */
	    xid(0x53544c45, "tx", "0"),		 /* no branch 0 */
	    xid(0x53544c45, "tx", "1a"),	 /* not decimal */
	    xid(0x53544c45, "tx", "4294967296"), /* too large */
	    xid(0x53544c45, "tx", "99999999999"),
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect_eq(coord_xa_xid_owner(&bad[i], 0x53544c45, gid, &bid),
			     SETTLE_EINVAL, "case %zu", i);
}

/* ---- Recovery scan decisions --------------------------------------------- */

static enum coord_xa_recover_act decide(int mode, int tx_state, int b_state,
					bool have_tx, bool have_b)
{
	Settle__V1__TxRecord tx = SETTLE__V1__TX_RECORD__INIT;
	Settle__V1__BranchRecord b = SETTLE__V1__BRANCH_RECORD__INIT;
	const char *why = NULL;
	enum coord_xa_recover_act a;

	tx.gid = "g";
	tx.mode = mode;
	tx.state = tx_state;
	b.gid = "g";
	b.branch_id = 1;
	b.rm = "pg1";
	b.state = b_state;
	a = coord_xa_recover_decide(have_tx ? &tx : NULL, have_b ? &b : NULL,
				    &why);
	cr_assert_not_null(why);
	cr_assert(why[0] != '\0');
	return a;
}

#define XA    SETTLE__V1__TX_MODE__XA
#define TX(s) SETTLE__V1__TX_STATE__##s
#define BR(s) SETTLE__V1__BRANCH_STATE__XA_BRANCH_##s

Test(xa_recover, orphan_is_rolled_back)
{
	cr_expect_eq(decide(XA, 0, 0, false, false), COORD_XA_REC_ROLLBACK);
}

Test(xa_recover, final_transactions_follow_their_decision)
{
	cr_expect_eq(decide(XA, TX(COMMITTED), BR(COMMITTED), true, true),
		     COORD_XA_REC_COMMIT);
	cr_expect_eq(decide(XA, TX(COMMITTED), BR(READ_ONLY), true, true),
		     COORD_XA_REC_COMMIT);
	cr_expect_eq(decide(XA, TX(ROLLED_BACK), BR(ROLLED_BACK), true, true),
		     COORD_XA_REC_ROLLBACK);
	cr_expect_eq(decide(XA, TX(ROLLED_BACK), BR(ACTIVE), true, true),
		     COORD_XA_REC_ROLLBACK);
}

Test(xa_recover, decided_transaction_with_a_finished_branch)
{
	/* The log has nothing left to do for the branch: the scan acts. */
	cr_expect_eq(decide(XA, TX(COMMITTING), BR(COMMITTED), true, true),
		     COORD_XA_REC_COMMIT);
	cr_expect_eq(decide(XA, TX(ROLLING_BACK), BR(ROLLED_BACK), true, true),
		     COORD_XA_REC_ROLLBACK);
}

Test(xa_recover, what_the_log_still_drives_is_left_alone)
{
	cr_expect_eq(decide(XA, TX(COMMITTING), BR(COMMITTING), true, true),
		     COORD_XA_REC_LEAVE);
	cr_expect_eq(decide(XA, TX(ROLLING_BACK), BR(ROLLING_BACK), true, true),
		     COORD_XA_REC_LEAVE);
	cr_expect_eq(decide(XA, TX(COMMITTING), BR(ONE_PHASE), true, true),
		     COORD_XA_REC_LEAVE);
	cr_expect_eq(decide(XA, TX(ACTIVE), BR(ACTIVE), true, true),
		     COORD_XA_REC_LEAVE);
	cr_expect_eq(decide(XA, TX(ACTIVE), BR(PREPARED), true, true),
		     COORD_XA_REC_LEAVE);
	cr_expect_eq(decide(XA, TX(XA_PREPARED), BR(PREPARED), true, true),
		     COORD_XA_REC_LEAVE);
	cr_expect_eq(decide(XA, TX(COMMITTING),
			    SETTLE__V1__BRANCH_STATE__FAILED, true, true),
		     COORD_XA_REC_LEAVE);
	cr_expect_eq(decide(XA, TX(COMMITTED), SETTLE__V1__BRANCH_STATE__FAILED,
			    true, true),
		     COORD_XA_REC_LEAVE);
}

Test(xa_recover, xids_that_name_no_rm_branch_are_left_alone)
{
	cr_expect_eq(decide(XA, TX(COMMITTED), 0, true, false),
		     COORD_XA_REC_LEAVE);
	cr_expect_eq(decide(SETTLE__V1__TX_MODE__TCC, TX(COMMITTED),
			    BR(COMMITTED), true, true),
		     COORD_XA_REC_LEAVE);
}

/* ---- The conninfo the leader connects with ------------------------------- */

Test(xa_conninfo, pg_gets_bounds_the_operator_may_override)
{
	char buf[1536];

	cr_assert_eq(coord_xa_conninfo(XA_RM_POSTGRESQL,
				       "host=h dbname=d connect_timeout=2", buf,
				       sizeof buf),
		     0);
	cr_expect(strstr(buf, "connect_timeout=5") == NULL, "%s", buf);
	cr_expect(strstr(buf, "connect_timeout=2") != NULL, "%s", buf);
	cr_expect(strstr(buf, "keepalives=1") != NULL, "%s", buf);
	cr_expect(strstr(buf, "statement_timeout") != NULL, "%s", buf);
	cr_assert_eq(
	    coord_xa_conninfo(XA_RM_POSTGRESQL, "host=h", buf, sizeof buf), 0);
	cr_expect(strstr(buf, "connect_timeout=5") != NULL, "%s", buf);
	/* A URI is taken as it is. */
	cr_assert_eq(coord_xa_conninfo(XA_RM_POSTGRESQL, "postgresql://h/d",
				       buf, sizeof buf),
		     0);
	cr_expect_str_eq(buf, "postgresql://h/d");
	/* MariaDB's adapter has its own bounds and refuses unknown keys. */
	cr_assert_eq(
	    coord_xa_conninfo(XA_RM_MARIADB, "host=h user=u", buf, sizeof buf),
	    0);
	cr_expect_str_eq(buf, "host=h user=u");
	cr_expect_eq(coord_xa_conninfo(XA_RM_POSTGRESQL, "host=h", buf, 20),
		     SETTLE_EINVAL);
}

/* ---- Configuration ------------------------------------------------------- */

#define BASE                                                                   \
	"settled", "--id", "1", "--data", "d", "--listen", "h:1", "--raft",    \
	    "h:2"

static int parse(struct coord_config *cfg, char *errmsg, size_t len, int argc,
		 const char **argv)
{
	return coord_config_parse(cfg, argc, (char **)argv, errmsg, len);
}

#define PARSE(cfg, err, ...)                                                   \
	parse(cfg, err, sizeof err,                                            \
	      (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)),   \
	      (const char *[]){__VA_ARGS__})

Test(xa_config, defaults)
{
	struct coord_config cfg;
	char err[512];

	cr_assert_eq(PARSE(&cfg, err, BASE), 0, "%s", err);
	cr_expect_eq(cfg.n_xa_rms, 0);
	cr_expect_eq(cfg.xa_format_id, 0x53544c45);
	cr_expect_eq(cfg.xa_recover_interval_ms, 60000);
	cr_expect_eq(cfg.xa_max_attempts, 20);
}

Test(xa_config, rms_format_and_interval)
{
	struct coord_config cfg;
	char err[512];
	const struct coord_xa_rm_cfg *rm;

	cr_assert_eq(
	    PARSE(&cfg, err, BASE, "--xa-rm",
		  "pg1=pg:host=127.0.0.1 port=5432 password=s3cret", "--xa-rm",
		  "My.Db-2=mariadb:host=h user=u", "--xa-rm",
		  "pg2=postgresql:dbname=x", "--xa-format-id", "2147483647",
		  "--xa-recover-interval", "30s", "--xa-max-attempts", "5"),
	    0, "%s", err);
	cr_expect_eq(cfg.n_xa_rms, 3);
	rm = coord_config_xa_rm(&cfg, "pg1");
	cr_assert_not_null(rm);
	cr_expect_eq(rm->kind, XA_RM_POSTGRESQL);
	cr_expect_str_eq(rm->conninfo,
			 "host=127.0.0.1 port=5432 password=s3cret");
	rm = coord_config_xa_rm(&cfg, "My.Db-2");
	cr_assert_not_null(rm);
	cr_expect_eq(rm->kind, XA_RM_MARIADB);
	cr_expect_str_eq(rm->conninfo, "host=h user=u");
	cr_expect_eq(coord_config_xa_rm(&cfg, "pg2")->kind, XA_RM_POSTGRESQL);
	cr_expect_null(coord_config_xa_rm(&cfg, "nope"));
	cr_expect_eq(cfg.xa_format_id, 2147483647);
	cr_expect_eq(cfg.xa_recover_interval_ms, 30000);
	cr_expect_eq(cfg.xa_max_attempts, 5);
	cr_expect_str_eq(coord_config_xa_kind_name(XA_RM_MARIADB), "mariadb");
}

/* Every refusal names the problem and never quotes the conninfo. */
static void refused(const char *spec, const char *expect)
{
	struct coord_config cfg;
	char err[512];

	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-rm", spec), SETTLE_EINVAL,
		     "%s", spec);
	cr_expect(strstr(err, expect) != NULL, "'%s': %s", spec, err);
	cr_expect(strstr(err, "s3cret") == NULL, "password leaked: %s", err);
}

Test(xa_config, bad_rm_forms_are_refused_without_the_password)
{
	refused("pg:password=s3cret", "NAME=pg:CONNINFO");
	refused("=pg:password=s3cret", "NAME=pg:CONNINFO");
	refused("a b=pg:password=s3cret", "NAME=pg:CONNINFO");
	refused("password=s3cret", "kind must be pg or mariadb");
	refused("x=oracle:password=s3cret", "kind must be pg or mariadb");
	refused("x=pgpassword=s3cret", "kind must be pg or mariadb");
	refused("x=pg:", "conninfo must have");
	refused("x=PG:password=s3cret", "kind must be pg or mariadb");
	refused(
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aa=pg:password=s3cret",
	    "NAME=pg:CONNINFO");
}

Test(xa_config, long_conninfo_duplicates_and_limits)
{
	struct coord_config cfg;
	char err[512];
	char big[1100];
	char specs[COORD_XA_RM_MAX + 1][32];
	const char *argv[9 + 2 * (COORD_XA_RM_MAX + 1)] = {BASE};
	int argc = 9;

	memset(big, 'a', sizeof big);
	memcpy(big, "x=pg:", 5);
	big[sizeof big - 1] = '\0';
	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-rm", big), SETTLE_EINVAL);
	cr_expect(strstr(err, "conninfo must have") != NULL, "%s", err);
	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-rm", "a=pg:x=1", "--xa-rm",
			   "a=mariadb:y=2"),
		     SETTLE_EINVAL);
	cr_expect(strstr(err, "configured twice") != NULL, "%s", err);
	for (int i = 0; i <= COORD_XA_RM_MAX; i++) {
		snprintf(specs[i], sizeof specs[i], "rm%d=pg:host=h", i);
		argv[argc++] = "--xa-rm";
		argv[argc++] = specs[i];
	}
	cr_expect_eq(parse(&cfg, err, sizeof err, argc, argv), SETTLE_EINVAL);
	cr_expect(strstr(err, "at most 16") != NULL, "%s", err);
	cr_expect_eq(parse(&cfg, err, sizeof err, argc - 2, argv), 0, "%s",
		     err);
	cr_expect_eq(cfg.n_xa_rms, COORD_XA_RM_MAX);
}

Test(xa_config, bad_format_interval_and_attempts)
{
	struct coord_config cfg;
	char err[512];

	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-format-id", "2147483648"),
		     SETTLE_EINVAL);
	cr_expect(strstr(err, "--xa-format-id") != NULL, "%s", err);
	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-format-id", "-1"),
		     SETTLE_EINVAL);
	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-format-id", "0"), 0);
	cr_expect_eq(cfg.xa_format_id, 0);
	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-recover-interval", "often"),
		     SETTLE_EINVAL);
	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-recover-interval", "10ms"),
		     SETTLE_EINVAL);
	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-max-attempts", "0"),
		     SETTLE_EINVAL);
	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-rm"), SETTLE_EINVAL);
	cr_expect(strstr(err, "needs a value") != NULL, "%s", err);
	/* An argument glued with '=' is not echoed past the '='. */
	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-rm=a=pg:password=s3cret"),
		     SETTLE_EINVAL);
	cr_expect(strstr(err, "s3cret") == NULL, "%s", err);
	cr_expect(strstr(err, "unknown argument '--xa-rm'") != NULL, "%s", err);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	cr_assert_eq(chmod(path, mode), 0);
}

Test(xa_config, rm_file)
{
	struct coord_config cfg;
	char err[512];
	char path[] = "/tmp/settle-xa-rm-XXXXXX";
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	close(fd);
	write_file(path,
		   "# resource managers\n"
		   "\n"
		   "  pg1=pg:host=h password='s3 cret'  \r\n"
		   "my1=mariadb:host=h user=u password=s3cret\n",
		   0600);
	cr_expect_eq(
	    PARSE(&cfg, err, BASE, "--xa-rm", "a=pg:x=1", "--xa-rm-file", path),
	    0, "%s", err);
	cr_expect_eq(cfg.n_xa_rms, 3);
	cr_expect_str_eq(coord_config_xa_rm(&cfg, "pg1")->conninfo,
			 "host=h password='s3 cret'");
	cr_expect_eq(coord_config_xa_rm(&cfg, "my1")->kind, XA_RM_MARIADB);

	/* Readable by others: refused. */
	chmod(path, 0644);
	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-rm-file", path),
		     SETTLE_EINVAL);
	cr_expect(strstr(err, "readable or writable by others") != NULL, "%s",
		  err);

	/* A bad line is named by its number, its text is not quoted. */
	write_file(path, "pg1=pg:host=h\nmy1=mysql:password=s3cret\n", 0640);
	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-rm-file", path),
		     SETTLE_EINVAL);
	cr_expect(strstr(err, ":2:") != NULL, "%s", err);
	cr_expect(strstr(err, "s3cret") == NULL, "%s", err);

	unlink(path);
	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-rm-file", path),
		     SETTLE_EINVAL);
	cr_expect(strstr(err, "No such file") != NULL, "%s", err);
	cr_expect_eq(PARSE(&cfg, err, BASE, "--xa-rm-file", "/tmp"),
		     SETTLE_EINVAL);
}
