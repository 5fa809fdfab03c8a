// A power-cut recorder for one file, loaded with LD_PRELOAD into a process
// (the broker) that writes an LMDB data file:
//
//   COPAL_PC_FILE=/abs/path/db/data.mdb   the file to watch, by the path
//                                         the process opens it with
//   COPAL_PC_SHADOW=/abs/path/shadow      what the disk holds after a
//                                         power cut at any moment
//
// The shadow holds only what was made durable. At the first open of the
// file in the process the shadow is made a copy of the file. Every write to
// the file is also kept, in order, in a journal in memory (offset and
// bytes, or a new size for ftruncate); fsync, fdatasync, syncfs, sync and
// msync(MS_SYNC) over a mapping of the file apply the journal to the
// shadow, fsync the shadow and empty the journal. A write through a
// descriptor opened with O_DSYNC or O_SYNC is durable when it returns: it
// goes to the shadow at once (and to the journal too, so that replaying
// older pending writes at the next sync cannot put older bytes over it).
// Writes not synced when the process dies (SIGKILL) are not in the shadow:
// putting the shadow in place of the file is the power cut in which none
// of them reached the disk.
//
// What LMDB 0.9.24 does on Linux (libraries/liblmdb/mdb.c), all modelled:
// the data file opened with open(O_RDWR|O_CREAT) (me_fd) and, unless
// MDB_NOSYNC or MDB_NOMETASYNC, again with open(O_WRONLY|O_DSYNC|
// O_CLOEXEC) for the meta pages (me_mfd); the initial meta pages written
// with pwrite on me_fd (mdb_env_init_meta); dirty pages with pwrite (one
// run) or lseek + writev (several; MDB_USE_PWRITEV is not defined on
// Linux) on me_fd (mdb_page_flush); fdatasync(me_fd) at commit (fsync with
// MDB_FSYNCONLY; msync only with MDB_WRITEMAP) (mdb_env_sync); then the
// meta page with pwrite on me_mfd (on me_fd with MDB_NOSYNC/NOMETASYNC)
// (mdb_env_write_meta); ftruncate only with MDB_WRITEMAP; the map is
// mmap(PROT_READ, MAP_SHARED). Anything else that would change the file
// (a writable shared mapping, a duplicated descriptor, O_APPEND or O_TRUNC,
// pwritev2 flags, fallocate, sync_file_range, copy_file_range, an openat
// relative to a directory descriptor) aborts the process with a message:
// an LMDB that writes differently must not pass unmodelled. (Not seen:
// fcntl(F_DUPFD), stdio on the file, io_uring and AIO; LMDB uses none.)
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAXFD 65536
#define MAXMAP 64

enum { FD_NONE = 0, FD_PLAIN, FD_SYNC };

struct jent {
	struct jent *next;
	off_t off;      // where; for a truncate, the new size
	size_t len;     // bytes; TRUNC: a truncate
	unsigned char data[];
};
#define TRUNC ((size_t)-1)

static pthread_mutex_t mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static char target[PATH_MAX];  // COPAL_PC_FILE; "" when inactive
static char shadow[PATH_MAX];  // COPAL_PC_SHADOW
static const char *target_base;
static bool seeded;            // the shadow was made from the file
static bool shadow_nofsync;    // COPAL_PC_SHADOW_FSYNC=0
static int shadow_fd = -1;
static unsigned char fdkind[MAXFD];
static struct jent *jhead, **jtail = &jhead;
static struct {
	char *addr;
	size_t len;
} maps[MAXMAP];

// The next definition of a function (libc's), looked up on first use:
// calls may come before this library's constructor has run.
#define REAL(name) ((__typeof__(r_##name))real_sym(#name, (void **)&r_##name))

static void *
real_sym(const char *name, void **slot)
{
	if (*slot == NULL)
		*slot = dlsym(RTLD_NEXT, name);
	return *slot;
}

