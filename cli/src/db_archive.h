// copal db (cmd_db.c, cmd_db_archive.c): shared between the verb and its
// archive part.
#ifndef COPAL_CLI_DB_ARCHIVE_H
#define COPAL_CLI_DB_ARCHIVE_H

#include <stdint.h>

enum { KEY_DB_JSON = 700, KEY_DB_BEFORE, KEY_DB_WF, KEY_DB_CHUNK };

typedef struct db_archive_args {
	const char *before;   // --before DATE (required)
	const char *workflow; // --wf, or NULL
	const char *out;      // --out, or NULL: a name of the time
	uint32_t chunk;       // tasks per removal
} db_archive_args;

extern const cli_opt db_opts[];
int cmd_db(const cli_verb *, int, char **);
// copal db archive on database db: 0 or an exit code.
int db_archive(const char *db, const db_archive_args *a);

#endif
