/* test_smpp_pdu.c: the SMPP 3.4 codec (channels/smpp_pdu.h). Expected bytes were produced
 * by an independent implementation (the npm `smpp` package's PDU.toBuffer) or built by
 * hand from the 3.4 layouts; texts cover the GSM extension table, UCS-2 surrogates and
 * every split boundary. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/buf.h"
#include "channels/smpp_pdu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = hex; p[0] && p[1]; p += 2) {
        while (*p == ' ')
            p++;
        if (!p[0] || !p[1]) break;
        unsigned v;
        if (sscanf(p, "%2x", &v) != 1) fail_msg("bad hex at %s", p);
        if (n >= cap) fail_msg("hex too long");
        out[n++] = (uint8_t)v;
    }
    return n;
}

static char *tohex(const void *data, size_t len)
{
    const uint8_t *p = data;
    char *s = malloc(len * 2 + 1);
    for (size_t i = 0; i < len; i++)
        sprintf(s + 2 * i, "%02x", p[i]);
    s[len * 2] = '\0';
    return s;
}

static void assert_encodes(const smpp_pdu_t *p, const char *hex)
{
    buf_t b;
    buf_init(&b);
    err_t e;
    if (smpp_pdu_encode(p, &b, &e) != 0) fail_msg("encode failed: %s", e.message);
    char *got = tohex(b.data, b.len);
    assert_string_equal(got, hex);
    free(got);
    buf_free(&b);
}

/* Decode hex completely into *p (the caller frees it). */
static void decode_hex(const char *hex, smpp_pdu_t *p)
{
    uint8_t raw[1024];
    size_t n = unhex(hex, raw, sizeof raw), used = 0;
    err_t e;
    smpp_decode_t rc = smpp_pdu_decode(raw, n, p, &used, &e);
    if (rc != SMPP_DECODE_OK) fail_msg("decode failed: %s", e.message);
    assert_int_equal(used, n);
}

static smpp_decode_t decode_raw(const uint8_t *raw, size_t n, size_t *used, err_t *e)
{
    smpp_pdu_t p;
    smpp_decode_t rc = smpp_pdu_decode(raw, n, &p, used, e);
    smpp_pdu_free(&p);
    return rc;
}

#define HEX_ENQ  "00000010000000150000000000000001"
#define HEX_BIND "000000230000000900000000000000017061726c657900736563726574000034000000"
#define HEX_SUBMIT                                                                                 \
    "000000370000000400000000000000020005005061726c6579000101343637303132333435363700000000"       \
    "0000010000000548656c6c6f"
#define HEX_SUBMIT_RESP "0000001780000004000000000000000261626331323300"
#define HEX_DLR                                                                                    \
    "0000005700000005000000000000000700010134363730313233343536370000003132333435000400000000"     \
    "000000001669643a61626331323320737461743a44454c49565244001e0007616263313233000427000102"
#define HEX_PAYLOAD                                                                                \
    "0000003b000000050000000000000008000000310000003200000000000000000800000424000400480069020c"   \
    "00021234020e000103020f000102"

/* ---- encoding, byte-exact ---- */

static void test_encode_header_only(void **state)
{
    (void)state;
    smpp_pdu_t p;
    smpp_pdu_init(&p, SMPP_ENQUIRE_LINK, 1);
    assert_encodes(&p, HEX_ENQ);
    smpp_pdu_init(&p, SMPP_UNBIND, 3);
    assert_encodes(&p, "00000010000000060000000000000003");
    smpp_pdu_init(&p, SMPP_GENERIC_NACK, 9);
    p.command_status = SMPP_ESME_RINVCMDID;
    assert_encodes(&p, "00000010800000000000000300000009");
    smpp_pdu_init(&p, SMPP_ENQUIRE_LINK_RESP, 0x7FFFFFFF);
    assert_encodes(&p, "0000001080000015000000007fffffff");
}

static void test_encode_bind(void **state)
{
    (void)state;
    smpp_pdu_t p;
    smpp_pdu_init(&p, SMPP_BIND_TRANSCEIVER, 1);
    strcpy(p.system_id, "parley");
    strcpy(p.password, "secret");
    assert_encodes(&p, HEX_BIND);

    /* responses: body only on success */
    smpp_pdu_init(&p, SMPP_BIND_TRANSCEIVER_RESP, 1);
    strcpy(p.system_id, "SMSC");
    assert_encodes(&p, "00000015800000090000000000000001534d534300");
    p.command_status = SMPP_ESME_RINVPASWD;
    assert_encodes(&p, "00000010800000090000000e00000001");
}

static void test_encode_submit_sm(void **state)
{
    (void)state;
    smpp_pdu_t p;
    smpp_pdu_init(&p, SMPP_SUBMIT_SM, 2);
    p.source_addr_ton = 5;
    strcpy(p.source_addr, "Parley");
    p.dest_addr_ton = p.dest_addr_npi = 1;
    strcpy(p.destination_addr, "46701234567");
    p.registered_delivery = 1;
    p.sm_length = 5;
    memcpy(p.short_message, "Hello", 5);
    assert_encodes(&p, HEX_SUBMIT);

    smpp_pdu_init(&p, SMPP_SUBMIT_SM_RESP, 2);
    strcpy(p.message_id, "abc123");
    assert_encodes(&p, HEX_SUBMIT_RESP);
    smpp_pdu_init(&p, SMPP_DELIVER_SM_RESP, 7);
    assert_encodes(&p, "0000001180000005000000000000000700");
}

