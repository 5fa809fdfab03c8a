// Where the network and the writer meet (internal): a decoded request
// finds its handler, runs in a read snapshot or as a job of the writer,
// and leaves its packed reply to whoever received it. Neither the network
// code nor the writer knows the other: the writer completes its jobs here,
// and replies leave through the `reply` callback.
#ifndef COPAL_BROKER_DISPATCH_H
#define COPAL_BROKER_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "handlers.h"
#include "hbtab.h"
#include "park.h"
#include "writer.h"

// The longest a claim that found nothing is held open (its wait_ms is
// cut to this).
#define DISPATCH_PARK_MAX_MS 10000u

typedef struct dreq dreq;

typedef struct dispatch {
	cpl_store *st;
	writer *wr;                       // runs the mutations
	const struct broker_info *info;   // for the handlers
	park *pk;                         // claims held open; NULL: none
	hbtab *hb;                        // renewals kept in memory; NULL:
	                                  // every heartbeat goes to the writer
	// r->reply is ready (NULL if none could be packed): send it. Called
	// on the dispatching thread for reads and refusals, on the writer's
	// thread or its completer's for mutations.
	void (*reply)(dreq *r);
} dispatch;

// One request on its way through the broker.
struct dreq {
	Copal__Request *req;   // decoded by the receiver, which frees it
	uint8_t digest[CPL_DIGEST_LEN];   // of the request's body (wire_digest)
	uint64_t recv_us;      // cpl_mono_us() when it was dispatched
	uint8_t *reply;        // the packed reply (malloc'd); the receiver takes it
	size_t reply_len;
	const handler *h;
	const dispatch *d;
	wjob job;
	uint32_t park_ms;      // set by its handler: its empty answer may wait
	uint64_t park_key;     // the lease it is held under
	uint64_t unpark_key;   // set by its handler: see hctx
	bool parking;          // a place in the park is reserved for it
	pitem pi;              // while held in the park
	char user[33];         // who sent it (net.c): recorded in the events
	                       // of its changes; "" for none
};

// Runs r->req (decoded and checked): finds its handler and runs it; hands
// the reply to d->reply, at once or, for a mutation, once the writer has
// committed it. While the broker stops, a mutation the writer no longer
// takes gets no reply (its client resends to the next broker).
void dispatch_request(const dispatch *d, dreq *r);
// Packs into r->reply a reply with only a status and a message (NULL: the
// status's text).
void dispatch_error(dreq *r, uint64_t reqid, int status, const char *msg);

#endif
