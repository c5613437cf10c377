/*
 * test_limits.c — the client port's limits on a real settled, against what
 * a hostile client did to it before they existed (issue 13): connections
 * that each start a 4 MiB frame and never finish it (96 took a leader to
 * 402 MB resident), senders of a byte at a time (never timed out), and
 * more connections from one address than allowed. Meanwhile an honest
 * client on its own connection keeps beginning and ending transactions,
 * and the node's anonymous resident memory stays bounded.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "coord_util.h"
#include "harness.h"
#include "tcc_util.h"

TestSuite(limits, .init = cu_setup, .fini = it_teardown, .timeout = 120);

#define MIB (1024 * 1024)

/* A blocking TCP connection to the node's client port. */
/* cu_dial(), from the loopback address from (a second client's address). */
static int dial_from(const struct it_node *n, const char *from)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)n->port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in src = {.sin_family = AF_INET};
	struct timeval tv = {10, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	cr_assert_eq(inet_pton(AF_INET, from, &src.sin_addr), 1);
	cr_assert_eq(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0,
		     "bind %s: %s", from, strerror(errno));
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0,
		     "connect: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Send len bytes; false once the node closed the connection. */
static bool send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t k = send(fd, p, len, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		len -= (size_t)k;
	}
	return true;
}

/* The node's anonymous resident memory, in MiB. */
static long rss_anon_mib(const struct it_node *n)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)n->proc->pid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "RssAnon: %ld kB", &kib) == 1)
			break;
	fclose(f);
	cr_assert_geq(kib, 0, "no RssAnon in %s", path);
	return kib / 1024;
}

/* k transactions begun and rolled back by an honest client; how many
 * were answered. */
static int honest(settle_client *c, int k)
{
	int ok = 0;

	for (int i = 0; i < k; i++) {
		char gid[SETTLE_GID_BUFSIZE];
		int state = 0;
		bool fin = false;

		if (settle_begin(c, NULL, 30000, gid, sizeof(gid)) == 0 &&
		    settle_rollback(c, gid, "honest", 0, &state, &fin) == 0)
			ok++;
	}
	return ok;
}

/*
 * 96 connections each start a 4 MiB frame and send 3.5 MiB of it. The
 * node holds at most --max-partial-frames (64 MiB) for such frames and
 * closes the connections holding the most; its memory stays bounded and
 * the honest client is served throughout.
 */