static void test_encode_tlvs(void **state)
{
    (void)state;
    smpp_pdu_t p;
    smpp_pdu_init(&p, SMPP_DELIVER_SM, 7);
    p.source_addr_ton = p.source_addr_npi = 1;
    strcpy(p.source_addr, "46701234567");
    strcpy(p.destination_addr, "12345");
    p.esm_class = SMPP_ESM_RECEIPT;
    const char *txt = "id:abc123 stat:DELIVRD";
    p.sm_length = (uint8_t)strlen(txt);
    memcpy(p.short_message, txt, p.sm_length);
    p.has_receipted_message_id = 1;
    strcpy(p.receipted_message_id, "abc123");
    p.has_message_state = 1;
    p.message_state = SMPP_STATE_DELIVERED;
    assert_encodes(&p, HEX_DLR);

    smpp_pdu_init(&p, SMPP_DELIVER_SM, 8);
    strcpy(p.source_addr, "1");
    strcpy(p.destination_addr, "2");
    p.data_coding = SMPP_DC_UCS2;
    smpp_pdu_set_payload(&p, "\x00\x48\x00\x69", 4);
    p.has_sar = 1;
    p.sar_msg_ref_num = 0x1234;
    p.sar_total_segments = 3;
    p.sar_segment_seqnum = 2;
    assert_encodes(&p, HEX_PAYLOAD);
    smpp_pdu_free(&p);
}

static void test_encode_rejects(void **state)
{
    (void)state;
    smpp_pdu_t p;
    buf_t b;
    buf_init(&b);
    err_t e;
    smpp_pdu_init(&p, SMPP_BIND_TRANSCEIVER, 1);
    strcpy(p.system_id, "0123456789abcde"); /* 15: the maximum */
    assert_int_equal(smpp_pdu_encode(&p, &b, &e), 0);
    memcpy(p.system_id, "0123456789abcdef", 16); /* no room for the NUL */
    buf_reset(&b);
    assert_int_equal(smpp_pdu_encode(&p, &b, &e), -1);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(e.message, "system_id"));
    assert_int_equal(b.len, 0); /* nothing half-written */

    smpp_pdu_init(&p, SMPP_SUBMIT_SM, 1);
    p.sm_length = 255;
    assert_int_equal(smpp_pdu_encode(&p, &b, &e), -1);
    assert_non_null(strstr(e.message, "sm_length"));

    smpp_pdu_init(&p, 0x00000103 /* data_sm */, 1);
    assert_int_equal(smpp_pdu_encode(&p, &b, &e), -1);

    smpp_pdu_init(&p, SMPP_SUBMIT_SM, 1);
    uint8_t *big = calloc(1, 70000);
    smpp_pdu_set_payload(&p, big, 65535);
    assert_int_equal(smpp_pdu_encode(&p, &b, &e), -1); /* > 64 KiB in all */
    free(big);
    smpp_pdu_free(&p);
    buf_free(&b);
}

/* ---- decoding ---- */

static void test_decode_known(void **state)
{
    (void)state;
    smpp_pdu_t p;
    decode_hex(HEX_BIND, &p);
    assert_int_equal(p.command_id, SMPP_BIND_TRANSCEIVER);
    assert_string_equal(p.system_id, "parley");
    assert_string_equal(p.password, "secret");
    assert_int_equal(p.interface_version, 0x34);
    smpp_pdu_free(&p);

    decode_hex(HEX_SUBMIT, &p);
    assert_int_equal(p.command_id, SMPP_SUBMIT_SM);
    assert_int_equal(p.sequence, 2);
    assert_int_equal(p.source_addr_ton, 5);
    assert_string_equal(p.source_addr, "Parley");
    assert_string_equal(p.destination_addr, "46701234567");
    assert_int_equal(p.registered_delivery, 1);
    assert_int_equal(p.sm_length, 5);
    assert_memory_equal(p.short_message, "Hello", 5);
    smpp_pdu_free(&p);

    decode_hex(HEX_SUBMIT_RESP, &p);
    assert_string_equal(p.message_id, "abc123");
    smpp_pdu_free(&p);

    decode_hex(HEX_DLR, &p);
    assert_int_equal(p.esm_class, SMPP_ESM_RECEIPT);
    assert_true(p.has_receipted_message_id);
    assert_string_equal(p.receipted_message_id, "abc123");
    assert_true(p.has_message_state);
    assert_int_equal(p.message_state, SMPP_STATE_DELIVERED);
    smpp_pdu_free(&p);

    decode_hex(HEX_PAYLOAD, &p);
    assert_int_equal(p.sm_length, 0);
    assert_int_equal(p.message_payload_len, 4);
    assert_memory_equal(p.message_payload, "\x00\x48\x00\x69", 4);
    assert_true(p.has_sar);
    assert_int_equal(p.sar_msg_ref_num, 0x1234);
    assert_int_equal(p.sar_total_segments, 3);
    assert_int_equal(p.sar_segment_seqnum, 2);
    smpp_pdu_free(&p);

    /* error responses carry no body */
    decode_hex("00000010800000090000000e00000001", &p);
    assert_int_equal(p.command_status, SMPP_ESME_RINVPASWD);
    assert_string_equal(p.system_id, "");
    smpp_pdu_free(&p);
    decode_hex("00000010800000040000005800000005", &p);
    assert_int_equal(p.command_status, SMPP_ESME_RTHROTTLED);
    smpp_pdu_free(&p);

    /* a command Parley does not handle decodes as its header only */
    decode_hex("000000150000010300000000000000050102030400", &p);
    assert_int_equal(p.command_id, 0x103);
    assert_int_equal(p.sequence, 5);
    smpp_pdu_free(&p);

    /* unknown TLVs are skipped */
    decode_hex("0000001f80000004000000000000000261626300"
               "1403000301020300000000",
               &p);
    assert_string_equal(p.message_id, "abc");
    smpp_pdu_free(&p);
}

