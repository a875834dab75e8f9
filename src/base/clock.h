/* clock.h: wall-clock time in milliseconds and RFC 3339 (UTC) formatting and parsing. */
#ifndef PARLEY_BASE_CLOCK_H
#define PARLEY_BASE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t clock_now_ms(void);
/* Monotonic milliseconds, for durations and timeouts. */
int64_t clock_mono_ms(void);
/* Monotonic nanoseconds, for latency measurement. */
int64_t clock_mono_ns(void);
/* "2026-11-21T12:00:00.123Z" (always milliseconds, always Z). Needs 25 bytes. */
void clock_format_rfc3339(int64_t ms, char *out, size_t cap);
/* Parse RFC 3339 with optional fraction and Z or +hh:mm offset; -1 if malformed. */
int clock_parse_rfc3339(const char *s, int64_t *ms_out);

#endif
