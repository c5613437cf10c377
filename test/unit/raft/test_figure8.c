/*
 * The raft paper's figure 8 on canonical/raft 0.15 (Debian 12), in the
 * in-memory raft_fixture: a new leader commits an entry of an older term
 * by counting replicas and appends nothing of its own term, so an entry it
 * applied can later be overwritten by another leader.
 *
 * Five servers S1..S5 (fixture indexes 0..4). Every FSM records (index,
 * bytes) of each apply; the index is raft_last_applied() + 1 at apply time.
 * "Index x" below is the first index after the entries of term 2's start.
 *
 *   (a) S1 leads term 2 and gets X at index x to S2 only; S1 goes down.
 *   (b) S5 leads term 3 (votes of S3, S4) and writes Y at index x on its own
 *       log only; S5 goes down.
 *   (c) S1 comes back and leads term 4 (S2, S3): it sends X to S3, counts
 *       three replicas of index x and commits it, and applies X. It goes
 *       down before anyone else learns the commit.
 *   (d) S5 comes back and leads term 5 (S2, S3, S4: its last term 3 beats
 *       their 2): Y replaces X at index x and is applied everywhere else.
 *
 * Test 1 shows the divergence with plain raft. Test 2 models the
 * coordinator's rule (a leader answers clients and calls participants only
 * once a barrier of its own term is applied on it) and checks, for every
 * moment at which S1 can be cut off in (c) and for barriers appended at
 * once or late, that no entry ever answered is lost or applied differently
 * afterwards.
 *
 * How the fixture is driven: no server campaigns on its own (the fixture
 * hands out a huge randomized election timeout); elect() makes one server
 * campaign. Raft 0.15 refuses votes while a follower still knows a leader
 * (it forgets it only when its own timer fires and it campaigns), so
 * elect() clears that knowledge on the others, as their timeouts would. A
 * server "goes down" by being disconnected until it steps down, then
 * killed; a hook after every fixture event proposes barriers, records
 * answers and cuts S1 off at the chosen moment.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>
#include <raft/fixture.h>

#define N_SERVERS 5
#define CMD_LEN	  8
#define MAX_REC	  32
#define MAX_ANS	  64
/* Election timeout the fixture hands out: no server starts an election
 * unless the test makes it (raft's own election timeout stays 1000 ms, so
 * a leader cut off from the majority still steps down after a second). */
#define QUIET_MS 1000000u

struct rec {
	raft_index index;
	char cmd[CMD_LEN];
	unsigned long step; /* W.step when applied */
	raft_term term;	    /* the server's term then */
	raft_index last;    /* its last log index then */
};

struct node {
	struct raft_fsm fsm;
	unsigned i;
	struct rec rec[MAX_REC];
	unsigned n;
	raft_term barrier_term;	   /* term of the last barrier proposed */
	raft_term ready_term;	   /* term whose barrier is applied here */
	raft_term leader_term;	   /* term it was last seen leading */
	unsigned long leader_step; /* W.step it was first seen leading then */
};

struct answer {
	raft_index index;
	char cmd[CMD_LEN];
	unsigned long step;
	unsigned by; /* server index of the leader that answered */
};

/* One world per test process (Criterion forks each test). */
static struct {
	struct raft_fixture f;
	struct node nodes[N_SERVERS];
	unsigned long step;
	bool barriers; /* the mitigation: barrier at once, answer after it */
	/* Steps between a leader's election and its barrier: 0 models the
	 * coordinator (the next loop iteration); more models a slow one,
	 * whose leader may send older entries before its barrier. */
	unsigned long barrier_delay;
	struct answer ans[MAX_ANS];
	unsigned n_ans;
	/* Cut server cut_node off once its commit index reaches cut_index,
	 * or cut_after steps after cut arming (whichever comes first; 0:
	 * not armed). */
	int cut_node;
	raft_index cut_index;
	unsigned long cut_at_step;
	bool cut_done;
	/* Server index + 1 whose messages are dropped from the moment it
	 * leads, before it sends anything of its term (0: none). */
	unsigned mute_leader;
} W;

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
		     void **result)
{
	struct node *n = fsm->data;
	struct raft *r = raft_fixture_get(&W.f, n->i);
	cr_assert_lt(n->n, MAX_REC);
	struct rec *rec = &n->rec[n->n++];
	rec->index = raft_last_applied(r) + 1;
	memset(rec->cmd, 0, CMD_LEN);
	memcpy(rec->cmd, buf->base, buf->len < CMD_LEN ? buf->len : CMD_LEN);
	rec->step = W.step;
	rec->term = r->current_term;
	rec->last = raft_last_index(r);
	*result = NULL;
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
			unsigned *n_bufs)
{
	(void)fsm;
	(void)bufs;
	(void)n_bufs;
	return RAFT_NOTFOUND; /* the logs here never reach a snapshot */
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	(void)fsm;
	(void)buf;
	return RAFT_NOTFOUND;
}

