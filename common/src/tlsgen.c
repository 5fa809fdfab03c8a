// A database's TLS identity, made with OpenSSL's libcrypto: NNG 1.5.2's
// TLS (mbedTLS 2.28 on Debian) takes ECDSA P-256, not Ed25519.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "copal/common.h"
#include "copal/dbdir.h"
#include "copal/tlsgen.h"

static int
add_ext(X509 *crt, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, crt, crt, NULL, NULL, 0);
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ex == NULL)
		return -1;
	int ok = X509_add_ext(crt, ex, -1);
	X509_EXTENSION_free(ex);
	return ok ? 0 : -1;
}

// The PEM text of mem into path, 0600, replacing it (written beside it
// and renamed, so that a reader never sees half a key).
static int
write_pem(const char *path, BIO *mem, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 8];
	char *data;
	long n = BIO_get_mem_data(mem, &data);
	if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
		return CPL_ETOOBIG;
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	if (n < 0 || write(fd, data, (size_t)n) != (ssize_t)n ||
	    fsync(fd) != 0) {
		close(fd);
		unlink(tmp);
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	return CPL_EIO;
}

// A new key pair and an unsigned certificate for it: a random positive
// serial (two databases never share an issuer and serial, even with the
// same name), 100 years of validity, subject O=copal, CN=cn (cn_type:
// MBSTRING_ASC or MBSTRING_UTF8). The caller sets the issuer, the
// extensions and signs. Returns 0, or -1 (nothing to free) on failure.
static int
cert_new(const char *cn, int cn_type, EVP_PKEY **keyp, X509 **crtp)
{
	EVP_PKEY *key = NULL;
	X509 *crt = NULL;
	BIGNUM *sn = NULL;
	unsigned char serial[16];
	int ok = 0;
	if ((key = EVP_EC_gen("P-256")) == NULL || (crt = X509_new()) == NULL ||
	    RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7F;
	X509_NAME *name = X509_get_subject_name(crt);
	ok = (sn = BN_bin2bn(serial, sizeof(serial), NULL)) != NULL &&
	    BN_to_ASN1_INTEGER(sn, X509_get_serialNumber(crt)) != NULL &&
	    X509_set_version(crt, 2) &&
	    X509_gmtime_adj(X509_getm_notBefore(crt), -3600) &&
	    X509_gmtime_adj(X509_getm_notAfter(crt),
	        (long)100 * 365 * 24 * 3600) &&
	    X509_set_pubkey(crt, key) &&
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	        (const unsigned char *)"copal", -1, -1, 0) &&
	    X509_NAME_add_entry_by_txt(name, "CN", cn_type,
	        (const unsigned char *)cn, -1, -1, 0);
out:
	BN_free(sn);
	if (!ok) {
		X509_free(crt);
		EVP_PKEY_free(key);
		return -1;
	}
	*keyp = key;
	*crtp = crt;
	return 0;
}

