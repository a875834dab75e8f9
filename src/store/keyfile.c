/* keyfile.c: the data directory's master secret (DATA_DIR/secret.key). Created once with
 * O_EXCL so that concurrent first starts (server and CLI) agree on one key. */
#include "store/store.h"
#include "base/sec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int store_keyfile_load(const char *data_dir, uint8_t key[32], err_t *e)
{
    const char *env = getenv("PARLEY_SECRET_KEY");
    if (env && *env) {
        uint8_t k[40];
        if (sec_b64url_decode(env, k, sizeof k) != 32)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "PARLEY_SECRET_KEY must be 32 bytes in base64url");
        memcpy(key, k, 32);
        return 0;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/secret.key", data_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
        uint8_t fresh[32];
        sec_random(fresh, sizeof fresh);
        int ok = write(fd, fresh, sizeof fresh) == (ssize_t)sizeof fresh && fsync(fd) == 0;
        close(fd);
        if (!ok) {
            unlink(path);
            return err_set(e, ERR_INTERNAL, "cannot write %s: %s", path, strerror(errno));
        }
    } else if (errno != EEXIST) {
        return err_set(e, ERR_INTERNAL, "cannot create %s: %s", path, strerror(errno));
    }
    fd = open(path, O_RDONLY);
    if (fd < 0) return err_set(e, ERR_INTERNAL, "cannot read %s: %s", path, strerror(errno));
    ssize_t n = 0;
    for (int tries = 0; tries < 50; tries++) { /* a concurrent creator may still be writing */
        n = pread(fd, key, 32, 0);
        if (n == 32) break;
        usleep(10000);
    }
    close(fd);
    if (n != 32) return err_set(e, ERR_INTERNAL, "%s is damaged (expected 32 bytes)", path);
    return 0;
}