static void test_decode_roundtrip(void **state)
{
    (void)state;
    smpp_pdu_t p, q;
    smpp_pdu_init(&p, SMPP_DELIVER_SM, 77);
    strcpy(p.service_type, "CMT");
    strcpy(p.source_addr, "12345678901234567890"); /* 20: the maximum */
    strcpy(p.destination_addr, "1");
    strcpy(p.validity_period, "000001000000000R");
    p.data_coding = SMPP_DC_LATIN1;
    p.sm_length = SMPP_MAX_SM_LEN;
    memset(p.short_message, 'x', SMPP_MAX_SM_LEN);
    p.has_network_error_code = 1;
    memcpy(p.network_error_code, "\x03\x00\x0b", 3);
    buf_t b;
    buf_init(&b);
    err_t e;
    assert_int_equal(smpp_pdu_encode(&p, &b, &e), 0);
    size_t used;
    assert_int_equal(smpp_pdu_decode((uint8_t *)b.data, b.len, &q, &used, &e), SMPP_DECODE_OK);
    assert_int_equal(used, b.len);
    assert_string_equal(q.service_type, "CMT");
    assert_string_equal(q.source_addr, "12345678901234567890");
    assert_string_equal(q.validity_period, "000001000000000R");
    assert_int_equal(q.sm_length, SMPP_MAX_SM_LEN);
    assert_memory_equal(q.short_message, p.short_message, SMPP_MAX_SM_LEN);
    assert_true(q.has_network_error_code);
    assert_memory_equal(q.network_error_code, "\x03\x00\x0b", 3);
    assert_false(q.has_sar);
    assert_null(q.message_payload);
    smpp_pdu_free(&q);
    buf_free(&b);
}

static void test_decode_partial(void **state)
{
    (void)state;
    uint8_t raw[256];
    size_t n = unhex(HEX_DLR, raw, sizeof raw), used = 99;
    err_t e;
    /* every strict prefix needs more bytes, and consumes nothing */
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(decode_raw(raw, k, &used, &e), SMPP_DECODE_NEED_MORE);
        assert_int_equal(used, 0);
    }
    assert_int_equal(decode_raw(raw, n, &used, &e), SMPP_DECODE_OK);
    assert_int_equal(used, n);
}

static void test_decode_several(void **state)
{
    (void)state;
    uint8_t raw[512];
    size_t n = unhex(HEX_ENQ HEX_SUBMIT_RESP HEX_DLR "000000", raw, sizeof raw);
    uint32_t want[] = {SMPP_ENQUIRE_LINK, SMPP_SUBMIT_SM_RESP, SMPP_DELIVER_SM};
    size_t off = 0;
    err_t e;
    for (int i = 0; i < 3; i++) {
        smpp_pdu_t p;
        size_t used;
        assert_int_equal(smpp_pdu_decode(raw + off, n - off, &p, &used, &e), SMPP_DECODE_OK);
        assert_int_equal(p.command_id, want[i]);
        smpp_pdu_free(&p);
        off += used;
    }
    size_t used;
    assert_int_equal(decode_raw(raw + off, n - off, &used, &e), SMPP_DECODE_NEED_MORE);
    assert_int_equal(n - off, 3);
}

static void expect_error(const char *hex, size_t want_consumed, const char *needle)
{
    uint8_t raw[512];
    size_t n = unhex(hex, raw, sizeof raw), used = 12345;
    err_t e = {0};
    smpp_pdu_t p;
    smpp_decode_t rc = smpp_pdu_decode(raw, n, &p, &used, &e);
    smpp_pdu_free(&p);
    if (rc != SMPP_DECODE_ERROR) fail_msg("expected an error for %s, got %d", hex, rc);
    assert_int_equal(used, want_consumed);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    if (!strstr(e.message, needle)) fail_msg("error '%s' lacks '%s'", e.message, needle);
}