static int (*r_open)(const char *, int, ...);
static int (*r_open64)(const char *, int, ...);
static int (*r_openat)(int, const char *, int, ...);
static int (*r_openat64)(int, const char *, int, ...);
static int (*r_creat)(const char *, mode_t);
static int (*r_creat64)(const char *, mode_t);
static int (*r_close)(int);
static ssize_t (*r_write)(int, const void *, size_t);
static ssize_t (*r_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*r_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*r_writev)(int, const struct iovec *, int);
static ssize_t (*r_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*r_pwritev64)(int, const struct iovec *, int, off_t);
static ssize_t (*r_pwritev2)(int, const struct iovec *, int, off_t, int);
static ssize_t (*r_pwritev64v2)(int, const struct iovec *, int, off_t, int);
static int (*r_ftruncate)(int, off_t);
static int (*r_ftruncate64)(int, off_t);
static int (*r_fsync)(int);
static int (*r_fdatasync)(int);
static int (*r_syncfs)(int);
static void (*r_sync)(void);
static int (*r_msync)(void *, size_t, int);
static void *(*r_mmap)(void *, size_t, int, int, int, off_t);
static void *(*r_mmap64)(void *, size_t, int, int, int, off_t);
static int (*r_munmap)(void *, size_t);
static int (*r_dup)(int);
static int (*r_dup2)(int, int);
static int (*r_dup3)(int, int, int);
static int (*r_fallocate)(int, int, off_t, off_t);
static int (*r_fallocate64)(int, int, off_t, off_t);
static int (*r_posix_fallocate)(int, off_t, off_t);
static int (*r_posix_fallocate64)(int, off_t, off_t);
static int (*r_sync_file_range)(int, off_t, off_t, unsigned);
static ssize_t (*r_copy_file_range)(int, off_t *, int, off_t *, size_t,
    unsigned);

// Aborts with a message on stderr (straight to fd 2: the process's own
// writes are what this library sits under).
static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n = snprintf(buf, sizeof(buf), "copal powercut shim: ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	long w = syscall(SYS_write, 2, buf, (size_t)n);
	(void)w;
	abort();
}

__attribute__((constructor)) static void
shim_init(void)
{
	const char *t = getenv("COPAL_PC_FILE");
	const char *s = getenv("COPAL_PC_SHADOW");
	const char *f = getenv("COPAL_PC_SHADOW_FSYNC");
	if (t == NULL || t[0] == '\0')
		return; // inactive (e.g. in setpriv, before the broker)
	if (t[0] != '/' || s == NULL || s[0] != '/' ||
	    strlen(t) >= sizeof(target) || strlen(s) >= sizeof(shadow))
		die("COPAL_PC_FILE and COPAL_PC_SHADOW must be absolute paths");
	snprintf(shadow, sizeof(shadow), "%s", s);
	shadow_nofsync = f && strcmp(f, "0") == 0;
	snprintf(target, sizeof(target), "%s", t);
	target_base = strrchr(target, '/') + 1;
}

static bool
tracked(int fd)
{
	return fd >= 0 && fd < MAXFD && fdkind[fd] != FD_NONE;
}

// Is path (as given to open) the watched file?
static bool
is_target(int dirfd, const char *path)
{
	if (target[0] == '\0' || path == NULL)
		return false;
	if (strcmp(path, target) == 0)
		return true;
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	if (strcmp(b, target_base) != 0)
		return false;
	if (path[0] != '/' && dirfd != AT_FDCWD)
		die("openat(%d, \"%s\") relative to a directory descriptor: "
		    "not modelled", dirfd, path);
	char rp[PATH_MAX];
	return realpath(path, rp) && strcmp(rp, target) == 0;
}

static void
full_pwrite(int fd, const void *p, size_t len, off_t off)
{
	const unsigned char *c = p;
	while (len > 0) {
		ssize_t n = REAL(pwrite)(fd, c, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("writing the shadow %s: %s", shadow, strerror(errno));
		c += n;
		len -= (size_t)n;
		off += n;
	}
}

// Makes the shadow a copy of the file as it is now (the first open).
static void
seed(void)
{
	seeded = true;
	shadow_fd = REAL(open)(shadow, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600);
	if (shadow_fd < 0)
		die("cannot create the shadow %s: %s", shadow, strerror(errno));
	int in = REAL(open)(target, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		if (errno != ENOENT)
			die("cannot read %s: %s", target, strerror(errno));
		return;
	}
	char buf[65536];
	off_t off = 0;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("reading %s: %s", target, strerror(errno));
		if (n == 0)
			break;
		full_pwrite(shadow_fd, buf, (size_t)n, off);
		off += n;
	}
	REAL(close)(in);
	if (!shadow_nofsync)
		REAL(fsync)(shadow_fd);
}

// Adds a write of n bytes (gathered from iov) at off to the journal; with
// sync, writes it to the shadow too.
static void
record(const struct iovec *iov, int iovcnt, size_t n, off_t off, bool sync)
{
	struct jent *e = malloc(sizeof(*e) + n);
	if (e == NULL)
		die("out of memory for the journal");
	e->next = NULL;
	e->off = off;
	e->len = n;
	size_t k = 0;
	for (int i = 0; i < iovcnt && k < n; i++) {
		size_t c = iov[i].iov_len < n - k ? iov[i].iov_len : n - k;
		memcpy(e->data + k, iov[i].iov_base, c);
		k += c;
	}
	*jtail = e;
	jtail = &e->next;
	if (sync) {
		full_pwrite(shadow_fd, e->data, n, off);
		if (!shadow_nofsync)
			REAL(fdatasync)(shadow_fd);
	}
}

