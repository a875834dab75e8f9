/* ulid.c: ULID encoding with a process-wide monotonic generator (mutex-protected). */
#include "base/ulid.h"
#include "base/clock.h"
#include "base/sec.h"

#include <pthread.h>
#include <string.h>

static const char ulid_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t ulid_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t ulid_last_ms = -1;
static uint8_t ulid_last_rand[10];

static void ulid_encode(int64_t ms, const uint8_t rnd[10], char out[ULID_LEN + 1])
{
    uint64_t t = (uint64_t)ms;
    for (int i = 9; i >= 0; i--) {
        out[i] = ulid_alphabet[t & 31];
        t >>= 5;
    }
    /* 80 random bits -> 16 characters, 5 bits each, most significant first. */
    for (int i = 0; i < 16; i++) {
        int bit = i * 5, v = 0;
        for (int b = 0; b < 5; b++, bit++)
            v = (v << 1) | ((rnd[bit / 8] >> (7 - bit % 8)) & 1);
        out[10 + i] = ulid_alphabet[v];
    }
    out[ULID_LEN] = '\0';
}

void ulid_new(char out[ULID_LEN + 1])
{
    uint8_t rnd[10];
    int64_t ms = clock_now_ms();
    pthread_mutex_lock(&ulid_lock);
    if (ms <= ulid_last_ms) {
        ms = ulid_last_ms;
        int i = 9;
        while (i >= 0 && ++ulid_last_rand[i] == 0)
            i--;
        if (i < 0) ulid_last_ms = ++ms; /* 2^80 ids in one ms: move to the next ms */
    } else {
        sec_random(ulid_last_rand, sizeof ulid_last_rand);
        ulid_last_rand[0] &= 0x7f; /* headroom so increments rarely carry into time */
        ulid_last_ms = ms;
    }
    memcpy(rnd, ulid_last_rand, sizeof rnd);
    pthread_mutex_unlock(&ulid_lock);
    ulid_encode(ms, rnd, out);
}

void ulid_at(int64_t ms, char out[ULID_LEN + 1])
{
    uint8_t rnd[10];
    sec_random(rnd, sizeof rnd);
    ulid_encode(ms, rnd, out);
}

static int ulid_digit(char c)
{
    if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
    const char *p = c ? strchr(ulid_alphabet, c) : NULL;
    return p ? (int)(p - ulid_alphabet) : -1;
}

int ulid_valid(const char *s)
{
    if (!s || strlen(s) != ULID_LEN) return 0;
    if (s[0] > '7') return 0; /* the 48-bit time would overflow */
    for (int i = 0; i < ULID_LEN; i++)
        if (ulid_digit(s[i]) < 0) return 0;
    return 1;
}

int64_t ulid_time_ms(const char *s)
{
    uint64_t t = 0;
    for (int i = 0; i < 10; i++)
        t = (t << 5) | (uint64_t)(ulid_digit(s[i]) & 31);
    return (int64_t)t;
}
