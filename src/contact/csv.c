/* csv.c: contacts as CSV (gdpr.h): an RFC 4180 reader and writer, the identities cell
 * syntax, and import/export through the convo contact functions (so every change is on
 * the event stream and in the audit log like any other). */
#include "contact/audit.h"
#include "contact/gdpr.h"
#include "convo/contacts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading ---- */

static void add_field(contact_csv_t *t, buf_t *f)
{
    size_t r = t->nrows - 1;
    t->rows[r] = xrealloc(t->rows[r], (t->nfields[r] + 1) * sizeof(char *));
    t->rows[r][t->nfields[r]++] = xstrdup(f->data ? f->data : "");
    buf_reset(f);
}

static void add_row(contact_csv_t *t, int line)
{
    t->nrows++;
    t->rows = xrealloc(t->rows, t->nrows * sizeof *t->rows);
    t->nfields = xrealloc(t->nfields, t->nrows * sizeof *t->nfields);
    t->line = xrealloc(t->line, t->nrows * sizeof *t->line);
    t->rows[t->nrows - 1] = NULL;
    t->nfields[t->nrows - 1] = 0;
    t->line[t->nrows - 1] = line;
}

int contact_csv_parse(const char *s, size_t len, contact_csv_t *t, err_t *e)
{
    memset(t, 0, sizeof *t);
    buf_t f;
    buf_init(&f);
    int line = 1;
    size_t i = 0;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) i = 3; /* UTF-8 BOM */
    while (i < len) {
        /* Start of a row: skip blank lines. */
        if (s[i] == '\n' || (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')) {
            i += s[i] == '\r' ? 2 : 1;
            line++;
            continue;
        }
        add_row(t, line);
        for (;;) { /* one field per iteration */
            if (i < len && s[i] == '"') {
                int qline = line;
                i++;
                for (;;) {
                    if (i >= len) {
                        err_set(e, ERR_INVALID_ARGUMENT,
                                "line %d: quoted field never closed (a \" is missing)", qline);
                        goto fail;
                    }
                    if (s[i] == '"') {
                        if (i + 1 < len && s[i + 1] == '"') {
                            buf_append(&f, "\"", 1);
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    if (s[i] == '\n') line++;
                    buf_append(&f, s + i, 1);
                    i++;
                }
                if (i < len && s[i] != ',' && s[i] != '\n' && s[i] != '\r') {
                    err_set(e, ERR_INVALID_ARGUMENT,
                            "line %d: unexpected text after a closing quote (use \"\" for a quote "
                            "inside a quoted field)",
                            line);
                    goto fail;
                }
            } else {
                while (i < len && s[i] != ',' && s[i] != '\n' && s[i] != '\r') {
                    if (s[i] == '"') {
                        err_set(e, ERR_INVALID_ARGUMENT,
                                "line %d: a quote inside an unquoted field (quote the whole field "
                                "and write \"\")",
                                line);
                        goto fail;
                    }
                    if (s[i] == '\0') {
                        err_set(e, ERR_INVALID_ARGUMENT, "line %d: NUL byte", line);
                        goto fail;
                    }
                    buf_append(&f, s + i, 1);
                    i++;
                }
            }
            add_field(t, &f);
            if (i < len && s[i] == ',') {
                i++;
                continue;
            }
            if (i < len && s[i] == '\r') {
                if (i + 1 < len && s[i + 1] == '\n')
                    i++;
                else {
                    err_set(e, ERR_INVALID_ARGUMENT, "line %d: bare CR (use LF or CRLF)", line);
                    goto fail;
                }
            }
            if (i < len) i++; /* the LF */
            line++;
            break;
        }
    }
    buf_free(&f);
    return 0;
fail:
    buf_free(&f);
    contact_csv_free(t);
    return -1;
}

void contact_csv_free(contact_csv_t *t)
{
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t k = 0; k < t->nfields[r]; k++)
            free(t->rows[r][k]);
        free(t->rows[r]);
    }
    free(t->rows);
    free(t->nfields);
    free(t->line);
    memset(t, 0, sizeof *t);
}

/* ---- writing ---- */

void contact_csv_field(buf_t *b, const char *v)
{
    if (!v) v = "";
    if (!strpbrk(v, ",\"\r\n") && v[0] != ' ') {
        buf_puts(b, v);
        return;
    }
    buf_puts(b, "\"");
    for (const char *p = v; *p; p++) {
        if (*p == '"')
            buf_puts(b, "\"\"");
        else
            buf_append(b, p, 1);
    }
    buf_puts(b, "\"");
}

