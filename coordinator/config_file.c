/*
 * config_file.c — settled --config FILE (config_file.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ini.h>

#include "config_file.h"
#include "error.h"

/* The most settings a file may hold. */
#define CONFIG_FILE_MAX_ARGS 512

struct args {
	char **v;
	int n;
	char why[300];
};

static int push(struct args *a, const char *s)
{
	char *copy;

	if (a->n >= 2 * CONFIG_FILE_MAX_ARGS) {
		snprintf(a->why, sizeof a->why, "more than %d settings",
			 CONFIG_FILE_MAX_ARGS);
		return -1;
	}
	copy = strdup(s);
	if (copy == NULL) {
		snprintf(a->why, sizeof a->why, "out of memory");
		return -1;
	}
	a->v[a->n++] = copy;
	return 0;
}

static bool is_true(const char *v, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcmp(v, yes[i]) == 0)
			return *out = true;
		if (strcmp(v, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static int on_setting(void *user, const char *section, const char *name,
		      const char *value)
{
	struct args *a = user;
	char flag[80];
	bool on;

	/* inih goes on after an error: the first one is the one said. */
	if (a->why[0] != '\0')
		return 1;

	if (section[0] != '\0' && strcmp(section, "settled") != 0) {
		snprintf(a->why, sizeof a->why,
			 "section [%.40s]: only [settled] (or none)", section);
		return 0;
	}
	if (name[0] == '\0' || strlen(name) > 60 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
		strlen(name)) {
		snprintf(a->why, sizeof a->why,
			 "'%.60s' is not a setting name (a flag without its "
			 "--, e.g. listen)",
			 name);
		return 0;
	}
	if (strcmp(name, "config") == 0 || strcmp(name, "help") == 0) {
		snprintf(a->why, sizeof a->why, "'%s' is not a setting", name);
		return 0;
	}
	snprintf(flag, sizeof flag, "--%s", name);
	if (strcmp(name, "join") == 0 || strcmp(name, "insecure") == 0) {
		if (!is_true(value, &on)) {
			snprintf(a->why, sizeof a->why,
				 "%s takes true or false, not '%.40s'", name,
				 value);
			return 0;
		}
		return !on || push(a, flag) == 0;
	}
	return push(a, flag) == 0 && push(a, value) == 0;
}

void coord_config_args_free(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}

int coord_config_expand(int argc, char **argv, int *out_argc, char ***out_argv,
			char *errmsg, size_t errmsg_len)
{
	struct args a = {0};
	const char *path = NULL;
	struct stat st;
	int at = -1, rv;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") != 0)
			continue;
		if (path != NULL || i + 1 >= argc) {
			snprintf(errmsg, errmsg_len,
				 path != NULL ? "--config given twice"
					      : "--config needs a value");
			return SETTLE_EINVAL;
		}
		path = argv[i + 1];
		at = i;
	}
	a.v = calloc((size_t)argc + 2 * CONFIG_FILE_MAX_ARGS + 1, sizeof *a.v);
	if (a.v == NULL) {
		snprintf(errmsg, errmsg_len, "out of memory");
		return SETTLE_ENOMEM;
	}
	if (push(&a, argc > 0 ? argv[0] : "settled") != 0)
		goto fail;
	if (path != NULL) {
		if (stat(path, &st) != 0) {
			snprintf(errmsg, errmsg_len, "--config %s: %s", path,
				 strerror(errno));
			coord_config_args_free(a.n, a.v);
			return SETTLE_EIO;
		}
		if (!S_ISREG(st.st_mode) || (st.st_mode & 022) != 0) {
			snprintf(errmsg, errmsg_len, "--config %s: %s", path,
				 !S_ISREG(st.st_mode)
				     ? "not a regular file"
				     : "writable by others than its owner "
				       "(chmod go-w)");
			coord_config_args_free(a.n, a.v);
			return SETTLE_EINVAL;
		}
		rv = ini_parse(path, on_setting, &a);
		if (rv < 0 || a.why[0] != '\0' || rv > 0) {
			if (rv < 0)
				snprintf(errmsg, errmsg_len,
					 "--config %s: cannot read it", path);
			else
				snprintf(errmsg, errmsg_len,
					 "--config %s:%d: %s", path, rv,
					 a.why[0] != '\0' ? a.why
							  : "not name = value");
			coord_config_args_free(a.n, a.v);
			return rv < 0 ? SETTLE_EIO : SETTLE_EINVAL;
		}
	}
	for (int i = 1; i < argc; i++) {
		if (i == at) {
			i++;
			continue;
		}
		if (push(&a, argv[i]) != 0)
			goto fail;
	}
	*out_argc = a.n;
	*out_argv = a.v;
	return 0;
fail:
	snprintf(errmsg, errmsg_len, "--config %s: %s", path ? path : "",
		 a.why);
	coord_config_args_free(a.n, a.v);
	return SETTLE_EINVAL;
}
