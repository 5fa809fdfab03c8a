// The layout of a database directory: every file and folder that copal
// keeps in it, named once (src/dbdir.c), and the paths built from them.
// The secret token kept there is read here too.
#ifndef COPAL_DBDIR_H
#define COPAL_DBDIR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Environment variable naming the current database directory (set by
// `copal activate`).
#define CPL_ENV_DB "COPAL_DB"

// The name in the certificate of every database (its subject's common
// name): clients check the broker's certificate against the database's
// own (tls.crt, pinned), not against a host name.
#define CPL_TLS_SERVER_NAME "copal-broker"

// The parts of a database directory.
typedef enum cpl_dbpart {
	CPL_DB_CONF,        // copal.conf: the settings; marks a database
	CPL_DB_SECRET,      // secret: the token of TCP clients
	CPL_DB_SOCK_DIR,    // sock/
	CPL_DB_SOCKET,      // sock/broker: the broker's local (IPC) socket
	CPL_DB_LOG_DIR,     // log/
	CPL_DB_BROKER_LOG,  // log/broker.log
	CPL_DB_SERVICE_LOG, // log/service.log: copal service's log
	CPL_DB_BROKER_PID,  // broker.pid: written once the broker listens
	CPL_DB_DATA_DIR,    // data/: the run directories of tasks
	CPL_DB_TMPL_DIR,    // job-templates/: <scheduler>.tmpl
	CPL_DB_QSUBMIT_DIR, // qsubmit/: the rendered job scripts
	CPL_DB_SERVICE_LOCK, // service.lock: one copal service per database
	CPL_DB_LMDB_DATA,   // data.mdb: LMDB's data file (LMDB names it)
	CPL_DB_LMDB_LOCK,   // lock.mdb: LMDB's lock file (LMDB names it)
	CPL_DB_TLS_CERT,    // tls.crt: the database's certificate (PEM)
	CPL_DB_TLS_KEY,     // tls.key: its private key, ECDSA P-256 (PEM)
	CPL_DB_LAUNCHERS,   // launchers: the shapes of the launchers that ran
	// broker.addr: where the running broker is (its host, pid and the TCP
	// URL launchers on other hosts dial); written once it listens
	CPL_DB_BROKER_ADDR,
	// users: who besides the owner may use the database, with their role
	// and a digest of their token (written by the broker only)
	CPL_DB_USERS,
	CPL_DB_NPARTS
} cpl_dbpart;

// The name of a part relative to the database directory ("log/broker.log");
// NULL for values out of range.
const char *cpl_dbpart_name(cpl_dbpart part);

// <db>/<name of part> into buf of len bytes. Errors: CPL_EINVAL (part
// out of range), CPL_ETOOBIG if the path does not fit in len bytes, or
// for the socket, if it is longer than a local socket's path may be
// (CPL_DB_SOCKET_MAX).
int cpl_dbpath(const char *db, cpl_dbpart part, char *buf, size_t len);

// <db>/<name of part>/<fmt...>: a file inside one of the folders. Errors
// as cpl_dbpath.
int cpl_dbpath_file(const char *db, cpl_dbpart part, char *buf, size_t len,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

// The longest path of a local socket, with its NUL: sockaddr_un.sun_path
// holds 108 bytes; one is kept spare.
#define CPL_DB_SOCKET_MAX 107

// ipc://<db>/sock/broker: the URL of the broker's local socket.
// Errors: CPL_ETOOBIG if the URL does not fit in len bytes or the path is
// too long for a local socket (about 90 bytes of db).
int cpl_db_socket_url(const char *db_dir, char *buf, size_t len);

// Reads <db>/secret into buf (at most cap bytes), without the line's end,
// and sets *len. Errors: CPL_ENOTFOUND (no file, or not readable),
// CPL_EINVAL (empty).
int cpl_read_secret(const char *db, uint8_t *buf, size_t cap, size_t *len);

// What <db>/broker.addr says about the broker that wrote it: lines
// "host NAME", "pid N" and, when it has a TCP listener, "tcp URL" (the
// URL launchers on other hosts dial: its bound address, with a wildcard
// host replaced by a routable address of its host, or broker_advertise).
// Lines starting with # and unknown keys are skipped.
typedef struct cpl_broker_addr {
	char host[256];
	long pid;
	char tcp[512]; // "" without a TCP listener
} cpl_broker_addr;

// Errors: CPL_ENOTFOUND (no file: no broker, or one from before the
// file existed), CPL_EINVAL (no host line).
int cpl_read_broker_addr(const char *db, cpl_broker_addr *out);

#ifdef __cplusplus
}
#endif
#endif // COPAL_DBDIR_H