// The file was synced: everything written so far is on the disk.
static void
apply(void)
{
	if (shadow_fd < 0)
		return;
	struct jent *e = jhead, *next;
	for (; e; e = next) {
		next = e->next;
		if (e->len == TRUNC) {
			if (REAL(ftruncate)(shadow_fd, e->off) != 0)
				die("truncating the shadow: %s", strerror(errno));
		} else {
			full_pwrite(shadow_fd, e->data, e->len, e->off);
		}
		free(e);
	}
	jhead = NULL;
	jtail = &jhead;
	if (!shadow_nofsync)
		REAL(fsync)(shadow_fd);
}

// ------------------------------------------------------------ open, close

static int
opened(int fd, int flags)
{
	if (fd < 0)
		return fd;
	if (fd >= MAXFD)
		die("descriptor %d of %s beyond %d", fd, target, MAXFD);
	if (flags & O_APPEND)
		die("%s opened with O_APPEND: not modelled", target);
	fdkind[fd] = (flags & (O_DSYNC | O_SYNC)) ? FD_SYNC : FD_PLAIN;
	return fd;
}

static int
do_open(int dirfd, const char *path, int flags, mode_t mode, int which)
{
	bool t = is_target(dirfd, path);
	if (!t) {
		switch (which) {
		case 0: return REAL(open)(path, flags, mode);
		case 1: return REAL(open64)(path, flags, mode);
		case 2: return REAL(openat)(dirfd, path, flags, mode);
		default: return REAL(openat64)(dirfd, path, flags, mode);
		}
	}
	if (flags & O_TRUNC)
		die("%s opened with O_TRUNC: not modelled", target);
	pthread_mutex_lock(&mu);
	if (!seeded)
		seed();
	int fd;
	switch (which) {
	case 0: fd = REAL(open)(path, flags, mode); break;
	case 1: fd = REAL(open64)(path, flags, mode); break;
	case 2: fd = REAL(openat)(dirfd, path, flags, mode); break;
	default: fd = REAL(openat64)(dirfd, path, flags, mode); break;
	}
	int e = errno;
	opened(fd, flags);
	pthread_mutex_unlock(&mu);
	errno = e;
	return fd;
}

#define OPEN_MODE(flags, mode)                                             \
	do {                                                               \
		if ((flags) & (O_CREAT | __O_TMPFILE)) {                   \
			va_list ap;                                        \
			va_start(ap, flags);                               \
			mode = (mode_t)va_arg(ap, int);                    \
			va_end(ap);                                        \
		}                                                          \
	} while (0)

int
open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, mode);
	return do_open(AT_FDCWD, path, flags, mode, 0);
}

int
open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, mode);
	return do_open(AT_FDCWD, path, flags, mode, 1);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, mode);
	return do_open(dirfd, path, flags, mode, 2);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, mode);
	return do_open(dirfd, path, flags, mode, 3);
}

int
creat(const char *path, mode_t mode)
{
	if (is_target(AT_FDCWD, path))
		die("creat(%s): truncates; not modelled", path);
	return REAL(creat)(path, mode);
}

int
creat64(const char *path, mode_t mode)
{
	if (is_target(AT_FDCWD, path))
		die("creat64(%s): truncates; not modelled", path);
	return REAL(creat64)(path, mode);
}

int
close(int fd)
{
	if (tracked(fd)) {
		// the page cache keeps what was written: the journal stays
		pthread_mutex_lock(&mu);
		fdkind[fd] = FD_NONE;
		pthread_mutex_unlock(&mu);
	} else if (fd == shadow_fd && fd >= 0) {
		die("the process closes the shadow's descriptor %d", fd);
	}
	return REAL(close)(fd);
}

int
dup(int fd)
{
	if (tracked(fd))
		die("dup(%d) of %s: not modelled", fd, target);
	return REAL(dup)(fd);
}

int
dup2(int fd, int to)
{
	if (tracked(fd) || tracked(to))
		die("dup2(%d, %d) on %s: not modelled", fd, to, target);
	return REAL(dup2)(fd, to);
}

