/* walbuf.h: the "parley" SQLite VFS, the default (unix) VFS with the WAL writes of each
 * transaction gathered into one write (walbuf.c says how, and why it is as durable). */
#ifndef PARLEY_STORE_WALBUF_H
#define PARLEY_STORE_WALBUF_H

#include <stdint.h>

#define STORE_WALBUF_VFS "parley"

/* Registers the VFS once; its name for sqlite3_open_v2, or NULL when the default VFS is not
 * one it can wrap (then the store opens with the default). */
const char *store_walbuf_vfs(void);

/* The WAL writes that reached the file system since the process started (a gathered run
 * counts once), for store_wal_stats. */
uint64_t store_walbuf_writes(void);

#endif
