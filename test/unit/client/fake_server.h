/*
 * fake_server.h — a scripted coordinator node for client tests: a thread
 * with a blocking listening socket speaking the frame codec, whose answers
 * come from a callback. One connection at a time, like the sync client.
 */
#ifndef TEST_FAKE_SERVER_H
#define TEST_FAKE_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpc.h"

#define FAKE_MAX_SEEN 32

struct fake_server;

/* Decide the answer to request number n (0-based) of this node. Set *err
 * (SETTLE_E*, 0 = OK), msg, leader, and *body (NULL: empty). Return false
 * to drop the connection without answering (a lost reply). */
typedef bool (*fake_answer_fn)(struct fake_server *s, int n,
			       const Settle__V1__Frame *req, int *err,
			       const char **msg, const char **leader,
			       ProtobufCMessage **body);

struct fake_server {
	int lfd;
	int port;
	char endpoint[64];
	pthread_t thread;
	volatile bool stop;
	fake_answer_fn answer;
	void *data;
	pthread_mutex_t lock;
	int requests;
	int accepts; /* connections accepted */
	/* Close each connection right after answering one request (a peer
	 * that went away while the client kept the connection). */
	volatile bool close_after_answer;
	int methods[FAKE_MAX_SEEN];
	uint8_t cmd_ids[FAKE_MAX_SEEN][16];
	size_t cmd_id_lens[FAKE_MAX_SEEN];
};

void fake_server_start(struct fake_server *s, fake_answer_fn answer,
		       void *data);
void fake_server_stop(struct fake_server *s);

#endif
