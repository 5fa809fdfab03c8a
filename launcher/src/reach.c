// The launcher's first contact with the broker. A launcher in a batch job
// on another host than the broker's cannot use the database's Unix socket
// (on a shared filesystem it does not connect across hosts): instead of
// waiting for a lease in silence, it says at once what it tried and why.
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copal/client.h"
#include "copal/dbdir.h"
#include "reach.h"

#define PING_MS 3000

// The Unix socket's fault: the broker is not here. Fatal when the broker
// says (broker.addr) it runs on another host.
static int
ipc_fault(const char *db, const char *url, const char *why, const char *me)
{
	cpl_broker_addr ba;
	if (cpl_read_broker_addr(db, &ba) != 0 || strcmp(ba.host, me) == 0) {
		fprintf(stderr, "copal launcher: no answer from the broker at "
		    "%s (%s): is it running? (copal server start); waiting "
		    "for it\n", url, why);
		return 0;
	}
	if (ba.tcp[0])
		fprintf(stderr, "copal launcher: cannot reach the broker at %s "
		    "(%s): Unix socket of database %s on host %s while running "
		    "on host %s: the broker listens on %s: set "
		    "COPAL_BROKER_URL=%s (job scripts of copal submit-launch "
		    "do)\n", url, why, db, ba.host, me, ba.tcp, ba.tcp);
	else
		fprintf(stderr, "copal launcher: cannot reach the broker at %s "
		    "(%s): Unix socket of database %s on host %s while running "
		    "on host %s: set broker_tcp so launchers on other hosts "
		    "can connect\n", url, why, db, ba.host, me);
	return CPL_ECONNECT;
}

int
launcher_reach(const char *db_dir)
{
	char db[PATH_MAX], url[PATH_MAX + 16], me[HOST_NAME_MAX + 1] = "";
	const char *env = getenv(CPL_ENV_URL);
	bool ipc = env == NULL || *env == '\0';
	if (realpath(db_dir, db) == NULL)
		return 0; // the launcher says why
	if (gethostname(me, sizeof(me) - 1) != 0)
		snprintf(me, sizeof(me), "unknown");
	if (ipc) {
		struct stat st;
		if (cpl_db_socket_url(db, url, sizeof(url)) != 0)
			return 0;
		// no socket file: no ping can succeed
		if (stat(url + 6, &st) != 0)
			return ipc_fault(db, url, strerror(errno), me);
	} else {
		snprintf(url, sizeof(url), "%s", env);
	}
	// NNG's threads, made by the first call below, outlive this client:
	// they must block the signals the launcher takes from its signalfd
	// (launcher_run blocks the same set), or a SIGTERM sent to one of
	// them ends the launcher at once. One that comes now waits for it.
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGCHLD);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	cpl_client_opts co;
	memset(&co, 0, sizeof(co));
	co.db_dir = db;
	cpl_client *c;
	if (cpl_client_open(&co, &c) != 0)
		return 0; // the launcher opens it again and says why
	Copal__Reply *rep = NULL;
	int rv = cpl_call_ping_once(c, PING_MS, &rep);
	if (rv == 0 || cpl_client_err_remote(c)) {
		// it answered (a refusal is the launcher's to report)
		cpl_reply_free(rep);
		cpl_client_close(c);
		return 0;
	}
	char why[PATH_MAX + 300];
	snprintf(why, sizeof(why), "%s", cpl_client_errmsg(c));
	cpl_client_close(c);
	if (ipc)
		return ipc_fault(db, url, why, me);
	fprintf(stderr, "copal launcher: no answer from the broker at %s "
	    "within %d s from host %s: %s; waiting for it\n", url,
	    PING_MS / 1000, me, why);
	return 0;
}
