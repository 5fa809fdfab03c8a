// Making a database's TLS identity: an ECDSA P-256 key and a self-signed
// certificate (OpenSSL's libcrypto). Only the programs that create
// databases link it (copal init, the test and bench helpers); the client
// library and the broker only read the files.
#ifndef COPAL_TLSGEN_H
#define COPAL_TLSGEN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Writes <db>/tls.key and <db>/tls.crt (mode 0600, replacing files of
// those names): a new P-256 key and a certificate for it, subject
// CN=CPL_TLS_SERVER_NAME with a random serial, valid for 100 years,
// usable as both a server and a client certificate and as its own CA (so
// that one file serves as identity and as the pin). Errors: CPL_EIO (a
// file could not be written; err says which), CPL_EINTERNAL (libcrypto
// failed), CPL_ETOOBIG (path too long).
int cpl_tls_generate(const char *db, char *err, size_t errlen);

// The same into two given paths (tests make a second identity with it).
int cpl_tls_generate_files(const char *cert_path, const char *key_path,
    char *err, size_t errlen);

// A user's certificate (copal server --add-user): a new P-256 key and a
// certificate for it with subject CN=copal-user:NAME, client use only,
// signed by the database's key (<db>/tls.key) with the database's
// certificate as issuer, so that the broker's TLS listener, which trusts
// the database's certificate, takes it. *cert_pem and *key_pem are
// malloc'd PEM text (the caller wipes and frees the key). Errors: CPL_EIO
// (tls.crt or tls.key unreadable; err says which), CPL_EINTERNAL.
int cpl_tls_user_cert(const char *db, const char *name, char **cert_pem,
    char **key_pem, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif // COPAL_TLSGEN_H
