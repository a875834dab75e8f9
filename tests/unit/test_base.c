/* test_base.c: base/ utilities: ulid, clock, ratelimit, sec, arena, buf, tcache. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/prom.h"
#include "base/ratelimit.h"
#include "base/sec.h"
#include "base/tcache.h"
#include "base/ulid.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

/* ---- ulid ---- */

static void test_ulid_shape(void **state)
{
    (void)state;
    char id[ULID_LEN + 1];
    int64_t before = clock_now_ms();
    ulid_new(id);
    int64_t after = clock_now_ms();
    assert_int_equal(strlen(id), 26);
    assert_true(ulid_valid(id));
    for (int i = 0; i < ULID_LEN; i++)
        if (!strchr(crockford, id[i])) fail_msg("char %c not in the alphabet", id[i]);
    int64_t t = ulid_time_ms(id);
    assert_true(t >= before && t <= after);
}

static void test_ulid_monotonic(void **state)
{
    (void)state;
    char prev[ULID_LEN + 1], cur[ULID_LEN + 1];
    ulid_new(prev);
    for (int i = 0; i < 10000; i++) {
        ulid_new(cur);
        if (strcmp(prev, cur) >= 0) fail_msg("not increasing at %d: %s then %s", i, prev, cur);
        assert_true(ulid_time_ms(cur) >= ulid_time_ms(prev));
        memcpy(prev, cur, sizeof prev);
    }
}

