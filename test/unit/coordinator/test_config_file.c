/*
 * settled --config FILE (coordinator/config_file.h): the file's settings
 * become flags before the command line's, which win; bad files are
 * refused with the line and the reason.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/config.h"
#include "coordinator/config_file.h"
#include "error.h"

static char path[64];

static void write_file(const char *text, mode_t mode)
{
	FILE *f;

	snprintf(path, sizeof path, "/tmp/settle-conf-%d.ini", (int)getpid());
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static int expand(const char *const *args, int *argc, char ***argv, char *err,
		  size_t len)
{
	int n = 0;

	while (args[n] != NULL)
		n++;
	return coord_config_expand(n, (char **)args, argc, argv, err, len);
}

Test(config_file, settings_then_the_command_line)
{
	struct coord_config cfg;
	char err[512], **argv;
	int argc;

	write_file("# node 1\n"
		   "[settled]\n"
		   "id = 1\n"
		   "data = /tmp/x\n"
		   "listen = 127.0.0.1:7400\n"
		   "raft = 127.0.0.1:7401\n"
		   "retry-max = 10s\n"
		   "join = false\n"
		   "insecure = yes\n",
		   0600);
	cr_assert_eq(expand((const char *const[]){"settled", "--config", path,
						  "--retry-max", "3s", NULL},
			    &argc, &argv, err, sizeof err),
		     0, "%s", err);
	cr_assert_eq(coord_config_parse(&cfg, argc, argv, err, sizeof err), 0,
		     "%s", err);
	cr_expect_eq(cfg.id, 1);
	cr_expect_str_eq(cfg.listen, "127.0.0.1:7400");
	cr_expect_eq(cfg.retry_max_ms, 3000, "the command line wins");
	cr_expect(cfg.insecure);
	cr_expect_not(cfg.join);
	coord_config_args_free(argc, argv);
	unlink(path);
}

Test(config_file, bad_files_are_refused)
{
	static const char *const bad[][2] = {
	    {"id = 1\nbogus name = 2\n", "not a setting name"},
	    {"[other]\nid = 1\n", "only [settled]"},
	    {"join = maybe\n", "true or false"},
	    {"config = /etc/x\n", "not a setting"},
	    {"id\n", ":1:"},
	};
	char err[512], **argv;
	int argc;

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		write_file(bad[i][0], 0600);
		cr_expect_eq(expand((const char *const[]){"settled", "--config",
							  path, NULL},
				    &argc, &argv, err, sizeof err),
			     SETTLE_EINVAL, "case %zu", i);
		cr_expect(strstr(err, bad[i][1]) != NULL, "case %zu: %s", i,
			  err);
	}
	/* Writable by others: refused before it is read. */
	write_file("id = 1\n", 0666);
	chmod(path, 0666);
	cr_expect_eq(
	    expand((const char *const[]){"settled", "--config", path, NULL},
		   &argc, &argv, err, sizeof err),
	    SETTLE_EINVAL);
	cr_expect(strstr(err, "writable by others") != NULL, "%s", err);
	unlink(path);
	cr_expect_eq(
	    expand((const char *const[]){"settled", "--config", path, NULL},
		   &argc, &argv, err, sizeof err),
	    SETTLE_EIO);
	cr_expect_eq(expand((const char *const[]){"settled", "--config", NULL},
			    &argc, &argv, err, sizeof err),
		     SETTLE_EINVAL);
	/* An unknown flag in the file is the parser's to refuse. */
	write_file("colour = blue\n", 0600);
	cr_assert_eq(
	    expand((const char *const[]){"settled", "--config", path, NULL},
		   &argc, &argv, err, sizeof err),
	    0);
	{
		struct coord_config cfg;

		cr_expect_eq(
		    coord_config_parse(&cfg, argc, argv, err, sizeof err),
		    SETTLE_EINVAL);
		cr_expect(strstr(err, "--colour") != NULL, "%s", err);
	}
	coord_config_args_free(argc, argv);
	unlink(path);
}
