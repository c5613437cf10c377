#include <criterion/criterion.h>
#include <string.h>

#include "coordinator/config.h"
#include "coordinator/snapshot_pace.h"
#include "error.h"

static int parse(struct coord_config *cfg, char *errmsg, size_t len, int argc,
		 const char **argv)
{
	return coord_config_parse(cfg, argc, (char **)argv, errmsg, len);
}

#define PARSE(cfg, err, ...)                                                   \
	parse(cfg, err, sizeof err,                                            \
	      (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)),   \
	      (const char *[]){__VA_ARGS__})

Test(config, minimal_single_node_bootstraps_itself)
{
	struct coord_config cfg;
	char err[512];

	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data",
			   "/tmp/x", "--listen", "127.0.0.1:7400", "--raft",
			   "127.0.0.1:7401"),
		     0, "%s", err);
	cr_expect_eq(cfg.id, 1);
	cr_expect_eq(cfg.n_peers, 1);
	cr_expect_str_eq(cfg.peers[0].client, "127.0.0.1:7400");
	cr_expect_str_eq(coord_config_client_of(&cfg, 1), "127.0.0.1:7400");
	cr_expect_null(coord_config_client_of(&cfg, 2));
	cr_expect_eq(cfg.default_timeout_ms, 60000);
}

Test(config, peers_and_durations)
{
	struct coord_config cfg;
	char err[512];

	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "2", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--peers",
			   "1=h:3=h:4,2=h:2=h:1,3=h:5=h:6", "--retention", "2h",
			   "--call-timeout", "1500ms", "--retry-max", "1m"),
		     0, "%s", err);
	cr_expect_eq(cfg.n_peers, 3);
	cr_expect_str_eq(coord_config_client_of(&cfg, 3), "h:6");
	cr_expect_eq(cfg.retention_ms, 2ull * 3600 * 1000);
	cr_expect_eq(cfg.call_timeout_ms, 1500);
	cr_expect_eq(cfg.retry_max_ms, 60000);
}

Test(config, bad_input_is_refused_with_a_message)
{
	struct coord_config cfg;
	char err[512];

	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "0", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2"),
		     SETTLE_EINVAL);
	cr_expect(strstr(err, "--id") != NULL, "%s", err);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "nope", "--raft", "h:2"),
		     SETTLE_EINVAL);
	cr_expect(strstr(err, "HOST:PORT") != NULL, "%s", err);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:99999"),
		     SETTLE_EINVAL);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--retention",
			   "soon"),
		     SETTLE_EINVAL);
	cr_expect(strstr(err, "duration") != NULL, "%s", err);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--peers",
			   "2=h:3=h:4"),
		     SETTLE_EINVAL);
	cr_expect(strstr(err, "must include this node") != NULL, "%s", err);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--peers",
			   "1=h:2=h:1,1=h:3=h:4"),
		     SETTLE_EINVAL);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--metrics",
			   "localhost:9100"),
		     SETTLE_EINVAL);
	cr_expect(strstr(err, "--metrics") != NULL, "%s", err);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--metrics",
			   "127.0.0.1:0"),
		     SETTLE_EINVAL);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--metrics",
			   "[::1]:9100"),
		     0, "%s", err);
	cr_expect_str_eq(cfg.metrics, "[::1]:9100");
	cr_expect_eq(PARSE(&cfg, err, "settled", "--bogus"), SETTLE_EINVAL);
	cr_expect(strstr(err, "unknown argument") != NULL, "%s", err);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id"), SETTLE_EINVAL);
	cr_expect(strstr(err, "needs a value") != NULL, "%s", err);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--help"), 1);
}

Test(config, durations)
{
	uint64_t ms;

	cr_expect_eq(coord_parse_duration("250", &ms), 0);
	cr_expect_eq(ms, 250);
	cr_expect_eq(coord_parse_duration("3d", &ms), 0);
	cr_expect_eq(ms, 3ull * 24 * 3600 * 1000);
	cr_expect_eq(coord_parse_duration("-1s", &ms), SETTLE_EINVAL);
	cr_expect_eq(coord_parse_duration("5x", &ms), SETTLE_EINVAL);
	cr_expect_eq(coord_parse_duration("", &ms), SETTLE_EINVAL);
	cr_expect_eq(coord_parse_duration("99999999999999999999d", &ms),
		     SETTLE_EINVAL);
}

/* --store-budget in MiB (8 at least), 4 GiB by default; --map-size, its
 * old name, sets the same. */
