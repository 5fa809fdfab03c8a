// The broker's peers (internal): per-connection state kept by NNG pipe id
// (who, with what role, authenticated yet, when it came, requests), the
// cap on TCP connections, the drop of TCP peers that do not authenticate
// in time, rate-limited warnings, and the listener's TLS configuration.
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
// Every connection, local or TCP, with who it is: the user it proved to
// be (by its peer uid, or by the token of its last request) and the role.
typedef struct peers peers;

#define PEER_USER_MAX 32

// max: TCP connections (and refused local ones) kept at once (>= 1).
int peers_new(int max, peers **out);
void peers_free(peers *ps);
// A new TCP connection: false when max are open (the caller closes it).
bool peers_add(peers *ps, nng_pipe p);
// A local connection of an admitted uid, known at once as user with role
// (not counted against max).
bool peers_add_ipc(peers *ps, nng_pipe p, uint64_t uid, const char *user,
    int role);
// A local connection whose uid is not a user: never authenticated (its
// requests are refused), counted against max like a TCP connection, and
// closed by peers_reap after PEER_AUTH_MS. False when max are open.
bool peers_add_refused(peers *ps, nng_pipe p, uint64_t uid);
void peers_remove(peers *ps, nng_pipe p);
bool peers_authed(peers *ps, nng_pipe p);
// A TCP request of p carried the token of user: p is authenticated, and
// its requests counted.
void peers_set_ident(peers *ps, nng_pipe p, const char *user, int role,
    const char *cred);
// Who local connection p is (user: PEER_USER_MAX + 1 bytes); counts the
// request. False: unknown, or no longer admitted.
bool peers_ident(peers *ps, nng_pipe p, char *user, int *role);

// One connection, for the list of them.
typedef struct peer_info {
	uint32_t id;
	bool ipc;
	int64_t uid;
	int role;
	const char *cred;
	uint64_t since_us;
	uint64_t requests;
	char user[PEER_USER_MAX + 1];
} peer_info;
// Up to cap connections into out; returns how many there are.
size_t peers_list(peers *ps, peer_info *out, size_t cap);
// Closes every connection of user (and takes no more of its requests);
// returns how many.
int peers_close_user(peers *ps, const char *user);
// Closes every connection not authenticated PEER_AUTH_MS after it came
// (a TCP peer without the token, a refused local one), each logged
// through rl; returns how many.
int peers_reap(peers *ps, ratelog *rl);
int peers_count(peers *ps);
int peers_max(peers *ps);

// ---------------------------------------------------------------- tls
// Sets a server TLS configuration on listener l from <db>/tls.crt and
// tls.key: the database's certificate shown to clients, and required of
// them (they hold the same files). Returns 0 or an NNG error, with a
// reason in err.
int peers_tls_listen(nng_listener l, const char *db, char *err,
    size_t errlen);

#endif
