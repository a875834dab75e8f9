/* walbuf.c: the "parley" SQLite VFS (walbuf.h), a shim over the default (unix) VFS that
 * gathers the WAL writes of a transaction into one pwrite.
 *
 * Why: SQLite appends each WAL frame as two writes (its 24-byte header, then the page), so a
 * group commit of ~90 pages was ~180 pwrite calls, a quarter of the writer thread's time on
 * a virtual machine where a syscall is dear. Nothing on the page cache side changes: the same
 * bytes reach the same offsets, before any reader can see them.
 *
 * How: writes to a WAL file that continue the previous one are appended to a buffer; anything
 * else (a write elsewhere, a read, sync, truncate, size, close, releasing a WAL lock) writes
 * the buffer out first.
 * A commit becomes visible to other connections and processes only when SQLite publishes the
 * new WAL-index header, and just before that it calls xShmBarrier on the main database file:
 * the shim writes the buffer out there. So a frame is in the file (in the kernel's page cache,
 * which is what survives kill -9 with synchronous=NORMAL) before anyone can read it and
 * before COMMIT returns.
 *
 * xShmBarrier cannot return an error. So that a full disk cannot make that final write fail,
 * the file's blocks are reserved (fallocate, FALLOC_FL_KEEP_SIZE) when a write is buffered,
 * where an error can still be returned (SQLITE_FULL, and the transaction rolls back). Should
 * the write fail anyway (EIO, or a copy-on-write file system out of space), the process
 * aborts before the commit is published or acknowledged, as PostgreSQL PANICs when it cannot
 * write its log: recovery at the next start drops the unfinished transaction. Where
 * fallocate is not supported, the file is written through as without the shim. */
#define _GNU_SOURCE
#include "store/walbuf.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Buffer at most this much before writing it out (a bigger transaction writes in chunks);
 * reserve the file's blocks this much at a time. */
#define WB_MAX     (4 * 1024 * 1024)
#define WB_RESERVE (1024 * 1024)

typedef struct wb_file wb_file;
struct wb_file {
    sqlite3_file base;
    sqlite3_file *real; /* the underlying VFS's file, allocated right after this struct */
    wb_file *wal;       /* a main database file: its open WAL, if any */
    wb_file *db;        /* a WAL file: its main database file */
    int buffered;       /* a WAL file whose writes are gathered */
    const char *path;   /* a WAL file: its name (SQLite keeps it valid until xClose) */
    int fd;             /* a WAL file: our own descriptor, opened at its first write; or -1 */
    char *buf;
    size_t len, cap;
    sqlite3_int64 off;      /* file offset of buf[0] */
    sqlite3_int64 reserved; /* blocks are allocated below this offset */
};

static sqlite3_vfs wb_vfs;
static sqlite3_vfs *wb_real;
static atomic_uint_fast64_t wb_flushes;

uint64_t store_walbuf_writes(void)
{
    return atomic_load(&wb_flushes);
}

/* A write that reaches the file system (counted for a WAL). */
static int wb_put(wb_file *f, const void *data, int amt, sqlite3_int64 off)
{
    if (f->db) atomic_fetch_add(&wb_flushes, 1);
    return f->real->pMethods->xWrite(f->real, data, amt, off);
}

/* The gathered writes go out through our own descriptor: the unix VFS's xWrite takes at
 * most 128 KiB at a time (it expects a page per call). On failure they stay gathered. */
