/* sec.c: thin wrappers over libsodium, so the rest of Parley never sees its API. */
#include "base/sec.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int sec_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

void sec_random(void *buf, size_t len)
{
    randombytes_buf(buf, len);
}

void sec_random_token(size_t n, char *out, size_t cap)
{
    uint8_t raw[64];
    if (n > sizeof raw) n = sizeof raw;
    randombytes_buf(raw, n);
    sec_b64url_encode(raw, n, out, cap);
}

static int b64_encode(const void *in, size_t len, char *out, size_t cap, int variant)
{
    size_t need = sodium_base64_encoded_len(len, variant);
    if (need > cap) return -1;
    sodium_bin2base64(out, cap, in, len, variant);
    return (int)strlen(out);
}

int sec_b64url_encode(const void *in, size_t len, char *out, size_t cap)
{
    return b64_encode(in, len, out, cap, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int sec_b64_encode(const void *in, size_t len, char *out, size_t cap)
{
    return b64_encode(in, len, out, cap, sodium_base64_VARIANT_ORIGINAL);
}

static int b64_decode(const char *in, void *out, size_t cap, int variant)
{
    size_t n = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, cap, in, strlen(in), NULL, &n, &end, variant) != 0 || *end)
        return -1;
    return (int)n;
}

int sec_b64url_decode(const char *in, void *out, size_t cap)
{
    return b64_decode(in, out, cap, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int sec_b64_decode(const char *in, void *out, size_t cap)
{
    return b64_decode(in, out, cap, sodium_base64_VARIANT_ORIGINAL);
}

void sec_hash(const void *key, const void *in, size_t len, uint8_t out[SEC_HASH_LEN])
{
    crypto_generichash(out, SEC_HASH_LEN, in, len, key, key ? SEC_KEY_LEN : 0);
}

void sec_hmac_sha256(const void *key, size_t key_len, const void *in, size_t len,
                     uint8_t out[SEC_HMAC_LEN])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, in, len);
    crypto_auth_hmacsha256_final(&st, out);
}

int sec_equal(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}

int sec_password_hash(const char *password, char *out, size_t cap)
{
    if (cap < crypto_pwhash_STRBYTES) return -1;
    return crypto_pwhash_str_alg(out, password, strlen(password),
                                 crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                 crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13);
}

int sec_password_verify(const char *stored, const char *password)
{
    return crypto_pwhash_str_verify(stored, password, strlen(password)) == 0;
}

#define SEAL_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEAL_TAG   crypto_aead_xchacha20poly1305_ietf_ABYTES

char *sec_seal(const uint8_t key[SEC_KEY_LEN], const char *plaintext)
{
    size_t plen = strlen(plaintext), blen = SEAL_NONCE + plen + SEAL_TAG;
    uint8_t *box = malloc(blen);
    size_t cap = sodium_base64_encoded_len(blen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    if (!box || !out) {
        free(box), free(out);
        return NULL;
    }
    randombytes_buf(box, SEAL_NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(box + SEAL_NONCE, NULL, (const uint8_t *)plaintext,
                                               plen, NULL, 0, NULL, box, key);
    sec_b64url_encode(box, blen, out, cap);
    free(box);
    return out;
}

char *sec_open(const uint8_t key[SEC_KEY_LEN], const char *sealed)
{
    size_t cap = strlen(sealed) + 4;
    uint8_t *box = malloc(cap);
    if (!box) return NULL;
    int blen = sec_b64url_decode(sealed, box, cap);
    if (blen < (int)(SEAL_NONCE + SEAL_TAG)) {
        free(box);
        return NULL;
    }
    size_t plen = (size_t)blen - SEAL_NONCE - SEAL_TAG;
    char *out = malloc(plen + 1);
    unsigned long long got = 0;
    if (!out || crypto_aead_xchacha20poly1305_ietf_decrypt(
                    (uint8_t *)out, &got, NULL, box + SEAL_NONCE, (size_t)blen - SEAL_NONCE, NULL,
                    0, box, key) != 0) {
        free(box), free(out);
        return NULL;
    }
    out[got] = '\0';
    free(box);
    return out;
}