static const struct rec *rec_at(unsigned i, raft_index index)
{
	const struct node *n = &W.nodes[i];
	for (unsigned k = 0; k < n->n; k++)
		if (n->rec[k].index == index)
			return &n->rec[k];
	return NULL;
}

/* The command a server applied at index, or NULL. */
static const char *applied_at(unsigned i, raft_index index)
{
	const struct rec *rec = rec_at(i, index);
	return rec != NULL ? rec->cmd : NULL;
}

static struct raft *R(unsigned i)
{
	return raft_fixture_get(&W.f, i);
}

static void barrier_cb(struct raft_barrier *req, int status)
{
	struct node *n = &W.nodes[(uintptr_t)req->data & 0xff];
	raft_term term = (raft_term)((uintptr_t)req->data >> 8);
	if (status == 0)
		n->ready_term = term;
	free(req);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
	(void)status;
	(void)result;
	free(req);
}

static bool answerable(unsigned i)
{
	struct raft *r = R(i);
	if (raft_state(r) != RAFT_LEADER)
		return false;
	/* Plain raft: a leader answers what it applied. The mitigation: only
	 * once a barrier of its own current term is applied on it. */
	return !W.barriers || W.nodes[i].ready_term == r->current_term;
}

static void answer_applied(unsigned i)
{
	const struct node *n = &W.nodes[i];
	for (unsigned k = 0; k < n->n; k++) {
		bool seen = false;
		for (unsigned a = 0; a < W.n_ans && !seen; a++)
			seen =
			    W.ans[a].index == n->rec[k].index &&
			    memcmp(W.ans[a].cmd, n->rec[k].cmd, CMD_LEN) == 0;
		if (seen)
			continue;
		cr_assert_lt(W.n_ans, MAX_ANS);
		struct answer *a = &W.ans[W.n_ans++];
		a->index = n->rec[k].index;
		memcpy(a->cmd, n->rec[k].cmd, CMD_LEN);
		a->step = W.step;
		a->by = i;
	}
}

static void isolate(unsigned i)
{
	for (unsigned j = 0; j < N_SERVERS; j++) {
		if (j == i)
			continue;
		raft_fixture_disconnect(&W.f, i, j);
		raft_fixture_disconnect(&W.f, j, i);
	}
}

static void connect_pair(unsigned i, unsigned j)
{
	raft_fixture_reconnect(&W.f, i, j);
	raft_fixture_reconnect(&W.f, j, i);
	raft_fixture_desaturate(&W.f, i, j);
	raft_fixture_desaturate(&W.f, j, i);
}

/* After every fixture event: propose barriers, record answers, cut. */
static void hook(struct raft_fixture *f, struct raft_fixture_event *ev)
{
	(void)ev;
	W.step++;
	for (unsigned i = 0; i < N_SERVERS; i++) {
		struct raft *r = raft_fixture_get(f, i);
		if (!raft_fixture_alive(f, i) || raft_state(r) != RAFT_LEADER)
			continue;
		if (W.mute_leader == i + 1) {
			for (unsigned j = 0; j < N_SERVERS; j++)
				if (j != i)
					raft_fixture_saturate(f, i, j);
			W.mute_leader = 0;
		}
		struct node *n = &W.nodes[i];
		if (n->leader_term != r->current_term) {
			n->leader_term = r->current_term;
			n->leader_step = W.step;
		}
		if (W.barriers && n->barrier_term != r->current_term &&
		    W.step >= n->leader_step + W.barrier_delay) {
			struct raft_barrier *req = calloc(1, sizeof *req);
			cr_assert_not_null(req);
			req->data =
			    (void *)(uintptr_t)((r->current_term << 8) | i);
			n->barrier_term = r->current_term;
			cr_assert_eq(raft_barrier(r, req, barrier_cb), 0);
		}
		if (answerable(i))
			answer_applied(i);
	}
	if (W.cut_node >= 0 && !W.cut_done) {
		struct raft *r = raft_fixture_get(f, (unsigned)W.cut_node);
		if (r->commit_index >= W.cut_index ||
		    (W.cut_at_step != 0 && W.step >= W.cut_at_step)) {
			isolate((unsigned)W.cut_node);
			W.cut_done = true;
		}
	}
}

