/* settle-bank and settle-transfer as real processes, with a scripted fake
 * coordinator; the test plays the coordinator's phase two itself. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"

#include "settle.h"

#include "fake_server.h"
#include "log.h"

static char dir[64];
static pid_t bank_pid;
static char bank_ep[64];
static settle_client *cli;

static const char *bin(const char *name)
{
	static char path[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/examples/%s",
		 SETTLE_TEST_BUILDDIR, name);
	return path[i];
}

/* Run argv to completion, stdout into out (size len). Exit status. */
static int run(char *const argv[], char *out, size_t len)
{
	int pfd[2];
	cr_assert_eq(pipe(pfd), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	size_t n = 0;
	ssize_t r;
	while ((r = read(pfd[0], out + n, len - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(pfd[0]);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void start_bank(const char *extra)
{
	char log[128];
	snprintf(log, sizeof(log), "%s/bank.log", dir);
	bank_pid = fork();
	cr_assert(bank_pid >= 0);
	if (bank_pid == 0) {
		char data[128];
		snprintf(data, sizeof(data), "%s/bank", dir);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		char *argv[] = {(char *)bin("settle-bank"),
				"serve",
				"--data",
				data,
				"--listen",
				"127.0.0.1:0",
				"--accounts",
				"alice=1000,bob=500",
				(char *)extra,
				NULL};
		execv(argv[0], argv);
		_exit(127);
	}
	/* Ready when it prints its port. */
	for (int i = 0; i < 200; i++) {
		char buf[4096] = "";
		FILE *f = fopen(log, "r");
		if (f != NULL) {
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);
			buf[n] = '\0';
			fclose(f);
		}
		const char *p = strstr(buf, "listening on ");
		if (p != NULL && strchr(p, '\n') != NULL) {
			sscanf(p + strlen("listening on "), "%63s", bank_ep);
			return;
		}
		usleep(50 * 1000);
	}
	cr_assert_fail("settle-bank did not start");
}

static void setup(void)
{
	strcpy(dir, "/tmp/settle-ex-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	/* The examples refuse plaintext unless asked (secure by default). */
	setenv("SETTLE_INSECURE", "1", 1);
	cr_assert_eq(settle_client_open("127.0.0.1:1", NULL, &cli), 0);
}

static void teardown(void)
{
	char cmd[128];
	if (bank_pid > 0) {
		int st;
		kill(bank_pid, SIGTERM);
		waitpid(bank_pid, &st, 0);
		cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			  "settle-bank did not exit cleanly");
	}
	settle_client_close(cli);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(examples, .init = setup, .fini = teardown, .timeout = 30);

/* Fake coordinator: remembers registered branches, answers decisions. */
static struct {
	char endpoint[8][64];
	char payload[8][64];
	int n;
	int decided; /* method of the decision */
	bool wait;   /* of the decision request */
	uint32_t wait_ms;
} co;

static bool coordinator(struct fake_server *s, int n,
			const Settle__V1__Frame *f, int *err, const char **msg,
			const char **leader, ProtobufCMessage **body)
{
	switch (f->method) {
	case SETTLE__V1__METHOD__BEGIN: {
		Settle__V1__BeginResponse *r = malloc(sizeof(*r));
		settle__v1__begin_response__init(r);
		r->gid = strdup("tx-e2e");
		*body = &r->base;
		break;
	}
	case SETTLE__V1__METHOD__REGISTER_BRANCH: {
		Settle__V1__RegisterBranchRequest *q =
		    settle__v1__register_branch_request__unpack(
			NULL, f->body.len, f->body.data);
		cr_assert_not_null(q);
		snprintf(co.endpoint[co.n], 64, "%s", q->endpoint);
		snprintf(co.payload[co.n], 64, "%.*s", (int)q->payload.len,
			 q->payload.data);
		settle__v1__register_branch_request__free_unpacked(q, NULL);
		Settle__V1__RegisterBranchResponse *r = malloc(sizeof(*r));
		settle__v1__register_branch_response__init(r);
		r->branch_id = (uint32_t)++co.n;
		*body = &r->base;
		break;
	}
	case SETTLE__V1__METHOD__COMMIT:
	case SETTLE__V1__METHOD__ROLLBACK: {
		co.decided = (int)f->method;
		if (f->method == SETTLE__V1__METHOD__COMMIT) {
			Settle__V1__CommitRequest *q =
			    settle__v1__commit_request__unpack(
				NULL, f->body.len, f->body.data);
			cr_assert_not_null(q);
			co.wait = q->wait;
			co.wait_ms = q->wait_ms;
			settle__v1__commit_request__free_unpacked(q, NULL);
		}
		Settle__V1__DecisionResponse *r = malloc(sizeof(*r));
		settle__v1__decision_response__init(r);
		r->state = f->method == SETTLE__V1__METHOD__COMMIT
			       ? SETTLE__V1__TX_STATE__COMMITTING
			       : SETTLE__V1__TX_STATE__ROLLING_BACK;
		*body = &r->base;
		break;
	}
	default:
		*err = SETTLE_ENOMETHOD;
	}
	return true;
}

/* Phase two, as the coordinator would drive it. */
static int drive(int method, int branch)
{
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	req.gid = "tx-e2e";
	req.branch_id = (uint32_t)branch;
	req.payload.data = (uint8_t *)co.payload[branch - 1];
	req.payload.len = strlen(co.payload[branch - 1]);
	req.attempt = 1;
	return settle_client_call_at(cli, co.endpoint[branch - 1], method,
				     &req.base, NULL, NULL);
}

static int transfer(struct fake_server *fc, const char *amount,
		    const char *flag, char *out, size_t len)
{
	char from[128], to[128];
	snprintf(from, sizeof(from), "%s:alice", bank_ep);
	snprintf(to, sizeof(to), "%s:bob", bank_ep);
	char *argv[] = {(char *)bin("settle-transfer"),
			"--cluster",
			fc->endpoint,
			"--from",
			from,
			"--to",
			to,
			"--amount",
			(char *)amount,
			(char *)flag,
			NULL};
	return run(argv, out, len);
}

static void balances(char *out, size_t len)
{
	char data[128];
	snprintf(data, sizeof(data), "%s/bank", dir);
	char *argv[] = {(char *)bin("settle-bank"),
			"balances",
			"--data",
			data,
			"--json",
			NULL};
	cr_assert_eq(run(argv, out, len), 0);
}

Test(examples, transfer_commits_and_confirm_moves_money)
{
	struct fake_server fc;
	char out[2048];

	memset(&co, 0, sizeof(co));
	start_bank(NULL);
	fake_server_start(&fc, coordinator, NULL);
	cr_assert_eq(transfer(&fc, "300", NULL, out, sizeof(out)), 0, "%s",
		     out);
	cr_expect_not_null(strstr(out, "gid: tx-e2e\n"), "%s", out);
	cr_expect_not_null(strstr(out, "state: COMMITTING\n"), "%s", out);
	cr_expect_eq(co.decided, SETTLE__V1__METHOD__COMMIT);
	/* By default Commit waits for phase two. */
	cr_expect(co.wait);
	cr_expect_eq(co.wait_ms, 10000);
	cr_assert_eq(co.n, 2);
	cr_expect_str_eq(co.payload[0], "account=alice;amount=-300");
	cr_expect_str_eq(co.payload[1], "account=bob;amount=300");
	cr_expect_str_eq(co.endpoint[0], bank_ep);

	balances(out, sizeof(out));
	cr_expect_not_null(strstr(out, "\"name\":\"alice\",\"balance\":1000,"
				       "\"frozen\":300"),
			   "%s", out);
	/* Phase two, twice: the barrier makes the repeat harmless. */
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(drive(SETTLE__V1__METHOD__CONFIRM, 1), 0, "%s",
			     settle_client_errmsg(cli));
		cr_assert_eq(drive(SETTLE__V1__METHOD__CONFIRM, 2), 0);
	}
	balances(out, sizeof(out));
	cr_expect_not_null(strstr(out,
				  "\"total\":{\"balance\":1500,\"frozen\":0,"
				  "\"incoming\":0}"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"name\":\"alice\",\"balance\":700,"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"name\":\"bob\",\"balance\":800,"),
			   "%s", out);
	fake_server_stop(&fc);
}

Test(examples, insufficient_funds_rolls_back)
{
	struct fake_server fc;
	char out[2048];

	memset(&co, 0, sizeof(co));
	start_bank(NULL);
	fake_server_start(&fc, coordinator, NULL);
	cr_expect_eq(transfer(&fc, "5000", NULL, out, sizeof(out)), 3, "%s",
		     out);
	cr_expect_eq(co.decided, SETTLE__V1__METHOD__ROLLBACK);
	cr_expect_not_null(strstr(out, "state: ROLLING_BACK"), "%s", out);
	/* Alice's Try failed and Bob's was never sent: both Cancels are
	 * null compensations. */
	cr_expect_eq(drive(SETTLE__V1__METHOD__CANCEL, 1), 0);
	cr_expect_eq(drive(SETTLE__V1__METHOD__CANCEL, 2), 0);
	balances(out, sizeof(out));
	cr_expect_not_null(strstr(out,
				  "\"total\":{\"balance\":1500,\"frozen\":0,"
				  "\"incoming\":0}"),
			   "%s", out);
	fake_server_stop(&fc);
}

Test(examples, abort_rolls_back_and_late_try_is_refused)
{
	struct fake_server fc;
	char out[2048];

	memset(&co, 0, sizeof(co));
	start_bank(NULL);
	fake_server_start(&fc, coordinator, NULL);
	cr_expect_eq(transfer(&fc, "10", "--abort", out, sizeof(out)), 0, "%s",
		     out);
	cr_expect_eq(co.decided, SETTLE__V1__METHOD__ROLLBACK);
	/* No Try was sent: the Cancel is a null compensation. */
	cr_expect_eq(drive(SETTLE__V1__METHOD__CANCEL, 1), 0);
	/* --abort sent no Try: a late one is now a hanging Try. */
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	req.gid = "tx-e2e";
	req.branch_id = 1;
	req.payload.data = (uint8_t *)co.payload[0];
	req.payload.len = strlen(co.payload[0]);
	cr_expect_eq(settle_client_call_at(cli, bank_ep,
					   SETTLE__V1__METHOD__TRY, &req.base,
					   NULL, NULL),
		     SETTLE_EREFUSED);
	balances(out, sizeof(out));
	cr_expect_not_null(strstr(out, "\"total\":{\"balance\":1500,"
				       "\"frozen\":0,\"incoming\":0}"),
			   "%s", out);
	fake_server_stop(&fc);
}

Test(examples, retry_first_answers_retry_then_confirms)
{
	struct fake_server fc;
	char out[2048];

	memset(&co, 0, sizeof(co));
	start_bank("--retry-first=1");
	fake_server_start(&fc, coordinator, NULL);
	cr_assert_eq(transfer(&fc, "10", NULL, out, sizeof(out)), 0, "%s", out);
	cr_expect_eq(drive(SETTLE__V1__METHOD__CONFIRM, 1), SETTLE_ERETRY);
	cr_expect_str_eq(settle_client_errmsg(cli),
			 "confirm: RETRY: injected retry");
	cr_expect_eq(drive(SETTLE__V1__METHOD__CONFIRM, 1), 0);
	cr_expect_eq(drive(SETTLE__V1__METHOD__CONFIRM, 2), 0);
	balances(out, sizeof(out));
	cr_expect_not_null(strstr(out, "\"name\":\"alice\",\"balance\":990,"),
			   "%s", out);
	fake_server_stop(&fc);
}

Test(examples, fail_confirm_answers_failure)
{
	struct fake_server fc;
	char out[2048];

	memset(&co, 0, sizeof(co));
	start_bank("--fail-confirm");
	fake_server_start(&fc, coordinator, NULL);
	cr_assert_eq(transfer(&fc, "1", NULL, out, sizeof(out)), 0, "%s", out);
	cr_expect_eq(drive(SETTLE__V1__METHOD__CONFIRM, 1), SETTLE_EFAILURE);
	cr_expect_str_eq(settle_client_errmsg(cli),
			 "confirm: FAILURE: injected failure");
	fake_server_stop(&fc);
	/* Logs never carry account names. */
	char log[128], buf[8192] = "";
	snprintf(log, sizeof(log), "%s/bank.log", dir);
	FILE *f = fopen(log, "r");
	cr_assert_not_null(f);
	buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
	fclose(f);
	cr_expect_null(strstr(buf, "alice"), "%s", buf);
	cr_expect_null(strstr(buf, "amount"), "%s", buf);
}

Test(examples, wait_ms_zero_does_not_wait)
{
	struct fake_server fc;
	char out[2048];

	memset(&co, 0, sizeof(co));
	start_bank(NULL);
	fake_server_start(&fc, coordinator, NULL);
	cr_assert_eq(transfer(&fc, "5", "--wait-ms=0", out, sizeof(out)), 0,
		     "%s", out);
	cr_expect_eq(co.decided, SETTLE__V1__METHOD__COMMIT);
	cr_expect_not(co.wait);
	fake_server_stop(&fc);
}

struct bg_drive {
	pthread_t thread;
	int method, branch, rv;
};

static void *bg_drive_main(void *arg)
{
	struct bg_drive *d = arg;
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	settle_client *own;

	if (settle_client_open("127.0.0.1:1", NULL, &own) != 0) {
		d->rv = -999;
		return NULL;
	}
	req.gid = "tx-e2e";
	req.branch_id = (uint32_t)d->branch;
	req.payload.data = (uint8_t *)co.payload[d->branch - 1];
	req.payload.len = strlen(co.payload[d->branch - 1]);
	req.attempt = 1;
	d->rv = settle_client_call_at(own, co.endpoint[d->branch - 1],
				      d->method, &req.base, NULL, NULL);
	settle_client_close(own);
	return NULL;
}

Test(examples, confirm_delay_holds_the_call_not_the_bank)
{
	struct fake_server fc;
	struct bg_drive first = {.method = SETTLE__V1__METHOD__CONFIRM,
				 .branch = 1};
	char out[2048];
	uint64_t t0;

	memset(&co, 0, sizeof(co));
	/* A delay far above a busy machine's scheduling noise: 600 ms once
	 * passed before the balances below were read. */
	start_bank("--confirm-delay-ms=2000");
	fake_server_start(&fc, coordinator, NULL);
	cr_assert_eq(transfer(&fc, "300", "--wait-ms=0", out, sizeof(out)), 0,
		     "%s", out);
	cr_assert_eq(pthread_create(&first.thread, NULL, bg_drive_main, &first),
		     0);
	usleep(150 * 1000);
	/* Held back: nothing of alice's Confirm is written yet. */
	balances(out, sizeof(out));
	cr_expect_not_null(strstr(out, "\"name\":\"alice\",\"balance\":1000,"
				       "\"frozen\":300"),
			   "%s", out);
	/* Bob's Confirm is not queued behind alice's: it takes its own
	 * delay only (a sleeping bank would add the rest of alice's). */
	t0 = settle_mono_ms();
	cr_expect_eq(drive(SETTLE__V1__METHOD__CONFIRM, 2), 0);
	/* Its own delay: 2000 ms; queued behind alice's: about 3850. */
	cr_expect_lt(settle_mono_ms() - t0, 3200, "the delay blocked the bank");
	pthread_join(first.thread, NULL);
	cr_expect_eq(first.rv, 0);
	/* A repeat is delayed too, then skipped by the barrier. */
	cr_expect_eq(drive(SETTLE__V1__METHOD__CONFIRM, 1), 0);
	balances(out, sizeof(out));
	cr_expect_not_null(strstr(out, "\"total\":{\"balance\":1500,"
				       "\"frozen\":0,\"incoming\":0}"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"name\":\"alice\",\"balance\":700,"),
			   "%s", out);
	fake_server_stop(&fc);
}

Test(examples, barrier_retention_bounds_the_rows)
{
	struct fake_server fc;
	char out[2048];
	char data[128];

	snprintf(data, sizeof(data), "%s/bank", dir);
	char *bad[] = {(char *)bin("settle-bank"),
		       "serve",
		       "--data",
		       data,
		       "--listen",
		       "127.0.0.1:0",
		       "--barrier-retention",
		       "7 days",
		       NULL};
	cr_expect_eq(run(bad, out, sizeof(out)), 2);
	bad[7] = "0s";
	cr_expect_eq(run(bad, out, sizeof(out)), 2);

	memset(&co, 0, sizeof(co));
	start_bank("--barrier-retention=300ms");
	fake_server_start(&fc, coordinator, NULL);
	cr_assert_eq(transfer(&fc, "10", "--wait-ms=0", out, sizeof(out)), 0,
		     "%s", out);
	cr_assert_eq(drive(SETTLE__V1__METHOD__CONFIRM, 1), 0);
	cr_assert_eq(drive(SETTLE__V1__METHOD__CONFIRM, 1), 0);
	usleep(800 * 1000);
	/* The rows are gone, so the repeat is a first call again, and the
	 * bank finds no reservation to confirm: the danger a retention
	 * shorter than the coordinator's horizon would bring. */
	cr_expect_eq(drive(SETTLE__V1__METHOD__CONFIRM, 1), SETTLE_EFAILURE);
	balances(out, sizeof(out));
	cr_expect_not_null(strstr(out, "\"name\":\"alice\",\"balance\":990,"),
			   "%s", out);
	fake_server_stop(&fc);
}

/* ---- settle-bank serving saga steps ------------------------------------ */

static int saga_step(int method, const char *gid, uint32_t step,
		     const char *payload)
{
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	req.gid = (char *)gid;
	req.branch_id = step;
	req.resource = step == 1 ? "debit" : "credit";
	req.payload.data = (uint8_t *)payload;
	req.payload.len = strlen(payload);
	req.attempt = 1;
	return settle_client_call_at(cli, bank_ep, method, &req.base, NULL,
				     NULL);
}

#define ACTION	   SETTLE__V1__METHOD__ACTION
#define COMPENSATE SETTLE__V1__METHOD__COMPENSATE

Test(examples, saga_transfer_moves_money_and_compensation_restores_it)
{
	char out[2048];

	start_bank("--retry-first=1");
	/* --retry-first covers saga actions too. */
	cr_expect_eq(saga_step(ACTION, "sg1", 1, "account=alice;amount=-100"),
		     SETTLE_ERETRY);
	cr_expect_eq(saga_step(ACTION, "sg1", 1, "account=alice;amount=-100"),
		     0, "%s", settle_client_errmsg(cli));
	cr_expect_eq(saga_step(ACTION, "sg1", 1, "account=alice;amount=-100"),
		     0);
	cr_expect_eq(saga_step(ACTION, "sg1", 2, "account=bob;amount=100"), 0);
	balances(out, sizeof(out));
	cr_expect_not_null(strstr(out, "\"name\":\"alice\",\"balance\":900,"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"name\":\"bob\",\"balance\":600,"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"total\":{\"balance\":1500,"), "%s",
			   out);

	/* A debit beyond the balance is a business failure... */
	cr_expect_eq(saga_step(ACTION, "sg2", 1, "account=bob;amount=-601"),
		     SETTLE_EFAILURE);
	cr_expect_not_null(
	    strstr(settle_client_errmsg(cli), "FAILURE: insufficient funds"),
	    "%s", settle_client_errmsg(cli));
	/* ...whose compensation is a null one; a late copy is refused. */
	cr_expect_eq(saga_step(COMPENSATE, "sg2", 1, "account=bob;amount=-601"),
		     0);
	cr_expect_eq(saga_step(ACTION, "sg2", 1, "account=bob;amount=-601"),
		     SETTLE_EREFUSED);

	/* Compensating sg1 in reverse order restores both, once. */
	cr_expect_eq(saga_step(COMPENSATE, "sg1", 2, "account=bob;amount=100"),
		     0);
	cr_expect_eq(
	    saga_step(COMPENSATE, "sg1", 1, "account=alice;amount=-100"), 0);
	cr_expect_eq(
	    saga_step(COMPENSATE, "sg1", 1, "account=alice;amount=-100"), 0);
	cr_expect_eq(saga_step(ACTION, "sg1", 2, "account=bob;amount=100"),
		     SETTLE_EREFUSED);
	balances(out, sizeof(out));
	cr_expect_not_null(strstr(out, "\"name\":\"alice\",\"balance\":1000,"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"name\":\"bob\",\"balance\":500,"),
			   "%s", out);
}

Test(examples, fail_action_answers_failure_and_changes_nothing)
{
	char out[2048];

	start_bank("--fail-action");
	cr_expect_eq(saga_step(ACTION, "sg3", 1, "account=alice;amount=-5"),
		     SETTLE_EFAILURE);
	cr_expect_not_null(
	    strstr(settle_client_errmsg(cli), "FAILURE: injected failure"),
	    "%s", settle_client_errmsg(cli));
	cr_expect_eq(saga_step(COMPENSATE, "sg3", 1, "account=alice;amount=-5"),
		     0);
	balances(out, sizeof(out));
	cr_expect_not_null(strstr(out, "\"name\":\"alice\",\"balance\":1000,"),
			   "%s", out);
	/* Logs never carry account names, saga steps included. */
	char log[128], buf[8192] = "";
	snprintf(log, sizeof(log), "%s/bank.log", dir);
	FILE *f = fopen(log, "r");
	cr_assert_not_null(f);
	buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
	fclose(f);
	cr_expect_null(strstr(buf, "alice"), "%s", buf);
}