int
cpl_tls_generate_files(const char *cert_path, const char *key_path,
    char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	X509 *crt = NULL;
	BIO *kb = NULL, *cb = NULL;
	int rv = CPL_EINTERNAL;

	snprintf(err, errlen, "libcrypto could not make the key and "
	    "certificate");
	if (cert_new(CPL_TLS_SERVER_NAME, MBSTRING_ASC, &key, &crt) != 0 ||
	    !X509_set_issuer_name(crt, X509_get_subject_name(crt)))
		goto out;
	// its own CA: the pin is the certificate itself, checked by
	// signature (mbedTLS takes a trusted self-signed CA as a chain)
	if (add_ext(crt, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
	    add_ext(crt, NID_key_usage,
	        "critical,digitalSignature,keyCertSign") != 0 ||
	    add_ext(crt, NID_ext_key_usage, "serverAuth,clientAuth") != 0 ||
	    add_ext(crt, NID_subject_key_identifier, "hash") != 0 ||
	    add_ext(crt, NID_subject_alt_name, "DNS:" CPL_TLS_SERVER_NAME) != 0)
		goto out;
	if (X509_sign(crt, key, EVP_sha256()) == 0)
		goto out;
	if ((kb = BIO_new(BIO_s_mem())) == NULL ||
	    (cb = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cb, crt))
		goto out;
	err[0] = '\0';
	// the key first: a certificate is never there without its key
	if ((rv = write_pem(key_path, kb, err, errlen)) == 0)
		rv = write_pem(cert_path, cb, err, errlen);
out:
	BIO_free(kb);
	BIO_free(cb);
	X509_free(crt);
	EVP_PKEY_free(key);
	return rv;
}

int
cpl_tls_generate(const char *db, char *err, size_t errlen)
{
	char cert[PATH_MAX], key[PATH_MAX];
	if (cpl_dbpath(db, CPL_DB_TLS_CERT, cert, sizeof(cert)) != 0 ||
	    cpl_dbpath(db, CPL_DB_TLS_KEY, key, sizeof(key)) != 0) {
		snprintf(err, errlen, "%s: path too long", db);
		return CPL_ETOOBIG;
	}
	return cpl_tls_generate_files(cert, key, err, errlen);
}

// The PEM text of a memory BIO as a new string.
static char *
bio_text(BIO *b)
{
	char *data, *s;
	long n = BIO_get_mem_data(b, &data);
	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

int
cpl_tls_user_cert(const char *db, const char *name, char **cert_pem,
    char **key_pem, char *err, size_t errlen)
{
	char cpath[PATH_MAX], kpath[PATH_MAX], cn[128];
	FILE *fp = NULL;
	X509 *ca = NULL, *crt = NULL;
	EVP_PKEY *cakey = NULL, *key = NULL;
	BIO *kb = NULL, *cb = NULL;
	int rv = CPL_EIO;

	*cert_pem = *key_pem = NULL;
	if (cpl_dbpath(db, CPL_DB_TLS_CERT, cpath, sizeof(cpath)) != 0 ||
	    cpl_dbpath(db, CPL_DB_TLS_KEY, kpath, sizeof(kpath)) != 0) {
		snprintf(err, errlen, "%s: path too long", db);
		return CPL_ETOOBIG;
	}
	if ((fp = fopen(cpath, "re")) == NULL ||
	    (ca = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", cpath,
		    fp ? "no certificate" : strerror(errno));
		goto out;
	}
	fclose(fp);
	if ((fp = fopen(kpath, "re")) == NULL ||
	    (cakey = PEM_read_PrivateKey(fp, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", kpath,
		    fp ? "no key" : strerror(errno));
		goto out;
	}
	fclose(fp);
	fp = NULL;
	rv = CPL_EINTERNAL;
	snprintf(err, errlen, "libcrypto could not make the user's key and "
	    "certificate");
	snprintf(cn, sizeof(cn), "copal-user:%s", name);
	if (cert_new(cn, MBSTRING_UTF8, &key, &crt) != 0 ||
	    !X509_set_issuer_name(crt, X509_get_subject_name(ca)))
		goto out;
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, ca, crt, NULL, NULL, 0);
	static const struct {
		int nid;
		const char *v;
	} exts[] = { { NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature" },
		{ NID_ext_key_usage, "clientAuth" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid" } };
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx,
		    exts[i].nid, exts[i].v);
		int ok = ex && X509_add_ext(crt, ex, -1);
		X509_EXTENSION_free(ex);
		if (!ok)
			goto out;
	}
	if (X509_sign(crt, cakey, EVP_sha256()) == 0)
		goto out;
	if ((kb = BIO_new(BIO_s_mem())) == NULL ||
	    (cb = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cb, crt))
		goto out;
	if ((*cert_pem = bio_text(cb)) == NULL ||
	    (*key_pem = bio_text(kb)) == NULL) {
		free(*cert_pem);
		*cert_pem = NULL;
		goto out;
	}
	err[0] = '\0';
	rv = 0;
out:
	if (fp)
		fclose(fp);
	BIO_free(kb);
	BIO_free(cb);
	X509_free(crt);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	return rv;
}