int
dup3(int fd, int to, int flags)
{
	if (tracked(fd) || tracked(to))
		die("dup3(%d, %d) on %s: not modelled", fd, to, target);
	return REAL(dup3)(fd, to, flags);
}

// ------------------------------------------------------------ writes

// The write of n bytes at off through fd returned: record it.
static void
wrote(int fd, const struct iovec *iov, int iovcnt, ssize_t n, off_t off)
{
	if (n > 0)
		record(iov, iovcnt, (size_t)n, off, fdkind[fd] == FD_SYNC);
}

static off_t
cur_off(int fd)
{
	off_t o = lseek(fd, 0, SEEK_CUR);
	if (o < 0)
		die("lseek(%d) on %s: %s", fd, target, strerror(errno));
	return o;
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	if (!tracked(fd))
		return REAL(write)(fd, buf, len);
	pthread_mutex_lock(&mu);
	off_t off = cur_off(fd);
	ssize_t n = REAL(write)(fd, buf, len);
	int e = errno;
	struct iovec v = { (void *)buf, len };
	wrote(fd, &v, 1, n, off);
	pthread_mutex_unlock(&mu);
	errno = e;
	return n;
}

static ssize_t
do_pwrite(int fd, const void *buf, size_t len, off_t off, bool is64)
{
	pthread_mutex_lock(&mu);
	ssize_t n = is64 ? REAL(pwrite64)(fd, buf, len, off) :
	                   REAL(pwrite)(fd, buf, len, off);
	int e = errno;
	struct iovec v = { (void *)buf, len };
	wrote(fd, &v, 1, n, off);
	pthread_mutex_unlock(&mu);
	errno = e;
	return n;
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (!tracked(fd))
		return REAL(pwrite)(fd, buf, len, off);
	return do_pwrite(fd, buf, len, off, false);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	if (!tracked(fd))
		return REAL(pwrite64)(fd, buf, len, off);
	return do_pwrite(fd, buf, len, off, true);
}

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	if (!tracked(fd))
		return REAL(writev)(fd, iov, iovcnt);
	pthread_mutex_lock(&mu);
	off_t off = cur_off(fd);
	ssize_t n = REAL(writev)(fd, iov, iovcnt);
	int e = errno;
	wrote(fd, iov, iovcnt, n, off);
	pthread_mutex_unlock(&mu);
	errno = e;
	return n;
}

static ssize_t
do_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off,
    int which)
{
	pthread_mutex_lock(&mu);
	ssize_t n = which ? REAL(pwritev64)(fd, iov, iovcnt, off) :
	                    REAL(pwritev)(fd, iov, iovcnt, off);
	int e = errno;
	wrote(fd, iov, iovcnt, n, off);
	pthread_mutex_unlock(&mu);
	errno = e;
	return n;
}

ssize_t
pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	if (!tracked(fd))
		return REAL(pwritev)(fd, iov, iovcnt, off);
	return do_pwritev(fd, iov, iovcnt, off, 0);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	if (!tracked(fd))
		return REAL(pwritev64)(fd, iov, iovcnt, off);
	return do_pwritev(fd, iov, iovcnt, off, 1);
}

ssize_t
pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
{
	if (!tracked(fd))
		return REAL(pwritev2)(fd, iov, iovcnt, off, flags);
	if (flags != 0 || off == -1)
		die("pwritev2(%d, flags %#x, offset %lld) on %s: not modelled",
		    fd, (unsigned)flags, (long long)off, target);
	return do_pwritev(fd, iov, iovcnt, off, 0);
}

ssize_t
pwritev64v2(int fd, const struct iovec *iov, int iovcnt, off_t off,
    int flags)
{
	if (!tracked(fd))
		return REAL(pwritev64v2)(fd, iov, iovcnt, off, flags);
	if (flags != 0 || off == -1)
		die("pwritev64v2(%d, flags %#x, offset %lld) on %s: not "
		    "modelled", fd, (unsigned)flags, (long long)off, target);
	return do_pwritev(fd, iov, iovcnt, off, 1);
}

static int
do_ftruncate(int fd, off_t len, bool is64)
{
	pthread_mutex_lock(&mu);
	int rv = is64 ? REAL(ftruncate64)(fd, len) : REAL(ftruncate)(fd, len);
	int e = errno;
	if (rv == 0) {
		struct jent *j = malloc(sizeof(*j));
		if (j == NULL)
			die("out of memory for the journal");
		j->next = NULL;
		j->off = len;
		j->len = TRUNC;
		*jtail = j;
		jtail = &j->next;
		if (fdkind[fd] == FD_SYNC)
			apply(); // a size change through O_SYNC: durable
	}
	pthread_mutex_unlock(&mu);
	errno = e;
	return rv;
}

