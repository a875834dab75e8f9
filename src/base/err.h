/* err.h: errors as values. A function that can fail returns -1 (or NULL) and fills an
 * err_t with a code from the Google/Sinch error model and a human message; the HTTP layer
 * turns that into {"error":{"code","message","status","details"}}. Owns no memory. */
#ifndef PARLEY_BASE_ERR_H
#define PARLEY_BASE_ERR_H

#include <stdarg.h>

typedef enum {
    ERR_OK = 0,
    ERR_INVALID_ARGUMENT,    /* 400 */
    ERR_UNAUTHENTICATED,     /* 401 */
    ERR_PERMISSION_DENIED,   /* 403 */
    ERR_NOT_FOUND,           /* 404 */
    ERR_METHOD,              /* 405, status UNIMPLEMENTED (method not allowed on this path) */
    ERR_ALREADY_EXISTS,      /* 409 */
    ERR_ABORTED,             /* 409, concurrency conflict (stale rev, lost race) */
    ERR_TOO_LARGE,           /* 413, status INVALID_ARGUMENT */
    ERR_MEDIA_TYPE,          /* 415, status INVALID_ARGUMENT */
    ERR_FAILED_PRECONDITION, /* 400 */
    ERR_RESOURCE_EXHAUSTED,  /* 429 */
    ERR_INTERNAL,            /* 500 */
    ERR_UNIMPLEMENTED,       /* 501 */
    ERR_UNAVAILABLE,         /* 503 */
    ERR__COUNT
} err_code_t;

typedef struct {
    err_code_t code;
    char message[480];
} err_t;

/* Fill *e (if not NULL) and return -1, so callers can write `return err_set(e, ...)`. */
int err_set(err_t *e, err_code_t code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int err_setv(err_t *e, err_code_t code, const char *fmt, va_list ap);
void err_clear(err_t *e);

int err_http_status(err_code_t code);
const char *err_status_name(err_code_t code);

#endif