static void test_decode_malformed(void **state)
{
    (void)state;
    /* framing: command_length out of range is unrecoverable (consumed 0) */
    expect_error("0000000f000000150000000000000001", 0, "command_length");
    expect_error("00000000", 0, "command_length");
    expect_error("00010001", 0, "command_length"); /* 65537 > 64 KiB */
    expect_error("ffffffff00000004", 0, "command_length");
    /* the body is bad but the frame is sane: skip it (consumed = command_length) */
    /* submit_sm whose source_addr runs to the end without a NUL */
    expect_error("00000016000000040000000000000002000500506172", 0x16, "truncated C-string");
    /* a source_addr of 24 characters */
    expect_error("0000002e000000040000000000000002000500"
                 "414141414141414141414141414141414141414141414141000101",
                 0x2e, "source_addr longer");
    /* sm_length 0x20 but only 5 bytes follow */
    expect_error("000000370000000400000000000000020005005061726c6579000101343637303132333435"
                 "3637000000000000010000002048656c6c6f",
                 0x37, "sm_length");
    /* a TLV whose length runs past the PDU */
    expect_error("000000188000000400000000000000026100"
                 "04270005"
                 "02ff",
                 0x18, "exceeds");
    /* message_state with length 2 */
    expect_error("000000188000000400000000000000026100"
                 "04270002"
                 "0202",
                 0x18, "bad length");
    /* three stray bytes where a TLV header should be */
    expect_error("0000001580000004000000000000000261"
                 "00"
                 "042700",
                 0x15, "truncated TLV");
    /* bind_transceiver cut after the password */
    expect_error("0000001e0000000900000000000000017061726c65790073656372657400", 0x1e, "truncated");
    /* a too-long system_id in a bind_transceiver_resp */
    expect_error("00000025800000090000000000000001"
                 "414141414141414141414141414141414141414100",
                 0x25, "system_id longer");
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(smpp_status_name(0x0E), "ESME_RINVPASWD");
    assert_string_equal(smpp_status_name(0x58), "ESME_RTHROTTLED");
    assert_string_equal(smpp_status_name(0), "ESME_ROK");
    assert_string_equal(smpp_status_name(0x1234), "ESME_0x00001234");
    assert_string_equal(smpp_command_name(SMPP_DELIVER_SM_RESP), "deliver_sm_resp");
    assert_string_equal(smpp_command_name(0x103), "unknown");
}

/* ---- text: GSM and UCS-2 ---- */

static void split_one(const char *text, smpp_split_t *s)
{
    err_t e;
    if (smpp_split(text, strlen(text), 0x2A, s, &e) != 0) fail_msg("split: %s", e.message);
}

static void assert_single(const char *text, uint8_t dc, const char *hex)
{
    smpp_split_t s;
    split_one(text, &s);
    assert_int_equal(s.count, 1);
    assert_int_equal(s.data_coding, dc);
    assert_int_equal(s.esm_class, 0);
    char *got = tohex(s.parts[0].data, s.parts[0].len);
    assert_string_equal(got, hex);
    free(got);
    smpp_split_free(&s);
}

static void test_gsm_detection(void **state)
{
    (void)state;
    size_t n;
    assert_true(smpp_gsm_fits("Hello", 5, &n));
    assert_int_equal(n, 5);
    assert_true(smpp_gsm_fits("\xe2\x82\xac", 3, &n)); /* € */
    assert_int_equal(n, 2);
    const char *ext = "[]{}^\\|~";
    assert_true(smpp_gsm_fits(ext, strlen(ext), &n));
    assert_int_equal(n, 16);
    const char *greek = "\xce\x94\xce\xa6\xce\x93\xce\x9b\xce\xa9"; /* ΔΦΓΛΩ */
    assert_true(smpp_gsm_fits(greek, strlen(greek), &n));
    assert_int_equal(n, 5);
    assert_true(smpp_gsm_fits("\xc3\x84\xc3\xb6\xc3\x9f", 6, &n)); /* Äöß */
    assert_true(smpp_gsm_fits("\xc3\x87", 2, NULL));               /* Ç is GSM */
    assert_false(smpp_gsm_fits("\xc3\xa7", 2, NULL));              /* ç is not */
    assert_false(smpp_gsm_fits("`", 1, NULL));                     /* nor the backtick */
    assert_false(smpp_gsm_fits("\xf0\x9f\x98\x80", 4, NULL));      /* 😀 */
    assert_false(smpp_gsm_fits("\xc3(", 2, NULL));                 /* invalid UTF-8 */
}

static void test_gsm_encoding(void **state)
{
    (void)state;
    assert_single("Hello", SMPP_DC_DEFAULT, "48656c6c6f");
    /* the basic table's non-ASCII positions */
    assert_single("@\xc2\xa3$\xc2\xa5\xc3\xa8\xc3\xa9", SMPP_DC_DEFAULT, "000102030405");
    assert_single("\xce\x94_\xc2\xa4\xc2\xa1\xc2\xbf\xc3\xa0\n\r", SMPP_DC_DEFAULT,
                  "1011244060"
                  "7f0a0d");
    /* every extension character: ESC + code, each counting two septets */
    assert_single("\xe2\x82\xac[]{}^\\|~\f", SMPP_DC_DEFAULT,
                  "1b651b3c1b3e1b281b291b141b2f1b401b3d1b0a");
}

static void test_ucs2_encoding(void **state)
{
    (void)state;
    /* a character outside GSM switches the whole text to UCS-2 */
    assert_single("Hi \xf0\x9f\x98\x80", SMPP_DC_UCS2, "004800690020d83dde00");
    assert_single("\xc3\xa7"
                  "a",
                  SMPP_DC_UCS2, "00e70061");
    assert_single("\xe2\x82\xac\xd0\x96", SMPP_DC_UCS2, "20ac0416"); /* € is U+20AC here */
    /* U+10FFFF, the last code point */
    assert_single("\xf4\x8f\xbf\xbf", SMPP_DC_UCS2, "dbffdfff");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    const char *bad[] = {"\xc3(",    "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                         "\xe2\x82", "\xff",     "\xe0\x80\xaf"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        smpp_split_t s;
        err_t e;
        assert_int_equal(smpp_split(bad[i], strlen(bad[i]), 1, &s, &e), -1);
        assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
        assert_null(s.parts);
    }
}

