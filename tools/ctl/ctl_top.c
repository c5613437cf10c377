/*
 * ctl_top.c — settlectl top's view (ctl_top.h).
 */
#include <inttypes.h>
#include <string.h>

#include "ctl_int.h"
#include "ctl_top.h"

double ctl_top_quantile_ms(const uint64_t *before, const uint64_t *now,
			   const uint64_t *le_us, size_t n, double q)
{
	uint64_t total = 0, seen = 0, lo = 0;
	double want;

	for (size_t i = 0; i < n; i++)
		total += now[i] - (before != NULL ? before[i] : 0);
	if (total == 0)
		return -1;
	want = q * (double)total;
	for (size_t i = 0; i < n; i++) {
		uint64_t c = now[i] - (before != NULL ? before[i] : 0);
		uint64_t hi = le_us[i] != 0 ? le_us[i] : lo * 2;

		if (c > 0 && (double)(seen + c) >= want) {
			double in = (want - (double)seen) / (double)c;

			return ((double)lo + in * (double)(hi - lo)) / 1000.0;
		}
		seen += c;
		lo = le_us[i] != 0 ? le_us[i] : lo;
	}
	return (double)lo / 1000.0;
}

/* The round's leader (role "leader"), NULL if none answered as one. */
static const Settle__V1__StatusResponse *
leader_of(const struct ctl_top_round *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->nodes[i].st != NULL &&
		    strcmp(r->nodes[i].st->role, "leader") == 0)
			return r->nodes[i].st;
	return NULL;
}

static double rate(uint64_t before, uint64_t now, double secs)
{
	return now >= before && secs > 0 ? (double)(now - before) / secs : 0;
}

void ctl_top_render(FILE *f, const struct ctl_top_round *prev,
		    const struct ctl_top_round *cur)
{
	const Settle__V1__StatusResponse *l = leader_of(cur);
	const Settle__V1__StatusResponse *pl =
	    prev != NULL ? leader_of(prev) : NULL;
	struct table t;
	char id[24], term[24], applied[24], name[160];

	ctl__table_init(&t, 6);
	ctl__table_row(&t, (const char *const[]){"NODE", "ENDPOINT", "ROLE",
						 "TERM", "APPLIED", "READY"});
	for (size_t i = 0; i < cur->n; i++) {
		const Settle__V1__StatusResponse *st = cur->nodes[i].st;

		ctl__one_line(cur->nodes[i].endpoint, name, sizeof name);
		if (st == NULL) {
			ctl__table_row(
			    &t, (const char *const[]){"-", name, "unreachable",
						      "-", "-", "-"});
			continue;
		}
		snprintf(id, sizeof id, "%" PRIu64, st->node_id);
		snprintf(term, sizeof term, "%" PRIu64, st->term);
		snprintf(applied, sizeof applied, "%" PRIu64,
			 st->applied_index);
		ctl__table_row(
		    &t, (const char *const[]){id, name, st->role, term, applied,
					      st->ready ? "yes" : "no"});
	}
	ctl__table_print(f, &t, "");
	ctl__table_free(&t);
	fputc('\n', f);
	if (l == NULL) {
		fputs("no leader answered: nothing commits until a majority "
		      "of voters can talk to each other\n",
		      f);
		return;
	}
	if (pl == NULL || pl->node_id != l->node_id ||
	    l->txs_committed < pl->txs_committed) {
		fprintf(f,
			"leader node %" PRIu64 ": %" PRIu64 " begun, %" PRIu64
			" committed, %" PRIu64 " rolled back, %" PRIu64
			" failed since it started (rates from the next "
			"round)\n",
			l->node_id, l->txs_begun, l->txs_committed,
			l->txs_rolled_back, l->txs_failed);
	} else {
		double secs = (double)(cur->mono_ms - prev->mono_ms) / 1000.0;
		double p50 = -1, p99 = -1;

		if (l->n_decision_bucket_counts ==
			pl->n_decision_bucket_counts &&
		    l->n_decision_bucket_le_us == l->n_decision_bucket_counts) {
			p50 = ctl_top_quantile_ms(
			    pl->decision_bucket_counts,
			    l->decision_bucket_counts, l->decision_bucket_le_us,
			    l->n_decision_bucket_counts, 0.5);
			p99 = ctl_top_quantile_ms(
			    pl->decision_bucket_counts,
			    l->decision_bucket_counts, l->decision_bucket_le_us,
			    l->n_decision_bucket_counts, 0.99);
		}
		fprintf(f,
			"leader node %" PRIu64 ": begun %.0f/s, committed "
			"%.0f/s, rolled back %.0f/s, failed %.0f/s\n",
			l->node_id, rate(pl->txs_begun, l->txs_begun, secs),
			rate(pl->txs_committed, l->txs_committed, secs),
			rate(pl->txs_rolled_back, l->txs_rolled_back, secs),
			rate(pl->txs_failed, l->txs_failed, secs));
		if (p50 >= 0)
			fprintf(f,
				"begin to decision: p50 %.1f ms, p99 %.1f "
				"ms\n",
				p50, p99);
		else
			fputs("begin to decision: no decision this round\n", f);
	}
	fprintf(f, "unfinished %" PRIu64 ", stuck %" PRIu64 "%s\n", l->active,
		l->stuck, l->stuck > 0 ? "  (settlectl tx list --stuck)" : "");
	if (cur->parts == NULL || cur->parts->n_participants == 0)
		return;
	fputc('\n', f);
	ctl__table_init(&t, 5);
	ctl__table_row(&t, (const char *const[]){"PARTICIPANT", "BREAKER",
						 "ERRORS", "WAITING", "STUCK"});
	for (size_t i = 0; i < cur->parts->n_participants; i++) {
		const Settle__V1__ParticipantInfo *p =
		    cur->parts->participants[i];
		char errors[24], waiting[24], stuck[24];

		ctl__one_line(p->endpoint, name, sizeof name);
		snprintf(errors, sizeof errors, "%" PRIu64, p->calls_error);
		snprintf(waiting, sizeof waiting, "%" PRIu64, p->waiting);
		snprintf(stuck, sizeof stuck, "%" PRIu64, p->failed);
		ctl__table_row(
		    &t, (const char *const[]){name,
					      p->breaker == 1	? "open"
					      : p->breaker == 2 ? "half-open"
								: "closed",
					      errors, waiting, stuck});
	}
	ctl__table_print(f, &t, "");
	ctl__table_free(&t);
}
