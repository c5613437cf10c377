#include "fake_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "error.h"

/* cmd_id of the request messages the fake knows; empty for others. */
static void record(struct fake_server *s, const Settle__V1__Frame *f)
{
	ProtobufCBinaryData id = {0, NULL};
	ProtobufCMessage *m = NULL;
	const ProtobufCMessageDescriptor *d = NULL;

	switch (f->method) {
	case SETTLE__V1__METHOD__BEGIN:
		d = &settle__v1__begin_request__descriptor;
		break;
	case SETTLE__V1__METHOD__REGISTER_BRANCH:
		d = &settle__v1__register_branch_request__descriptor;
		break;
	case SETTLE__V1__METHOD__COMMIT:
		d = &settle__v1__commit_request__descriptor;
		break;
	case SETTLE__V1__METHOD__ROLLBACK:
		d = &settle__v1__rollback_request__descriptor;
		break;
	case SETTLE__V1__METHOD__SUBMIT_SAGA:
		d = &settle__v1__submit_saga_request__descriptor;
		break;
	case SETTLE__V1__METHOD__TX_RETRY:
		d = &settle__v1__tx_retry_request__descriptor;
		break;
	case SETTLE__V1__METHOD__TX_RESOLVE:
		d = &settle__v1__tx_resolve_request__descriptor;
		break;
	case SETTLE__V1__METHOD__XA_VOTE:
		d = &settle__v1__xa_vote_request__descriptor;
		break;
	case SETTLE__V1__METHOD__XA_PREPARE:
		d = &settle__v1__xa_prepare_request__descriptor;
		break;
	case SETTLE__V1__METHOD__XA_FORGET:
		d = &settle__v1__xa_forget_request__descriptor;
		break;
	default:
		break;
	}
	if (d != NULL) {
		m = protobuf_c_message_unpack(d, NULL, f->body.len,
					      f->body.data);
		cr_assert_not_null(m, "fake: undecodable request");
		/* cmd_id is field 1 of every mutating request. */
		const ProtobufCFieldDescriptor *fd =
		    protobuf_c_message_descriptor_get_field(d, 1);
		id = *(ProtobufCBinaryData *)((char *)m + fd->offset);
	}
	pthread_mutex_lock(&s->lock);
	if (s->requests < FAKE_MAX_SEEN) {
		s->methods[s->requests] = (int)f->method;
		s->cmd_id_lens[s->requests] = id.len;
		if (id.len == 16)
			memcpy(s->cmd_ids[s->requests], id.data, 16);
	}
	s->requests++;
	pthread_mutex_unlock(&s->lock);
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
}

static void serve_conn(struct fake_server *s, int fd)
{
	struct rpc_decoder dec;
	uint8_t buf[4096];

	rpc_decoder_init(&dec, 0);
	while (!s->stop) {
		Settle__V1__Frame *f;
		int rv = rpc_decoder_next(&dec, &f);
		if (rv < 0)
			break;
		if (rv == 1) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (poll(&p, 1, 50) <= 0)
				continue;
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				break;
			rpc_decoder_feed(&dec, buf, (size_t)n);
			continue;
		}
		int n;
		pthread_mutex_lock(&s->lock);
		n = s->requests;
		pthread_mutex_unlock(&s->lock);
		record(s, f);
		int err = 0;
		const char *msg = NULL, *leader = NULL;
		ProtobufCMessage *body = NULL;
		bool ok = s->answer(s, n, f, &err, &msg, &leader, &body);
		if (!ok) {
			settle__v1__frame__free_unpacked(f, NULL);
			break;
		}
		uint8_t *out;
		size_t len;
		rv = rpc_frame_encode(f->id, (int)f->method, 1, body, err, msg,
				      leader, 0, &out, &len);
		cr_assert_eq(rv, 0);
		if (write(fd, out, len) != (ssize_t)len)
			rv = -1;
		free(out);
		if (body != NULL)
			protobuf_c_message_free_unpacked(body, NULL);
		settle__v1__frame__free_unpacked(f, NULL);
		if (rv != 0 || s->close_after_answer)
			break;
	}
	rpc_decoder_close(&dec);
	close(fd);
}

static void *fake_main(void *arg)
{
	struct fake_server *s = arg;
	while (!s->stop) {
		struct pollfd p = {.fd = s->lfd, .events = POLLIN};
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&s->lock);
		s->accepts++;
		pthread_mutex_unlock(&s->lock);
		serve_conn(s, fd);
	}
	return NULL;
}

void fake_server_start(struct fake_server *s, fake_answer_fn answer, void *data)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->answer = answer;
	s->data = data;
	pthread_mutex_init(&s->lock, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(s->lfd >= 0);
	cr_assert_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(s->lfd, 8), 0);
	getsockname(s->lfd, (struct sockaddr *)&a, &al);
	s->port = ntohs(a.sin_port);
	snprintf(s->endpoint, sizeof(s->endpoint), "127.0.0.1:%d", s->port);
	cr_assert_eq(pthread_create(&s->thread, NULL, fake_main, s), 0);
}

void fake_server_stop(struct fake_server *s)
{
	s->stop = true;
	pthread_join(s->thread, NULL);
	close(s->lfd);
	pthread_mutex_destroy(&s->lock);
}
