// copal client library: talks to a database's broker over NNG. Used by the
// `copal` command, the launcher and programs that speak the protocol.
//
// A request is a copal.Request (proto/copal.proto) built by the caller; the
// library fills in the protocol version, a request id and the credentials,
// sends it and waits for the reply. If the broker does not answer in time,
// the same request (same request id) is sent again: the broker applies a
// mutation once and answers a resent one with the stored reply.
#ifndef COPAL_CLIENT_H
#define COPAL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "copal.pb-c.h"
#include "copal/common.h"
#include "copal/dbdir.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CPL_PROTOCOL_VERSION 1u
// CPL_ENV_DB, the variable naming the current database directory, is in
// copal/dbdir.h.
// Environment variable naming a broker URL (tcp://host:port) to use instead
// of the database's local socket; the token is then read from
// CPL_ENV_TOKEN or from the database directory's secret file.
#define CPL_ENV_URL "COPAL_BROKER_URL"
#define CPL_ENV_TOKEN "COPAL_TOKEN"

typedef struct cpl_client cpl_client;

typedef struct cpl_client_opts {
	const char *db_dir;   // NULL: $COPAL_DB
	const char *url;      // NULL: $COPAL_BROKER_URL, else the local socket
	const char *token;    // NULL: $COPAL_TOKEN, else <db_dir>/secret if readable
	int timeout_ms;       // per attempt; 0: 10000
	int attempts;         // sends of one request; 0: 3
} cpl_client_opts;

// cpl_db_socket_url(db_dir, buf, len), the URL of a database's local
// socket, is in copal/dbdir.h with the other paths of a database directory.

// Opens a client. Does not wait for the broker: the first call does.
// Errors: CPL_EINVAL (no database given and $COPAL_DB unset), CPL_ENOTFOUND
// (not a copal database), CPL_ETOOBIG, CPL_ENOMEM, CPL_ECONNECT.
int cpl_client_open(const cpl_client_opts *opts, cpl_client **out);
void cpl_client_close(cpl_client *c);
// The database directory of this client (absolute), or "" for a URL only.
const char *cpl_client_db(const cpl_client *c);

// Sends req and waits for its reply. The library sets req->version,
// req->request_id (if 0) and req->credentials. On success *reply is the
// broker's answer (check (*reply)->status; free with
// copal__reply__free_unpacked(*reply, NULL)). Errors: CPL_ETIMEOUT (no
// answer after every attempt), CPL_ECONNECT, CPL_EPROTO (unreadable reply),
// CPL_ENOMEM.
int cpl_client_call(cpl_client *c, Copal__Request *req, Copal__Reply **reply);

// Same with one attempt and the given timeout; for health checks.
int cpl_client_call_once(cpl_client *c, Copal__Request *req, int timeout_ms,
    Copal__Reply **reply);

// A fresh random request id (never 0).
uint64_t cpl_request_id(void);

#ifdef __cplusplus
}
#endif
#endif // COPAL_CLIENT_H
