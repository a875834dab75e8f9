/* err.c: the error model's code table (HTTP status and Google status name per code). */
#include "base/err.h"

#include <stdio.h>

static const struct {
    int http;
    const char *status;
} err_table[ERR__COUNT] = {
    [ERR_OK] = {200, "OK"},
    [ERR_INVALID_ARGUMENT] = {400, "INVALID_ARGUMENT"},
    [ERR_UNAUTHENTICATED] = {401, "UNAUTHENTICATED"},
    [ERR_PERMISSION_DENIED] = {403, "PERMISSION_DENIED"},
    [ERR_NOT_FOUND] = {404, "NOT_FOUND"},
    [ERR_METHOD] = {405, "UNIMPLEMENTED"},
    [ERR_ALREADY_EXISTS] = {409, "ALREADY_EXISTS"},
    [ERR_ABORTED] = {409, "ABORTED"},
    [ERR_TOO_LARGE] = {413, "INVALID_ARGUMENT"},
    [ERR_MEDIA_TYPE] = {415, "INVALID_ARGUMENT"},
    [ERR_FAILED_PRECONDITION] = {400, "FAILED_PRECONDITION"},
    [ERR_RESOURCE_EXHAUSTED] = {429, "RESOURCE_EXHAUSTED"},
    [ERR_INTERNAL] = {500, "INTERNAL"},
    [ERR_UNIMPLEMENTED] = {501, "UNIMPLEMENTED"},
    [ERR_UNAVAILABLE] = {503, "UNAVAILABLE"},
};

int err_setv(err_t *e, err_code_t code, const char *fmt, va_list ap)
{
    if (e) {
        e->code = code;
        vsnprintf(e->message, sizeof e->message, fmt, ap);
    }
    return -1;
}

int err_set(err_t *e, err_code_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_setv(e, code, fmt, ap);
    va_end(ap);
    return -1;
}

void err_clear(err_t *e)
{
    e->code = ERR_OK;
    e->message[0] = '\0';
}

int err_http_status(err_code_t code)
{
    return (code > ERR_OK && code < ERR__COUNT) ? err_table[code].http : 500;
}

const char *err_status_name(err_code_t code)
{
    return (code > ERR_OK && code < ERR__COUNT) ? err_table[code].status : "INTERNAL";
}
