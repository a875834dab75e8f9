/* backup.c: backups and restore. Copies are taken through store_backup (one consistent
 * snapshot while writers go on); automatic ones land in DATA_DIR/backups as
 * parley-YYYYMMDDTHHMMSSZ.db, the newest backup.keep kept. A restore checks the file
 * (integrity, schema version) before it touches anything, and refuses while a server
 * holds the data dir's lock (DATA_DIR/serve.lock, flock). */
#define _GNU_SOURCE
#include "privacy/privacy_internal.h"
#include "base/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BACKUP_PREFIX "parley-"
#define BACKUP_SUFFIX ".db"

int privacy_backup(store_t *s, const char *path, err_t *e)
{
    return store_backup(s, path, e);
}

static int is_backup(const char *name)
{
    size_t n = strlen(name);
    return n == strlen(BACKUP_PREFIX "YYYYMMDDTHHMMSSZ" BACKUP_SUFFIX) &&
           strncmp(name, BACKUP_PREFIX, strlen(BACKUP_PREFIX)) == 0 &&
           strcmp(name + n - strlen(BACKUP_SUFFIX), BACKUP_SUFFIX) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of automatic backups, oldest first (the names sort by time). */
static char **list_backups(const char *dir, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_backup(de->d_name)) continue;
        names = xrealloc(names, (size_t)(*n + 1) * sizeof *names);
        names[(*n)++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (*n) qsort(names, (size_t)*n, sizeof *names, cmp_str);
    return names;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int64_t privacy_backup_newest_ms(const char *data_dir)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/backups", data_dir);
    int n;
    char **names = list_backups(dir, &n);
    int64_t ms = 0;
    if (n > 0) {
        struct tm tm = {0};
        const char *p = names[n - 1] + strlen(BACKUP_PREFIX);
        if (sscanf(p, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec) == 6) {
            tm.tm_year -= 1900;
            tm.tm_mon -= 1;
            ms = (int64_t)timegm(&tm) * 1000;
        }
    }
    free_names(names, n);
    return ms;
}

int privacy_backup_rotate(store_t *s, const char *data_dir, int keep, int64_t now_ms, err_t *e)
{
    char dir[4200], path[4400];
    snprintf(dir, sizeof dir, "%s/backups", data_dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return err_set(e, ERR_INVALID_ARGUMENT, "cannot create %s: %s", dir, strerror(errno));
    time_t secs = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char name[64];
    strftime(name, sizeof name, BACKUP_PREFIX "%Y%m%dT%H%M%SZ" BACKUP_SUFFIX, &tm);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (store_backup(s, path, e) < 0) return -1;
    log_kv(LOG_INFO, "backup taken", "path", path);
    int n;
    char **names = list_backups(dir, &n);
    for (int i = 0; i < n - keep; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (unlink(path) == 0) log_kv(LOG_INFO, "old backup removed", "path", path);
    }
    free_names(names, n);
    return 0;
}

int privacy_lock_data_dir(const char *data_dir, int *fd_out, err_t *e)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/serve.lock", data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return err_set(e, ERR_INTERNAL, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        return err_set(e, ERR_FAILED_PRECONDITION,
                       "a parley server is running on %s (it holds %s): stop it first", data_dir,
                       path);
    }
    *fd_out = fd;
    return 0;
}

static int copy_file(const char *from, const char *to, err_t *e)
{
    int in = open(from, O_RDONLY);
    if (in < 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "cannot read %s: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0) {
        close(in);
        return err_set(e, ERR_INVALID_ARGUMENT, "cannot write %s: %s", to, strerror(errno));
    }
    char buf[65536];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) {
            rc = -1;
            break;
        }
    if (n < 0 || fsync(out) < 0) rc = -1;
    if (rc < 0) err_set(e, ERR_INTERNAL, "cannot copy %s to %s: %s", from, to, strerror(errno));
    close(in);
    close(out);
    return rc;
}

int privacy_restore(const char *from, const char *data_dir, err_t *e)
{
    int version;
    if (store_check_file(from, &version, e) < 0) return -1;
    if (mkdir(data_dir, 0700) < 0 && errno != EEXIST)
        return err_set(e, ERR_INVALID_ARGUMENT, "cannot create data dir %s: %s", data_dir,
                       strerror(errno));
    int lock = -1;
    if (privacy_lock_data_dir(data_dir, &lock, e) < 0) return -1;
    char db[4200], tmp[4300], old[4300], side[4300];
    snprintf(db, sizeof db, "%s/parley.db", data_dir);
    snprintf(tmp, sizeof tmp, "%s.restore-tmp", db);
    snprintf(old, sizeof old, "%s.before-restore", db);
    int rc = copy_file(from, tmp, e);
    /* Check the copy too: the file we install is the file we checked. */
    if (rc == 0 && store_check_file(tmp, &version, e) < 0) rc = -1;
    if (rc == 0) {
        /* The old WAL belongs to the old file: fold it in before moving it aside. */
        struct stat sb;
        if (stat(db, &sb) == 0) {
            store_opts_t so = {0};
            store_t *s = store_open(data_dir, &so, e);
            if (!s) rc = -1;
            store_close(s);
            if (rc == 0 && rename(db, old) < 0)
                rc = err_set(e, ERR_INTERNAL, "cannot move %s aside: %s", db, strerror(errno));
        }
    }
    for (int i = 0; rc == 0 && i < 2; i++) {
        snprintf(side, sizeof side, "%s%s", db, i ? "-shm" : "-wal");
        if (unlink(side) < 0 && errno != ENOENT)
            rc = err_set(e, ERR_INTERNAL, "cannot remove %s: %s", side, strerror(errno));
    }
    if (rc == 0 && rename(tmp, db) < 0)
        rc = err_set(e, ERR_INTERNAL, "cannot install %s: %s", db, strerror(errno));
    if (rc < 0) unlink(tmp);
    close(lock);
    return rc;
}