static void world_init(bool barriers, unsigned long barrier_delay)
{
	memset(&W, 0, sizeof W);
	W.barriers = barriers;
	W.barrier_delay = barrier_delay;
	W.cut_node = -1;
	cr_assert_eq(raft_fixture_initialize(&W.f), 0);
	for (unsigned i = 0; i < N_SERVERS; i++) {
		struct node *n = &W.nodes[i];
		n->i = i;
		n->fsm.version = 1;
		n->fsm.data = n;
		n->fsm.apply = fsm_apply;
		n->fsm.snapshot = fsm_snapshot;
		n->fsm.restore = fsm_restore;
		cr_assert_eq(raft_fixture_grow(&W.f, &n->fsm), 0);
		raft_fixture_set_randomized_election_timeout(&W.f, i, QUIET_MS);
	}
	struct raft_configuration conf;
	cr_assert_eq(raft_fixture_configuration(&W.f, N_SERVERS, &conf), 0);
	cr_assert_eq(raft_fixture_bootstrap(&W.f, &conf), 0);
	raft_configuration_close(&conf);
	cr_assert_eq(raft_fixture_start(&W.f), 0);
	raft_fixture_hook(&W.f, hook);
}

static void world_close(void)
{
	raft_fixture_close(&W.f);
}

static void propose(unsigned i, const char *cmd)
{
	struct raft_buffer buf;
	buf.len = CMD_LEN;
	buf.base = raft_calloc(1, CMD_LEN);
	cr_assert_not_null(buf.base);
	memcpy(buf.base, cmd, strlen(cmd) < CMD_LEN ? strlen(cmd) : CMD_LEN);
	struct raft_apply *req = calloc(1, sizeof *req);
	cr_assert_not_null(req);
	cr_assert_eq(raft_apply(R(i), req, &buf, 1, apply_cb), 0);
}

/* Step until stop(arg) or max_ms of fixture time elapsed. */
static bool step_until(bool (*stop)(void *arg), void *arg, unsigned max_ms)
{
	raft_time start = raft_fixture_time(&W.f);
	while (!stop(arg)) {
		if (raft_fixture_time(&W.f) - start >= max_ms)
			return false;
		raft_fixture_step(&W.f);
	}
	return true;
}

struct want {
	unsigned i;
	raft_index index;
	int state;
};

static bool is_leader(void *arg)
{
	const struct want *w = arg;
	return raft_state(R(w->i)) == RAFT_LEADER;
}

static bool is_follower(void *arg)
{
	const struct want *w = arg;
	return raft_state(R(w->i)) == RAFT_FOLLOWER;
}

static bool has_stored(void *arg)
{
	const struct want *w = arg;
	return R(w->i)->last_stored >= w->index;
}

static bool has_applied(void *arg)
{
	const struct want *w = arg;
	return raft_last_applied(R(w->i)) >= w->index;
}

/* Make server i campaign now; true once it leads (within max_ms). Nobody
 * else campaigns: every other timer is QUIET_MS. */
static bool elect(unsigned i, unsigned max_ms)
{
	struct raft *r = R(i);
	/* The servers that will vote lost their leader (it is down or cut
	 * off). Raft 0.15 refuses any vote while a follower still knows a
	 * leader, and it forgets it only when its own election timer expires
	 * and it campaigns: here it only forgets, so that elections happen
	 * in the order of the scenario. */
	for (unsigned j = 0; j < N_SERVERS; j++) {
		struct raft *o = R(j);
		if (j != i && raft_state(o) == RAFT_FOLLOWER &&
		    o->follower_state.current_leader.id != 0) {
			/* raft's own copy of the address. */
			raft_free(o->follower_state.current_leader.address);
			o->follower_state.current_leader.id = 0;
			o->follower_state.current_leader.address = NULL;
		}
	}
	/* A lost round (others already voted in that term) is retried after
	 * a normal timeout. */
	raft_fixture_set_randomized_election_timeout(&W.f, i, 1000);
	if (raft_state(r) == RAFT_FOLLOWER)
		r->follower_state.randomized_election_timeout = 1;
	struct want w = {.i = i};
	bool ok = step_until(is_leader, &w, max_ms);
	raft_fixture_set_randomized_election_timeout(&W.f, i, QUIET_MS);
	return ok;
}

