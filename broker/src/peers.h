// The broker's TCP peers (internal): per-connection state kept by NNG pipe
// id (authenticated yet, when it came), the cap on connections, the drop
// of peers that do not authenticate in time, rate-limited warnings, and
// the listener's TLS configuration.
#ifndef COPAL_BROKER_PEERS_H
#define COPAL_BROKER_PEERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

// A frame without the token from a peer not yet authenticated may be at
// most this large: a larger one closes its connection, and nothing in it
// past the credentials is read.
#define PEER_UNAUTH_MAX (64u << 10)
// A peer that has sent no request with the right token this long after
// it connected is dropped.
#define PEER_AUTH_MS 5000

// ---------------------------------------------------------------- ratelog
// A warning of one kind at most once a second; the lines left out are
// counted and the count said on the next line that is written.
typedef struct ratelog {
	pthread_mutex_t mx;
	int64_t last_s;
	uint64_t suppressed;
} ratelog;
#define RATELOG_INIT { PTHREAD_MUTEX_INITIALIZER, 0, 0 }
void ratelog_warn(ratelog *r, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// The peer address of p: "1.2.3.4:5", "[::1]:5", "ipc", or "?".
void peer_addr(nng_pipe p, char *buf, size_t len);

// ---------------------------------------------------------------- peers
typedef struct peers peers;

// max: connections kept at once (>= 1).
int peers_new(int max, peers **out);
void peers_free(peers *ps);
// A new connection: false when max are open (the caller closes it).
bool peers_add(peers *ps, nng_pipe p);
void peers_remove(peers *ps, nng_pipe p);
bool peers_authed(peers *ps, nng_pipe p);
void peers_set_authed(peers *ps, nng_pipe p);
// Closes every connection not authenticated PEER_AUTH_MS after it came,
// each logged through rl with its address; returns how many.
int peers_reap(peers *ps, ratelog *rl);
int peers_count(peers *ps);

// ---------------------------------------------------------------- tls
// Sets a server TLS configuration on listener l from <db>/tls.crt and
// tls.key: the database's certificate shown to clients, and required of
// them (they hold the same files). Returns 0 or an NNG error, with a
// reason in err.
int peers_tls_listen(nng_listener l, const char *db, char *err,
    size_t errlen);

#endif