Test(config, store_budget)
{
	struct coord_config cfg;
	char err[512];

	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2"),
		     0, "%s", err);
	cr_expect_eq(cfg.store_budget, (size_t)4 << 30);
	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--store-budget",
			   "64"),
		     0, "%s", err);
	cr_expect_eq(cfg.store_budget, (size_t)64 << 20);
	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--map-size",
			   "2048"),
		     0, "%s", err);
	cr_expect_eq(cfg.store_budget, (size_t)2048 << 20);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--store-budget",
			   "7"),
		     SETTLE_EINVAL);
	cr_expect(strstr(err, "--store-budget") != NULL, "%s", err);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--store-budget",
			   "1g"),
		     SETTLE_EINVAL);
}

/* --snapshot-log in MiB, 16 by default; nonsense refused. */
Test(config, snapshot_log)
{
	struct coord_config cfg;
	char err[512];

	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2"),
		     0, "%s", err);
	cr_expect_eq(cfg.snapshot_log_bytes, (size_t)16 << 20);
	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--snapshot-log",
			   "512"),
		     0, "%s", err);
	cr_expect_eq(cfg.snapshot_log_bytes, (size_t)512 << 20);
	const char *bad[] = {"0", "65537", "x", "-1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data",
				   "d", "--listen", "h:1", "--raft", "h:2",
				   "--snapshot-log", bad[i]),
			     SETTLE_EINVAL, "%s", bad[i]);
		cr_expect_neq(strstr(err, "--snapshot-log"), NULL, "%s", err);
	}
}

/* The client port's limits: safe defaults, each settable (0: none), bad
 * values refused with the option's name. */
Test(config, client_port_limits)
{
	struct coord_config cfg;
	char err[512];

	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2"),
		     0, "%s", err);
	cr_expect_eq(cfg.max_conns, 4096);
	cr_expect_eq(cfg.max_conns_per_addr, 1024);
	cr_expect_eq(cfg.max_partial_bytes, 64u << 20);
	cr_expect_eq(cfg.frame_timeout_ms, 30000);
	cr_expect_eq(cfg.idle_timeout_ms, 0);
	cr_expect_eq(cfg.max_open_per_client, 50000);
	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2",
			   "--max-open-per-client", "0"),
		     0, "%s", err);
	cr_expect_eq(cfg.max_open_per_client, 0);
	cr_assert_eq(
	    PARSE(&cfg, err, "settled", "--id", "1", "--data", "d", "--listen",
		  "h:1", "--raft", "h:2", "--max-connections", "10",
		  "--max-connections-per-address", "0", "--max-partial-frames",
		  "8", "--frame-timeout", "1500ms", "--idle-timeout", "5m"),
	    0, "%s", err);
	cr_expect_eq(cfg.max_conns, 10);
	cr_expect_eq(cfg.max_conns_per_addr, 0);
	cr_expect_eq(cfg.max_partial_bytes, 8u << 20);
	cr_expect_eq(cfg.frame_timeout_ms, 1500);
	cr_expect_eq(cfg.idle_timeout_ms, 300000);
	static const char *const bad[][2] = {
	    {"--max-connections", "-1"},
	    {"--max-connections", "1000001"},
	    {"--max-connections-per-address", "x"},
	    {"--max-partial-frames", "4096"},
	    {"--frame-timeout", "soon"},
	    {"--idle-timeout", ""},
	    {"--max-open-per-client", "100000001"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data",
				   "d", "--listen", "h:1", "--raft", "h:2",
				   bad[i][0], bad[i][1]),
			     SETTLE_EINVAL, "%s %s", bad[i][0], bad[i][1]);
		cr_expect_neq(strstr(err, bad[i][0]), NULL, "%s", err);
	}
}

/* The pace: as many log bytes as the snapshot holds, at least
 * --snapshot-threshold entries, at most --snapshot-log bytes (which wins
 * over the threshold), and a trailing of at most a quarter of that. With
 * --snapshot-log 64. */
