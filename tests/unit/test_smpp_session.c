/* test_smpp_session.c: the SMPP client session (channels/smpp.h) against a real SMPP peer:
 * tests/e2e/fixtures/smsc.mjs, an SMSC built on the npm `smpp` package, spawned with node.
 * The fixture logs every PDU it receives as a JSON line on stdout and takes commands on
 * stdin, so each test drives both ends and checks the wire. Tests that need the peer skip
 * (with a message) when node or tests/e2e/node_modules is missing; `make test` installs
 * them, so CI sees the skip count. The repository root comes from PARLEY_SRC, else from
 * __FILE__, else the working directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/ulid.h"
#include "channels/smpp.h"
#include "channels/smpp_pdu.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 8000 /* generous: node start-up under sanitizers */

static char g_fixture[1024];
static const char *g_skip_reason;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- locating node and the fixture ---- */

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int have_node(void)
{
    const char *path = getenv("PATH");
    if (!path) return 0;
    char *dup = strdup(path), *save = NULL;
    int found = 0;
    for (char *dir = strtok_r(dup, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char p[1024];
        if (snprintf(p, sizeof p, "%s/node", dir) < (int)sizeof p && access(p, X_OK) == 0)
            found = 1;
    }
    free(dup);
    return found;
}

static int root_ok(const char *root)
{
    char p[1024];
    int n = snprintf(p, sizeof p, "%s/tests/e2e/fixtures/smsc.mjs", root);
    return n > 0 && n < (int)sizeof p && file_exists(p);
}

static void find_fixture(void)
{
    char root[1024] = "";
    const char *env = getenv("PARLEY_SRC");
    if (env && root_ok(env)) {
        snprintf(root, sizeof root, "%s", env);
    } else {
        const char *suffix = "/tests/unit/test_smpp_session.c";
        const char *f = __FILE__;
        size_t fl = strlen(f), sl = strlen(suffix);
        if (fl > sl && fl - sl < sizeof root && strcmp(f + fl - sl, suffix) == 0) {
            memcpy(root, f, fl - sl);
            root[fl - sl] = '\0';
        }
        if (!root[0] || !root_ok(root)) {
            if (!getcwd(root, sizeof root)) root[0] = '\0';
        }
    }
    if (!root_ok(root)) {
        g_skip_reason = "tests/e2e/fixtures/smsc.mjs not found (set PARLEY_SRC)";
        return;
    }
    char mods[1100];
    int n1 = snprintf(g_fixture, sizeof g_fixture, "%s/tests/e2e/fixtures/smsc.mjs", root);
    int n2 = snprintf(mods, sizeof mods, "%s/tests/e2e/node_modules/smpp/package.json", root);
    if (n1 < 0 || n1 >= (int)sizeof g_fixture || n2 < 0 || n2 >= (int)sizeof mods) {
        g_skip_reason = "repository path too long";
        return;
    }
    if (!have_node())
        g_skip_reason = "node is not installed (run scripts/deps.sh test)";
    else if (!file_exists(mods))
        g_skip_reason = "tests/e2e/node_modules/smpp is missing (run scripts/deps.sh test)";
}

#define NEED_PEER()                                                                                \
    do {                                                                                           \
        if (g_skip_reason) {                                                                       \
            print_message("SKIPPED (SMPP peer unavailable): %s\n", g_skip_reason);                 \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- the SMSC process ---- */

typedef struct {
    json_t *j;
    int taken;
} line_t;

typedef struct {
    pid_t pid;
    int in_fd, out_fd;
    char buf[1 << 16];
    size_t len;
    line_t *lines;
    size_t nlines, cap;
    int port;
} smsc_t;

static void smsc_push(smsc_t *m, json_t *j)
{
    if (m->nlines == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->lines = realloc(m->lines, m->cap * sizeof *m->lines);
    }
    m->lines[m->nlines++] = (line_t){j, 0};
}

/* Read what is available (waiting up to ms) and parse whole lines: 1 if data came, -1 if
 * none within ms, 0 on EOF. */
static int smsc_read(smsc_t *m, int ms)
{
    struct pollfd p = {.fd = m->out_fd, .events = POLLIN};
    int n = poll(&p, 1, ms);
    if (n <= 0) return -1;
    ssize_t r = read(m->out_fd, m->buf + m->len, sizeof m->buf - m->len - 1);
    if (r <= 0) return 0;
    m->len += (size_t)r;
    char *start = m->buf, *nl;
    while ((nl = memchr(start, '\n', (size_t)(m->buf + m->len - start)))) {
        *nl = '\0';
        json_error_t je;
        json_t *j = json_loads(start, 0, &je);
        if (j)
            smsc_push(m, j);
        else
            fprintf(stderr, "smsc: unparsable line: %s\n", start);
        start = nl + 1;
    }
    m->len = (size_t)(m->buf + m->len - start);
    memmove(m->buf, start, m->len);
    return 1;
}

static int line_matches(json_t *j, const char *key, const char *value)
{
    const char *v = json_string_value(json_object_get(j, key));
    return v && strcmp(v, value) == 0;
}

/* The first not-yet-taken line with key == value (marked taken), or NULL after ms. The
 * line stays owned by the smsc. */
static json_t *smsc_take(smsc_t *m, const char *key, const char *value, int ms)
{
    int64_t end = clock_mono_ms() + ms;
    for (;;) {
        for (size_t i = 0; i < m->nlines; i++)
            if (!m->lines[i].taken && line_matches(m->lines[i].j, key, value)) {
                m->lines[i].taken = 1;
                return m->lines[i].j;
            }
        int64_t left = end - clock_mono_ms();
        if (left <= 0) return NULL;
        if (smsc_read(m, (int)left) == 0) return NULL;
    }
}

static size_t smsc_count(smsc_t *m, const char *key, const char *value)
{
    while (smsc_read(m, 50) == 1) {
    }
    size_t n = 0;
    for (size_t i = 0; i < m->nlines; i++)
        if (line_matches(m->lines[i].j, key, value)) n++;
    return n;
}

static void smsc_cmd(smsc_t *m, const char *json)
{
    size_t n = strlen(json);
    if (write(m->in_fd, json, n) != (ssize_t)n || write(m->in_fd, "\n", 1) != 1)
        fail_msg("cannot write to the smsc: %s", strerror(errno));
    /* wait for the acknowledgement so the command is in effect */
    json_error_t je;
    json_t *c = json_loads(json, 0, &je);
    const char *name = json_string_value(json_object_get(c, "cmd"));
    int64_t end = clock_mono_ms() + WAIT_MS;
    int ok = 0;
    while (!ok && clock_mono_ms() < end) {
        for (size_t i = 0; i < m->nlines && !ok; i++) {
            json_t *l = m->lines[i].j;
            if (!m->lines[i].taken && line_matches(l, "event", "done") &&
                line_matches(l, "cmd", name)) {
                m->lines[i].taken = 1;
                ok = 1;
            }
        }
        if (!ok && smsc_read(m, 100) == 0) break;
    }
    json_decref(c);
    if (!ok) fail_msg("smsc did not acknowledge %s", json);
}

static int smsc_start(smsc_t *m, const char *const *extra)
{
    memset(m, 0, sizeof *m);
    m->pid = -1;
    int in[2], out[2];
    if (pipe(in) < 0 || pipe(out) < 0) return -1;
    const char *argv[24];
    int a = 0;
    argv[a++] = "node";
    argv[a++] = g_fixture;
    argv[a++] = "--port";
    argv[a++] = "0";
    argv[a++] = "--system-id";
    argv[a++] = "parley";
    argv[a++] = "--password";
    argv[a++] = "secret";
    for (int i = 0; extra && extra[i] && a < 23; i++)
        argv[a++] = extra[i];
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execvp("node", (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    m->pid = pid;
    m->in_fd = in[1];
    m->out_fd = out[0];
    int64_t end = clock_mono_ms() + 15000;
    while (clock_mono_ms() < end) {
        for (size_t i = 0; i < m->nlines; i++) {
            json_t *port = json_object_get(m->lines[i].j, "port");
            if (json_is_integer(port)) {
                m->lines[i].taken = 1;
                m->port = (int)json_integer_value(port);
                return 0;
            }
        }
        if (smsc_read(m, 200) == 0) break;
    }
    return -1;
}

static void smsc_stop(smsc_t *m)
{
    if (m->pid > 0) {
        close(m->in_fd); /* the fixture exits when stdin closes */
        int status;
        int64_t end = clock_mono_ms() + 5000;
        while (waitpid(m->pid, &status, WNOHANG) == 0) {
            if (clock_mono_ms() > end) {
                kill(m->pid, SIGKILL);
                waitpid(m->pid, &status, 0);
                break;
            }
            sleep_ms(10);
        }
        close(m->out_fd);
        m->pid = -1;
    }
    for (size_t i = 0; i < m->nlines; i++)
        json_decref(m->lines[i].j);
    free(m->lines);
    m->lines = NULL;
    m->nlines = m->cap = 0;
}

/* ---- recording callbacks ---- */

typedef enum { EV_STATE, EV_SUBMITTED, EV_DELIVER, EV_RECEIPT } ev_kind_t;

typedef struct {
    ev_kind_t kind;
    int state;
    uint32_t status;
    int code;
    char *s1, *s2, *s3, *s4;
    int64_t at;
} ev_t;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ev_t ev[512];
    int n;
    int taken[512];
    int deliver_fail; /* on_deliver refuses this many times */
} rec_t;

static char *dup0(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void rec_add(rec_t *r, ev_t e)
{
    pthread_mutex_lock(&r->mu);
    e.at = clock_mono_ms();
    if (r->n < 512) r->ev[r->n++] = e;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void cb_state(void *cls, smpp_session_state_t st, const char *desc)
{
    rec_add(cls, (ev_t){.kind = EV_STATE, .state = st, .s1 = dup0(desc)});
}

static void cb_submitted(void *cls, const char *ref, const char *id, uint32_t status,
                         const char *desc)
{
    rec_add(cls, (ev_t){.kind = EV_SUBMITTED,
                        .status = status,
                        .s1 = dup0(ref),
                        .s2 = dup0(id),
                        .s3 = dup0(desc)});
}

static int cb_deliver(void *cls, const char *from, const char *to, const char *text,
                      const char *pid)
{
    rec_t *r = cls;
    pthread_mutex_lock(&r->mu);
    int refuse = r->deliver_fail > 0;
    if (refuse) r->deliver_fail--;
    pthread_mutex_unlock(&r->mu);
    rec_add(r, (ev_t){.kind = EV_DELIVER,
                      .code = refuse,
                      .s1 = dup0(from),
                      .s2 = dup0(to),
                      .s3 = dup0(text),
                      .s4 = dup0(pid)});
    return refuse ? -1 : 0;
}

static int cb_receipt(void *cls, const char *id, smpp_receipt_status_t status, int err)
{
    rec_add(cls, (ev_t){.kind = EV_RECEIPT, .status = status, .code = err, .s1 = dup0(id)});
    return 0;
}

static const smpp_callbacks_t callbacks = {cb_state, cb_submitted, cb_deliver, cb_receipt};

/* Wait for the first untaken event of kind (and state, for EV_STATE; -1 = any). Returns a
 * copy of the event (strings still owned by the recorder) or fails the test. */
static ev_t rec_wait(rec_t *r, ev_kind_t kind, int state, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    for (;;) {
        for (int i = 0; i < r->n; i++)
            if (!r->taken[i] && r->ev[i].kind == kind && (state < 0 || r->ev[i].state == state)) {
                r->taken[i] = 1;
                ev_t e = r->ev[i];
                pthread_mutex_unlock(&r->mu);
                return e;
            }
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&r->mu);
    fail_msg("timed out waiting for event kind %d state %d", kind, state);
    return (ev_t){0};
}

static int rec_count(rec_t *r, ev_kind_t kind, int state)
{
    pthread_mutex_lock(&r->mu);
    int n = 0;
    for (int i = 0; i < r->n; i++)
        if (r->ev[i].kind == kind && (state < 0 || r->ev[i].state == state)) n++;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static ev_t wait_state(rec_t *r, smpp_session_state_t st)
{
    return rec_wait(r, EV_STATE, (int)st, WAIT_MS);
}

/* ---- per-test context ---- */

typedef struct {
    smsc_t smsc;
    rec_t rec;
    smpp_session_t *s;
    smpp_config_t cfg;
} ctx_t;

static int setup(void **state)
{
    ctx_t *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->rec.mu, NULL);
    pthread_cond_init(&c->rec.cv, NULL);
    c->smsc.pid = -1;
    c->cfg = (smpp_config_t){
        .host = "127.0.0.1",
        .system_id = "parley",
        .password = "secret",
        .source_addr = "Parley",
        .source_ton = 1,
        .source_npi = 1,
        .reconnect_min_ms = 100,
        .reconnect_max_ms = 400,
        .response_timeout_ms = 5000,
    };
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx_t *c = *state;
    smpp_session_stop(c->s);
    smsc_stop(&c->smsc);
    for (int i = 0; i < c->rec.n; i++) {
        free(c->rec.ev[i].s1);
        free(c->rec.ev[i].s2);
        free(c->rec.ev[i].s3);
        free(c->rec.ev[i].s4);
    }
    pthread_mutex_destroy(&c->rec.mu);
    pthread_cond_destroy(&c->rec.cv);
    free(c);
    return 0;
}

/* Start the SMSC (extra args) and a bound session. */
static void start_bound(ctx_t *c, const char *const *extra)
{
    if (smsc_start(&c->smsc, extra) < 0) fail_msg("the SMSC fixture did not start");
    c->cfg.port = c->smsc.port;
    c->s = smpp_session_start(&c->cfg, &callbacks, &c->rec);
    assert_non_null(c->s);
    wait_state(&c->rec, SMPP_SESSION_BOUND);
}

static void submit_ok(ctx_t *c, const char *to, const char *text, const char *ref)
{
    err_t e;
    if (smpp_submit(c->s, to, NULL, text, ref, &e) != 0) fail_msg("submit: %s", e.message);
}

static const char *jstr(json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));
    if (!v) fail_msg("line has no string %s", key);
    return v;
}

static long jint(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    if (!json_is_integer(v)) fail_msg("line has no integer %s", key);
    return (long)json_integer_value(v);
}

static size_t hex2bin(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (; hex[0] && hex[1] && n < cap; hex += 2) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

/* ---- tests ---- */

static void test_bind_and_submit_gsm(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    start_bound(c, NULL);
    ev_t st = rec_wait(&c->rec, EV_STATE, SMPP_SESSION_CONNECTING, 0);
    assert_non_null(strstr(st.s1, "127.0.0.1"));

    json_t *bind = smsc_take(&c->smsc, "pdu", "bind_transceiver", WAIT_MS);
    assert_non_null(bind);
    assert_string_equal(jstr(bind, "system_id"), "parley");
    assert_string_equal(jstr(bind, "password"), "secret");
    assert_int_equal(jint(bind, "interface_version"), 0x34);

    submit_ok(c, "+46701234567",
              "Hello [world] \xe2\x82\xac"
              "5",
              "ref-1");
    json_t *sm = smsc_take(&c->smsc, "pdu", "submit_sm", WAIT_MS);
    assert_non_null(sm);
    assert_string_equal(jstr(sm, "destination_addr"), "46701234567");
    assert_int_equal(jint(sm, "dest_addr_ton"), 1);
    assert_int_equal(jint(sm, "dest_addr_npi"), 1);
    assert_string_equal(jstr(sm, "source_addr"), "Parley");
    assert_int_equal(jint(sm, "source_addr_ton"), 5); /* alphanumeric */
    assert_int_equal(jint(sm, "source_addr_npi"), 0);
    assert_int_equal(jint(sm, "esm_class"), 0);
    assert_int_equal(jint(sm, "data_coding"), 0);
    assert_int_equal(jint(sm, "registered_delivery"), 1);
    assert_string_equal(jstr(sm, "short_message"), "48656c6c6f201b3c776f726c641b3e201b6535");

    ev_t ok = rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
    assert_string_equal(ok.s1, "ref-1");
    assert_string_equal(ok.s2, "smsc-1");
    assert_int_equal(ok.status, 0);
    assert_string_equal(ok.s3, "ESME_ROK");

    /* a numeric sender given per message uses the configured ton/npi */
    err_t e;
    assert_int_equal(smpp_submit(c->s, "4670", "+4611", "x", "ref-2", &e), 0);
    sm = smsc_take(&c->smsc, "pdu", "submit_sm", WAIT_MS);
    assert_non_null(sm);
    assert_string_equal(jstr(sm, "source_addr"), "4611");
    assert_int_equal(jint(sm, "source_addr_ton"), 1);
    assert_int_equal(jint(sm, "source_addr_npi"), 1);
    ok = rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
    assert_string_equal(ok.s2, "smsc-2");
}

static void test_long_ucs2(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    start_bound(c, NULL);
    buf_t t;
    buf_init(&t);
    for (int i = 0; i < 140; i++)
        buf_puts(&t, "\xd0\x96");         /* Ж */
    buf_puts(&t, "\xf0\x9f\x98\x80 end"); /* 140 + 2 + 4 = 146 units: 3 parts */
    submit_ok(c, "46701234567", t.data, "long");

    buf_t joined;
    buf_init(&joined);
    int ref = -1;
    for (int i = 1; i <= 3; i++) {
        json_t *sm = smsc_take(&c->smsc, "pdu", "submit_sm", WAIT_MS);
        assert_non_null(sm);
        assert_int_equal(jint(sm, "esm_class"), 0x40);
        assert_int_equal(jint(sm, "data_coding"), 8);
        uint8_t raw[300];
        size_t n = hex2bin(jstr(sm, "short_message"), raw, sizeof raw);
        assert_true(n > 6 && n <= 140);
        assert_int_equal(raw[0], 5);
        assert_int_equal(raw[1], 0);
        assert_int_equal(raw[2], 3);
        if (ref < 0) ref = raw[3];
        assert_int_equal(raw[3], ref);
        assert_int_equal(raw[4], 3);
        assert_int_equal(raw[5], i);
        smpp_ucs2_to_utf8(raw + 6, n - 6, &joined);
    }
    assert_string_equal(joined.data, t.data);
    ev_t ok = rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
    assert_string_equal(ok.s1, "long");
    assert_string_equal(ok.s2, "smsc-1,smsc-2,smsc-3");
    assert_int_equal(ok.status, 0);

    /* the next concatenated message gets another reference */
    submit_ok(c, "46701234567", t.data, "long2");
    json_t *sm = smsc_take(&c->smsc, "pdu", "submit_sm", WAIT_MS);
    uint8_t raw[300];
    hex2bin(jstr(sm, "short_message"), raw, sizeof raw);
    assert_int_not_equal(raw[3], ref);
    rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
    buf_free(&t);
    buf_free(&joined);
}

static void test_mo_deliver(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    start_bound(c, NULL);
    smsc_cmd(&c->smsc, "{\"cmd\":\"deliver\",\"from\":\"46709999999\",\"to\":\"12345\","
                       "\"text\":\"Hej \xf0\x9f\x98\x80 [x]\"}");
    ev_t d = rec_wait(&c->rec, EV_DELIVER, -1, WAIT_MS);
    assert_string_equal(d.s1, "46709999999");
    assert_string_equal(d.s2, "12345");
    assert_string_equal(d.s3, "Hej \xf0\x9f\x98\x80 [x]");
    assert_true(ulid_valid(d.s4));
    json_t *resp = smsc_take(&c->smsc, "pdu", "deliver_sm_resp", WAIT_MS);
    assert_non_null(resp);
    assert_int_equal(jint(resp, "command_status"), 0);

    /* GSM with the extension table */
    smsc_cmd(&c->smsc, "{\"cmd\":\"deliver\",\"from\":\"1\",\"to\":\"2\","
                       "\"text\":\"5\xe2\x82\xac {ok} \xc3\x84\"}");
    d = rec_wait(&c->rec, EV_DELIVER, -1, WAIT_MS);
    assert_string_equal(d.s3, "5\xe2\x82\xac {ok} \xc3\x84");
    /* Latin-1 */
    smsc_cmd(&c->smsc, "{\"cmd\":\"deliver\",\"from\":\"1\",\"to\":\"2\",\"text\":\"caf\xc3\xa9\","
                       "\"data_coding\":3}");
    d = rec_wait(&c->rec, EV_DELIVER, -1, WAIT_MS);
    assert_string_equal(d.s3, "caf\xc3\xa9");
}

static void test_mo_deliver_refused_is_nacked(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    c->rec.deliver_fail = 1;
    start_bound(c, NULL);
    smsc_cmd(&c->smsc, "{\"cmd\":\"deliver\",\"from\":\"1\",\"to\":\"2\",\"text\":\"x\"}");
    ev_t d = rec_wait(&c->rec, EV_DELIVER, -1, WAIT_MS);
    assert_int_equal(d.code, 1);
    json_t *resp = smsc_take(&c->smsc, "pdu", "deliver_sm_resp", WAIT_MS);
    assert_non_null(resp);
    assert_int_equal(jint(resp, "command_status"), SMPP_ESME_RX_T_APPN);
}

static void test_mo_concatenated(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    start_bound(c, NULL);
    const char *gsm = "This is a long message that the SMSC splits in two parts; it has a "
                      "euro \xe2\x82\xac and braces {} so that escapes cross the middle of the "
                      "text, which is more than 160 septets long in all, for sure, yes.";
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "{\"cmd\":\"deliver_long\",\"from\":\"4670\",\"to\":\"123\",\"text\":\"%s\"}", gsm);
    smsc_cmd(&c->smsc, cmd);
    ev_t d = rec_wait(&c->rec, EV_DELIVER, -1, WAIT_MS);
    assert_string_equal(d.s1, "4670");
    assert_string_equal(d.s3, gsm);

    /* 16-bit reference (IE 0x08), UCS-2 */
    smsc_cmd(&c->smsc, "{\"cmd\":\"deliver_long\",\"from\":\"4670\",\"to\":\"123\",\"udh16\":true,"
                       "\"ref\":4660,\"text\":\"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
                       "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"}");
    d = rec_wait(&c->rec, EV_DELIVER, -1, WAIT_MS);
    assert_string_equal(d.s3, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
                              "\xf0\x9f\x98\x80\xf0\x9f\x98\x80");

    /* sar_* TLVs instead of a UDH */
    smsc_cmd(&c->smsc, "{\"cmd\":\"deliver_long\",\"from\":\"4670\",\"to\":\"123\",\"sar\":true,"
                       "\"text\":\"first half, second half\"}");
    d = rec_wait(&c->rec, EV_DELIVER, -1, WAIT_MS);
    assert_string_equal(d.s3, "first half, second half");
    /* exactly three deliveries, each part acked */
    sleep_ms(100);
    assert_int_equal(rec_count(&c->rec, EV_DELIVER, -1), 3);
    for (int i = 0; i < 6; i++) {
        json_t *resp = smsc_take(&c->smsc, "pdu", "deliver_sm_resp", WAIT_MS);
        assert_non_null(resp);
        assert_int_equal(jint(resp, "command_status"), 0);
    }
}

static void test_mo_reassembly_timeout(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    c->cfg.reassembly_timeout_ms = 300;
    start_bound(c, NULL);
    /* only part 1 of 2 arrives: it is acked at once and, after the timeout, delivered as
     * it is rather than lost */
    smsc_cmd(&c->smsc, "{\"cmd\":\"deliver_long\",\"from\":\"1\",\"to\":\"2\",\"text\":\"abcd\","
                       "\"only\":1}");
    json_t *resp = smsc_take(&c->smsc, "pdu", "deliver_sm_resp", WAIT_MS);
    assert_non_null(resp);
    assert_int_equal(jint(resp, "command_status"), 0);
    int64_t t0 = clock_mono_ms();
    ev_t d = rec_wait(&c->rec, EV_DELIVER, -1, WAIT_MS);
    assert_true(clock_mono_ms() - t0 >= 200);
    assert_string_equal(d.s1, "1");
    assert_string_equal(d.s3, "ab");
    /* the late part 2 alone is another incomplete message, not a crash */
    smsc_cmd(&c->smsc, "{\"cmd\":\"deliver_long\",\"from\":\"1\",\"to\":\"2\",\"text\":\"abcd\","
                       "\"only\":2}");
    d = rec_wait(&c->rec, EV_DELIVER, -1, WAIT_MS);
    assert_string_equal(d.s3, "cd");
}

static void test_receipts(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    const char *extra[] = {"--receipts", NULL};
    start_bound(c, extra);
    submit_ok(c, "46701234567", "receipt please", "r1");
    ev_t ok = rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
    assert_string_equal(ok.s2, "smsc-1");
    ev_t r = rec_wait(&c->rec, EV_RECEIPT, -1, WAIT_MS);
    assert_string_equal(r.s1, "smsc-1");
    assert_int_equal(r.status, SMPP_RECEIPT_DELIVERED);
    assert_int_equal(r.code, 0);
    json_t *resp = smsc_take(&c->smsc, "pdu", "deliver_sm_resp", WAIT_MS);
    assert_non_null(resp);
    assert_int_equal(jint(resp, "command_status"), 0);

    /* a text-only receipt (no TLVs) with a failure */
    smsc_cmd(&c->smsc, "{\"cmd\":\"receipt\",\"id\":\"smsc-77\",\"stat\":\"UNDELIV\","
                       "\"err\":\"011\"}");
    r = rec_wait(&c->rec, EV_RECEIPT, -1, WAIT_MS);
    assert_string_equal(r.s1, "smsc-77");
    assert_int_equal(r.status, SMPP_RECEIPT_FAILED);
    assert_int_equal(r.code, 11);
    smsc_cmd(&c->smsc, "{\"cmd\":\"receipt\",\"id\":\"smsc-78\",\"stat\":\"ENROUTE\","
                       "\"tlv\":true}");
    r = rec_wait(&c->rec, EV_RECEIPT, -1, WAIT_MS);
    assert_int_equal(r.status, SMPP_RECEIPT_QUEUED_ON_CHANNEL);
    assert_int_equal(rec_count(&c->rec, EV_DELIVER, -1), 0); /* receipts are not MO */
}

static void test_wrong_password(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    if (smsc_start(&c->smsc, NULL) < 0) fail_msg("the SMSC fixture did not start");
    c->cfg.port = c->smsc.port;
    c->cfg.password = "wrong";
    c->s = smpp_session_start(&c->cfg, &callbacks, &c->rec);
    assert_non_null(c->s);
    ev_t f = wait_state(&c->rec, SMPP_SESSION_FAILED);
    assert_non_null(strstr(f.s1, "bind refused: ESME_RINVPASWD"));
    /* it keeps trying, with backoff */
    f = wait_state(&c->rec, SMPP_SESSION_FAILED);
    assert_non_null(strstr(f.s1, "ESME_RINVPASWD"));
    assert_int_equal(rec_count(&c->rec, EV_STATE, SMPP_SESSION_BOUND), 0);
    /* submits wait in the queue and are reported when the session stops */
    submit_ok(c, "1", "never sent", "q1");
    smpp_session_stop(c->s);
    c->s = NULL;
    ev_t s = rec_wait(&c->rec, EV_SUBMITTED, -1, 0);
    assert_string_equal(s.s1, "q1");
    assert_int_equal(s.status, SMPP_LOCAL_STOPPED);
    assert_string_equal(s.s2, "");
    wait_state(&c->rec, SMPP_SESSION_STOPPED);
}

static void test_drop_and_reconnect(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    c->cfg.reconnect_min_ms = 300;
    start_bound(c, NULL);
    smsc_cmd(&c->smsc, "{\"cmd\":\"drop\"}");
    ev_t d = wait_state(&c->rec, SMPP_SESSION_DISCONNECTED);
    assert_non_null(strstr(d.s1, "closed"));
    assert_non_null(strstr(d.s1, "reconnecting in"));
    /* queued during the outage, delivered after the reconnect */
    submit_ok(c, "46701234567", "after the outage", "late");
    assert_int_equal(rec_count(&c->rec, EV_STATE, SMPP_SESSION_BOUND), 1);
    wait_state(&c->rec, SMPP_SESSION_BOUND);
    json_t *sm = smsc_take(&c->smsc, "pdu", "submit_sm", WAIT_MS);
    assert_non_null(sm);
    assert_string_equal(jstr(sm, "short_message"), "616674657220746865206f7574616765");
    ev_t ok = rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
    assert_string_equal(ok.s1, "late");
    assert_int_equal(ok.status, 0);
    assert_int_equal(smsc_count(&c->smsc, "event", "bound"), 2);
}

static void test_inflight_resent_after_drop(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    start_bound(c, NULL);
    smsc_cmd(&c->smsc, "{\"cmd\":\"hold\"}");
    submit_ok(c, "46701234567", "in flight", "f1");
    assert_non_null(smsc_take(&c->smsc, "pdu", "submit_sm", WAIT_MS));
    smsc_cmd(&c->smsc, "{\"cmd\":\"drop\"}");
    wait_state(&c->rec, SMPP_SESSION_DISCONNECTED);
    smsc_cmd(&c->smsc, "{\"cmd\":\"release\"}"); /* the held answer goes nowhere */
    wait_state(&c->rec, SMPP_SESSION_BOUND);
    json_t *again = smsc_take(&c->smsc, "pdu", "submit_sm", WAIT_MS);
    assert_non_null(again);
    assert_string_equal(jstr(again, "short_message"), "696e20666c69676874");
    ev_t ok = rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
    assert_string_equal(ok.s1, "f1");
    assert_int_equal(ok.status, 0);
    assert_string_equal(ok.s2, "smsc-2"); /* the answer for smsc-1 never arrived */
    assert_int_equal(rec_count(&c->rec, EV_SUBMITTED, -1), 1);
}

static void test_reject_next(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    start_bound(c, NULL);
    smsc_cmd(&c->smsc, "{\"cmd\":\"reject_next\",\"status\":88}");
    submit_ok(c, "46701234567", "throttled", "t1");
    ev_t r = rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
    assert_string_equal(r.s1, "t1");
    assert_int_equal(r.status, SMPP_ESME_RTHROTTLED);
    assert_string_equal(r.s3, "ESME_RTHROTTLED");
    assert_string_equal(r.s2, "");
    /* the session carries on */
    submit_ok(c, "46701234567", "fine", "t2");
    r = rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
    assert_string_equal(r.s1, "t2");
    assert_int_equal(r.status, 0);

    /* a failing part fails the whole message: the rest is not sent */
    smsc_cmd(&c->smsc, "{\"cmd\":\"reject_next\",\"status\":20}");
    char *longtext = calloc(1, 400);
    memset(longtext, 'z', 399);
    submit_ok(c, "46701234567", longtext, "t3");
    r = rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
    assert_string_equal(r.s1, "t3");
    assert_int_equal(r.status, SMPP_ESME_RMSGQFUL);
    free(longtext);
}

static void test_window_and_hold(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    c->cfg.window = 2;
    start_bound(c, NULL);
    smsc_cmd(&c->smsc, "{\"cmd\":\"hold\"}");
    for (int i = 0; i < 5; i++) {
        char ref[8];
        snprintf(ref, sizeof ref, "w%d", i);
        submit_ok(c, "46701234567", "windowed", ref);
    }
    assert_non_null(smsc_take(&c->smsc, "pdu", "submit_sm", WAIT_MS));
    assert_non_null(smsc_take(&c->smsc, "pdu", "submit_sm", WAIT_MS));
    assert_null(smsc_take(&c->smsc, "pdu", "submit_sm", 400)); /* the window is full */
    smsc_cmd(&c->smsc, "{\"cmd\":\"release\"}");
    for (int i = 0; i < 3; i++)
        assert_non_null(smsc_take(&c->smsc, "pdu", "submit_sm", WAIT_MS));
    for (int i = 0; i < 5; i++) {
        ev_t r = rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
        char ref[8];
        snprintf(ref, sizeof ref, "w%d", i);
        assert_string_equal(r.s1, ref); /* FIFO */
        assert_int_equal(r.status, 0);
    }
}

static void test_throughput(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    c->cfg.throughput = 20; /* one every 50 ms */
    start_bound(c, NULL);
    for (int i = 0; i < 6; i++)
        submit_ok(c, "46701234567", "paced", "p");
    long first = 0, last = 0;
    for (int i = 0; i < 6; i++) {
        json_t *sm = smsc_take(&c->smsc, "pdu", "submit_sm", WAIT_MS);
        assert_non_null(sm);
        if (i == 0) first = jint(sm, "t");
        last = jint(sm, "t");
    }
    long span = last - first;
    if (span < 200) fail_msg("6 messages at 20/s took %ld ms, expected >= 250", span);
    for (int i = 0; i < 6; i++)
        rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
}

static void test_enquire_link_and_dead_link(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    c->cfg.enquire_link_interval_ms = 200;
    c->cfg.enquire_link_timeout_ms = 400;
    start_bound(c, NULL);
    assert_non_null(smsc_take(&c->smsc, "pdu", "enquire_link", WAIT_MS));
    assert_non_null(smsc_take(&c->smsc, "pdu", "enquire_link", WAIT_MS));
    assert_int_equal(rec_count(&c->rec, EV_STATE, SMPP_SESSION_DISCONNECTED), 0);
    /* the SMSC goes silent: no enquire_link_resp, the link is declared dead */
    smsc_cmd(&c->smsc, "{\"cmd\":\"mute\"}");
    ev_t d = wait_state(&c->rec, SMPP_SESSION_DISCONNECTED);
    assert_non_null(strstr(d.s1, "dead link"));
    wait_state(&c->rec, SMPP_SESSION_BOUND); /* a fresh connection is not muted */
}

static void test_smsc_unbind(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    start_bound(c, NULL);
    smsc_cmd(&c->smsc, "{\"cmd\":\"unbind\"}");
    assert_non_null(smsc_take(&c->smsc, "pdu", "unbind_resp", WAIT_MS));
    ev_t d = wait_state(&c->rec, SMPP_SESSION_DISCONNECTED);
    assert_non_null(strstr(d.s1, "unbound by the SMSC"));
    wait_state(&c->rec, SMPP_SESSION_BOUND);
}

static void test_stop_unbinds(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    start_bound(c, NULL);
    submit_ok(c, "46701234567", "last words", "s1");
    rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
    int64_t t0 = clock_mono_ms();
    smpp_session_stop(c->s);
    c->s = NULL;
    assert_true(clock_mono_ms() - t0 < 3000);
    assert_non_null(smsc_take(&c->smsc, "pdu", "unbind", WAIT_MS));
    assert_non_null(smsc_take(&c->smsc, "event", "closed", WAIT_MS));
    ev_t st = wait_state(&c->rec, SMPP_SESSION_STOPPED);
    assert_string_equal(st.s1, "stopped");
}

/* ---- no peer needed ---- */

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd); /* nothing listens there now */
    return ntohs(a.sin_port);
}

static void test_queue_full_and_stop(void **state)
{
    ctx_t *c = *state;
    c->cfg.port = closed_port();
    c->cfg.queue_size = 2;
    c->s = smpp_session_start(&c->cfg, &callbacks, &c->rec);
    assert_non_null(c->s);
    ev_t d = wait_state(&c->rec, SMPP_SESSION_DISCONNECTED);
    assert_non_null(strstr(d.s1, "connect failed"));
    err_t e;
    assert_int_equal(smpp_submit(c->s, "1", NULL, "a", "a", &e), 0);
    assert_int_equal(smpp_submit(c->s, "2", NULL, "b", "b", &e), 0);
    assert_int_equal(smpp_submit(c->s, "3", NULL, "c", "c", &e), -1);
    assert_int_equal(e.code, ERR_RESOURCE_EXHAUSTED);
    /* the backoff grows: 100, 200, 400 (+-25%) */
    wait_state(&c->rec, SMPP_SESSION_DISCONNECTED);
    ev_t d3 = wait_state(&c->rec, SMPP_SESSION_DISCONNECTED);
    assert_non_null(strstr(d3.s1, "reconnecting in"));
    long ms = strtol(strstr(d3.s1, "reconnecting in") + 16, NULL, 10);
    assert_true(ms >= 300 && ms <= 500);
    smpp_session_stop(c->s);
    c->s = NULL;
    ev_t a = rec_wait(&c->rec, EV_SUBMITTED, -1, 0);
    ev_t b = rec_wait(&c->rec, EV_SUBMITTED, -1, 0);
    assert_string_equal(a.s1, "a");
    assert_string_equal(b.s1, "b");
    assert_int_equal(a.status, SMPP_LOCAL_STOPPED);
    assert_int_equal(b.status, SMPP_LOCAL_STOPPED);
}

static void test_submit_validation(void **state)
{
    ctx_t *c = *state;
    c->cfg.port = closed_port();
    c->s = smpp_session_start(&c->cfg, &callbacks, &c->rec);
    assert_non_null(c->s);
    err_t e;
    assert_int_equal(smpp_submit(c->s, "abc", NULL, "x", "r", &e), -1);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_int_equal(smpp_submit(c->s, "", NULL, "x", "r", &e), -1);
    assert_int_equal(smpp_submit(c->s, "123456789012345678901", NULL, "x", "r", &e), -1);
    assert_int_equal(smpp_submit(c->s, "1", "123456789012345678901", "x", "r", &e), -1);
    assert_int_equal(smpp_submit(c->s, "1", NULL, "\xc3(", "r", &e), -1);
    assert_non_null(strstr(e.message, "UTF-8"));
    assert_int_equal(smpp_submit(c->s, "1", NULL, NULL, "r", &e), -1);

    smpp_config_t bad = c->cfg;
    bad.host = NULL;
    assert_int_equal(smpp_config_check(&bad, &e), -1);
    assert_null(smpp_session_start(&bad, &callbacks, &c->rec));
    bad = c->cfg;
    bad.password = "123456789";
    assert_int_equal(smpp_config_check(&bad, &e), -1);
    assert_non_null(strstr(e.message, "password"));
    bad = c->cfg;
    bad.port = 0;
    assert_int_equal(smpp_config_check(&bad, &e), -1);
    smpp_session_stop(NULL);
}

/* Many threads submitting at once while the session works (for ASan/TSan/helgrind). */
typedef struct {
    smpp_session_t *s;
    int id;
} submitter_t;

static void *submitter(void *arg)
{
    submitter_t *t = arg;
    for (int i = 0; i < 10; i++) {
        char ref[32];
        snprintf(ref, sizeof ref, "c%d-%d", t->id, i);
        err_t e;
        if (smpp_submit(t->s, "46701234567", NULL, "concurrent", ref, &e) != 0) return "fail";
    }
    return NULL;
}

static void test_concurrent_submit(void **state)
{
    NEED_PEER();
    ctx_t *c = *state;
    c->cfg.window = 5;
    start_bound(c, NULL);
    pthread_t th[4];
    submitter_t args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (submitter_t){c->s, i};
        pthread_create(&th[i], NULL, submitter, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        assert_null(rv);
    }
    for (int i = 0; i < 40; i++) {
        ev_t r = rec_wait(&c->rec, EV_SUBMITTED, -1, WAIT_MS);
        assert_int_equal(r.status, 0);
    }
    assert_int_equal(smsc_count(&c->smsc, "pdu", "submit_sm"), 40);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_OFF);
    if (getenv("SMPP_TEST_LOG")) log_set_level(LOG_DEBUG);
    find_fixture();
    if (g_skip_reason)
        fprintf(stderr, "test_smpp_session: peer tests will be SKIPPED: %s\n", g_skip_reason);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_bind_and_submit_gsm),
        T(test_long_ucs2),
        T(test_mo_deliver),
        T(test_mo_deliver_refused_is_nacked),
        T(test_mo_concatenated),
        T(test_mo_reassembly_timeout),
        T(test_receipts),
        T(test_wrong_password),
        T(test_drop_and_reconnect),
        T(test_inflight_resent_after_drop),
        T(test_reject_next),
        T(test_window_and_hold),
        T(test_throughput),
        T(test_enquire_link_and_dead_link),
        T(test_smsc_unbind),
        T(test_stop_unbinds),
        T(test_concurrent_submit),
        T(test_queue_full_and_stop),
        T(test_submit_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
