/* log.h: one-line structured logs (JSON objects, one per line, on stderr). Each line is
 * written with a single write(2) so lines from different threads never interleave. */
#ifndef PARLEY_BASE_LOG_H
#define PARLEY_BASE_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF } log_level_t;

/* Parse "debug|info|warn|error|off"; returns -1 for anything else. */
int log_level_parse(const char *s, log_level_t *out);
void log_set_level(log_level_t level);
int log_enabled(log_level_t level);

/* log_kv(level, msg, "key", "value", ...): string fields, JSON-escaped (a NULL value is
 * written as null). A key that starts with '#' is written as a raw number:
 * log_kv(LOG_INFO, "x", "#ms", "1.5"). The macro appends the terminating sentinel. */
#define log_kv(level, msg, ...) log_fields((level), (msg), ##__VA_ARGS__, (const char *)NULL)
void log_fields(log_level_t level, const char *msg, ...) __attribute__((sentinel));
/* printf-style message with no extra fields. */
void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