Test(limits, partial_frames_do_not_exhaust_memory)
{
	static const uint8_t hdr[4] = {0x00, 0x40, 0x00, 0x00}; /* 4 MiB */
	static uint8_t part[512 * 1024];
	struct it_node n;
	settle_client *c;
	int fds[96], cut = 0;
	long before, peak = 0;
	char asan[1024];

	/* Under AddressSanitizer freed memory waits in a quarantine (256 MiB)
	 * before reuse: without one the node's memory is what it holds. */
	snprintf(asan, sizeof(asan), "%s%squarantine_size_mb=0",
		 getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "",
		 getenv("ASAN_OPTIONS") ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
	it_node_start(&n, 1, NULL);
	c = tu_client(&n);
	cr_assert_eq(honest(c, 20), 20);
	before = rss_anon_mib(&n);
	for (int i = 0; i < 96; i++) {
		fds[i] = cu_dial(&n);
		bool open = send_all(fds[i], hdr, sizeof(hdr));

		for (int k = 0; open && k < 7; k++)
			open = send_all(fds[i], part, sizeof(part));
		if (i % 8 == 7) {
			long now = rss_anon_mib(&n);

			peak = now > peak ? now : peak;
			cr_assert_eq(honest(c, 5), 5,
				     "the honest client was not served with "
				     "%d attackers",
				     i + 1);
		}
	}
	usleep(200 * 1000);
	for (int i = 0; i < 96; i++) {
		cut += cu_closed_within(fds[i], 0);
		close(fds[i]);
	}
	fprintf(stderr,
		"RssAnon %ld MiB before, %ld MiB at most during; %d of 96 "
		"attackers cut off\n",
		before, peak, cut);
	cr_assert_geq(cut, 70, "only %d of 96 cut off", cut);
	/* 64 MiB of partial frames, and what malloc keeps besides. */
	cr_assert_lt(peak - before, 128,
		     "RssAnon grew by %ld MiB under the attack", peak - before);
	cr_assert_eq(honest(c, 20), 20);
	cr_assert(cu_log_has(n.proc->log, "frames not yet whole hold"),
		  "the node did not say why it closed them");
	settle_client_close(c);
	cu_stop_clean(&n);
}

/*
 * 100 connections send a frame a byte at a time, 100 more only connect:
 * with --frame-timeout 2s and 150 connections allowed per address, the
 * last 50 idle ones are refused at once and every slow sender is cut off
 * within the timeout; the honest client is served (it connected first).
 */
Test(limits, slow_senders_and_too_many_connections)
{
	static const char *const args[] = {"--frame-timeout", "2s",
					   "--max-connections-per-address",
					   "150", NULL};
	static const uint8_t hdr[4] = {0, 0, 0, 100};
	struct it_node n;
	settle_client *c;
	int slow[100], idle[100], refused = 0, cut = 0;

	it_node_start(&n, 1, args);
	c = tu_client(&n);
	cr_assert_eq(honest(c, 5), 5);
	for (int i = 0; i < 100; i++) {
		slow[i] = cu_dial(&n);
		cr_assert(send_all(slow[i], hdr, sizeof(hdr)));
	}
	for (int i = 0; i < 100; i++)
		idle[i] = cu_dial(&n);
	usleep(300 * 1000);
	for (int i = 0; i < 100; i++)
		refused += cu_closed_within(idle[i], 0);
	/* 1 honest + 100 slow + 49 idle fit in 150. */
	cr_assert_eq(refused, 51, "%d of the idle ones refused", refused);
	cr_assert(cu_log_has(n.proc->log, "connections from 127.0.0.1"));
	/* A byte every 200 ms: still a frame not whole after 2 s. */
	for (int t = 0; t < 20; t++) {
		uint8_t b = 0;

		for (int i = 0; i < 100; i++)
			(void)send(slow[i], &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		usleep(200 * 1000);
	}
	for (int i = 0; i < 100; i++) {
		cut += cu_closed_within(slow[i], 1000);
		close(slow[i]);
		close(idle[i]);
	}
	cr_assert_eq(cut, 100, "only %d of 100 slow senders cut off", cut);
	cr_assert(cu_log_has(n.proc->log, "a slow sender"));
	cr_assert_eq(honest(c, 5), 5);
	settle_client_close(c);
	cu_stop_clean(&n);
}

/* A raft peer's handshake (raft_uv 0.15: protocol 1, the sender's id, its
 * address padded to 8 bytes), then len bytes of message. */
static bool raft_send(int fd, uint64_t id, const uint8_t *msg, size_t len)
{
	uint8_t hs[24 + 16] = {0};

	hs[0] = 1;
	for (int i = 0; i < 8; i++)
		hs[8 + i] = (uint8_t)(id >> (8 * i));
	hs[16] = 16;
	memcpy(hs + 24, "127.0.0.1:9", 11);
	return send_all(fd, hs, sizeof(hs)) && send_all(fd, msg, len);
}

/*
 * The 64-byte AppendEntries that crashed any node of raft 0.15 (its
 * header announces an entry it has no room for, of an unknown type), sent
 * to a node's raft port: the node drops it, closes that connection, says
 * so, and goes on serving. So does a message of an unknown type.
 */
Test(limits, malformed_raft_message_is_dropped)
{
	uint8_t msg[64] = {0};
	struct it_node n;
	settle_client *c;
	int fd;

	msg[0] = 1;  /* AppendEntries */
	msg[8] = 48; /* header length */
	msg[16] = 9; /* term */
	msg[48] = 1; /* one entry, type 0 */
	it_node_start(&n, 1, NULL);
	c = tu_client(&n);
	cr_assert_eq(honest(c, 5), 5);
	for (int round = 0; round < 3; round++) {
		struct it_node raft = n;

		raft.port = n.port + 1;
		fd = cu_dial(&raft);
		cr_assert(raft_send(fd, 99, msg, sizeof(msg)));
		cr_assert(cu_closed_within(fd, 3000),
			  "the connection stayed open");
		close(fd);
		msg[0] = round == 0 ? 77 : 1; /* then an unknown type */
	}
	usleep(200 * 1000);
	cr_assert(it_alive(n.proc), "the node died");
	cr_assert(cu_log_has(n.proc->log, "dropped a malformed message"),
		  "the node did not say what it dropped");
	cr_assert(cu_log_has(n.proc->log, "announces 1 entries"));
	cr_assert(cu_log_has(n.proc->log, "unknown message type 77"));
	cr_assert_eq(honest(c, 5), 5);
	settle_client_close(c);
	cu_stop_clean(&n);
}

/*
 * One client (127.0.0.2) begins transactions it never finishes: with
 * --max-open-per-client 100 its 101st Begin is refused RESOURCE_EXHAUSTED
 * naming it, while another client (127.0.0.1) is served; once its
 * transactions time out (2 s) it may begin again.
 */
Test(limits, one_client_cannot_hold_every_transaction)
{
	static const char *const args[] = {"--max-open-per-client", "100",
					   NULL};
	struct it_node n;
	struct cu_conn hog = {.next_id = 1};
	settle_client *c;
	uint8_t id[16];
	int refused = 0;

	it_node_start(&n, 1, args);
	c = tu_client(&n);
	hog.fd = dial_from(&n, "127.0.0.2");
	snprintf(hog.endpoint, sizeof(hog.endpoint), "%s", n.endpoint);
	for (int i = 0; i < 130; i++) {
		int code;

		cu_cmd_id(id);
		code = cu_begin(&hog, id, NULL, 2000, NULL, NULL);
		if (i < 100)
			cr_assert_eq(code, 0, "begin %d: code %d", i, code);
		else
			refused += code == SETTLE__V1__CODE__RESOURCE_EXHAUSTED;
	}
	cr_assert_eq(refused, 30, "%d of the 30 over the limit refused",
		     refused);
	cr_assert_eq(honest(c, 20), 20, "the other client was refused");
	/* Its transactions end by their deadline: room again. */
	sleep(3);
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&hog, id, NULL, 2000, NULL, NULL), 0,
		     "still refused after its transactions ended");
	cu_close(&hog);
	settle_client_close(c);
	cu_stop_clean(&n);
}
