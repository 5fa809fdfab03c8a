// Between the client's transport (client.c) and its typed calls (calls.c).
#ifndef COPAL_CLIENT_INTERNAL_H
#define COPAL_CLIENT_INTERNAL_H

#include "copal/client.h"

// Sends req (the client's attempts and timeout, or one attempt of once_ms
// when once_ms > 0) and folds the reply's status into the return value,
// recording why a call failed for cpl_client_errmsg: 0 with *rep the reply,
// its body checked against the request's, or an error with *rep NULL.
// body is the request's body (the caller's): NULL is CPL_EINVAL.
// Hidden: not part of the installed library's interface.
__attribute__((visibility("hidden")))
int cpl__call_typed(cpl_client *c, Copal__Request *req, const void *body,
    int once_ms, Copal__Reply **rep);

// A client TLS configuration for tls+tcp://: the certificate (pinned as
// the broker's and shown as ours) and key from cert_path/key_path, else
// $COPAL_TLS_CERT/$COPAL_TLS_KEY, else <db>/tls.crt and tls.key; a
// certificate file without a key file may hold both. 0 with *out set (the
// caller frees it), or an error with a reason in err.
struct nng_tls_config;
__attribute__((visibility("hidden")))
int cpl__tls_client_config(const char *db, const char *cert_path,
    const char *key_path, struct nng_tls_config **out, char *err,
    size_t errlen);

#endif
