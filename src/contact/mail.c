/* mail.c: plain-text mail over SMTP with libcurl (people.h), for invitation links. One
 * message per call; the caller decides what to do when the server refuses. */
#include "contact/people.h"
#include "base/buf.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *data;
    size_t len, off;
} mail_src_t;

static size_t mail_read(char *ptr, size_t size, size_t nmemb, void *ud)
{
    mail_src_t *m = ud;
    size_t n = size * nmemb, left = m->len - m->off;
    if (n > left) n = left;
    memcpy(ptr, m->data + m->off, n);
    m->off += n;
    return n;
}

/* Header values must not smuggle extra headers in. */
static int header_safe(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

int contact_mail_send(const contact_smtp_t *smtp, const char *to, const char *subject,
                      const char *body, err_t *e)
{
    if (!smtp->host || !*smtp->host)
        return err_set(e, ERR_FAILED_PRECONDITION, "no mail server configured (smtp.host)");
    if (!header_safe(to) || !header_safe(subject) || !header_safe(smtp->from))
        return err_set(e, ERR_INVALID_ARGUMENT, "mail header contains a line break");
    char date[64], url[320], rcpt[160], from[300];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    buf_t msg;
    buf_init(&msg);
    buf_printf(&msg,
               "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n\r\n",
               smtp->from, to, subject, date);
    /* Body lines end in CRLF; a line starting with '.' is dot-stuffed by libcurl. */
    for (const char *p = body; *p; p++) {
        if (*p == '\n' && (p == body || p[-1] != '\r')) buf_puts(&msg, "\r");
        buf_append(&msg, p, 1);
    }
    buf_puts(&msg, "\r\n");
    snprintf(url, sizeof url, "%s://%s:%d", smtp->port == 465 ? "smtps" : "smtp", smtp->host,
             smtp->port);
    snprintf(rcpt, sizeof rcpt, "<%s>", to);
    snprintf(from, sizeof from, "<%s>", smtp->from);
    CURL *c = curl_easy_init();
    if (!c) {
        buf_free(&msg);
        return err_set(e, ERR_INTERNAL, "curl_easy_init failed");
    }
    struct curl_slist *rcpts = curl_slist_append(NULL, rcpt);
    mail_src_t src = {msg.data, msg.len, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, mail_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &src);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (smtp->user && *smtp->user) {
        curl_easy_setopt(c, CURLOPT_USERNAME, smtp->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, smtp->password ? smtp->password : "");
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(rcpts);
    curl_easy_cleanup(c);
    buf_free(&msg);
    if (rc != CURLE_OK)
        return err_set(e, ERR_UNAVAILABLE, "sending mail via %s failed: %s", url,
                       curl_easy_strerror(rc));
    return 0;
}
