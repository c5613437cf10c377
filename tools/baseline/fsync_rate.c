/*
 * settle-fsync-rate — how many 4 KiB write + fdatasync rounds per second
 * the disk under DIR sustains: the floor under every durable commit that
 * raft (and so Settle) or etcd or PostgreSQL can make one after another.
 *
 *   settle-fsync-rate --dir DIR [--duration SECONDS]
 *
 * Writes a 16 MiB file in DIR first (synced, so later writes change no
 * file size and allocate no block: what a preallocated raft segment or
 * WAL sees), then overwrites it 4 KiB at a time, each write followed by
 * fdatasync(), for SECONDS (default 5). Prints one line:
 *   fsyncs_per_s N
 * and removes its file. Exit status: 0 measured, 1 an I/O error, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK	  4096
#define FILE_SIZE (16u << 20)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Write LEN bytes at OFF, whatever short writes happen. */
static int write_all(int fd, const char *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int fill(int fd, char *block)
{
	for (off_t off = 0; off < (off_t)FILE_SIZE; off += BLOCK)
		if (write_all(fd, block, BLOCK, off) != 0)
			return -1;
	return fsync(fd);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: settle-fsync-rate --dir DIR [--duration SECONDS]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"duration", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	static char block[BLOCK];
	const char *dir = NULL;
	double duration = 5, start, end, t;
	char path[4096];
	unsigned long rounds = 0;
	off_t off = 0;
	int c, fd, rc = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 't':
			duration = strtod(optarg, NULL);
			break;
		default:
			usage();
			return 2;
		}
	}
	if (dir == NULL || optind != argc || !(duration > 0)) {
		usage();
		return 2;
	}
	if (snprintf(path, sizeof path, "%s/fsync-rate.XXXXXX", dir) >=
	    (int)sizeof path) {
		fprintf(stderr, "settle-fsync-rate: directory name too long\n");
		return 2;
	}
	fd = mkstemp(path);
	if (fd < 0) {
		fprintf(stderr, "settle-fsync-rate: create in %s: %s\n", dir,
			strerror(errno));
		return 1;
	}
	memset(block, 'x', sizeof block);
	if (fill(fd, block) != 0) {
		fprintf(stderr, "settle-fsync-rate: fill %s: %s\n", path,
			strerror(errno));
		goto out;
	}
	start = now_s();
	end = start + duration;
	do {
		block[0] = (char)rounds; /* a real change each time */
		if (write_all(fd, block, BLOCK, off) != 0 ||
		    fdatasync(fd) != 0) {
			fprintf(stderr, "settle-fsync-rate: write %s: %s\n",
				path, strerror(errno));
			goto out;
		}
		rounds++;
		off = (off + BLOCK) % (off_t)FILE_SIZE;
		t = now_s();
	} while (t < end);
	printf("fsyncs_per_s %.0f\n", (double)rounds / (t - start));
	rc = 0;
out:
	close(fd);
	unlink(path);
	return rc;
}