static int wb_flush(wb_file *f)
{
    const char *p = f->buf;
    size_t n = f->len;
    sqlite3_int64 off = f->off;
    if (!n) return SQLITE_OK;
    atomic_fetch_add(&wb_flushes, 1);
    while (n > 0) {
        ssize_t w = pwrite(f->fd, p, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return w < 0 && errno != ENOSPC && errno != EDQUOT && errno != EFBIG
                       ? SQLITE_IOERR_WRITE
                       : SQLITE_FULL;
        p += w;
        n -= (size_t)w;
        off += w;
    }
    f->len = 0;
    return SQLITE_OK;
}

/* Allocate the file's blocks from off to end, so that writing the buffer out cannot run out
 * of space. 1: done; 0: not supported here (write through from now on); -1: errno says.
 * A write at offset 0 starts the WAL over, after a checkpoint, perhaps after another
 * connection or process cut the file (journal_size_limit) and freed what was reserved: the
 * reservation starts over too (fallocate over allocated blocks is a cheap no-op). */
static int wb_reserve(wb_file *f, sqlite3_int64 off, sqlite3_int64 end)
{
    if (off == 0) f->reserved = 0;
    if (end <= f->reserved) return 1;
    sqlite3_int64 to = (end + WB_RESERVE - 1) / WB_RESERVE * WB_RESERVE;
    struct rlimit fsize; /* fallocate past EOF does not check it; the later write would */
    if (getrlimit(RLIMIT_FSIZE, &fsize) == 0 && fsize.rlim_cur != RLIM_INFINITY &&
        (rlim_t)end > fsize.rlim_cur) {
        errno = EFBIG;
        return -1;
    }
    if (fallocate(f->fd, FALLOC_FL_KEEP_SIZE, f->reserved, to - f->reserved) == 0) {
        f->reserved = to;
        return 1;
    }
    return errno == EOPNOTSUPP || errno == ENOSYS ? 0 : -1;
}

static int wb_close(sqlite3_file *p)
{
    wb_file *f = (wb_file *)p;
    int rc = wb_flush(f);
    if (f->db) f->db->wal = NULL;
    if (f->wal) f->wal->db = NULL;
    if (f->fd >= 0) close(f->fd);
    free(f->buf);
    int rc2 = f->real->pMethods->xClose(f->real);
    return rc != SQLITE_OK ? rc : rc2;
}

static int wb_read(sqlite3_file *p, void *out, int amt, sqlite3_int64 off)
{
    wb_file *f = (wb_file *)p;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, amt, off);
}

static int wb_write(sqlite3_file *p, const void *data, int amt, sqlite3_int64 off)
{
    wb_file *f = (wb_file *)p;
    if (f->buffered && f->fd < 0) {
        f->fd = open(f->path, O_RDWR | O_CLOEXEC);
        f->buffered = f->fd >= 0;
    }
    if (!f->buffered) return wb_put(f, data, amt, off);
    if (f->len && (off != f->off + (sqlite3_int64)f->len || f->len + (size_t)amt > WB_MAX)) {
        int rc = wb_flush(f);
        if (rc != SQLITE_OK) return rc;
    }
    int r = wb_reserve(f, off, off + amt);
    if (r < 0) {
        int full = errno == ENOSPC || errno == EDQUOT || errno == EFBIG;
        int rc = wb_flush(f);
        if (rc != SQLITE_OK) return rc;
        return full ? SQLITE_FULL : SQLITE_IOERR_WRITE;
    }
    if (r == 0 || (size_t)amt > WB_MAX) {
        f->buffered = r != 0;
        int rc = wb_flush(f);
        return rc != SQLITE_OK ? rc : wb_put(f, data, amt, off);
    }
    if (!f->len) f->off = off;
    if (f->len + (size_t)amt > f->cap) {
        size_t cap = f->cap ? f->cap : 64 * 1024;
        while (cap < f->len + (size_t)amt)
            cap *= 2;
        char *b = realloc(f->buf, cap);
        if (!b) {
            int rc = wb_flush(f);
            return rc != SQLITE_OK ? rc : wb_put(f, data, amt, off);
        }
        f->buf = b;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, data, (size_t)amt);
    f->len += (size_t)amt;
    return SQLITE_OK;
}

static int wb_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    wb_file *f = (wb_file *)p;
    int rc = wb_flush(f);
    if (rc != SQLITE_OK) return rc;
    rc = f->real->pMethods->xTruncate(f->real, size);
    if (f->reserved > size) f->reserved = size; /* truncating frees the blocks past it */
    return rc;
}

