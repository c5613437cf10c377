/*
 * snapshot_pace.c — when the next snapshot comes (snapshot_pace.h): a
 * function of what the last one and the log since cost, kept apart from
 * the loop so that tests can call it.
 */
#include "coordinator/snapshot_pace.h"

struct coord_snapshot_pace coord_snapshot_pace(const struct coord_config *cfg,
					       uint64_t snap_len,
					       uint64_t log_bytes,
					       uint64_t log_entries)
{
	struct coord_snapshot_pace p = {cfg->snapshot_threshold,
					cfg->snapshot_trailing};
	uint64_t avg, want, cap, keep;

	if (log_entries == 0 || log_bytes == 0)
		return p;
	avg = log_bytes / log_entries;
	if (avg == 0)
		avg = 1;
	want = snap_len / avg;
	if (want < cfg->snapshot_threshold)
		want = cfg->snapshot_threshold;
	cap = cfg->snapshot_log_bytes / avg;
	if (want > cap)
		want = cap;
	if (want > COORD_SNAPSHOT_THRESHOLD_MAX)
		want = COORD_SNAPSHOT_THRESHOLD_MAX;
	if (want == 0)
		want = 1;
	keep = cfg->snapshot_log_bytes / 4 / avg;
	if (keep < COORD_SNAPSHOT_TRAILING_MIN)
		keep = COORD_SNAPSHOT_TRAILING_MIN;
	if (keep < p.trailing)
		p.trailing = (unsigned)keep;
	p.threshold = (unsigned)want;
	return p;
}

bool coord_snapshot_full(const struct coord_config *cfg, uint64_t base_len,
			 uint64_t journal_len)
{
	uint64_t limit = base_len;

	if (limit < COORD_SNAPSHOT_JOURNAL_MIN)
		limit = COORD_SNAPSHOT_JOURNAL_MIN;
	if (limit > cfg->snapshot_journal_bytes)
		limit = cfg->snapshot_journal_bytes;
	return journal_len >= limit;
}
