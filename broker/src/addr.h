// broker.addr: the broker's host, pid and the TCP URL launchers on other
// hosts dial (internal; the reader is cpl_read_broker_addr).
#ifndef COPAL_BROKER_ADDR_H
#define COPAL_BROKER_ADDR_H

#include <stddef.h>

// The URL other hosts dial for the listener bound at `bound`: its host
// replaced by advertise (when not empty), or, when it is a wildcard
// (0.0.0.0, *, [::], empty), by a routable IPv4 address of this host.
// -1: no such address, or buf too small.
int broker_advertised_url(const char *bound, const char *advertise,
    char *buf, size_t len);

// Writes <db>/broker.addr (atomically): this host's name, our pid and, for
// tcp_bound (NULL or "": no TCP listener), the advertised URL. -1 on error.
int broker_addr_write(const char *db, const char *tcp_bound,
    const char *advertise);
void broker_addr_remove(const char *db);

#endif
