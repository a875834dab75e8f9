/* ulid.h: ULIDs (26 Crockford base32 characters: 48-bit ms time + 80 random bits).
 * Generation is monotonic within the process: a later call never sorts before an earlier
 * one, even within one millisecond, which keeps keyset paging stable. */
#ifndef PARLEY_BASE_ULID_H
#define PARLEY_BASE_ULID_H

#include <stdint.h>

#define ULID_LEN 26

/* Writes 26 characters plus NUL into out[27]. */
void ulid_new(char out[ULID_LEN + 1]);
/* Same, at a given time (tests, imports). Monotonicity only holds for ulid_new. */
void ulid_at(int64_t ms, char out[ULID_LEN + 1]);
/* 1 if s is exactly a well-formed ULID (case-insensitive), else 0. */
int ulid_valid(const char *s);
/* Timestamp of a valid ULID in ms. */
int64_t ulid_time_ms(const char *s);

#endif