/* ---- identities cell ---- */

static void identity_escaped(buf_t *b, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == ';' || *p == '\\') buf_puts(b, "\\");
        buf_append(b, p, 1);
    }
}

json_t *contact_csv_identities(const char *s, err_t *e)
{
    json_t *arr = json_array();
    buf_t item;
    buf_init(&item);
    int n = 1;
    for (const char *p = s;; p++) {
        if (*p == '\\' && (p[1] == ';' || p[1] == '\\')) {
            buf_append(&item, ++p, 1);
            continue;
        }
        if (*p && *p != ';') {
            buf_append(&item, p, 1);
            continue;
        }
        if (item.len > 0) {
            char *colon = strchr(item.data, ':');
            if (!colon || colon == item.data || !colon[1]) {
                err_set(e, ERR_INVALID_ARGUMENT,
                        "identity %d \"%.64s\": expected CHANNEL:identity or "
                        "CHANNEL@APP_ID:identity",
                        n, item.data);
                goto fail;
            }
            *colon = '\0';
            char *at = strchr(item.data, '@');
            if (at) *at = '\0';
            json_t *o = json_pack("{s:s, s:s}", "channel", item.data, "identity", colon + 1);
            if (at) json_object_set_new(o, "app_id", json_string(at + 1));
            json_array_append_new(arr, o);
            n++;
        }
        buf_reset(&item);
        if (!*p) break;
    }
    buf_free(&item);
    return arr;
fail:
    buf_free(&item);
    json_decref(arr);
    return NULL;
}

/* ---- export ---- */

static const char *const columns[] = {
    "id",       "display_name",       "email", "external_id", "language",
    "metadata", "channel_identities", NULL};

int64_t contact_csv_export(const convo_ctx_t *cx, buf_t *out, err_t *e)
{
    buf_puts(out, CONTACT_CSV_COLUMNS "\r\n");
    char token[64] = "";
    int64_t n = 0;
    if (store_begin(cx->conn, e) < 0) return -1;
    for (;;) {
        json_t *page = convo_contact_list(cx, "1000", token[0] ? token : NULL, NULL, NULL, NULL, e);
        if (!page) goto fail;
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(page, "contacts"), i, c)
        {
            for (int k = 0; columns[k + 1]; k++) {
                const char *v = json_string_value(json_object_get(c, columns[k]));
                if (k == 4 && v && strcmp(v, "UNSPECIFIED") == 0) v = "";
                contact_csv_field(out, v);
                buf_puts(out, ",");
            }
            buf_t ids;
            buf_init(&ids);
            size_t j;
            json_t *it;
            json_array_foreach(json_object_get(c, "channel_identities"), j, it)
            {
                const char *app = json_string_value(json_object_get(it, "app_id"));
                buf_printf(&ids, "%s%s%s%s:", j ? ";" : "",
                           json_string_value(json_object_get(it, "channel")),
                           app && *app ? "@" : "", app && *app ? app : "");
                identity_escaped(&ids, json_string_value(json_object_get(it, "identity")));
            }
            contact_csv_field(out, ids.data ? ids.data : "");
            buf_free(&ids);
            buf_puts(out, "\r\n");
            if (contact_audit_write(cx->conn, cx->project_id, cx->actor, "export",
                                    json_string_value(json_object_get(c, "id")), "*", "[exported]",
                                    e) < 0) {
                json_decref(page);
                goto fail;
            }
            n++;
        }
        snprintf(token, sizeof token, "%s",
                 json_string_value(json_object_get(page, "next_page_token")) ?: "");
        json_decref(page);
        if (!token[0]) break;
    }
    if (store_commit(cx->conn, e) < 0) goto fail;
    return n;
fail:
    store_rollback(cx->conn);
    return -1;
}

/* ---- import ---- */

static void row_error(json_t *details, size_t row, int line, const char *column, const char *msg)
{
    json_t *d = json_pack("{s:I, s:i, s:s}", "row", (json_int_t)row, "line", line, "message", msg);
    if (column) json_object_set_new(d, "column", json_string(column));
    json_array_append_new(details, d);
}

