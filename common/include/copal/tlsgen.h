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

#ifdef __cplusplus
}
#endif
#endif // COPAL_TLSGEN_H
