/*
 * fuzz_args — command-line parsing of settled (coord_config_parse,
 * coord_parse_duration) and settlectl (ctl_duration_parse,
 * ctl_state_parse). Not network input, but scripts and operators feed it
 * whatever they have, and a crash on a typo is still a crash.
 *
 * Input: NUL-separated arguments (after the program name). Checks: the
 * parsers never crash; on error settled's parser says why; a parsed
 * duration of the two parsers agrees where both accept the text.
 */
#include <stdlib.h>
#include <string.h>

#include "coordinator/config.h"
#include "ctl_fmt.h"
#include "error.h"
#include "fuzz.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct coord_config *cfg;
	char *copy, *argv[MAX_ARGS + 2];
	char errmsg[512];
	int argc = 0;
	int rv;

	copy = malloc(size + 1);
	cfg = malloc(sizeof(*cfg));
	FUZZ_CHECK(copy != NULL && cfg != NULL, "out of memory");
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = "settled";
	for (size_t i = 0; i <= size && argc < MAX_ARGS + 1;) {
		argv[argc++] = copy + i;
		i += strlen(copy + i) + 1;
	}
	argv[argc] = NULL;

	errmsg[0] = '\0';
	rv = coord_config_parse(cfg, argc, argv, errmsg, sizeof(errmsg));
	FUZZ_CHECK(rv == 0 || errmsg[0] != '\0',
		   "config refused without a reason");
	FUZZ_CHECK(strlen(errmsg) < sizeof(errmsg), "reason not terminated");
	if (rv == 0) {
		FUZZ_CHECK(cfg->n_peers >= 1 && cfg->n_peers <= COORD_MAX_PEERS,
			   "%u peers", cfg->n_peers);
		for (unsigned i = 0; i < cfg->n_peers; i++)
			(void)coord_config_client_of(cfg, cfg->peers[i].id);
	}

	for (int i = 1; i < argc; i++) {
		uint64_t a = 0, b = 0;
		Settle__V1__TxState st;
		int ra = coord_parse_duration(argv[i], &a);
		int rb = ctl_duration_parse(argv[i], &b);

		if (ra == 0 && rb == 0)
			FUZZ_CHECK(a == b,
				   "'%s': settled reads %llu ms, settlectl "
				   "%llu ms",
				   argv[i], (unsigned long long)a,
				   (unsigned long long)b);
		/* Any state the protocol defines (sagas' and XA's too). */
		if (ctl_state_parse(argv[i], &st) == 0)
			FUZZ_CHECK(
			    st != SETTLE__V1__TX_STATE__TX_STATE_UNSPECIFIED &&
				protobuf_c_enum_descriptor_get_value(
				    &settle__v1__tx_state__descriptor,
				    (int)st) != NULL,
			    "state %d", (int)st);
	}
	free(cfg);
	free(copy);
	return 0;
}

static void seed(const char *const *args)
{
	char buf[1024];
	size_t n = 0;

	for (; *args != NULL; args++) {
		size_t l = strlen(*args);
		FUZZ_CHECK(n + l + 1 <= sizeof(buf), "seed too big");
		memcpy(buf + n, *args, l + 1);
		n += l + 1;
	}
	/* No NUL after the last argument: the parser adds one. */
	fuzz_seed_add(buf, n > 0 ? n - 1 : 0);
}

void fuzz_seeds(void)
{
	seed((const char *const[]){"--id", "1", "--data", "/var/lib/settle",
				   "--listen", "127.0.0.1:7001", "--raft",
				   "127.0.0.1:7002", NULL});
	seed((const char *const[]){
	    "--id", "2", "--data", "d", "--listen", "[::1]:7011", "--raft",
	    "[::1]:7012", "--peers",
	    "1=127.0.0.1:7002=127.0.0.1:7001,2=[::1]:7012=[::1]:7011,3=h:1=h:2",
	    NULL});
	seed((const char *const[]){"--id",
				   "1",
				   "--data",
				   "d",
				   "--listen",
				   "h:1",
				   "--raft",
				   "h:2",
				   "--default-timeout",
				   "90s",
				   "--max-timeout",
				   "7d",
				   "--retention",
				   "1500ms",
				   "--retry-max",
				   "2h",
				   "--map-size",
				   "64",
				   "--snapshot-threshold",
				   "100",
				   NULL});
	seed((const char *const[]){"30s", "committed", "rolling-back", "5m",
				   "1d", NULL});
}