int
ftruncate(int fd, off_t len)
{
	if (!tracked(fd))
		return REAL(ftruncate)(fd, len);
	return do_ftruncate(fd, len, false);
}

int
ftruncate64(int fd, off_t len)
{
	if (!tracked(fd))
		return REAL(ftruncate64)(fd, len);
	return do_ftruncate(fd, len, true);
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
	if (tracked(fd))
		die("fallocate on %s: not modelled", target);
	return REAL(fallocate)(fd, mode, off, len);
}

int
fallocate64(int fd, int mode, off_t off, off_t len)
{
	if (tracked(fd))
		die("fallocate64 on %s: not modelled", target);
	return REAL(fallocate64)(fd, mode, off, len);
}

int
posix_fallocate(int fd, off_t off, off_t len)
{
	if (tracked(fd))
		die("posix_fallocate on %s: not modelled", target);
	return REAL(posix_fallocate)(fd, off, len);
}

int
posix_fallocate64(int fd, off_t off, off_t len)
{
	if (tracked(fd))
		die("posix_fallocate64 on %s: not modelled", target);
	return REAL(posix_fallocate64)(fd, off, len);
}

ssize_t
copy_file_range(int in, off_t *inoff, int out, off_t *outoff, size_t len,
    unsigned flags)
{
	if (tracked(out))
		die("copy_file_range into %s: not modelled", target);
	return REAL(copy_file_range)(in, inoff, out, outoff, len, flags);
}

// ------------------------------------------------------------ syncs

// A sync of the file: the journal becomes durable once the real call
// succeeded.
static int
synced(int rv)
{
	int e = errno;
	if (rv == 0) {
		pthread_mutex_lock(&mu);
		apply();
		pthread_mutex_unlock(&mu);
	}
	errno = e;
	return rv;
}

int
fsync(int fd)
{
	if (!tracked(fd))
		return REAL(fsync)(fd);
	return synced(REAL(fsync)(fd));
}

int
fdatasync(int fd)
{
	if (!tracked(fd))
		return REAL(fdatasync)(fd);
	return synced(REAL(fdatasync)(fd));
}

int
syncfs(int fd)
{
	return synced(REAL(syncfs)(fd));
}

void
sync(void)
{
	REAL(sync)();
	synced(0);
}

int
sync_file_range(int fd, off_t off, off_t len, unsigned flags)
{
	// starts or waits for write-back, but is no durability promise
	// (no metadata, no disk cache flush): not modelled
	if (tracked(fd))
		die("sync_file_range on %s: not modelled", target);
	return REAL(sync_file_range)(fd, off, len, flags);
}

static bool
in_map(const void *addr, size_t len)
{
	const char *a = addr;
	for (int i = 0; i < MAXMAP; i++)
		if (maps[i].addr && a < maps[i].addr + maps[i].len &&
		    maps[i].addr < a + len)
			return true;
	return false;
}

int
msync(void *addr, size_t len, int flags)
{
	int rv = REAL(msync)(addr, len, flags);
	if ((flags & MS_SYNC) && target[0] && in_map(addr, len))
		return synced(rv);
	return rv;
}

static void *
mapped(void *p, size_t len, int prot, int flags, int fd)
{
	if (p == MAP_FAILED || !tracked(fd))
		return p;
	if ((prot & PROT_WRITE) && (flags & MAP_SHARED))
		die("a writable shared mapping of %s (MDB_WRITEMAP?): writes "
		    "through memory are not modelled", target);
	pthread_mutex_lock(&mu);
	int i;
	for (i = 0; i < MAXMAP && maps[i].addr; i++)
		;
	if (i == MAXMAP)
		die("more than %d mappings of %s", MAXMAP, target);
	maps[i].addr = p;
	maps[i].len = len;
	pthread_mutex_unlock(&mu);
	return p;
}

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mapped(REAL(mmap)(addr, len, prot, flags, fd, off), len, prot,
	    flags, fd);
}

void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mapped(REAL(mmap64)(addr, len, prot, flags, fd, off), len,
	    prot, flags, fd);
}

int
munmap(void *addr, size_t len)
{
	if (target[0]) {
		pthread_mutex_lock(&mu);
		for (int i = 0; i < MAXMAP; i++)
			if (maps[i].addr == addr)
				maps[i].addr = NULL;
		pthread_mutex_unlock(&mu);
	}
	return REAL(munmap)(addr, len);
}
