// The launcher's first contact with the broker (see reach.c).
#ifndef COPAL_LAUNCHER_REACH_H
#define COPAL_LAUNCHER_REACH_H

// Checks, within a few seconds, that the broker of db_dir answers at the
// address this launcher will use ($COPAL_BROKER_URL, else the database's
// Unix socket). When it does not, says on stderr which address was tried
// and why it failed. Returns 0 to go on (the broker may still be coming
// up), or CPL_ECONNECT when the address cannot work from this host: the
// Unix socket of a broker that runs on another host.
int launcher_reach(const char *db_dir);

#endif