static int wb_sync(sqlite3_file *p, int flags)
{
    wb_file *f = (wb_file *)p;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int wb_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
    wb_file *f = (wb_file *)p;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int wb_lock(sqlite3_file *p, int lock)
{
    return ((wb_file *)p)->real->pMethods->xLock(((wb_file *)p)->real, lock);
}

static int wb_unlock(sqlite3_file *p, int lock)
{
    return ((wb_file *)p)->real->pMethods->xUnlock(((wb_file *)p)->real, lock);
}

static int wb_check_reserved_lock(sqlite3_file *p, int *out)
{
    return ((wb_file *)p)->real->pMethods->xCheckReservedLock(((wb_file *)p)->real, out);
}

static int wb_file_control(sqlite3_file *p, int op, void *arg)
{
    wb_file *f = (wb_file *)p;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wb_sector_size(sqlite3_file *p)
{
    return ((wb_file *)p)->real->pMethods->xSectorSize(((wb_file *)p)->real);
}

static int wb_device_characteristics(sqlite3_file *p)
{
    return ((wb_file *)p)->real->pMethods->xDeviceCharacteristics(((wb_file *)p)->real);
}

static int wb_shm_map(sqlite3_file *p, int pg, int pgsz, int extend, void volatile **out)
{
    wb_file *f = (wb_file *)p;
    return f->real->pMethods->xShmMap(f->real, pg, pgsz, extend, out);
}

/* Gathered pages go out before a WAL lock is released, as SQLite's own VFS would have
 * written them by then. Releasing the write lock with pages still gathered means their
 * transaction rolled back (a commit wrote them at the barrier): left for later, they would
 * land on frames another writer has committed there meanwhile, so if they cannot be written
 * they are dropped (they are no commit: recovery and readers ignore them). */
static int wb_shm_lock(sqlite3_file *p, int offset, int n, int flags)
{
    wb_file *f = (wb_file *)p;
    if ((flags & SQLITE_SHM_UNLOCK) && f->wal && f->wal->len) {
        int rc = wb_flush(f->wal);
        if (rc != SQLITE_OK) {
            log_kv(LOG_WARN, "store: cannot write gathered WAL pages", "error", sqlite3_errstr(rc));
            if (offset == 0) f->wal->len = 0; /* the write lock (WAL_WRITE_LOCK) */
        }
    }
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

/* The commit point (see the top of this file): the WAL's frames go out before the new
 * WAL-index header can be read. */
static void wb_shm_barrier(sqlite3_file *p)
{
    wb_file *f = (wb_file *)p;
    if (f->wal && f->wal->len) {
        int rc = wb_flush(f->wal);
        if (rc != SQLITE_OK) {
            log_kv(LOG_ERROR, "store: cannot write the WAL at commit, stopping", "error",
                   sqlite3_errstr(rc));
            abort();
        }
    }
    f->real->pMethods->xShmBarrier(f->real);
}

static int wb_shm_unmap(sqlite3_file *p, int del)
{
    return ((wb_file *)p)->real->pMethods->xShmUnmap(((wb_file *)p)->real, del);
}

static int wb_fetch(sqlite3_file *p, sqlite3_int64 off, int amt, void **pp)
{
    wb_file *f = (wb_file *)p;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, off, amt, pp);
}

static int wb_unfetch(sqlite3_file *p, sqlite3_int64 off, void *page)
{
    return ((wb_file *)p)->real->pMethods->xUnfetch(((wb_file *)p)->real, off, page);
}

static const sqlite3_io_methods wb_methods = {
    .iVersion = 3,
    .xClose = wb_close,
    .xRead = wb_read,
    .xWrite = wb_write,
    .xTruncate = wb_truncate,
    .xSync = wb_sync,
    .xFileSize = wb_file_size,
    .xLock = wb_lock,
    .xUnlock = wb_unlock,
    .xCheckReservedLock = wb_check_reserved_lock,
    .xFileControl = wb_file_control,
    .xSectorSize = wb_sector_size,
    .xDeviceCharacteristics = wb_device_characteristics,
    .xShmMap = wb_shm_map,
    .xShmLock = wb_shm_lock,
    .xShmBarrier = wb_shm_barrier,
    .xShmUnmap = wb_shm_unmap,
    .xFetch = wb_fetch,
    .xUnfetch = wb_unfetch,
};

static int wb_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *p, int flags,
                   int *out_flags)
{
    (void)vfs;
    wb_file *f = (wb_file *)p;
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->real = (sqlite3_file *)(f + 1);
    int rc = wb_real->xOpen(wb_real, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) return rc;
    f->base.pMethods = &wb_methods;
    if ((flags & SQLITE_OPEN_WAL) && name && !(flags & SQLITE_OPEN_READONLY)) {
        f->db = (wb_file *)sqlite3_database_file_object(name);
        if (f->db && f->db->base.pMethods == &wb_methods) {
            f->path = name;
            f->buffered = 1;
            f->db->wal = f;
        } else {
            f->db = NULL;
        }
    }
    return SQLITE_OK;
}

#define PASS(name, ...) return wb_real->name(wb_real, __VA_ARGS__)
static int wb_delete(sqlite3_vfs *v, const char *n, int sync)
{
    (void)v;
    PASS(xDelete, n, sync);
}
static int wb_access(sqlite3_vfs *v, const char *n, int flags, int *out)
{
    (void)v;
    PASS(xAccess, n, flags, out);
}
static int wb_full_pathname(sqlite3_vfs *v, const char *n, int size, char *out)
{
    (void)v;
    PASS(xFullPathname, n, size, out);
}
static void *wb_dl_open(sqlite3_vfs *v, const char *n)
{
    (void)v;
    PASS(xDlOpen, n);
}
static void wb_dl_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    wb_real->xDlError(wb_real, n, out);
}
static void (*wb_dl_sym(sqlite3_vfs *v, void *h, const char *n))(void)
{
    (void)v;
    PASS(xDlSym, h, n);
}
static void wb_dl_close(sqlite3_vfs *v, void *h)
{
    (void)v;
    wb_real->xDlClose(wb_real, h);
}
static int wb_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    PASS(xRandomness, n, out);
}
static int wb_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    PASS(xSleep, us);
}
static int wb_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    PASS(xCurrentTime, out);
}
static int wb_get_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    PASS(xGetLastError, n, out);
}
static int wb_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    PASS(xCurrentTimeInt64, out);
}
#undef PASS