static void test_ulid_valid(void **state)
{
    (void)state;
    assert_true(ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
    assert_true(ulid_valid("01arz3ndektsv4rrffq69g5fav")); /* case-insensitive */
    assert_true(ulid_valid("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")); /* the largest */
    assert_true(ulid_valid("00000000000000000000000000"));

    assert_false(ulid_valid(NULL));
    assert_false(ulid_valid(""));
    assert_false(ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FA"));   /* 25 */
    assert_false(ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FAVX")); /* 27 */
    assert_false(ulid_valid("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"));  /* time overflows 48 bits */
    assert_false(ulid_valid("ZZZZZZZZZZZZZZZZZZZZZZZZZZ"));
    assert_false(ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FAI")); /* I, L, O, U excluded */
    assert_false(ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FAL"));
    assert_false(ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FAO"));
    assert_false(ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FAU"));
    assert_false(ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FA-"));
    assert_false(ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FA "));
    assert_false(ulid_valid("01ARZ3NDEK/SV4RRFFQ69G5FAV"));
}

static void test_ulid_time_round_trip(void **state)
{
    (void)state;
    const int64_t times[] = {
        0, 1, 1469918176385, 1700000000123, clock_now_ms(), (INT64_C(1) << 48) - 1};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char id[ULID_LEN + 1];
        ulid_at(times[i], id);
        assert_true(ulid_valid(id));
        assert_true(ulid_time_ms(id) == times[i]);
    }
    char id[ULID_LEN + 1];
    ulid_at(0, id);
    assert_memory_equal(id, "0000000000", 10);
    ulid_at((INT64_C(1) << 48) - 1, id);
    assert_memory_equal(id, "7ZZZZZZZZZ", 10);
    ulid_at(1469918176385, id); /* the spec's example timestamp */
    assert_memory_equal(id, "01ARYZ6S41", 10);
    /* lower case decodes the same */
    char lower[ULID_LEN + 1];
    for (int i = 0; i <= ULID_LEN; i++)
        lower[i] = (char)((id[i] >= 'A' && id[i] <= 'Z') ? id[i] + 32 : id[i]);
    assert_true(ulid_time_ms(lower) == 1469918176385);
    /* ulids at later times sort later */
    char a[ULID_LEN + 1], b[ULID_LEN + 1];
    ulid_at(1000, a);
    ulid_at(1001, b);
    assert_true(strcmp(a, b) < 0);
}

/* ---- clock ---- */

static void test_clock_format(void **state)
{
    (void)state;
    char out[25];
    clock_format_rfc3339(0, out, sizeof out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    clock_format_rfc3339(1700000000123, out, sizeof out);
    assert_string_equal(out, "2023-11-14T22:13:20.123Z");
    clock_format_rfc3339(1795262400000, out, sizeof out);
    assert_string_equal(out, "2026-11-21T12:00:00.000Z");
    clock_format_rfc3339(-1, out, sizeof out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    clock_format_rfc3339(-1000, out, sizeof out);
    assert_string_equal(out, "1969-12-31T23:59:59.000Z");
}

static void test_clock_round_trip(void **state)
{
    (void)state;
    const int64_t times[] = {0,
                             1,
                             999,
                             1000,
                             -1,
                             -999,
                             -1000,
                             -1001,
                             951782400000,  /* 2000-02-29 */
                             4102444799999, /* 2099-12-31T23:59:59.999 */
                             1700000000123,
                             clock_now_ms()};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char s[25];
        int64_t back = 0;
        clock_format_rfc3339(times[i], s, sizeof s);
        if (clock_parse_rfc3339(s, &back) != 0) fail_msg("cannot parse own output %s", s);
        if (back != times[i]) fail_msg("%s: %lld != %lld", s, (long long)back, (long long)times[i]);
    }
}

static void test_clock_parse_forms(void **state)
{
    (void)state;
    const int64_t noon = 1795262400000; /* 2026-11-21T12:00:00Z */
    const struct {
        const char *s;
        int64_t want;
    } ok[] = {
        {"2026-11-21T12:00:00Z", noon},
        {"2026-11-21T12:00:00z", noon},
        {"2026-11-21t12:00:00Z", noon},
        {"2026-11-21 12:00:00Z", noon},
        {"2026-11-21T12:00:00+00:00", noon},
        {"2026-11-21T12:00:00-00:00", noon},
        {"2026-11-21T14:00:00+02:00", noon},
        {"2026-11-21T06:30:00-05:30", noon},
        {"2026-11-22T01:45:00+13:45", noon},
        {"2026-11-21T12:00:00.5Z", noon + 500},
        {"2026-11-21T12:00:00.05Z", noon + 50},
        {"2026-11-21T12:00:00.123Z", noon + 123},
        {"2026-11-21T12:00:00.123456789Z", noon + 123},
        {"2026-11-21T14:00:00.250+02:00", noon + 250},
        {"2024-02-29T00:00:00Z", 1709164800000},
        {"1970-01-01T00:00:00Z", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t got = -42;
        if (clock_parse_rfc3339(ok[i].s, &got) != 0) fail_msg("rejected %s", ok[i].s);
        if (got != ok[i].want)
            fail_msg("%s: got %lld want %lld", ok[i].s, (long long)got, (long long)ok[i].want);
    }
}

static void test_clock_parse_rejects(void **state)
{
    (void)state;
    const char *bad[] = {
        "2026-02-30T00:00:00Z",
        "2025-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-11-00T00:00:00Z",
        "2026-11-21T24:00:00Z",
        "2026-11-21T12:60:00Z",
        "2026-11-21T12:00:61Z",
        "2026-11-21T12:00:00",
        "2026-11-21T12:00:00.Z",
        "2026-11-21T12:00:00+2:00",
        "2026-11-21T12:00:00+0200",
        "2026-11-21T12:00:00+24:00",
        "2026-11-21T12:00:00+02:60",
        "2026-11-21T12:00:00ZZ",
        "2026-11-21T12:00:00Z ",
        "2026-11-21T12:00:00+02:00x",
        "2026/11/21T12:00:00Z",
        "2026-11-21X12:00:00Z",
        "26-11-21T12:00:00Z",
        "2026-11-21",
        "",
        "garbage",
        "yesterday at noon Z",
        "2026-1a-21T12:00:00Z",
        "2026-11-21T12:00:00+",
        "+026-11-21T12:00:00Z",
        "2026-11-21T12:00:00.1234x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t got = 77;
        if (clock_parse_rfc3339(bad[i], &got) != -1) fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(got, 77);
    }
}

static void test_clock_sources(void **state)
{
    (void)state;
    assert_true(clock_now_ms() > 1577836800000); /* after 2020 */
    int64_t m1 = clock_mono_ns();
    sleep_ms(2);
    int64_t m2 = clock_mono_ns();
    assert_true(m2 - m1 >= 2000000);
    assert_true(clock_mono_ms() >= m2 / 1000000);
}

/* ---- ratelimit ---- */

static void test_ratelimit_burst_then_refuse(void **state)
{
    (void)state;
    ratelimit_t *rl = ratelimit_new(1, 3);
    double retry = -1;
    for (int i = 0; i < 3; i++)
        assert_int_equal(ratelimit_take(rl, "P1", &retry), 1);
    assert_true(retry == -1); /* untouched on success */
    assert_int_equal(ratelimit_take(rl, "P1", &retry), 0);
    assert_true(retry > 0.9 && retry <= 1.0);

    /* another key has its own bucket */
    for (int i = 0; i < 3; i++)
        assert_int_equal(ratelimit_take(rl, "P2", NULL), 1);
    assert_int_equal(ratelimit_take(rl, "P2", NULL), 0);
    assert_int_equal(ratelimit_take(rl, "P1", NULL), 0);
    ratelimit_free(rl);
    ratelimit_free(NULL);
}

static void test_ratelimit_default_burst(void **state)
{
    (void)state;
    ratelimit_t *rl = ratelimit_new(5, 0); /* burst: one second's worth */
    for (int i = 0; i < 5; i++)
        assert_int_equal(ratelimit_take(rl, "k", NULL), 1);
    assert_int_equal(ratelimit_take(rl, "k", NULL), 0);
    ratelimit_free(rl);

    rl = ratelimit_new(0.5, 0); /* below one per second: a bucket of one */
    double retry = 0;
    assert_int_equal(ratelimit_take(rl, "k", &retry), 1);
    assert_int_equal(ratelimit_take(rl, "k", &retry), 0);
    assert_true(retry > 1.9 && retry <= 2.0);
    ratelimit_free(rl);
}

static void test_ratelimit_refills(void **state)
{
    (void)state;
    ratelimit_t *rl = ratelimit_new(20, 1);
    double retry = 0;
    assert_int_equal(ratelimit_take(rl, "k", &retry), 1);
    assert_int_equal(ratelimit_take(rl, "k", &retry), 0);
    assert_true(retry > 0 && retry <= 0.05 + 1e-9);
    sleep_ms(120); /* over 2 tokens' worth, capped at the burst of 1 */
    assert_int_equal(ratelimit_take(rl, "k", &retry), 1);
    assert_int_equal(ratelimit_take(rl, "k", &retry), 0);
    ratelimit_free(rl);
}

typedef struct {
    ratelimit_t *rl;
    int granted;
} rl_worker_t;

static void *rl_worker(void *arg)
{
    rl_worker_t *w = arg;
    char key[16];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "k%d", i % 4);
        w->granted += ratelimit_take(w->rl, key, NULL);
    }
    return NULL;
}

static void test_ratelimit_threads(void **state)
{
    (void)state;
    /* a rate so low that no refill happens during the test: exactly burst per key */
    ratelimit_t *rl = ratelimit_new(0.001, 50);
    rl_worker_t w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (rl_worker_t){rl, 0};
        assert_int_equal(pthread_create(&th[i], NULL, rl_worker, &w[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += w[i].granted;
    }
    assert_int_equal(total, 4 * 50);
    ratelimit_free(rl);
}

/* ---- sec ---- */

static void test_sec_b64url(void **state)
{
    (void)state;
    uint8_t in[100], out[100];
    char enc[200];
    for (size_t n = 0; n <= sizeof in; n++) {
        sec_random(in, n);
        int len = sec_b64url_encode(in, n, enc, sizeof enc);
        assert_int_equal(len, (int)((n * 4 + 2) / 3)); /* no padding */
        assert_int_equal(strspn(enc, b64url_alphabet), (size_t)len);
        int back = sec_b64url_decode(enc, out, sizeof out);
        assert_int_equal(back, (int)n);
        assert_memory_equal(in, out, n);
    }
    const uint8_t fb[2] = {0xfb, 0xff};
    assert_int_equal(sec_b64url_encode(fb, 2, enc, sizeof enc), 3);
    assert_string_equal(enc, "-_8");

    /* refusals */
    assert_int_equal(sec_b64url_encode(in, 30, enc, 10), -1); /* cap too small */
    assert_int_equal(sec_b64url_decode("+/8", out, sizeof out), -1);
    assert_int_equal(sec_b64url_decode("-_8=", out, sizeof out), -1); /* padding */
    assert_int_equal(sec_b64url_decode("ab$d", out, sizeof out), -1);
    assert_int_equal(sec_b64url_decode("A", out, sizeof out), -1);
    assert_int_equal(sec_b64url_decode("-_9", out, sizeof out), -1); /* non-zero spare bits */
    sec_b64url_encode(in, 40, enc, sizeof enc);
    assert_int_equal(sec_b64url_decode(enc, out, 39), -1); /* out too small */
    assert_int_equal(sec_b64url_decode("", out, sizeof out), 0);
}

static void test_sec_b64_standard(void **state)
{
    (void)state;
    const struct {
        const char *plain, *enc;
    } v[] = {{"", ""},
             {"f", "Zg=="},
             {"fo", "Zm8="},
             {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"}}; /* RFC 4648 */
    char enc[64], dec[64];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_int_equal(sec_b64_encode(v[i].plain, strlen(v[i].plain), enc, sizeof enc),
                         (int)strlen(v[i].enc));
        assert_string_equal(enc, v[i].enc);
        int n = sec_b64_decode(v[i].enc, dec, sizeof dec - 1);
        assert_int_equal(n, (int)strlen(v[i].plain));
        dec[n] = '\0';
        assert_string_equal(dec, v[i].plain);
    }
    const uint8_t fb[2] = {0xfb, 0xff};
    sec_b64_encode(fb, 2, enc, sizeof enc);
    assert_string_equal(enc, "+/8=");
    assert_int_equal(sec_b64_decode("Zm9vYmFy!", dec, sizeof dec), -1);
    assert_int_equal(sec_b64_decode("Zm9vYg", dec, sizeof dec), -1); /* padding required */
}

static void test_sec_hmac_vectors(void **state)
{
    (void)state;
    uint8_t mac[SEC_HMAC_LEN];
    char h[2 * SEC_HMAC_LEN + 1];
    const char *msg = "The quick brown fox jumps over the lazy dog";
    sec_hmac_sha256("key", 3, msg, strlen(msg), mac);
    hex(mac, sizeof mac, h);
    assert_string_equal(h, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");

    /* RFC 4231 test case 2 */
    const char *m2 = "what do ya want for nothing?";
    sec_hmac_sha256("Jefe", 4, m2, strlen(m2), mac);
    hex(mac, sizeof mac, h);
    assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    /* RFC 4231 test case 6: a key longer than the block size */
    uint8_t longkey[131];
    memset(longkey, 0xaa, sizeof longkey);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    sec_hmac_sha256(longkey, sizeof longkey, m6, strlen(m6), mac);
    hex(mac, sizeof mac, h);
    assert_string_equal(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_sec_hash_and_equal(void **state)
{
    (void)state;
    uint8_t k1[SEC_KEY_LEN], k2[SEC_KEY_LEN], a[SEC_HASH_LEN], b[SEC_HASH_LEN], c[SEC_HASH_LEN];
    sec_random(k1, sizeof k1);
    memcpy(k2, k1, sizeof k2);
    k2[0] ^= 1;
    sec_hash(NULL, "secret", 6, a);
    sec_hash(NULL, "secret", 6, b);
    assert_memory_equal(a, b, sizeof a);
    assert_true(sec_equal(a, b, sizeof a));
    sec_hash(NULL, "secreT", 6, c);
    assert_false(sec_equal(a, c, sizeof a));
    sec_hash(k1, "secret", 6, b);
    sec_hash(k2, "secret", 6, c);
    assert_false(sec_equal(a, b, sizeof a)); /* keyed differs from unkeyed */
    assert_false(sec_equal(b, c, sizeof b)); /* and per key */

    char t1[64], t2[64];
    sec_random_token(32, t1, sizeof t1);
    sec_random_token(32, t2, sizeof t2);
    assert_int_equal(strlen(t1), 43);
    assert_int_equal(strspn(t1, b64url_alphabet), 43);
    assert_string_not_equal(t1, t2);
}

static void test_sec_seal_open(void **state)
{
    (void)state;
    uint8_t key[SEC_KEY_LEN], other[SEC_KEY_LEN];
    sec_random(key, sizeof key);
    memcpy(other, key, sizeof other);
    other[5] ^= 0x10;

    const char *msgs[] = {"", "webhook-secret", "ünïcødé ✓"};
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        char *box = sec_seal(key, msgs[i]);
        assert_non_null(box);
        char *plain = sec_open(key, box);
        assert_non_null(plain);
        assert_string_equal(plain, msgs[i]);
        free(plain);
        assert_null(sec_open(other, box)); /* wrong key */
        free(box);
    }

    /* a long plaintext */
    size_t n = 20000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = '\0';
    char *box = sec_seal(key, big);
    char *plain = sec_open(key, box);
    assert_non_null(plain);
    assert_string_equal(plain, big);
    free(plain);
    free(box);
    free(big);

    /* the nonce is random: the same plaintext seals differently */
    char *b1 = sec_seal(key, "same"), *b2 = sec_seal(key, "same");
    assert_string_not_equal(b1, b2);
    free(b2);

    /* any change anywhere is detected */
    size_t len = strlen(b1);
    char *t = malloc(len + 2);
    for (size_t i = 0; i < len; i++) {
        strcpy(t, b1);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        char *p = sec_open(key, t);
        if (p) {
            free(p);
            fail_msg("tampered box accepted (position %zu)", i);
        }
    }
    strcpy(t, b1);
    t[len - 1] = '\0';
    assert_null(sec_open(key, t)); /* truncated */
    strcpy(t, b1);
    strcat(t, "A");
    assert_null(sec_open(key, t)); /* extended */
    free(t);
    free(b1);
    assert_null(sec_open(key, ""));
    assert_null(sec_open(key, "short"));
    assert_null(sec_open(key, "not base64 at all!"));
}

static void test_sec_password(void **state)
{
    (void)state;
    char h1[256], h2[256];
    assert_int_equal(sec_password_hash("correct horse battery staple", h1, sizeof h1), 0);
    assert_memory_equal(h1, "$argon2id$", 10);
    assert_null(strstr(h1, "correct horse"));
    assert_int_equal(sec_password_verify(h1, "correct horse battery staple"), 1);
    assert_int_equal(sec_password_verify(h1, "correct horse battery stapler"), 0);
    assert_int_equal(sec_password_verify(h1, ""), 0);
    /* salted: the same password hashes differently, both verify */
    assert_int_equal(sec_password_hash("correct horse battery staple", h2, sizeof h2), 0);
    assert_string_not_equal(h1, h2);
    assert_int_equal(sec_password_verify(h2, "correct horse battery staple"), 1);
    /* garbage stored hash */
    assert_int_equal(sec_password_verify("not a hash", "x"), 0);
    /* buffer too small */
    char tiny[16];
    assert_int_equal(sec_password_hash("pw", tiny, sizeof tiny), -1);
}

/* ---- arena ---- */

static void test_arena_many_allocations(void **state)
{
    (void)state;
    arena_t *a = arena_create(1024);
    enum { N = 20000 };
    unsigned char **p = malloc(N * sizeof *p);
    size_t *sz = malloc(N * sizeof *sz);
    for (int i = 0; i < N; i++) {
        sz[i] = (size_t)(i % 300) + 1;
        if (i % 1000 == 999) sz[i] = 5000 + (size_t)i; /* larger than a block */
        p[i] = arena_alloc(a, sz[i]);
        assert_non_null(p[i]);
        if ((uintptr_t)p[i] % 16) fail_msg("allocation %d not 16-byte aligned", i);
        for (size_t k = 0; k < sz[i]; k++)
            if (p[i][k]) fail_msg("allocation %d not zeroed", i);
        memset(p[i], i & 0xff, sz[i]);
    }
    /* nothing overlapped */
    for (int i = 0; i < N; i++)
        for (size_t k = 0; k < sz[i]; k++)
            if (p[i][k] != (unsigned char)(i & 0xff)) fail_msg("allocation %d overwritten", i);
    free(p);
    free(sz);
    arena_destroy(a);
    arena_destroy(NULL);
}

static void test_arena_big_block_then_small(void **state)
{
    (void)state;
    arena_t *a = arena_create(0); /* minimum block size applies */
    char *s1 = arena_strdup(a, "first");
    unsigned char *big = arena_alloc(a, 1 << 20);
    assert_int_equal((uintptr_t)big % 16, 0);
    memset(big, 0xab, 1 << 20);
    char *s2 = arena_strdup(a, "second");
    char *s3 = arena_strndup(a, "third-and-more", 5);
    assert_string_equal(s1, "first");
    assert_string_equal(s2, "second");
    assert_string_equal(s3, "third");
    assert_int_equal(big[0], 0xab);
    assert_int_equal(big[(1 << 20) - 1], 0xab);
    void *z = arena_alloc(a, 0);
    assert_int_equal((uintptr_t)z % 16, 0);

    /* printf, including output longer than a block */
    char *f = arena_printf(a, "%s-%d-%05.1f", "x", 42, 3.14159);
    assert_string_equal(f, "x-42-003.1");
    char *long_s = arena_printf(a, "%3000d", 7);
    assert_int_equal(strlen(long_s), 3000);
    assert_int_equal(long_s[2999], '7');
    assert_string_equal(s1, "first");
    arena_destroy(a);
}

/* ---- buf ---- */

static void test_prom_metric_text(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    prom_metric(&b, "counter", "parley_x_total", "Things done.", UINT64_MAX);
    prom_head(&b, "gauge", "parley_y", "Labelled.");
    assert_string_equal(b.data, "# HELP parley_x_total Things done.\n"
                                "# TYPE parley_x_total counter\n"
                                "parley_x_total 18446744073709551615\n"
                                "# HELP parley_y Labelled.\n"
                                "# TYPE parley_y gauge\n");
    buf_free(&b);
}

static void test_buf_printf_growth(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    char *expect = malloc(100000);
    size_t elen = 0;
    for (int i = 0; i < 5000; i++) {
        buf_printf(&b, "line %d: %s\n", i, i % 2 ? "odd" : "even");
        elen += (size_t)sprintf(expect + elen, "line %d: %s\n", i, i % 2 ? "odd" : "even");
        assert_int_equal(b.len, elen);
        assert_true(b.cap > b.len);
        assert_int_equal(b.data[b.len], '\0');
    }
    assert_string_equal(b.data, expect);

    /* one write much larger than the current capacity */
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_printf(&b, "%50000d|", 1);
    assert_int_equal(b.len, 50001);
    assert_int_equal(b.data[49999], '1');
    assert_int_equal(b.data[50000], '|');

    /* append with NUL bytes inside, then steal */
    buf_reset(&b);
    buf_append(&b, "a\0b", 3);
    buf_puts(&b, "cd");
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "a\0bcd", 6);
    char *s = buf_steal(&b);
    assert_memory_equal(s, "a\0bcd", 6);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);
    s = buf_steal(&b); /* empty buffer: an empty string the caller frees */
    assert_string_equal(s, "");
    free(s);
    buf_free(&b);
    free(expect);
}

static int group_setup(void **state)
{
    (void)state;
    return sec_init();
}

/* ---- tcache ---- */

static int tc_get(tcache_t *c, const char *key, uint64_t token, char out[32])
{
    int n = tcache_get(c, key, token, out, 31);
    if (n >= 0) out[n] = 0;
    return n;
}

static void test_tcache_token_and_size(void **state)
{
    (void)state;
    tcache_t *c = tcache_new(16);
    char out[32];
    assert_int_equal(tc_get(c, "k", 1, out), -1);
    tcache_put(c, "k", 1, "value", 5);
    assert_int_equal(tc_get(c, "k", 1, out), 5);
    assert_string_equal(out, "value");
    assert_int_equal(tc_get(c, "k", 2, out), -1);        /* another token: stale */
    assert_int_equal(tcache_get(c, "k", 1, out, 4), -1); /* does not fit */
    tcache_put(c, "k", 2, "other", 5);                   /* same key: replaced */
    assert_int_equal(tc_get(c, "k", 2, out), 5);
    assert_string_equal(out, "other");
    assert_int_equal(tc_get(c, "k", 1, out), -1);
    tcache_free(c);
}

/* One set (four entries): four keys stay together; a fifth takes the least recently used
 * one's place, and a stale entry goes before any live one. */
static void test_tcache_set_keeps_four(void **state)
{
    (void)state;
    tcache_t *c = tcache_new(4);
    char out[32];
    const char *keys[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        tcache_put(c, keys[i], 7, keys[i], 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(tc_get(c, keys[i], 7, out), 1);
    assert_int_equal(tc_get(c, "a", 7, out), 1); /* b is now the least recently used */
    tcache_put(c, "e", 7, "e", 1);
    assert_int_equal(tc_get(c, "b", 7, out), -1);
    assert_int_equal(tc_get(c, "a", 7, out), 1);
    assert_int_equal(tc_get(c, "c", 7, out), 1);
    assert_int_equal(tc_get(c, "d", 7, out), 1);
    assert_int_equal(tc_get(c, "e", 7, out), 1);
    /* Under a new token every entry is stale: new keys take those slots first. */
    tcache_put(c, "f", 8, "f", 1);
    tcache_put(c, "g", 8, "g", 1);
    assert_int_equal(tc_get(c, "f", 8, out), 1);
    assert_int_equal(tc_get(c, "g", 8, out), 1);
    tcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ulid_shape),
        cmocka_unit_test(test_ulid_monotonic),
        cmocka_unit_test(test_ulid_valid),
        cmocka_unit_test(test_ulid_time_round_trip),
        cmocka_unit_test(test_clock_format),
        cmocka_unit_test(test_clock_round_trip),
        cmocka_unit_test(test_clock_parse_forms),
        cmocka_unit_test(test_clock_parse_rejects),
        cmocka_unit_test(test_clock_sources),
        cmocka_unit_test(test_ratelimit_burst_then_refuse),
        cmocka_unit_test(test_ratelimit_default_burst),
        cmocka_unit_test(test_ratelimit_refills),
        cmocka_unit_test(test_ratelimit_threads),
        cmocka_unit_test(test_sec_b64url),
        cmocka_unit_test(test_sec_b64_standard),
        cmocka_unit_test(test_sec_hmac_vectors),
        cmocka_unit_test(test_sec_hash_and_equal),
        cmocka_unit_test(test_sec_seal_open),
        cmocka_unit_test(test_sec_password),
        cmocka_unit_test(test_arena_many_allocations),
        cmocka_unit_test(test_arena_big_block_then_small),
        cmocka_unit_test(test_buf_printf_growth),
        cmocka_unit_test(test_prom_metric_text),
        cmocka_unit_test(test_tcache_token_and_size),
        cmocka_unit_test(test_tcache_set_keeps_four),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
