// The one logger of the programs: a line per message, with the time and,
// as each program's log has always had them, a tag, the level's name, a
// short stable id or the pid. Lines go to one or more streams (a file,
// stderr, stdout), each in its own style; a line is written whole under a
// lock, so threads may log at once. Not part of the installed client
// library.
#ifndef COPAL_LOG_H
#define COPAL_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

// syslog's levels
enum {
	CPL_LOG_ERR = 3,
	CPL_LOG_WARN = 4,
	CPL_LOG_NOTICE = 5,
	CPL_LOG_INFO = 6,
	CPL_LOG_DEBUG = 7
};

typedef enum cpl_log_clock {
	CPL_LOG_UTC_MS,     // 2024-05-01T12:00:00.123Z (the broker)
	CPL_LOG_UTC_HMS_MS, // 12:00:00.123, UTC (the launcher)
	CPL_LOG_LOCAL_S,    // 2024-05-01 12:00:00, local time (copal service)
} cpl_log_clock;

// A line: the time, then each of these that is set, one blank apart, then
// a blank and the message.
typedef struct cpl_log_style {
	cpl_log_clock clock;
	const char *tag; // a fixed word ("launcher"), or NULL
	bool level;      // the level's name, padded to 6 columns
	bool id;         // the message's id, padded to 12 columns
	bool pid;        // "[pid]"
} cpl_log_style;

// Messages of a level above this are dropped (default CPL_LOG_INFO).
extern int cpl_log_level;

// Adds a stream: fp, or the file at path opened for appending (closed by
// cpl_log_close). st NULL: the broker's style (CPL_LOG_UTC_MS, level and
// id). Without any stream, lines go to stderr in the broker's style.
// Returns 0, or -1 with errno (the file cannot be opened; at most 4
// streams).
int cpl_log_add(FILE *fp, const char *path, const cpl_log_style *st);
// Removes every stream, closing the files that cpl_log_add opened.
void cpl_log_close(void);

// From now on this thread's lines of level or less severe (numerically
// at least level: CPL_LOG_WARN holds warnings, notices and info, not
// errors) are held back, not written, until
// cpl_log_release: a thread that logs many lines in a burst (the broker's
// writer, a lease granted by each claim of thousands of launchers
// starting) writes them with one write per stream, not one each, and the
// lines of work that is undone go with it. A line above level is written
// at once, after the lines held before it. Lines keep the time they were
// logged at.
void cpl_log_hold(int level);
// Writes this thread's held lines (write false: forgets them, as for work
// undone and done again) and ends the hold. Written lines are whole, and
// another thread's lines may come between the hold and its release.
void cpl_log_release(bool write);

void cpl_log(int level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cpl_vlog(int level, const char *id, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

// Checks the level before the arguments are evaluated and formatted.
#define CPL_LOG(level, id, ...)                                    \
	do {                                                       \
		if ((level) <= cpl_log_level)                      \
			cpl_log((level), (id), __VA_ARGS__);       \
	} while (0)

#endif // COPAL_LOG_H