static char *repeat(const char *unit, size_t times, const char *tail)
{
    buf_t b;
    buf_init(&b);
    for (size_t i = 0; i < times; i++)
        buf_puts(&b, unit);
    if (tail) buf_puts(&b, tail);
    return buf_steal(&b);
}

/* Check the UDH of every part and the payload sizes (in bytes, after the UDH). */
static void assert_parts(const char *text, uint8_t dc, size_t count, const size_t *sizes)
{
    smpp_split_t s;
    split_one(text, &s);
    assert_int_equal(s.data_coding, dc);
    assert_int_equal(s.count, count);
    if (count == 1) {
        assert_int_equal(s.esm_class, 0);
        assert_int_equal(s.parts[0].len, sizes[0]);
    } else {
        assert_int_equal(s.esm_class, SMPP_ESM_UDHI);
        for (size_t i = 0; i < count; i++) {
            const uint8_t *u = s.parts[i].data;
            assert_int_equal(u[0], 5);
            assert_int_equal(u[1], 0);
            assert_int_equal(u[2], 3);
            assert_int_equal(u[3], 0x2A);
            assert_int_equal(u[4], count);
            assert_int_equal(u[5], i + 1);
            assert_int_equal(s.parts[i].len, 6 + sizes[i]);
            assert_true(s.parts[i].len <= SMPP_MAX_SM_LEN);
        }
    }
    smpp_split_free(&s);
}

static void test_split_gsm_boundaries(void **state)
{
    (void)state;
    char *t = repeat("a", 160, NULL);
    assert_parts(t, SMPP_DC_DEFAULT, 1, (size_t[]){160});
    free(t);
    t = repeat("a", 161, NULL);
    assert_parts(t, SMPP_DC_DEFAULT, 2, (size_t[]){153, 8});
    free(t);
    t = repeat("a", 306, NULL);
    assert_parts(t, SMPP_DC_DEFAULT, 2, (size_t[]){153, 153});
    free(t);
    t = repeat("a", 307, NULL);
    assert_parts(t, SMPP_DC_DEFAULT, 3, (size_t[]){153, 153, 1});
    free(t);
    /* an extension character counts two: 158 + 2 = 160 fits, 159 + 2 does not */
    t = repeat("a", 158, "\xe2\x82\xac");
    assert_parts(t, SMPP_DC_DEFAULT, 1, (size_t[]){160});
    free(t);
    t = repeat("a", 159, "\xe2\x82\xac");
    assert_parts(t, SMPP_DC_DEFAULT, 2, (size_t[]){153, 8});
    free(t);
    t = repeat("{", 80, NULL); /* 160 septets */
    assert_parts(t, SMPP_DC_DEFAULT, 1, (size_t[]){160});
    free(t);
    /* the escape pair is never split: 152 + ESC would straddle the 153 boundary */
    t = repeat("a", 152,
               "\xe2\x82\xac"
               "bcdefghi"); /* 162 septets */
    smpp_split_t s;
    split_one(t, &s);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.parts[0].len, 6 + 152);
    assert_int_equal(s.parts[0].data[6 + 151], 'a');
    assert_int_equal(s.parts[1].len, 6 + 10);
    assert_memory_equal(s.parts[1].data + 6,
                        "\x1b\x65"
                        "bcdefghi",
                        10);
    smpp_split_free(&s);
    free(t);
}

static void test_split_ucs2_boundaries(void **state)
{
    (void)state;
    const char *zhe = "\xd0\x96"; /* Ж, not in GSM */
    char *t = repeat(zhe, 70, NULL);
    assert_parts(t, SMPP_DC_UCS2, 1, (size_t[]){140});
    free(t);
    t = repeat(zhe, 71, NULL);
    assert_parts(t, SMPP_DC_UCS2, 2, (size_t[]){134, 8});
    free(t);
    t = repeat(zhe, 134, NULL);
    assert_parts(t, SMPP_DC_UCS2, 2, (size_t[]){134, 134});
    free(t);
    /* 35 emoji are 70 units: one part; 36 are 72: two parts of 33 + 3 emoji */
    t = repeat("\xf0\x9f\x98\x80", 35, NULL);
    assert_parts(t, SMPP_DC_UCS2, 1, (size_t[]){140});
    free(t);
    t = repeat("\xf0\x9f\x98\x80", 36, NULL);
    assert_parts(t, SMPP_DC_UCS2, 2, (size_t[]){132, 12});
    free(t);
    /* the surrogate pair is never split: 66 units + a pair straddles 67 */
    t = repeat(zhe, 66,
               "\xf0\x9f\x98\x80"
               "xyzw"); /* 72 units */
    smpp_split_t s;
    split_one(t, &s);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.parts[0].len, 6 + 132);
    assert_int_equal(s.parts[1].len, 6 + 12);
    assert_memory_equal(s.parts[1].data + 6, "\xd8\x3d\xde\x00\x00x\x00y\x00z\x00w", 12);
    smpp_split_free(&s);
    free(t);
}

