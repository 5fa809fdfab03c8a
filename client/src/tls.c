// The client's side of TLS: the database's certificate (pinned: the
// broker must show exactly this database's certificate, or one signed by
// its key) and our own certificate and key, from the database directory
// or from files named by the caller or the environment.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "copal/client.h"
#include "internal.h"

// The whole of a small text file (a PEM file is a few hundred bytes; a
// bundle of certificate and key a little more).
static char *
read_text(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	ssize_t k;
	while (buf && n + 1 < cap && (k = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)k;
	close(fd);
	if (buf)
		buf[n] = '\0';
	return buf;
}

// The first PEM block of text whose label ends with kind ("CERTIFICATE",
// "PRIVATE KEY") at or after from, as a new string, or NULL; *next is set
// past it.
static char *
pem_block_at(const char *from, const char *kind, const char **next)
{
	const char *p = from;
	while ((p = strstr(p, "-----BEGIN ")) != NULL) {
		const char *label = p + 11, *dash = strstr(label, "-----");
		if (dash == NULL)
			return NULL;
		size_t ll = (size_t)(dash - label), kl = strlen(kind);
		if (ll >= kl && memcmp(dash - kl, kind, kl) == 0) {
			char endl[96];
			snprintf(endl, sizeof(endl), "-----END %.*s-----",
			    (int)ll, label);
			const char *e = strstr(dash, endl);
			if (e == NULL)
				return NULL;
			e += strlen(endl);
			*next = e;
			return strndup(p, (size_t)(e - p));
		}
		p = dash;
	}
	return NULL;
}

static char *
pem_block(const char *text, const char *kind)
{
	const char *next;
	return pem_block_at(text, kind, &next);
}

// The last certificate of text when it holds more than one (a user's
// credential: its own, then the database's), else NULL.
static char *
pem_pin(const char *text)
{
	const char *p = text, *next;
	char *c, *last = NULL;
	int n = 0;
	while ((c = pem_block_at(p, "CERTIFICATE", &next)) != NULL) {
		free(last);
		last = c;
		p = next;
		n++;
	}
	if (n < 2) {
		free(last);
		return NULL;
	}
	return last;
}

int
cpl__tls_client_config(const char *db, const char *cert_path,
    const char *key_path, nng_tls_config **out, char *err, size_t errlen)
{
	char cpath[PATH_MAX], kpath[PATH_MAX];
	char *ctext = NULL, *ktext = NULL, *cert = NULL, *key = NULL;
	nng_tls_config *cfg = NULL;
	int rv = CPL_EINVAL;
	*out = NULL;
	if (cert_path == NULL || !*cert_path)
		cert_path = getenv(CPL_ENV_TLS_CERT);
	if (key_path == NULL || !*key_path)
		key_path = getenv(CPL_ENV_TLS_KEY);
	if (cert_path && *cert_path) {
		snprintf(cpath, sizeof(cpath), "%s", cert_path);
		// no key file named: the certificate's file may hold it
		snprintf(kpath, sizeof(kpath), "%s",
		    key_path && *key_path ? key_path : cert_path);
	} else if (db && *db) {
		cpl_dbpath(db, CPL_DB_TLS_CERT, cpath, sizeof(cpath));
		cpl_dbpath(db, CPL_DB_TLS_KEY, kpath, sizeof(kpath));
	} else {
		snprintf(err, errlen, "tls+tcp:// needs the database's "
		    "certificate and key: a database directory, or $%s (and "
		    "$%s)", CPL_ENV_TLS_CERT, CPL_ENV_TLS_KEY);
		return CPL_EINVAL;
	}
	if ((ctext = read_text(cpath)) == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", cpath,
		    strerror(errno));
		rv = CPL_ENOTFOUND;
		goto out;
	}
	if ((ktext = read_text(kpath)) == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", kpath,
		    strerror(errno));
		rv = CPL_ENOTFOUND;
		goto out;
	}
	if ((cert = pem_block(ctext, "CERTIFICATE")) == NULL ||
	    (key = pem_block(ktext, "PRIVATE KEY")) == NULL) {
		snprintf(err, errlen, "%s: no PEM %s", cert ? kpath : cpath,
		    cert ? "private key" : "certificate");
		goto out;
	}
	// the broker must show this certificate (it is its own CA: nothing
	// else chains to it), and we show it too, with its key; a user's
	// credential shows the user's certificate (signed by the database's
	// key) and pins the database's, the last in the file
	int e;
	char *pin = pem_pin(ctext);
	if ((e = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT)) != 0 ||
	    (e = nng_tls_config_ca_chain(cfg, pin ? pin : cert, NULL)) != 0 ||
	    (e = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0 ||
	    (e = nng_tls_config_server_name(cfg, CPL_TLS_SERVER_NAME)) != 0 ||
	    (e = nng_tls_config_auth_mode(cfg,
	         NNG_TLS_AUTH_MODE_REQUIRED)) != 0) {
		snprintf(err, errlen, "TLS with %s and %s: %s", cpath, kpath,
		    nng_strerror(e));
		if (cfg)
			nng_tls_config_free(cfg);
		cfg = NULL;
		free(pin);
		goto out;
	}
	free(pin);
	*out = cfg;
	rv = 0;
out:
	if (ktext) {
		explicit_bzero(ktext, strlen(ktext));
		free(ktext);
	}
	if (key) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	free(ctext);
	free(cert);
	return rv;
}
