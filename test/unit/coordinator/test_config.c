#include <criterion/criterion.h>
#include <string.h>

#include "coordinator/config.h"
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