static void test_split_limits(void **state)
{
    (void)state;
    assert_parts("", SMPP_DC_DEFAULT, 1, (size_t[]){0});
    char *t = repeat("a", 255 * 153, NULL);
    smpp_split_t s;
    split_one(t, &s);
    assert_int_equal(s.count, 255);
    assert_int_equal(s.parts[254].data[5], 255);
    smpp_split_free(&s);
    free(t);
    t = repeat("a", 255 * 153 + 1, NULL);
    err_t e;
    assert_int_equal(smpp_split(t, strlen(t), 1, &s, &e), -1);
    assert_non_null(strstr(e.message, "255 parts"));
    assert_null(s.parts);
    free(t);
}

/* ---- inbound text ---- */

static char *conv(void (*fn)(const uint8_t *, size_t, buf_t *), const char *hex)
{
    uint8_t raw[512];
    size_t n = unhex(hex, raw, sizeof raw);
    buf_t b;
    buf_init(&b);
    fn(raw, n, &b);
    return buf_steal(&b);
}

static void assert_conv(void (*fn)(const uint8_t *, size_t, buf_t *), const char *hex,
                        const char *want)
{
    char *got = conv(fn, hex);
    assert_string_equal(got, want);
    free(got);
}

static void test_inbound_converters(void **state)
{
    (void)state;
    assert_conv(smpp_gsm_to_utf8, "48656c6c6f", "Hello");
    assert_conv(smpp_gsm_to_utf8, "0001021b651b3c1b3e", "@\xc2\xa3$\xe2\x82\xac[]");
    assert_conv(smpp_gsm_to_utf8, "1b41", "A");    /* unknown extension: the basic char */
    assert_conv(smpp_gsm_to_utf8, "411b", "A ");   /* dangling escape */
    assert_conv(smpp_gsm_to_utf8, "1b1b41", " A"); /* ESC ESC */
    assert_conv(smpp_ucs2_to_utf8, "00480069d83dde00", "Hi\xf0\x9f\x98\x80");
    assert_conv(smpp_ucs2_to_utf8, "d83d0041",
                "\xef\xbf\xbd"
                "A"); /* lone high */
    assert_conv(smpp_ucs2_to_utf8, "de000041",
                "\xef\xbf\xbd"
                "A");                              /* lone low */
    assert_conv(smpp_ucs2_to_utf8, "004100", "A"); /* odd length */
    assert_conv(smpp_latin1_to_utf8, "e9ff41",
                "\xc3\xa9\xc3\xbf"
                "A");
}

static void make_deliver(smpp_pdu_t *p, uint8_t dc, uint8_t esm, const char *hex)
{
    smpp_pdu_init(p, SMPP_DELIVER_SM, 1);
    p->data_coding = dc;
    p->esm_class = esm;
    p->sm_length = (uint8_t)unhex(hex, p->short_message, sizeof p->short_message);
}

static void test_inbound_decode(void **state)
{
    (void)state;
    smpp_pdu_t p;
    smpp_text_t t;
    err_t e;

    make_deliver(&p, SMPP_DC_DEFAULT, 0, "48691b65");
    assert_int_equal(smpp_text_decode(&p, &t, &e), 0);
    assert_string_equal(t.text, "Hi\xe2\x82\xac");
    assert_false(t.concat);
    smpp_text_free(&t);

    /* data_coding 0 with octets above 0x7F is Latin-1, not GSM */
    make_deliver(&p, SMPP_DC_DEFAULT, 0, "48e9");
    assert_int_equal(smpp_text_decode(&p, &t, &e), 0);
    assert_string_equal(t.text, "H\xc3\xa9");
    smpp_text_free(&t);

    make_deliver(&p, SMPP_DC_LATIN1, 0, "e9");
    assert_int_equal(smpp_text_decode(&p, &t, &e), 0);
    assert_string_equal(t.text, "\xc3\xa9");
    smpp_text_free(&t);

    /* UDH IE 0x00 */
    make_deliver(&p, SMPP_DC_UCS2, SMPP_ESM_UDHI,
                 "050003a70302"
                 "0041d83dde00");
    assert_int_equal(smpp_text_decode(&p, &t, &e), 0);
    assert_string_equal(t.text, "A\xf0\x9f\x98\x80");
    assert_true(t.concat);
    assert_int_equal(t.ref, 0xA7);
    assert_int_equal(t.total, 3);
    assert_int_equal(t.seq, 2);
    smpp_text_free(&t);

    /* UDH IE 0x08 (16-bit reference) after another IE */
    make_deliver(&p, SMPP_DC_DEFAULT, SMPP_ESM_UDHI,
                 "0c"
                 "0504158a0000"
                 "08041234"
                 "0202"
                 "6869");
    assert_int_equal(smpp_text_decode(&p, &t, &e), 0);
    assert_string_equal(t.text, "hi");
    assert_true(t.concat);
    assert_int_equal(t.ref, 0x1234);
    assert_int_equal(t.seq, 2);
    smpp_text_free(&t);

    /* sar_* TLVs and message_payload */
    make_deliver(&p, SMPP_DC_DEFAULT, 0, "");
    smpp_pdu_set_payload(&p, "abc", 3);
    p.has_sar = 1;
    p.sar_msg_ref_num = 0x0102;
    p.sar_total_segments = 2;
    p.sar_segment_seqnum = 1;
    assert_int_equal(smpp_text_decode(&p, &t, &e), 0);
    assert_string_equal(t.text, "abc");
    assert_true(t.concat);
    assert_int_equal(t.ref, 0x0102);
    smpp_text_free(&t);
    smpp_pdu_free(&p);

    /* nonsense numbering (seq 0, or total 1) is delivered as a single message */
    make_deliver(&p, SMPP_DC_DEFAULT, SMPP_ESM_UDHI,
                 "050003010200"
                 "41");
    assert_int_equal(smpp_text_decode(&p, &t, &e), 0);
    assert_false(t.concat);
    smpp_text_free(&t);

    /* malformed UDHs */
    const char *bad[] = {"", "09000301", "0300050102", "01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        make_deliver(&p, SMPP_DC_DEFAULT, SMPP_ESM_UDHI, bad[i]);
        assert_int_equal(smpp_text_decode(&p, &t, &e), -1);
        assert_null(t.text);
    }
}

