/* sec.h: the few security primitives Parley needs, on libsodium (which owns the crypto_
 * prefix, hence sec_): randomness, base64 and base64url, fast
 * hashing of high-entropy secrets (access keys, tokens), HMAC-SHA256 (webhook and token
 * signing), Argon2id for human passwords, and authenticated encryption of stored
 * secrets (channel credentials, webhook secrets). */
#ifndef PARLEY_BASE_SEC_H
#define PARLEY_BASE_SEC_H

#include <stddef.h>
#include <stdint.h>

#define SEC_KEY_LEN  32
#define SEC_HASH_LEN 32
#define SEC_HMAC_LEN 32

/* Call once before threads start; -1 if libsodium cannot initialise. */
int sec_init(void);
void sec_random(void *buf, size_t len);
/* Random secret of n bytes as base64url without padding into out (cap >= 4*n/3+2). */
void sec_random_token(size_t n, char *out, size_t cap);

/* base64url without padding. Returns the output length, or -1 if cap is too small. */
int sec_b64url_encode(const void *in, size_t len, char *out, size_t cap);
/* Returns decoded length or -1 on malformed input / small cap. */
int sec_b64url_decode(const char *in, void *out, size_t cap);
/* Standard base64 with padding (webhook signatures, HTTP Basic auth). */
int sec_b64_encode(const void *in, size_t len, char *out, size_t cap);
int sec_b64_decode(const char *in, void *out, size_t cap);

/* BLAKE2b-256 keyed with `key` (may be NULL): for secrets with 128+ bits of entropy. */
void sec_hash(const void *key, const void *in, size_t len, uint8_t out[SEC_HASH_LEN]);
void sec_hmac_sha256(const void *key, size_t key_len, const void *in, size_t len,
                     uint8_t out[SEC_HMAC_LEN]);
/* Constant-time comparison; 1 if equal. */
int sec_equal(const void *a, const void *b, size_t len);

/* Argon2id: out receives a self-describing string (cap >= 128). -1 on memory failure. */
int sec_password_hash(const char *password, char *out, size_t cap);
/* 1 if password matches the stored hash. */
int sec_password_verify(const char *stored, const char *password);

/* XChaCha20-Poly1305 with a random nonce: out = nonce || ciphertext || tag, base64url.
 * Returns a malloc'd string (caller frees) or NULL. */
char *sec_seal(const uint8_t key[SEC_KEY_LEN], const char *plaintext);
/* Returns a malloc'd plaintext or NULL if the box was tampered with or the key is wrong. */
char *sec_open(const uint8_t key[SEC_KEY_LEN], const char *sealed);

#endif