/* Cut server i off and wait until it has stepped down, then stop it. */
static void take_down(unsigned i)
{
	isolate(i);
	struct want w = {.i = i};
	cr_assert(step_until(is_follower, &w, 5000), "S%u never stepped down",
		  i + 1);
	raft_fixture_kill(&W.f, i);
}

static void bring_back(unsigned i, const unsigned *peers, unsigned n)
{
	raft_fixture_revive(&W.f, i);
	for (unsigned k = 0; k < n; k++)
		connect_pair(i, peers[k]);
}

/*
 * Steps (a) to (c) of the scenario. S1 is cut off in (c) once its commit
 * index reaches 2, or cut_after steps into its term-4 leadership if that is
 * not 0. Returns whether S1 got elected in term 4.
 */
static bool run_until_c(unsigned long cut_after)
{
	/* Term 2: S1 leads, everyone applies the bootstrap entries. */
	cr_assert(elect(0, 5000), "S1 not elected in term 2");
	struct want w = {.i = 0, .index = raft_last_index(R(0))};
	for (w.i = 0; w.i < N_SERVERS; w.i++)
		cr_assert(step_until(has_applied, &w, 5000),
			  "S%u did not apply the start", w.i + 1);
	raft_index x_index = raft_last_index(R(0)) + 1;

	/* (a) X reaches S2 only. */
	for (unsigned j = 2; j < N_SERVERS; j++)
		raft_fixture_saturate(&W.f, 0, j);
	propose(0, "X");
	w.i = 1;
	w.index = x_index;
	cr_assert(step_until(has_stored, &w, 5000), "X never reached S2");
	take_down(0);

	/* (b) S5 leads term 3 and writes Y on its own log only. */
	W.mute_leader = 5;
	cr_assert(elect(4, 5000), "S5 not elected in term 3");
	propose(4, "Y");
	w.i = 4;
	w.index = raft_last_index(R(4));
	cr_assert(step_until(has_stored, &w, 5000), "Y never stored on S5");
	take_down(4);

	/* (c) S1 back with S2 and S3, cut off once it commits X. */
	static const unsigned s1_peers[] = {1, 2};
	bring_back(0, s1_peers, 2);
	W.cut_node = 0;
	W.cut_index = x_index;
	if (!elect(0, 5000))
		return false;
	if (cut_after != 0 && !W.cut_done)
		W.cut_at_step = W.step + cut_after;
	/* Until the cut (or the commit, if the cut came first). */
	w.i = 0;
	w.index = x_index;
	step_until(has_applied, &w, 3000);
	return true;
}

/* (d): S1 down, S5 back with S2, S3, S4; true if S5 gets elected. */
static bool run_d(void)
{
	if (!W.cut_done)
		isolate(0);
	struct want w = {.i = 0};
	cr_assert(step_until(is_follower, &w, 5000), "S1 never stepped down");
	raft_fixture_kill(&W.f, 0);
	static const unsigned s5_peers[] = {1, 2, 3};
	bring_back(4, s5_peers, 3);
	if (!elect(4, 8000))
		return false;
	/* Let every live server catch up. */
	raft_fixture_step_until_elapsed(&W.f, 3000);
	return true;
}

/*
 * Whether every answered entry stayed the cluster's: no server applies
 * another command at its index after the answer, and every server still
 * up that applied past that index applied that very command there (a
 * barrier there instead would mean the command was dropped). The server
 * that applied a different entry before the answer is the diverged one
 * (down here; the FSM's checksum stops it if it comes back).
 */
static bool answers_kept(char *why, size_t len)
{
	for (unsigned a = 0; a < W.n_ans; a++) {
		const struct answer *ans = &W.ans[a];
		for (unsigned i = 0; i < N_SERVERS; i++) {
			const struct node *n = &W.nodes[i];
			for (unsigned k = 0; k < n->n; k++) {
				const struct rec *rec = &n->rec[k];
				if (rec->index == ans->index &&
				    memcmp(rec->cmd, ans->cmd, CMD_LEN) != 0 &&
				    rec->step >= ans->step) {
					snprintf(why, len,
						 "S%u answered %s at %llu, S%u "
						 "applied %s there later",
						 ans->by + 1, ans->cmd,
						 (unsigned long long)ans->index,
						 i + 1, rec->cmd);
					return false;
				}
			}
			if (!raft_fixture_alive(&W.f, i) ||
			    raft_last_applied(R(i)) < ans->index)
				continue;
			const char *c = applied_at(i, ans->index);
			if (c == NULL || memcmp(c, ans->cmd, CMD_LEN) != 0) {
				snprintf(why, len,
					 "S%u answered %s at %llu, S%u holds "
					 "%s there",
					 ans->by + 1, ans->cmd,
					 (unsigned long long)ans->index, i + 1,
					 c != NULL ? c : "no command");
				return false;
			}
		}
	}
	return true;
}