/* ---- receipts ---- */

static void test_receipt_text(void **state)
{
    (void)state;
    smpp_receipt_t r;
    err_t e;
    const char *t = "id:0123456789 sub:001 dlvrd:001 submit date:2511211200 done "
                    "date:2511211201 stat:DELIVRD err:000 text:Hello stat:UNDELIV";
    assert_int_equal(smpp_receipt_parse_text(t, strlen(t), &r, &e), 0);
    assert_string_equal(r.message_id, "0123456789");
    assert_string_equal(r.stat, "DELIVRD");
    assert_int_equal(r.status, SMPP_RECEIPT_DELIVERED);
    assert_int_equal(r.error_code, 0);

    t = "ID:ab-12 SUB:001 DLVRD:000 SUBMIT DATE:2511211200 DONE DATE:2511211201 "
        "STAT:UNDELIV ERR:011 TEXT:";
    assert_int_equal(smpp_receipt_parse_text(t, strlen(t), &r, &e), 0);
    assert_string_equal(r.message_id, "ab-12");
    assert_int_equal(r.status, SMPP_RECEIPT_FAILED);
    assert_int_equal(r.error_code, 11);

    t = "id:x stat:EXPIRED err:0a1";
    assert_int_equal(smpp_receipt_parse_text(t, strlen(t), &r, &e), 0);
    assert_int_equal(r.error_code, 0xa1);

    /* "id:" must start a word: "sid:" is not it */
    t = "sid:1 stat:DELIVRD";
    assert_int_equal(smpp_receipt_parse_text(t, strlen(t), &r, &e), -1);
    t = "id:1 text:stat:DELIVRD";
    assert_int_equal(smpp_receipt_parse_text(t, strlen(t), &r, &e), -1);
    assert_non_null(strstr(e.message, "stat"));
    t = "id:12345678901234567890123456789012345678901234567890123456789012345 stat:DELIVRD";
    assert_int_equal(smpp_receipt_parse_text(t, strlen(t), &r, &e), -1); /* id > 64 */
}