json_t *contact_csv_import(const convo_ctx_t *cx, const char *text, size_t len, json_t **details,
                           err_t *e)
{
    *details = json_array();
    contact_csv_t t;
    if (contact_csv_parse(text, len, &t, e) < 0) return NULL;
    int col[7];
    for (int k = 0; k < 7; k++)
        col[k] = -1;
    json_t *result = NULL, *ids = json_array();
    if (t.nrows == 0) {
        err_set(e, ERR_INVALID_ARGUMENT, "empty CSV: the first line must name the columns (%s)",
                CONTACT_CSV_COLUMNS);
        goto out;
    }
    for (size_t f = 0; f < t.nfields[0]; f++) {
        int k = 0;
        while (columns[k] && strcmp(columns[k], t.rows[0][f]) != 0)
            k++;
        if (!columns[k]) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "unknown column \"%.64s\" in the header; columns are %s", t.rows[0][f],
                    CONTACT_CSV_COLUMNS);
            goto out;
        }
        if (col[k] >= 0) {
            err_set(e, ERR_INVALID_ARGUMENT, "column %s appears twice in the header", columns[k]);
            goto out;
        }
        col[k] = (int)f;
    }
    if (store_begin(cx->conn, e) < 0) goto out;
    int64_t created = 0, updated = 0;
    for (size_t r = 1; r < t.nrows; r++) {
        char msg[600];
        if (t.nfields[r] != t.nfields[0]) {
            snprintf(msg, sizeof msg, "has %zu fields, the header has %zu", t.nfields[r],
                     t.nfields[0]);
            row_error(*details, r, t.line[r], NULL, msg);
            continue;
        }
        json_t *body = json_object();
        convo_mask_t mask = {0};
        int bad = 0;
        for (int k = 1; columns[k] && !bad; k++) {
            if (col[k] < 0) continue;
            const char *v = t.rows[r][col[k]];
            if (k == 6) {
                err_t ie;
                json_t *arr = contact_csv_identities(v, &ie);
                if (!arr) {
                    row_error(*details, r, t.line[r], columns[k], ie.message);
                    bad = 1;
                    break;
                }
                json_object_set_new(body, columns[k], arr);
            } else {
                json_object_set_new(body, columns[k],
                                    json_string(k == 4 && !*v ? "UNSPECIFIED" : v));
            }
            mask.path[mask.n++] = columns[k];
        }
        const char *id = col[0] >= 0 ? t.rows[r][col[0]] : "";
        if (!bad) {
            err_t re;
            json_t *c;
            if (*id) {
                c = convo_contact_update(cx, id, body, &mask, &re);
            } else {
                if (!json_object_get(body, "language"))
                    json_object_set_new(body, "language", json_string("UNSPECIFIED"));
                c = convo_contact_create(cx, body, &re);
            }
            if (!c) {
                row_error(*details, r, t.line[r], NULL, re.message);
            } else {
                const char *cid = json_string_value(json_object_get(c, "id"));
                json_array_append_new(ids, json_string(cid));
                snprintf(msg, sizeof msg, "%s from CSV row %zu", *id ? "updated" : "created", r);
                if (contact_audit_write(cx->conn, cx->project_id, cx->actor, "import", cid, "*",
                                        msg, e) < 0) {
                    json_decref(c);
                    json_decref(body);
                    store_rollback(cx->conn);
                    goto out;
                }
                *id ? updated++ : created++;
                json_decref(c);
            }
        }
        json_decref(body);
    }
    if (json_array_size(*details) > 0) {
        store_rollback(cx->conn);
        json_t *first = json_array_get(*details, 0);
        err_set(e, ERR_INVALID_ARGUMENT,
                "%zu of %zu rows are invalid; nothing was imported. First: row %lld (line %lld): "
                "%s",
                json_array_size(*details), t.nrows - 1,
                (long long)json_integer_value(json_object_get(first, "row")),
                (long long)json_integer_value(json_object_get(first, "line")),
                json_string_value(json_object_get(first, "message")));
        goto out;
    }
    if (store_commit(cx->conn, e) < 0) {
        store_rollback(cx->conn);
        goto out;
    }
    result = json_pack("{s:I, s:I, s:O}", "created", (json_int_t)created, "updated",
                       (json_int_t)updated, "contacts", ids);
out:
    json_decref(ids);
    contact_csv_free(&t);
    return result;
}
