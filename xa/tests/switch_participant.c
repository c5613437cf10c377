/*
 * switch_participant.c — the recording participant of switch_participant.h.
 */
#include "switch_participant.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "proto/error.h"
#include "proto/rpc.h"

struct sp_conn {
	struct sp *p;
	int fd;
};

static void record(struct sp *p, const Settle__V1__Frame *f)
{
	Settle__V1__BranchRequest *r;

	if (f->method != SETTLE__V1__METHOD__CONFIRM &&
	    f->method != SETTLE__V1__METHOD__CANCEL)
		return;
	r = settle__v1__branch_request__unpack(NULL, f->body.len, f->body.data);
	if (r == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->nseen < SP_MAX_SEEN && r->xid.len <= 134) {
		struct sp_call *c = &p->seen[p->nseen++];

		c->method = (int)f->method;
		snprintf(c->gid, sizeof(c->gid), "%s", r->gid);
		memcpy(c->xid, r->xid.data, r->xid.len);
		c->xid_len = r->xid.len;
	}
	pthread_mutex_unlock(&p->lock);
	settle__v1__branch_request__free_unpacked(r, NULL);
}

static void *serve(void *arg)
{
	struct sp_conn *sc = arg;
	struct sp *p = sc->p;
	int fd = sc->fd;
	struct rpc_decoder dec;
	uint8_t buf[4096];

	free(sc);
	rpc_decoder_init(&dec, 0);
	while (!p->stop) {
		Settle__V1__Frame *f;
		int rv = rpc_decoder_next(&dec, &f);

		if (rv < 0)
			break;
		if (rv == 1) {
			struct pollfd pf = {.fd = fd, .events = POLLIN};

			if (poll(&pf, 1, 50) <= 0)
				continue;
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				break;
			rpc_decoder_feed(&dec, buf, (size_t)n);
			continue;
		}
		record(p, f);
		Settle__V1__BranchResponse resp =
		    SETTLE__V1__BRANCH_RESPONSE__INIT;
		uint8_t *out;
		size_t len;

		rv = rpc_frame_encode(f->id, (int)f->method, 1, &resp.base, 0,
				      NULL, NULL, 0, &out, &len);
		settle__v1__frame__free_unpacked(f, NULL);
		if (rv != 0)
			break;
		rv = write(fd, out, len) == (ssize_t)len ? 0 : -1;
		free(out);
		if (rv != 0)
			break;
	}
	rpc_decoder_close(&dec);
	close(fd);
	return NULL;
}

static void *listen_main(void *arg)
{
	struct sp *p = arg;

	while (!p->stop) {
		struct pollfd pf = {.fd = p->lfd, .events = POLLIN};

		if (poll(&pf, 1, 50) <= 0)
			continue;
		int fd = accept(p->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		if (p->nconns == SP_MAX_CONN) {
			close(fd);
			continue;
		}
		struct sp_conn *sc = malloc(sizeof(*sc));
		cr_assert_not_null(sc);
		sc->p = p;
		sc->fd = fd;
		cr_assert_eq(
		    pthread_create(&p->conns[p->nconns], NULL, serve, sc), 0);
		p->nconns++;
	}
	return NULL;
}

void sp_start(struct sp *p)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);

	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(p->lfd >= 0);
	cr_assert_eq(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(p->lfd, 16), 0);
	getsockname(p->lfd, (struct sockaddr *)&a, &al);
	snprintf(p->endpoint, sizeof(p->endpoint), "127.0.0.1:%d",
		 ntohs(a.sin_port));
	cr_assert_eq(pthread_create(&p->thread, NULL, listen_main, p), 0);
}

void sp_stop(struct sp *p)
{
	p->stop = true;
	pthread_join(p->thread, NULL);
	for (int i = 0; i < p->nconns; i++)
		pthread_join(p->conns[i], NULL);
	close(p->lfd);
	pthread_mutex_destroy(&p->lock);
}

bool sp_wait(struct sp *p, int method, const char *gid, uint8_t *xid,
	     size_t *len, int timeout_ms)
{
	for (int waited = 0;; waited += 20) {
		pthread_mutex_lock(&p->lock);
		for (int i = 0; i < p->nseen; i++) {
			struct sp_call *c = &p->seen[i];

			if (c->method == method && strcmp(c->gid, gid) == 0) {
				memcpy(xid, c->xid, c->xid_len);
				*len = c->xid_len;
				pthread_mutex_unlock(&p->lock);
				return true;
			}
		}
		pthread_mutex_unlock(&p->lock);
		if (waited >= timeout_ms)
			return false;
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}