static void test_receipt_mapping(void **state)
{
    (void)state;
    struct {
        const char *stat;
        smpp_receipt_status_t want;
    } cases[] = {
        {"DELIVRD", SMPP_RECEIPT_DELIVERED},
        {"UNDELIV", SMPP_RECEIPT_FAILED},
        {"REJECTD", SMPP_RECEIPT_FAILED},
        {"EXPIRED", SMPP_RECEIPT_FAILED},
        {"DELETED", SMPP_RECEIPT_FAILED},
        {"ENROUTE", SMPP_RECEIPT_QUEUED_ON_CHANNEL},
        {"ACCEPTD", SMPP_RECEIPT_QUEUED_ON_CHANNEL},
        {"UNKNOWN", SMPP_RECEIPT_UNKNOWN},
        {"BOGUS", SMPP_RECEIPT_UNKNOWN},
        {"delivrd", SMPP_RECEIPT_DELIVERED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(smpp_receipt_status_from_stat(cases[i].stat), cases[i].want);
    assert_int_equal(smpp_receipt_status_from_state(SMPP_STATE_DELIVERED), SMPP_RECEIPT_DELIVERED);
    assert_int_equal(smpp_receipt_status_from_state(SMPP_STATE_ENROUTE),
                     SMPP_RECEIPT_QUEUED_ON_CHANNEL);
    assert_int_equal(smpp_receipt_status_from_state(SMPP_STATE_ACCEPTED),
                     SMPP_RECEIPT_QUEUED_ON_CHANNEL);
    assert_int_equal(smpp_receipt_status_from_state(SMPP_STATE_UNDELIVERABLE), SMPP_RECEIPT_FAILED);
    assert_int_equal(smpp_receipt_status_from_state(SMPP_STATE_REJECTED), SMPP_RECEIPT_FAILED);
    assert_int_equal(smpp_receipt_status_from_state(SMPP_STATE_UNKNOWN), SMPP_RECEIPT_UNKNOWN);
    assert_int_equal(smpp_receipt_status_from_state(200), SMPP_RECEIPT_UNKNOWN);
    assert_string_equal(smpp_receipt_status_name(SMPP_RECEIPT_QUEUED_ON_CHANNEL),
                        "QUEUED_ON_CHANNEL");
}

static void test_receipt_pdu(void **state)
{
    (void)state;
    smpp_pdu_t p;
    smpp_receipt_t r;
    err_t e;
    decode_hex(HEX_DLR, &p);
    assert_true(smpp_is_receipt(&p));
    assert_int_equal(smpp_receipt_parse(&p, &r, &e), 0);
    assert_string_equal(r.message_id, "abc123");
    assert_int_equal(r.status, SMPP_RECEIPT_DELIVERED);
    smpp_pdu_free(&p);

    /* the TLVs win over the text (ids differ in radix on some SMSCs) */
    const char *t = "id:2748 sub:001 dlvrd:000 submit date:2511211200 done date:2511211201 "
                    "stat:DELIVRD err:000 text:";
    smpp_pdu_init(&p, SMPP_DELIVER_SM, 3);
    p.esm_class = SMPP_ESM_RECEIPT;
    p.sm_length = (uint8_t)strlen(t);
    memcpy(p.short_message, t, p.sm_length);
    p.has_receipted_message_id = 1;
    strcpy(p.receipted_message_id, "ABC");
    p.has_message_state = 1;
    p.message_state = SMPP_STATE_UNDELIVERABLE;
    p.has_network_error_code = 1;
    memcpy(p.network_error_code, "\x03\x00\x22", 3);
    assert_int_equal(smpp_receipt_parse(&p, &r, &e), 0);
    assert_string_equal(r.message_id, "ABC");
    assert_string_equal(r.stat, "UNDELIV");
    assert_int_equal(r.status, SMPP_RECEIPT_FAILED);
    assert_int_equal(r.error_code, 0x22);

    /* TLVs only, no text */
    p.sm_length = 0;
    assert_int_equal(smpp_receipt_parse(&p, &r, &e), 0);
    assert_string_equal(r.message_id, "ABC");
    assert_int_equal(r.status, SMPP_RECEIPT_FAILED);

    /* neither: an error, not a crash */
    p.has_receipted_message_id = p.has_message_state = p.has_network_error_code = 0;
    assert_int_equal(smpp_receipt_parse(&p, &r, &e), -1);

    /* esm_class message types */
    p.esm_class = SMPP_ESM_INTERMED;
    assert_true(smpp_is_receipt(&p));
    p.esm_class = 0;
    assert_false(smpp_is_receipt(&p));
    p.esm_class = SMPP_ESM_UDHI;
    assert_false(smpp_is_receipt(&p));
    p.esm_class = 0x08; /* SME delivery acknowledgement */
    assert_false(smpp_is_receipt(&p));
}

/* A deterministic fuzz: random and mutated buffers never crash the decoder (ASan and UBSan
 * watch the reads) and errors always come with a message. */
static void test_decode_fuzz(void **state)
{
    (void)state;
    uint32_t x = 12345;
    uint8_t base[512];
    size_t bn = unhex(HEX_DLR, base, sizeof base);
    uint8_t buf[600];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n;
        if (iter % 2) {
            memcpy(buf, base, bn);
            n = bn;
            for (int k = 0; k < 3; k++) {
                x = x * 1103515245 + 12345;
                buf[16 + (x >> 8) % (bn - 16)] = (uint8_t)(x >> 16);
            }
        } else {
            x = x * 1103515245 + 12345;
            n = 16 + (x >> 8) % 200;
            for (size_t k = 0; k < n; k++) {
                x = x * 1103515245 + 12345;
                buf[k] = (uint8_t)(x >> 16);
            }
            buf[0] = buf[1] = 0;
            buf[2] = (uint8_t)(n >> 8);
            buf[3] = (uint8_t)n;
            buf[4] = (iter % 4) ? 0x00 : 0x80;
            buf[5] = buf[6] = 0;
            buf[7] = (uint8_t)((iter / 2) % 3 == 0 ? 0x04 : (iter / 2) % 3 == 1 ? 0x05 : 0x09);
        }
        smpp_pdu_t p;
        size_t used;
        err_t e = {0};
        smpp_decode_t rc = smpp_pdu_decode(buf, n, &p, &used, &e);
        if (rc == SMPP_DECODE_ERROR) assert_true(e.message[0] != '\0');
        if (rc == SMPP_DECODE_OK && p.command_id == SMPP_DELIVER_SM) {
            smpp_text_t t;
            if (smpp_text_decode(&p, &t, &e) == 0) smpp_text_free(&t);
            smpp_receipt_t r;
            (void)smpp_receipt_parse(&p, &r, &e);
        }
        smpp_pdu_free(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_header_only),   cmocka_unit_test(test_encode_bind),
        cmocka_unit_test(test_encode_submit_sm),     cmocka_unit_test(test_encode_tlvs),
        cmocka_unit_test(test_encode_rejects),       cmocka_unit_test(test_decode_known),
        cmocka_unit_test(test_decode_roundtrip),     cmocka_unit_test(test_decode_partial),
        cmocka_unit_test(test_decode_several),       cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_decode_fuzz),          cmocka_unit_test(test_names),
        cmocka_unit_test(test_gsm_detection),        cmocka_unit_test(test_gsm_encoding),
        cmocka_unit_test(test_ucs2_encoding),        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_split_gsm_boundaries), cmocka_unit_test(test_split_ucs2_boundaries),
        cmocka_unit_test(test_split_limits),         cmocka_unit_test(test_inbound_converters),
        cmocka_unit_test(test_inbound_decode),       cmocka_unit_test(test_receipt_text),
        cmocka_unit_test(test_receipt_mapping),      cmocka_unit_test(test_receipt_pdu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
