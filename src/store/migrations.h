/* migrations.h: the SQL migrations compiled into the binary (generated from
 * src/store/migrations/NNN_name.sql by cmake/embed_sql.cmake). */
#ifndef PARLEY_STORE_MIGRATIONS_H
#define PARLEY_STORE_MIGRATIONS_H

typedef struct {
    int version;
    const char *name;
    const char *sql;
} store_migration_t;

extern const store_migration_t store_migrations[];
extern const int store_migration_count;

#endif