static void wb_register(void)
{
    /* The methods above pass on version-3 file methods (shared memory, fetch), which the
     * unix VFS has; on any other default VFS the store opens without the shim. */
    wb_real = sqlite3_vfs_find(NULL);
    if (!wb_real || wb_real->iVersion < 2 || strncmp(wb_real->zName, "unix", 4) != 0) {
        wb_real = NULL;
        return;
    }
    wb_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(wb_file) + wb_real->szOsFile,
        .mxPathname = wb_real->mxPathname,
        .zName = STORE_WALBUF_VFS,
        .xOpen = wb_open,
        .xDelete = wb_delete,
        .xAccess = wb_access,
        .xFullPathname = wb_full_pathname,
        .xDlOpen = wb_dl_open,
        .xDlError = wb_dl_error,
        .xDlSym = wb_dl_sym,
        .xDlClose = wb_dl_close,
        .xRandomness = wb_randomness,
        .xSleep = wb_sleep,
        .xCurrentTime = wb_current_time,
        .xGetLastError = wb_get_last_error,
        .xCurrentTimeInt64 = wb_current_time_int64,
    };
    if (sqlite3_vfs_register(&wb_vfs, 0) != SQLITE_OK) wb_real = NULL;
}

const char *store_walbuf_vfs(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, wb_register);
    return wb_real ? STORE_WALBUF_VFS : NULL;
}
