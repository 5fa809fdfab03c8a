// broker.addr: where this broker runs and the TCP URL that launchers on
// other hosts dial (see cpl_read_broker_addr in copal/dbdir.h). Job
// scripts hand that URL to their launchers; a launcher that cannot reach
// the broker compares the host with its own to say why.
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "copal/dbdir.h"
#include "broker.h"

// Whether a is the address of one of this host's interfaces (a name may
// resolve to an address this host does not have: /etc/hosts of another
// network namespace, a stale DNS entry).
static bool
is_local(const struct ifaddrs *ifs, const struct sockaddr_in *a)
{
	for (const struct ifaddrs *i = ifs; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    ((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr ==
		        a->sin_addr.s_addr)
			return true;
	return false;
}

static bool
loopback(const struct sockaddr_in *a)
{
	return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
}

// An IPv4 address other hosts can reach this one at: the address the host
// name resolves to, if it is one of ours and not a loopback; else the
// first non-loopback IPv4 address of an interface that is up.
static int
routable(char *buf, size_t len)
{
	struct ifaddrs *ifs = NULL;
	char name[HOST_NAME_MAX + 1] = "";
	int found = -1;
	if (getifaddrs(&ifs) != 0)
		return -1;
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	if (gethostname(name, sizeof(name) - 1) == 0 && name[0] &&
	    getaddrinfo(name, NULL, &hints, &res) == 0) {
		for (struct addrinfo *r = res; r && found; r = r->ai_next) {
			const struct sockaddr_in *a = (void *)r->ai_addr;
			if (!loopback(a) && is_local(ifs, a) &&
			    inet_ntop(AF_INET, &a->sin_addr, buf, (socklen_t)len))
				found = 0;
		}
		freeaddrinfo(res);
	}
	for (struct ifaddrs *i = ifs; i && found; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
		    !(i->ifa_flags & IFF_UP))
			continue;
		const struct sockaddr_in *a = (void *)i->ifa_addr;
		if (!loopback(a) &&
		    inet_ntop(AF_INET, &a->sin_addr, buf, (socklen_t)len))
			found = 0;
	}
	freeifaddrs(ifs);
	return found;
}

int
broker_advertised_url(const char *bound, const char *advertise, char *buf,
    size_t len)
{
	// scheme://HOST:PORT, HOST possibly [v6]
	const char *host = strstr(bound, "://");
	const char *colon = strrchr(bound, ':');
	if (host == NULL || colon == NULL || colon < host + 3)
		return -1;
	host += 3;
	size_t hl = (size_t)(colon - host);
	char addr[INET6_ADDRSTRLEN + 2];
	const char *use = NULL;
	if (advertise && advertise[0])
		use = advertise;
	else if (hl == 0 || (hl == 1 && host[0] == '*') ||
	    (hl == 7 && memcmp(host, "0.0.0.0", 7) == 0) ||
	    (hl == 4 && memcmp(host, "[::]", 4) == 0)) {
		if (routable(addr, sizeof(addr)) != 0)
			return -1;
		use = addr;
	}
	int n = use ? snprintf(buf, len, "%.*s%s%s", (int)(host - bound), bound,
	                  use, colon) :
	              snprintf(buf, len, "%s", bound);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
broker_addr_write(const char *db, const char *tcp_bound,
    const char *advertise)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 32], host[HOST_NAME_MAX + 1];
	char url[512] = "";
	if (cpl_dbpath(db, CPL_DB_BROKER_ADDR, path, sizeof(path)) != 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	memset(host, 0, sizeof(host));
	if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "unknown");
	if (tcp_bound && tcp_bound[0] &&
	    broker_advertised_url(tcp_bound, advertise, url, sizeof(url)) != 0) {
		LOG(LOG_WARN, "listen", "%s binds every interface and this "
		    "host has no address other hosts can reach: set "
		    "broker_advertise in copal.conf", tcp_bound);
		snprintf(url, sizeof(url), "%s", tcp_bound);
	}
	FILE *fp = fopen(tmp, "we");
	if (fp == NULL)
		return -1;
	fprintf(fp, "# written by copal-broker: where it runs; launchers on "
	    "other hosts dial tcp\nhost %s\npid %ld\n", host, (long)getpid());
	if (url[0])
		fprintf(fp, "tcp %s\n", url);
	if (fclose(fp) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	if (url[0])
		LOG(LOG_INFO, "listen", "launchers on other hosts dial %s", url);
	return 0;
}

void
broker_addr_remove(const char *db)
{
	char path[PATH_MAX + 16];
	if (cpl_dbpath(db, CPL_DB_BROKER_ADDR, path, sizeof(path)) == 0)
		unlink(path);
}
