/*
 * config_file.h — settled --config FILE: any of the flags as `name = value`
 * lines of an INI file (parsed by inih, from Debian), `#` or `;`
 * comments, an optional [settled] section. A flag without a value
 * (join, insecure) takes true or false. Flags on the command line come
 * after the file's, so they win where a flag takes one value; flags that
 * add up (xa-rm) take both. The file must be a regular file no one but
 * its owner may write (it can hold --xa-rm passwords and decides where
 * the node's data goes).
 */
#ifndef SETTLE_COORD_CONFIG_FILE_H
#define SETTLE_COORD_CONFIG_FILE_H

#include <stddef.h>

/*
 * argv with --config FILE replaced by FILE's settings as flags, placed
 * right after argv[0]; argv unchanged (copied) without --config. 0, or
 * SETTLE_EINVAL / SETTLE_EIO / SETTLE_ENOMEM with why in errmsg. Free the
 * result with coord_config_args_free().
 */
int coord_config_expand(int argc, char **argv, int *out_argc, char ***out_argv,
			char *errmsg, size_t errmsg_len);
void coord_config_args_free(int argc, char **argv);

#endif /* SETTLE_COORD_CONFIG_FILE_H */
