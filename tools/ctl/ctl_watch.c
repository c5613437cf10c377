/*
 * ctl_watch.c — settlectl top: polls every node's STATUS and the leader's
 * PARTICIPANTS each --interval and redraws (ctl_top.h); --iterations N
 * stops after N rounds (0: until interrupted).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl_cmd.h"
#include "ctl_top.h"
#include "log.h"

#define TOP_MAX_NODES 64

struct round {
	struct ctl_top_round r;
	struct ctl_node_status nodes[TOP_MAX_NODES];
	char *list; /* the endpoints' storage */
};

static void round_free(struct round *x)
{
	for (size_t i = 0; i < x->r.n; i++) {
		if (x->nodes[i].st != NULL)
			protobuf_c_message_free_unpacked(
			    (ProtobufCMessage *)x->nodes[i].st, NULL);
		free((char *)x->nodes[i].errmsg);
	}
	if (x->r.parts != NULL)
		protobuf_c_message_free_unpacked((ProtobufCMessage *)x->r.parts,
						 NULL);
	free(x->list);
	memset(x, 0, sizeof *x);
}

/* One round of calls; false when no node answered. */
static bool round_take(const struct ctl_opts *o, settle_client *c,
		       struct round *x)
{
	Settle__V1__ParticipantsRequest preq =
	    SETTLE__V1__PARTICIPANTS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	char *save = NULL, *ep;
	size_t ok = 0;

	memset(x, 0, sizeof *x);
	x->list = strdup(o->cluster);
	if (x->list == NULL)
		return false;
	x->r.nodes = x->nodes;
	for (ep = strtok_r(x->list, ",", &save); ep && x->r.n < TOP_MAX_NODES;
	     ep = strtok_r(NULL, ",", &save)) {
		Settle__V1__StatusRequest req =
		    SETTLE__V1__STATUS_REQUEST__INIT;
		struct ctl_node_status *s = &x->nodes[x->r.n++];

		resp = NULL;
		s->endpoint = ep;
		s->err = settle_client_call_at(
		    c, ep, SETTLE__V1__METHOD__STATUS, &req.base,
		    &settle__v1__status_response__descriptor, &resp);
		if (s->err == 0) {
			s->st = (Settle__V1__StatusResponse *)resp;
			ok++;
		} else {
			s->errmsg = strdup(settle_client_errmsg(c));
		}
	}
	resp = NULL;
	if (settle_client_call(c, SETTLE__V1__METHOD__PARTICIPANTS, &preq.base,
			       &settle__v1__participants_response__descriptor,
			       &resp) == 0)
		x->r.parts = (Settle__V1__ParticipantsResponse *)resp;
	x->r.mono_ms = settle_mono_ms();
	return ok > 0;
}

int ctl_cmd_top(const struct ctl_opts *o)
{
	struct round a, b, *prev = NULL, *cur = &a;
	bool tty = isatty(STDOUT_FILENO);
	settle_client *c;
	uint64_t interval = o->interval_ms != 0 ? o->interval_ms : 1000;

	if (ctl_open_client(o, &c) != 0)
		return CTL_EXIT_USAGE;
	for (uint32_t i = 0; o->iterations == 0 || i < o->iterations; i++) {
		bool any = round_take(o, c, cur);

		if (tty)
			fputs("\033[H\033[2J", stdout);
		else if (i > 0)
			fputs("---\n", stdout);
		printf("settle cluster %s, every %llu ms\n\n", o->cluster,
		       (unsigned long long)interval);
		if (any)
			ctl_top_render(stdout, prev != NULL ? &prev->r : NULL,
				       &cur->r);
		else
			printf("no node of %s answered\n", o->cluster);
		fflush(stdout);
		if (prev != NULL)
			round_free(prev);
		prev = cur;
		cur = cur == &a ? &b : &a;
		if (o->iterations == 0 || i + 1 < o->iterations) {
			struct timespec ts = {(time_t)(interval / 1000),
					      (long)(interval % 1000) *
						  1000000};

			nanosleep(&ts, NULL);
		}
	}
	if (prev != NULL)
		round_free(prev);
	settle_client_close(c);
	return 0;
}
