/*
 * ctl_backup.c — settlectl backup DIR [--node EP]: an online backup of one
 * node's store (BACKUP), fetched in chunks into DIR as
 * settle-backup-NODE-INDEX.ckpt (written to a temporary name, synced,
 * renamed) with a manifest settle-backup-NODE-INDEX.json beside it (made
 * with jansson). A new node started with settled --join --restore FILE
 * catches up from it (docs/OPERATIONS.md, "Backups").
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl_cmd.h"
#include "ctl_int.h"

/* Writing the store's checkpoint may take minutes on a large store. */
#define BACKUP_TIMEOUT_MS (10 * 60 * 1000)

static int call(settle_client *c, const char *ep, uint64_t index,
		uint64_t offset, Settle__V1__BackupResponse **out)
{
	Settle__V1__BackupRequest req = SETTLE__V1__BACKUP_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int rv;

	req.index = index;
	req.offset = offset;
	rv = settle_client_call_at(c, ep, SETTLE__V1__METHOD__BACKUP, &req.base,
				   &settle__v1__backup_response__descriptor,
				   &resp);
	if (rv != 0) {
		fprintf(stderr, "settlectl: backup: %s\n",
			settle_client_errmsg(c));
		return 1;
	}
	*out = (Settle__V1__BackupResponse *)resp;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int write_manifest(const char *path, const char *ep,
			  const Settle__V1__BackupResponse *r)
{
	json_t *o = json_pack(
	    "{s:I, s:s, s:I, s:I, s:I, s:I, s:i, s:s}", "node_id",
	    (json_int_t)r->node_id, "endpoint", ep, "index",
	    (json_int_t)r->index, "term", (json_int_t)r->term, "bytes",
	    (json_int_t)r->total, "time_ms", (json_int_t)r->time_ms,
	    "feature_level", (int)r->feature_level, "restore",
	    "settled --join --restore FILE (docs/"
	    "OPERATIONS.md, Backups)");
	int rv;

	if (o == NULL)
		return -1;
	rv = json_dump_file(o, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return rv;
}

int ctl_cmd_backup(const struct ctl_opts *o, const char *dir)
{
	Settle__V1__BackupResponse *r = NULL;
	char ep[300], path[1200], tmp[1300], manifest[1200];
	const char *comma;
	settle_client *c;
	uint64_t index, total, offset = 0, node;
	int fd = -1, rv = 1;

	if (o->node != NULL) {
		snprintf(ep, sizeof ep, "%s", o->node);
	} else {
		comma = strchr(o->cluster, ',');
		snprintf(ep, sizeof ep, "%.*s",
			 (int)(comma != NULL ? (size_t)(comma - o->cluster)
					     : strlen(o->cluster)),
			 o->cluster);
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "settlectl: backup: %s: %s\n", dir,
			strerror(errno));
		return 1;
	}
	if (ctl_open_admin(o, BACKUP_TIMEOUT_MS, &c) != 0)
		return CTL_EXIT_USAGE;
	if (call(c, ep, 0, 0, &r) != 0)
		goto out;
	index = r->index;
	total = r->total;
	node = r->node_id;
	snprintf(path, sizeof path,
		 "%s/settle-backup-%" PRIu64 "-%" PRIu64 ".ckpt", dir, node,
		 index);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	snprintf(manifest, sizeof manifest,
		 "%s/settle-backup-%" PRIu64 "-%" PRIu64 ".json", dir, node,
		 index);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "settlectl: backup: %s: %s\n", tmp,
			strerror(errno));
		goto out;
	}
	for (;;) {
		if (r->offset != offset || r->data.len == 0 ||
		    r->offset + r->data.len > total) {
			if (offset == total)
				break;
			fprintf(stderr,
				"settlectl: backup: the node answered bytes "
				"%" PRIu64 "+%zu of %" PRIu64
				", expected %" PRIu64 "\n",
				r->offset, r->data.len, total, offset);
			goto out;
		}
		if (write_all(fd, r->data.data, r->data.len) != 0) {
			fprintf(stderr, "settlectl: backup: %s: %s\n", tmp,
				strerror(errno));
			goto out;
		}
		offset += r->data.len;
		if (offset == total)
			break;
		protobuf_c_message_free_unpacked(&r->base, NULL);
		r = NULL;
		if (call(c, ep, index, offset, &r) != 0)
			goto out;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		fprintf(stderr, "settlectl: backup: %s: %s\n", tmp,
			strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0 || write_manifest(manifest, ep, r) != 0) {
		fprintf(stderr, "settlectl: backup: %s: %s\n", path,
			strerror(errno));
		goto out;
	}
	if (o->json) {
		json_t *doc = json_object();

		/* DIR need not be UTF-8: ctl__set_str prints it anyway. */
		ctl__set_str(doc, "file", path);
		ctl__set_str(doc, "manifest", manifest);
		ctl__set_uint(doc, "node_id", node);
		ctl__set_uint(doc, "index", index);
		ctl__set_uint(doc, "bytes", total);
		ctl__json_print(stdout, doc);
	} else {
		printf("backup of node %" PRIu64 " at index %" PRIu64
		       ": %" PRIu64 " bytes in %s\n"
		       "restore: a new node with settled --join --restore %s, "
		       "then settlectl cluster add\n",
		       node, index, total, path, path);
	}
	rv = 0;
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	if (r != NULL)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	settle_client_close(c);
	return rv;
}