Test(figure8, plain_raft_applies_two_commands_at_one_index)
{
	world_init(false, 0);
	cr_assert(run_until_c(0), "S1 not elected in term 4");
	raft_index idx = W.cut_index;
	const char *s1 = applied_at(0, idx);
	cr_assert_not_null(s1, "S1 did not apply index %llu",
			   (unsigned long long)idx);
	cr_assert_str_eq(s1, "X");
	/* S1 applied X as leader of term 4 with no entry of term 4 in its
	 * log: it committed a term 2 entry by counting replicas. */
	const struct rec *rec = rec_at(0, idx);
	cr_expect_eq(rec->term, 4);
	cr_expect_eq(rec->last, idx);
	/* S1 would answer its client now: X is committed as far as it
	 * knows. */
	cr_assert(run_d(), "S5 not elected in term 5");
	for (unsigned i = 1; i < N_SERVERS; i++) {
		const char *c = applied_at(i, idx);
		cr_assert_not_null(c, "S%u did not apply index %llu", i + 1,
				   (unsigned long long)idx);
		cr_expect_str_eq(c, "Y", "S%u", i + 1);
	}
	/* Two different commands applied at the same index. */
	cr_expect_str_neq(applied_at(0, idx), applied_at(1, idx));
	/* And the naive rule (answer what the leader applied) answered X. */
	bool answered_x = false;
	for (unsigned a = 0; a < W.n_ans; a++)
		answered_x |=
		    W.ans[a].index == idx && strcmp(W.ans[a].cmd, "X") == 0;
	cr_expect(answered_x);
	char why[160];
	cr_expect(!answers_kept(why, sizeof why),
		  "the naive rule should have answered an entry later lost");
	world_close();
}

/*
 * The coordinator's rule in the same scenario: every new leader appends a
 * barrier at once and answers (or calls participants) only once that
 * barrier is applied on it. S1 is cut off at every possible step of its
 * term 4 leadership; whatever happens next, no answered entry is lost or
 * applied differently. Raft itself still diverges in some of these runs
 * (S1 applies X, the others never do): the rule keeps that divergence
 * silent to clients, and the FSM's checksum makes it loud on S1.
 */
Test(figure8, barrier_rule_never_answers_an_entry_that_is_lost, .timeout = 120)
{
	static const unsigned long delays[] = {0, 5, 15, 30, 60};
	unsigned diverged = 0, s5_won = 0, s1_won = 0;
	for (unsigned run = 0; run < 5 * 60; run++) {
		unsigned long delay = delays[run / 60];
		unsigned long cut = run % 60 + 1;
		world_init(true, delay);
		if (!run_until_c(cut)) {
			world_close();
			continue;
		}
		raft_index x = W.cut_index;
		bool s1_applied_x = applied_at(0, x) != NULL &&
				    strcmp(applied_at(0, x), "X") == 0;
		bool elected = run_d();
		char why[160];
		cr_assert(answers_kept(why, sizeof why),
			  "barrier after %lu, cut after %lu: %s", delay, cut,
			  why);
		if (elected)
			s5_won++;
		else
			s1_won++;
		bool others_lack_x = true;
		for (unsigned i = 1; i < N_SERVERS; i++) {
			const char *c = applied_at(i, x);
			others_lack_x &= c == NULL || strcmp(c, "X") != 0;
		}
		if (s1_applied_x && elected && others_lack_x)
			diverged++;
		world_close();
	}
	/* The runs covered both outcomes, including the dangerous one. */
	cr_expect_gt(diverged, 0, "no run diverged: the scenario is not hit");
	cr_expect_gt(s1_won, 0, "S1's barrier never won");
	cr_log_info("figure 8 with barriers: %u runs S5 took over (%u with X "
		    "applied on S1 only), %u runs S5 could not",
		    s5_won, diverged, s1_won);
}