Test(config, snapshot_pace_weighs_store_against_memory)
{
	struct coord_config cfg;
	char err[512];
	struct coord_snapshot_pace p;

	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--snapshot-log",
			   "64"),
		     0, "%s", err);
	p = coord_snapshot_pace(&cfg, 1000, 0, 0);
	cr_expect_eq(p.threshold, cfg.snapshot_threshold, "nothing known");
	cr_expect_eq(p.trailing, cfg.snapshot_trailing);
	/* Small entries (300 B), a 60 MB snapshot: 200,000 entries. */
	p = coord_snapshot_pace(&cfg, 60000000, 300 * 1000, 1000);
	cr_expect_eq(p.threshold, 200000);
	cr_expect_eq(p.trailing, 4096);
	/* A small store: the threshold is the floor. */
	p = coord_snapshot_pace(&cfg, 1000000, 300 * 1000, 1000);
	cr_expect_eq(p.threshold, cfg.snapshot_threshold);
	/* Entries of 32 KiB: 64 MiB of them is 2,048, under the floor and
	 * whatever the store's size; 16 MiB kept is 512. */
	p = coord_snapshot_pace(&cfg, (uint64_t)4 << 30, (uint64_t)32768 * 100,
				100);
	cr_expect_eq(p.threshold, 2048);
	cr_expect_eq(p.trailing, 512);
	/* Huge entries: at least one entry, and 64 kept. */
	p = coord_snapshot_pace(&cfg, (uint64_t)4 << 30, (uint64_t)1 << 40, 1);
	cr_expect_eq(p.threshold, 1);
	cr_expect_eq(p.trailing, COORD_SNAPSHOT_TRAILING_MIN);
	/* Tiny entries and a huge store: 64 Mi entries of a byte, but no
	 * more than raft's own bound. */
	p = coord_snapshot_pace(&cfg, (uint64_t)1 << 40, 1000, 1000);
	cr_expect_eq(p.threshold, COORD_SNAPSHOT_THRESHOLD_MAX);
}

/* Full or delta: a new base once the journal is as large as the base,
 * at least COORD_SNAPSHOT_JOURNAL_MIN, at most --snapshot-journal (0: all
 * full); nonsense refused. */
Test(config, snapshot_journal_decides_full_or_delta)
{
	struct coord_config cfg;
	char err[512];
	const uint64_t mib = 1 << 20;

	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2"),
		     0, "%s", err);
	cr_expect_eq(cfg.snapshot_journal_bytes, 1024 * mib);
	/* A small base: deltas up to the floor. */
	cr_expect_not(coord_snapshot_full(&cfg, mib, 16));
	cr_expect_not(coord_snapshot_full(&cfg, mib, 8 * mib - 1));
	cr_expect(coord_snapshot_full(&cfg, mib, 8 * mib));
	/* A base of 300 MiB: deltas until the journal is as large. */
	cr_expect_not(coord_snapshot_full(&cfg, 300 * mib, 299 * mib));
	cr_expect(coord_snapshot_full(&cfg, 300 * mib, 300 * mib));
	/* A huge base: never more journal than --snapshot-journal. */
	cr_expect(coord_snapshot_full(&cfg, 8192 * mib, 1024 * mib));

	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2",
			   "--snapshot-journal", "0"),
		     0, "%s", err);
	cr_expect(coord_snapshot_full(&cfg, 300 * mib, 16), "0: all full");
	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2",
			   "--snapshot-journal", "2"),
		     0, "%s", err);
	cr_expect(coord_snapshot_full(&cfg, 300 * mib, 2 * mib));
	cr_expect_not(coord_snapshot_full(&cfg, 300 * mib, 2 * mib - 1));
	cr_expect_neq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			    "--listen", "h:1", "--raft", "h:2",
			    "--snapshot-journal", "-1"),
		      0);
	cr_expect_neq(strstr(err, "--snapshot-journal"), NULL, "%s", err);
	cr_expect_neq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			    "--listen", "h:1", "--raft", "h:2",
			    "--snapshot-journal", "65537"),
		      0);
}

Test(config, tls_files_go_together)
{
	struct coord_config cfg;
	char err[512];

	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2"),
		     0, "%s", err);
	cr_expect_str_eq(cfg.tls_cert, "");
	cr_assert_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--tls-cert",
			   "n.pem", "--tls-key", "n.key", "--tls-ca", "ca.pem",
			   "--tls-crl", "crl.pem"),
		     0, "%s", err);
	cr_expect_str_eq(cfg.tls_cert, "n.pem");
	cr_expect_str_eq(cfg.tls_key, "n.key");
	cr_expect_str_eq(cfg.tls_ca, "ca.pem");
	cr_expect_str_eq(cfg.tls_crl, "crl.pem");
	/* One without the others, a CRL alone, an empty path. */
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--tls-cert",
			   "n.pem"),
		     SETTLE_EINVAL);
	cr_expect_neq(strstr(err, "--tls-key"), NULL, "%s", err);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--tls-crl",
			   "crl.pem"),
		     SETTLE_EINVAL);
	cr_expect_eq(PARSE(&cfg, err, "settled", "--id", "1", "--data", "d",
			   "--listen", "h:1", "--raft", "h:2", "--tls-ca", ""),
		     SETTLE_EINVAL);
	cr_expect_neq(strstr(err, "--tls-ca"), NULL, "%s", err);
}
