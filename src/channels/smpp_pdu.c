/* smpp_pdu.c: the SMPP 3.4 codec. PDU encode/decode with bounds checks on every read (the
 * bytes come from the network), GSM 03.38 / Latin-1 / UCS-2 text conversion, splitting
 * long texts into concatenated parts, and delivery receipt parsing. No I/O here, so every
 * byte is unit-testable. */
#include "channels/smpp_pdu.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------------------------------
 * PDU encoding
 * ------------------------------------------------------------------------------------- */

void smpp_pdu_init(smpp_pdu_t *p, uint32_t command_id, uint32_t sequence)
{
    memset(p, 0, sizeof *p);
    p->command_id = command_id;
    p->sequence = sequence;
    p->interface_version = 0x34;
}

void smpp_pdu_free(smpp_pdu_t *p)
{
    free(p->message_payload);
    p->message_payload = NULL;
    p->message_payload_len = 0;
}

void smpp_pdu_set_payload(smpp_pdu_t *p, const void *data, size_t len)
{
    free(p->message_payload);
    p->message_payload = xmalloc(len ? len : 1);
    if (len) memcpy(p->message_payload, data, len);
    p->message_payload_len = len;
}

static void put8(buf_t *b, uint8_t v)
{
    buf_append(b, &v, 1);
}

static void put16(buf_t *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    buf_append(b, x, 2);
}

static void put32(buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    buf_append(b, x, 4);
}

/* A C-Octet String of at most cap bytes including the NUL. */
static int putcstr(buf_t *b, const char *s, size_t cap, const char *name, err_t *e)
{
    size_t n = strnlen(s, cap);
    if (n >= cap)
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: %s longer than %zu characters", name,
                       cap - 1);
    buf_append(b, s, n + 1);
    return 0;
}

static void put_tlv(buf_t *b, uint16_t tag, const void *v, uint16_t len)
{
    put16(b, tag);
    put16(b, len);
    if (len) buf_append(b, v, len);
}

static int encode_sm(const smpp_pdu_t *p, buf_t *b, err_t *e)
{
    if (putcstr(b, p->service_type, sizeof p->service_type, "service_type", e) < 0) return -1;
    put8(b, p->source_addr_ton);
    put8(b, p->source_addr_npi);
    if (putcstr(b, p->source_addr, sizeof p->source_addr, "source_addr", e) < 0) return -1;
    put8(b, p->dest_addr_ton);
    put8(b, p->dest_addr_npi);
    if (putcstr(b, p->destination_addr, sizeof p->destination_addr, "destination_addr", e) < 0)
        return -1;
    put8(b, p->esm_class);
    put8(b, p->protocol_id);
    put8(b, p->priority_flag);
    if (putcstr(b, p->schedule_delivery_time, sizeof p->schedule_delivery_time,
                "schedule_delivery_time", e) < 0)
        return -1;
    if (putcstr(b, p->validity_period, sizeof p->validity_period, "validity_period", e) < 0)
        return -1;
    put8(b, p->registered_delivery);
    put8(b, p->replace_if_present_flag);
    put8(b, p->data_coding);
    put8(b, p->sm_default_msg_id);
    if (p->sm_length > SMPP_MAX_SM_LEN)
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: sm_length %u exceeds %d", p->sm_length,
                       SMPP_MAX_SM_LEN);
    put8(b, p->sm_length);
    buf_append(b, p->short_message, p->sm_length);

    if (p->message_payload) {
        if (p->message_payload_len > 0xFFFF)
            return err_set(e, ERR_INVALID_ARGUMENT, "smpp: message_payload too long");
        put_tlv(b, SMPP_TLV_MESSAGE_PAYLOAD, p->message_payload, (uint16_t)p->message_payload_len);
    }
    if (p->has_sar) {
        uint8_t ref[2] = {(uint8_t)(p->sar_msg_ref_num >> 8), (uint8_t)p->sar_msg_ref_num};
        put_tlv(b, SMPP_TLV_SAR_MSG_REF_NUM, ref, 2);
        put_tlv(b, SMPP_TLV_SAR_TOTAL_SEGMENTS, &p->sar_total_segments, 1);
        put_tlv(b, SMPP_TLV_SAR_SEGMENT_SEQNUM, &p->sar_segment_seqnum, 1);
    }
    if (p->has_receipted_message_id) {
        size_t n = strnlen(p->receipted_message_id, sizeof p->receipted_message_id);
        if (n >= sizeof p->receipted_message_id)
            return err_set(e, ERR_INVALID_ARGUMENT, "smpp: receipted_message_id too long");
        put_tlv(b, SMPP_TLV_RECEIPTED_MESSAGE_ID, p->receipted_message_id, (uint16_t)(n + 1));
    }
    if (p->has_message_state) put_tlv(b, SMPP_TLV_MESSAGE_STATE, &p->message_state, 1);
    if (p->has_network_error_code)
        put_tlv(b, SMPP_TLV_NETWORK_ERROR_CODE, p->network_error_code, 3);
    return 0;
}

int smpp_pdu_encode(const smpp_pdu_t *p, buf_t *out, err_t *e)
{
    buf_t b;
    buf_init(&b);
    put32(&b, 0); /* command_length, patched below */
    put32(&b, p->command_id);
    put32(&b, p->command_status);
    put32(&b, p->sequence);
    int rc = 0;
    switch (p->command_id) {
    case SMPP_BIND_TRANSCEIVER:
        if (putcstr(&b, p->system_id, sizeof p->system_id, "system_id", e) < 0 ||
            putcstr(&b, p->password, sizeof p->password, "password", e) < 0 ||
            putcstr(&b, p->system_type, sizeof p->system_type, "system_type", e) < 0) {
            rc = -1;
            break;
        }
        put8(&b, p->interface_version);
        put8(&b, p->addr_ton);
        put8(&b, p->addr_npi);
        rc = putcstr(&b, p->address_range, sizeof p->address_range, "address_range", e);
        break;
    case SMPP_BIND_TRANSCEIVER_RESP:
        /* 3.4: the body is not returned when command_status is non-zero */
        if (p->command_status == 0)
            rc = putcstr(&b, p->system_id, sizeof p->system_id, "system_id", e);
        break;
    case SMPP_SUBMIT_SM:
    case SMPP_DELIVER_SM:
        rc = encode_sm(p, &b, e);
        break;
    case SMPP_SUBMIT_SM_RESP:
    case SMPP_DELIVER_SM_RESP:
        if (p->command_status == 0)
            rc = putcstr(&b, p->message_id, sizeof p->message_id, "message_id", e);
        break;
    case SMPP_UNBIND:
    case SMPP_UNBIND_RESP:
    case SMPP_ENQUIRE_LINK:
    case SMPP_ENQUIRE_LINK_RESP:
    case SMPP_GENERIC_NACK:
        break;
    default:
        rc = err_set(e, ERR_INVALID_ARGUMENT, "smpp: cannot encode command 0x%08x", p->command_id);
    }
    if (rc == 0 && b.len > SMPP_MAX_PDU_LEN)
        rc = err_set(e, ERR_INVALID_ARGUMENT, "smpp: PDU of %zu bytes exceeds %d", b.len,
                     SMPP_MAX_PDU_LEN);
    if (rc == 0) {
        uint32_t n = (uint32_t)b.len;
        uint8_t *d = (uint8_t *)b.data;
        d[0] = (uint8_t)(n >> 24);
        d[1] = (uint8_t)(n >> 16);
        d[2] = (uint8_t)(n >> 8);
        d[3] = (uint8_t)n;
        buf_append(out, b.data, b.len);
    }
    buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * PDU decoding: a cursor that never reads past its end
 * ------------------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n;
} rd_t;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int get8(rd_t *r, uint8_t *v, const char *name, err_t *e)
{
    if (r->n < 1) return err_set(e, ERR_INVALID_ARGUMENT, "smpp: truncated before %s", name);
    *v = r->p[0];
    r->p++;
    r->n--;
    return 0;
}

/* Read a C-Octet String into dst[cap] (cap includes the NUL). */
static int getcstr(rd_t *r, char *dst, size_t cap, const char *name, err_t *e)
{
    size_t lim = r->n < cap ? r->n : cap;
    const uint8_t *nul = memchr(r->p, 0, lim);
    if (!nul) {
        if (r->n < cap)
            return err_set(e, ERR_INVALID_ARGUMENT, "smpp: truncated C-string %s", name);
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: %s longer than %zu characters", name,
                       cap - 1);
    }
    size_t len = (size_t)(nul - r->p);
    memcpy(dst, r->p, len);
    dst[len] = '\0';
    r->p += len + 1;
    r->n -= len + 1;
    return 0;
}

static int decode_tlvs(rd_t *r, smpp_pdu_t *p, err_t *e)
{
    int sar = 0;
    while (r->n > 0) {
        if (r->n < 4) return err_set(e, ERR_INVALID_ARGUMENT, "smpp: truncated TLV header");
        uint16_t tag = (uint16_t)(r->p[0] << 8 | r->p[1]);
        uint16_t len = (uint16_t)(r->p[2] << 8 | r->p[3]);
        r->p += 4;
        r->n -= 4;
        if (len > r->n)
            return err_set(e, ERR_INVALID_ARGUMENT, "smpp: TLV 0x%04x length %u exceeds the PDU",
                           tag, len);
        const uint8_t *v = r->p;
        int bad = 0;
        switch (tag) {
        case SMPP_TLV_MESSAGE_PAYLOAD:
            smpp_pdu_set_payload(p, v, len);
            break;
        case SMPP_TLV_MESSAGE_STATE:
            if (len != 1)
                bad = 1;
            else {
                p->has_message_state = 1;
                p->message_state = v[0];
            }
            break;
        case SMPP_TLV_RECEIPTED_MESSAGE_ID: {
            /* a C-string; tolerate a missing NUL as some SMSCs send */
            const uint8_t *nul = memchr(v, 0, len);
            size_t n = nul ? (size_t)(nul - v) : len;
            if (n >= sizeof p->receipted_message_id)
                bad = 1;
            else {
                memcpy(p->receipted_message_id, v, n);
                p->receipted_message_id[n] = '\0';
                p->has_receipted_message_id = 1;
            }
            break;
        }
        case SMPP_TLV_NETWORK_ERROR_CODE:
            if (len != 3)
                bad = 1;
            else {
                memcpy(p->network_error_code, v, 3);
                p->has_network_error_code = 1;
            }
            break;
        case SMPP_TLV_SAR_MSG_REF_NUM:
            if (len != 2)
                bad = 1;
            else {
                p->sar_msg_ref_num = (uint16_t)(v[0] << 8 | v[1]);
                sar |= 1;
            }
            break;
        case SMPP_TLV_SAR_TOTAL_SEGMENTS:
            if (len != 1)
                bad = 1;
            else {
                p->sar_total_segments = v[0];
                sar |= 2;
            }
            break;
        case SMPP_TLV_SAR_SEGMENT_SEQNUM:
            if (len != 1)
                bad = 1;
            else {
                p->sar_segment_seqnum = v[0];
                sar |= 4;
            }
            break;
        default:
            break; /* unknown or unused TLVs are skipped */
        }
        if (bad)
            return err_set(e, ERR_INVALID_ARGUMENT, "smpp: TLV 0x%04x has bad length %u", tag, len);
        r->p += len;
        r->n -= len;
    }
    p->has_sar = sar == 7;
    return 0;
}

static int decode_sm(rd_t *r, smpp_pdu_t *p, err_t *e)
{
    if (getcstr(r, p->service_type, sizeof p->service_type, "service_type", e) < 0 ||
        get8(r, &p->source_addr_ton, "source_addr_ton", e) < 0 ||
        get8(r, &p->source_addr_npi, "source_addr_npi", e) < 0 ||
        getcstr(r, p->source_addr, sizeof p->source_addr, "source_addr", e) < 0 ||
        get8(r, &p->dest_addr_ton, "dest_addr_ton", e) < 0 ||
        get8(r, &p->dest_addr_npi, "dest_addr_npi", e) < 0 ||
        getcstr(r, p->destination_addr, sizeof p->destination_addr, "destination_addr", e) < 0 ||
        get8(r, &p->esm_class, "esm_class", e) < 0 ||
        get8(r, &p->protocol_id, "protocol_id", e) < 0 ||
        get8(r, &p->priority_flag, "priority_flag", e) < 0 ||
        getcstr(r, p->schedule_delivery_time, sizeof p->schedule_delivery_time,
                "schedule_delivery_time", e) < 0 ||
        getcstr(r, p->validity_period, sizeof p->validity_period, "validity_period", e) < 0 ||
        get8(r, &p->registered_delivery, "registered_delivery", e) < 0 ||
        get8(r, &p->replace_if_present_flag, "replace_if_present_flag", e) < 0 ||
        get8(r, &p->data_coding, "data_coding", e) < 0 ||
        get8(r, &p->sm_default_msg_id, "sm_default_msg_id", e) < 0 ||
        get8(r, &p->sm_length, "sm_length", e) < 0)
        return -1;
    if (p->sm_length > r->n)
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: sm_length %u exceeds the PDU", p->sm_length);
    memcpy(p->short_message, r->p, p->sm_length);
    r->p += p->sm_length;
    r->n -= p->sm_length;
    return decode_tlvs(r, p, e);
}

smpp_decode_t smpp_pdu_decode(const uint8_t *data, size_t len, smpp_pdu_t *out, size_t *consumed,
                              err_t *e)
{
    *consumed = 0;
    smpp_pdu_init(out, 0, 0);
    if (len < 4) return SMPP_DECODE_NEED_MORE;
    uint32_t clen = be32(data);
    if (clen < SMPP_HEADER_LEN || clen > SMPP_MAX_PDU_LEN) {
        err_set(e, ERR_INVALID_ARGUMENT, "smpp: command_length %u out of range", clen);
        return SMPP_DECODE_ERROR;
    }
    if (len < clen) return SMPP_DECODE_NEED_MORE;
    out->command_id = be32(data + 4);
    out->command_status = be32(data + 8);
    out->sequence = be32(data + 12);
    out->interface_version = 0;
    *consumed = clen;
    rd_t r = {data + SMPP_HEADER_LEN, clen - SMPP_HEADER_LEN};
    int rc = 0;
    switch (out->command_id) {
    case SMPP_BIND_TRANSCEIVER:
        if (getcstr(&r, out->system_id, sizeof out->system_id, "system_id", e) < 0 ||
            getcstr(&r, out->password, sizeof out->password, "password", e) < 0 ||
            getcstr(&r, out->system_type, sizeof out->system_type, "system_type", e) < 0 ||
            get8(&r, &out->interface_version, "interface_version", e) < 0 ||
            get8(&r, &out->addr_ton, "addr_ton", e) < 0 ||
            get8(&r, &out->addr_npi, "addr_npi", e) < 0 ||
            getcstr(&r, out->address_range, sizeof out->address_range, "address_range", e) < 0)
            rc = -1;
        break;
    case SMPP_BIND_TRANSCEIVER_RESP:
        /* the body is absent on errors (and some SMSCs omit it on success too) */
        if (r.n > 0) {
            rc = getcstr(&r, out->system_id, sizeof out->system_id, "system_id", e);
            if (rc == 0) rc = decode_tlvs(&r, out, e);
        }
        break;
    case SMPP_SUBMIT_SM:
    case SMPP_DELIVER_SM:
        rc = decode_sm(&r, out, e);
        break;
    case SMPP_SUBMIT_SM_RESP:
    case SMPP_DELIVER_SM_RESP:
        if (r.n > 0) {
            rc = getcstr(&r, out->message_id, sizeof out->message_id, "message_id", e);
            if (rc == 0) rc = decode_tlvs(&r, out, e);
        }
        break;
    default:
        /* header-only PDUs (unbind, enquire_link, generic_nack and their responses) and
         * commands Parley does not handle: the body, if any, is ignored */
        break;
    }
    if (rc < 0) {
        smpp_pdu_free(out);
        return SMPP_DECODE_ERROR;
    }
    return SMPP_DECODE_OK;
}

const char *smpp_command_name(uint32_t id)
{
    switch (id) {
    case SMPP_GENERIC_NACK:
        return "generic_nack";
    case SMPP_BIND_RECEIVER:
        return "bind_receiver";
    case SMPP_BIND_TRANSMITTER:
        return "bind_transmitter";
    case SMPP_SUBMIT_SM:
        return "submit_sm";
    case SMPP_SUBMIT_SM_RESP:
        return "submit_sm_resp";
    case SMPP_DELIVER_SM:
        return "deliver_sm";
    case SMPP_DELIVER_SM_RESP:
        return "deliver_sm_resp";
    case SMPP_UNBIND:
        return "unbind";
    case SMPP_UNBIND_RESP:
        return "unbind_resp";
    case SMPP_BIND_TRANSCEIVER:
        return "bind_transceiver";
    case SMPP_BIND_TRANSCEIVER_RESP:
        return "bind_transceiver_resp";
    case SMPP_ENQUIRE_LINK:
        return "enquire_link";
    case SMPP_ENQUIRE_LINK_RESP:
        return "enquire_link_resp";
    default:
        return "unknown";
    }
}

static const struct {
    uint32_t status;
    const char *name;
} status_names[] = {
    {0x00, "ESME_ROK"},
    {0x01, "ESME_RINVMSGLEN"},
    {0x02, "ESME_RINVCMDLEN"},
    {0x03, "ESME_RINVCMDID"},
    {0x04, "ESME_RINVBNDSTS"},
    {0x05, "ESME_RALYBND"},
    {0x06, "ESME_RINVPRTFLG"},
    {0x07, "ESME_RINVREGDLVFLG"},
    {0x08, "ESME_RSYSERR"},
    {0x0A, "ESME_RINVSRCADR"},
    {0x0B, "ESME_RINVDSTADR"},
    {0x0C, "ESME_RINVMSGID"},
    {0x0D, "ESME_RBINDFAIL"},
    {0x0E, "ESME_RINVPASWD"},
    {0x0F, "ESME_RINVSYSID"},
    {0x11, "ESME_RCANCELFAIL"},
    {0x13, "ESME_RREPLACEFAIL"},
    {0x14, "ESME_RMSGQFUL"},
    {0x15, "ESME_RINVSERTYP"},
    {0x33, "ESME_RINVNUMDESTS"},
    {0x34, "ESME_RINVDLNAME"},
    {0x40, "ESME_RINVDESTFLAG"},
    {0x42, "ESME_RINVSUBREP"},
    {0x43, "ESME_RINVESMCLASS"},
    {0x44, "ESME_RCNTSUBDL"},
    {0x45, "ESME_RSUBMITFAIL"},
    {0x48, "ESME_RINVSRCTON"},
    {0x49, "ESME_RINVSRCNPI"},
    {0x50, "ESME_RINVDSTTON"},
    {0x51, "ESME_RINVDSTNPI"},
    {0x53, "ESME_RINVSYSTYP"},
    {0x54, "ESME_RINVREPFLAG"},
    {0x55, "ESME_RINVNUMMSGS"},
    {0x58, "ESME_RTHROTTLED"},
    {0x61, "ESME_RINVSCHED"},
    {0x62, "ESME_RINVEXPIRY"},
    {0x63, "ESME_RINVDFTMSGID"},
    {0x64, "ESME_RX_T_APPN"},
    {0x65, "ESME_RX_P_APPN"},
    {0x66, "ESME_RX_R_APPN"},
    {0x67, "ESME_RQUERYFAIL"},
    {0xC0, "ESME_RINVOPTPARSTREAM"},
    {0xC1, "ESME_ROPTPARNOTALLWD"},
    {0xC2, "ESME_RINVPARLEN"},
    {0xC3, "ESME_RMISSINGOPTPARAM"},
    {0xC4, "ESME_RINVOPTPARAMVAL"},
    {0xFE, "ESME_RDELIVERYFAILURE"},
    {0xFF, "ESME_RUNKNOWNERR"},
};

const char *smpp_status_name(uint32_t status)
{
    for (size_t i = 0; i < sizeof status_names / sizeof status_names[0]; i++)
        if (status_names[i].status == status) return status_names[i].name;
    static _Thread_local char other[24];
    snprintf(other, sizeof other, "ESME_0x%08x", status);
    return other;
}

/* ---------------------------------------------------------------------------------------
 * UTF-8
 * ------------------------------------------------------------------------------------- */

/* Decode one code point at s[*i]; strict (no overlongs, surrogates or > U+10FFFF). */
static int utf8_next(const uint8_t *s, size_t len, size_t *i, uint32_t *cp)
{
    size_t k = *i;
    uint8_t c = s[k];
    uint32_t v;
    size_t n;
    if (c < 0x80) {
        *cp = c;
        *i = k + 1;
        return 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
        v = c & 0x1F;
        n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        v = c & 0x0F;
        n = 2;
    } else if (c >= 0xF0 && c <= 0xF4) {
        v = c & 0x07;
        n = 3;
    } else {
        return -1;
    }
    if (k + n >= len) return -1; /* truncated sequence */
    for (size_t j = 1; j <= n; j++) {
        uint8_t cc = s[k + j];
        if ((cc & 0xC0) != 0x80) return -1;
        v = v << 6 | (cc & 0x3F);
    }
    if ((n == 2 && v < 0x800) || (n == 3 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return -1;
    *cp = v;
    *i = k + n + 1;
    return 0;
}

static void utf8_put(buf_t *b, uint32_t cp)
{
    uint8_t x[4];
    size_t n;
    if (cp < 0x80) {
        x[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        x[0] = (uint8_t)(0xC0 | cp >> 6);
        x[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        x[0] = (uint8_t)(0xE0 | cp >> 12);
        x[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        x[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        x[0] = (uint8_t)(0xF0 | cp >> 18);
        x[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        x[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        x[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_append(b, x, n);
}

/* ---------------------------------------------------------------------------------------
 * GSM 03.38 default alphabet and extension table
 * ------------------------------------------------------------------------------------- */

static const uint16_t gsm_basic[128] = {
    0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, /* @ £ $ ¥ è é ù ì */
    0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D, 0x00C5, 0x00E5, /* ò Ç LF Ø ø CR Å å */
    0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, /* Δ _ Φ Γ Λ Ω Π Ψ */
    0x03A3, 0x0398, 0x039E, 0x0020, 0x00C6, 0x00E6, 0x00DF, 0x00C9, /* Σ Θ Ξ ESC Æ æ ß É */
    0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027, /* SP ! " # ¤ % & ' */
    0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F, /* ( ) * + , - . / */
    0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037, /* 0-7 */
    0x0038, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F, /* 8 9 : ; < = > ? */
    0x00A1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047, /* ¡ A-G */
    0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D, 0x004E, 0x004F, /* H-O */
    0x0050, 0x0051, 0x0052, 0x0053, 0x0054, 0x0055, 0x0056, 0x0057, /* P-W */
    0x0058, 0x0059, 0x005A, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7, /* X Y Z Ä Ö Ñ Ü § */
    0x00BF, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067, /* ¿ a-g */
    0x0068, 0x0069, 0x006A, 0x006B, 0x006C, 0x006D, 0x006E, 0x006F, /* h-o */
    0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077, /* p-w */
    0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0, /* x y z ä ö ñ ü à */
};
#define GSM_ESC 0x1B

static const struct {
    uint8_t code;
    uint16_t ucs;
} gsm_ext[] = {
    {0x0A, 0x000C}, /* form feed */
    {0x14, 0x005E}, /* ^ */
    {0x28, 0x007B}, /* { */
    {0x29, 0x007D}, /* } */
    {0x2F, 0x005C}, /* \ */
    {0x3C, 0x005B}, /* [ */
    {0x3D, 0x007E}, /* ~ */
    {0x3E, 0x005D}, /* ] */
    {0x40, 0x007C}, /* | */
    {0x65, 0x20AC}, /* € */
};
#define GSM_EXT_COUNT (sizeof gsm_ext / sizeof gsm_ext[0])

/* Septets for cp: 1 (basic, code in out[0]), 2 (ESC + out[1]) or 0 (not in GSM). */
static int gsm_encode_cp(uint32_t cp, uint8_t out[2])
{
    for (size_t i = 0; i < GSM_EXT_COUNT; i++)
        if (gsm_ext[i].ucs == cp) {
            out[0] = GSM_ESC;
            out[1] = gsm_ext[i].code;
            return 2;
        }
    for (int i = 0; i < 128; i++)
        if (i != GSM_ESC && gsm_basic[i] == cp) {
            out[0] = (uint8_t)i;
            return 1;
        }
    return 0;
}

int smpp_gsm_fits(const char *utf8, size_t len, size_t *septets)
{
    const uint8_t *s = (const uint8_t *)utf8;
    size_t i = 0, n = 0;
    while (i < len) {
        uint32_t cp;
        uint8_t tmp[2];
        if (utf8_next(s, len, &i, &cp) < 0) return 0;
        int k = gsm_encode_cp(cp, tmp);
        if (!k) return 0;
        n += (size_t)k;
    }
    if (septets) *septets = n;
    return 1;
}

void smpp_gsm_to_utf8(const uint8_t *in, size_t len, buf_t *out)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = in[i] & 0x7F;
        if (c == GSM_ESC) {
            if (i + 1 >= len) { /* a dangling escape shows as a space */
                utf8_put(out, 0x20);
                break;
            }
            uint8_t x = in[++i] & 0x7F;
            uint32_t cp = 0;
            for (size_t k = 0; k < GSM_EXT_COUNT; k++)
                if (gsm_ext[k].code == x) cp = gsm_ext[k].ucs;
            /* 23.038: an unknown extension shows the basic character; ESC ESC a space */
            if (!cp) cp = x == GSM_ESC ? 0x20 : gsm_basic[x];
            utf8_put(out, cp);
        } else {
            utf8_put(out, gsm_basic[c]);
        }
    }
}

void smpp_latin1_to_utf8(const uint8_t *in, size_t len, buf_t *out)
{
    for (size_t i = 0; i < len; i++)
        utf8_put(out, in[i]);
}

void smpp_ucs2_to_utf8(const uint8_t *in, size_t len, buf_t *out)
{
    for (size_t i = 0; i + 1 < len; i += 2) {
        uint32_t u = (uint32_t)in[i] << 8 | in[i + 1];
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (i + 3 < len) {
                uint32_t lo = (uint32_t)in[i + 2] << 8 | in[i + 3];
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    utf8_put(out, 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
                    i += 2;
                    continue;
                }
            }
            utf8_put(out, 0xFFFD);
        } else if (u >= 0xDC00 && u <= 0xDFFF) {
            utf8_put(out, 0xFFFD);
        } else {
            utf8_put(out, u);
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Splitting
 * ------------------------------------------------------------------------------------- */

#define GSM_SINGLE  160
#define GSM_MULTI   153
#define UCS2_SINGLE 70
#define UCS2_MULTI  67
#define UDH_LEN     6

static smpp_part_t *split_new_part(smpp_split_t *s, size_t *cap, int multi)
{
    if (s->count == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        s->parts = xrealloc(s->parts, *cap * sizeof *s->parts);
    }
    smpp_part_t *p = &s->parts[s->count++];
    memset(p, 0, sizeof *p);
    if (multi) p->len = UDH_LEN; /* the UDH is filled in once the count is known */
    return p;
}

int smpp_split(const char *utf8, size_t len, uint8_t ref, smpp_split_t *out, err_t *e)
{
    memset(out, 0, sizeof *out);
    const uint8_t *s = (const uint8_t *)utf8;
    size_t total = 0;
    int gsm = 1;
    /* pass 1: validate, pick the alphabet and count units */
    {
        size_t i = 0, septets = 0, units = 0;
        while (i < len) {
            uint32_t cp;
            uint8_t tmp[2];
            if (utf8_next(s, len, &i, &cp) < 0)
                return err_set(e, ERR_INVALID_ARGUMENT, "smpp: text is not valid UTF-8");
            int k = gsm_encode_cp(cp, tmp);
            if (!k) gsm = 0;
            septets += (size_t)k;
            units += cp >= 0x10000 ? 2 : 1;
        }
        total = gsm ? septets : units;
    }
    size_t single = gsm ? GSM_SINGLE : UCS2_SINGLE;
    size_t limit = gsm ? GSM_MULTI : UCS2_MULTI;
    int multi = total > single;
    if (!multi) limit = single;
    out->data_coding = gsm ? SMPP_DC_DEFAULT : SMPP_DC_UCS2;
    out->esm_class = multi ? SMPP_ESM_UDHI : 0;

    /* pass 2: fill parts, starting a new one when the next character does not fit */
    size_t cap = 0, used = 0;
    smpp_part_t *cur = split_new_part(out, &cap, multi);
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        uint8_t enc[4];
        size_t nunits, nbytes;
        (void)utf8_next(s, len, &i, &cp); /* validated in pass 1 */
        if (gsm) {
            nunits = nbytes = (size_t)gsm_encode_cp(cp, enc);
        } else if (cp >= 0x10000) {
            uint32_t v = cp - 0x10000;
            uint16_t hi = (uint16_t)(0xD800 + (v >> 10)), lo = (uint16_t)(0xDC00 + (v & 0x3FF));
            enc[0] = (uint8_t)(hi >> 8);
            enc[1] = (uint8_t)hi;
            enc[2] = (uint8_t)(lo >> 8);
            enc[3] = (uint8_t)lo;
            nunits = 2;
            nbytes = 4;
        } else {
            enc[0] = (uint8_t)(cp >> 8);
            enc[1] = (uint8_t)cp;
            nunits = 1;
            nbytes = 2;
        }
        if (used + nunits > limit) {
            if (out->count == SMPP_MAX_PARTS) {
                smpp_split_free(out);
                return err_set(e, ERR_INVALID_ARGUMENT, "smpp: text needs more than %d parts",
                               SMPP_MAX_PARTS);
            }
            cur = split_new_part(out, &cap, multi);
            used = 0;
        }
        memcpy(cur->data + cur->len, enc, nbytes);
        cur->len = (uint8_t)(cur->len + nbytes);
        used += nunits;
    }
    if (multi)
        for (size_t k = 0; k < out->count; k++) {
            uint8_t *u = out->parts[k].data;
            u[0] = 0x05; /* UDHL */
            u[1] = 0x00; /* IE: concatenated short messages, 8-bit reference */
            u[2] = 0x03; /* IE length */
            u[3] = ref;
            u[4] = (uint8_t)out->count;
            u[5] = (uint8_t)(k + 1);
        }
    return 0;
}

void smpp_split_free(smpp_split_t *s)
{
    free(s->parts);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------------------------------
 * Inbound text
 * ------------------------------------------------------------------------------------- */

int smpp_text_decode(const smpp_pdu_t *p, smpp_text_t *out, err_t *e)
{
    memset(out, 0, sizeof *out);
    const uint8_t *m = p->short_message;
    size_t n = p->sm_length;
    if (n == 0 && p->message_payload) {
        m = p->message_payload;
        n = p->message_payload_len;
    }
    if (p->esm_class & SMPP_ESM_UDHI) {
        if (n < 1) return err_set(e, ERR_INVALID_ARGUMENT, "smpp: UDHI set but no UDH");
        size_t udhl = m[0];
        if (1 + udhl > n) return err_set(e, ERR_INVALID_ARGUMENT, "smpp: UDH exceeds message");
        size_t pos = 1, end = 1 + udhl;
        while (pos < end) {
            if (pos + 2 > end)
                return err_set(e, ERR_INVALID_ARGUMENT, "smpp: truncated UDH element");
            uint8_t iei = m[pos], iel = m[pos + 1];
            if (pos + 2 + iel > end)
                return err_set(e, ERR_INVALID_ARGUMENT, "smpp: UDH element exceeds UDH");
            const uint8_t *d = m + pos + 2;
            if (iei == 0x00 && iel == 3) {
                out->ref = d[0];
                out->total = d[1];
                out->seq = d[2];
                out->concat = 1;
            } else if (iei == 0x08 && iel == 4) {
                out->ref = (uint16_t)(d[0] << 8 | d[1]);
                out->total = d[2];
                out->seq = d[3];
                out->concat = 1;
            }
            pos += 2 + (size_t)iel;
        }
        m += end;
        n -= end;
    } else if (p->has_sar) {
        out->ref = p->sar_msg_ref_num;
        out->total = p->sar_total_segments;
        out->seq = p->sar_segment_seqnum;
        out->concat = 1;
    }
    /* a single part, or nonsense numbering, is delivered as it is */
    if (out->concat && (out->total < 2 || out->seq < 1 || out->seq > out->total)) {
        out->concat = 0;
        out->ref = 0;
        out->total = out->seq = 0;
    }

    buf_t b;
    buf_init(&b);
    uint8_t dc = p->data_coding;
    int gsm = dc == SMPP_DC_DEFAULT || ((dc & 0xF0) == 0xF0 && !(dc & 0x04));
    if (gsm) {
        /* unpacked GSM has no octet above 0x7F: if there is one, the SMSC's default
         * alphabet is evidently Latin-1 */
        int high = 0;
        for (size_t i = 0; i < n; i++)
            if (m[i] & 0x80) high = 1;
        if (high)
            smpp_latin1_to_utf8(m, n, &b);
        else
            smpp_gsm_to_utf8(m, n, &b);
    } else if (dc == SMPP_DC_UCS2) {
        smpp_ucs2_to_utf8(m, n, &b);
    } else {
        smpp_latin1_to_utf8(m, n, &b); /* IA5 (ASCII), Latin-1, and the lossy fallback */
    }
    out->text_len = b.len;
    out->text = buf_steal(&b);
    return 0;
}

void smpp_text_free(smpp_text_t *t)
{
    free(t->text);
    memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------------------------------
 * Delivery receipts
 * ------------------------------------------------------------------------------------- */

int smpp_is_receipt(const smpp_pdu_t *p)
{
    uint8_t type = p->esm_class & SMPP_ESM_TYPE_MASK;
    return type == SMPP_ESM_RECEIPT || type == SMPP_ESM_INTERMED;
}

static const struct {
    const char *stat;
    smpp_receipt_status_t status;
} stat_map[] = {
    {"DELIVRD", SMPP_RECEIPT_DELIVERED},
    {"DELIVERED", SMPP_RECEIPT_DELIVERED},
    {"UNDELIV", SMPP_RECEIPT_FAILED},
    {"UNDELIVERABLE", SMPP_RECEIPT_FAILED},
    {"REJECTD", SMPP_RECEIPT_FAILED},
    {"REJECTED", SMPP_RECEIPT_FAILED},
    {"EXPIRED", SMPP_RECEIPT_FAILED},
    {"DELETED", SMPP_RECEIPT_FAILED},
    {"SKIPPED", SMPP_RECEIPT_FAILED},
    {"ENROUTE", SMPP_RECEIPT_QUEUED_ON_CHANNEL},
    {"ACCEPTD", SMPP_RECEIPT_QUEUED_ON_CHANNEL},
    {"ACCEPTED", SMPP_RECEIPT_QUEUED_ON_CHANNEL},
    {"SCHEDLD", SMPP_RECEIPT_QUEUED_ON_CHANNEL},
};

smpp_receipt_status_t smpp_receipt_status_from_stat(const char *stat)
{
    for (size_t i = 0; i < sizeof stat_map / sizeof stat_map[0]; i++)
        if (strcasecmp(stat, stat_map[i].stat) == 0) return stat_map[i].status;
    return SMPP_RECEIPT_UNKNOWN;
}

static const char *state_stat[] = {"SCHEDLD", "ENROUTE", "DELIVRD", "EXPIRED", "DELETED",
                                   "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "SKIPPED"};

smpp_receipt_status_t smpp_receipt_status_from_state(uint8_t st)
{
    if (st < sizeof state_stat / sizeof state_stat[0])
        return smpp_receipt_status_from_stat(state_stat[st]);
    return SMPP_RECEIPT_UNKNOWN;
}

const char *smpp_receipt_status_name(smpp_receipt_status_t s)
{
    switch (s) {
    case SMPP_RECEIPT_DELIVERED:
        return "DELIVERED";
    case SMPP_RECEIPT_FAILED:
        return "FAILED";
    case SMPP_RECEIPT_QUEUED_ON_CHANNEL:
        return "QUEUED_ON_CHANNEL";
    default:
        return "UNKNOWN";
    }
}

/* Find "key" (with its colon) at the start of text or after whitespace, within [0, lim).
 * Returns the offset of the value, or -1. */
static long find_key(const char *t, size_t lim, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = 0; i + k <= lim; i++) {
        if (i > 0 && !isspace((unsigned char)t[i - 1])) continue;
        if (strncasecmp(t + i, key, k) == 0) return (long)(i + k);
    }
    return -1;
}

/* Copy the value at t[off] (up to whitespace or lim) into dst[cap]; returns its length or
 * -1 if it does not fit. */
static long copy_value(const char *t, size_t lim, long off, char *dst, size_t cap)
{
    size_t i = (size_t)off, n = 0;
    while (i < lim && !isspace((unsigned char)t[i]) && t[i] != '\0') {
        if (n + 1 >= cap) return -1;
        dst[n++] = t[i++];
    }
    dst[n] = '\0';
    return (long)n;
}

int smpp_receipt_parse_text(const char *text, size_t len, smpp_receipt_t *out, err_t *e)
{
    memset(out, 0, sizeof *out);
    /* the free-form text: field comes last; keys are looked for only before it */
    long tp = find_key(text, len, "text:");
    size_t lim = tp < 0 ? len : (size_t)tp - 5;
    long off = find_key(text, lim, "id:");
    if (off < 0 || copy_value(text, lim, off, out->message_id, sizeof out->message_id) <= 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: receipt has no usable id: field");
    off = find_key(text, lim, "stat:");
    if (off < 0 || copy_value(text, lim, off, out->stat, sizeof out->stat) <= 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: receipt has no usable stat: field");
    out->status = smpp_receipt_status_from_stat(out->stat);
    off = find_key(text, lim, "err:");
    char errv[16];
    if (off >= 0 && copy_value(text, lim, off, errv, sizeof errv) > 0) {
        char *end;
        long v = strtol(errv, &end, 10);
        if (*end) v = strtol(errv, &end, 16); /* some SMSCs write hex */
        if (!*end && v >= 0 && v <= 0x7FFFFFFF) out->error_code = (int)v;
    }
    return 0;
}

int smpp_receipt_parse(const smpp_pdu_t *p, smpp_receipt_t *out, err_t *e)
{
    memset(out, 0, sizeof *out);
    smpp_text_t t;
    err_t te;
    int have_text = 0;
    if (smpp_text_decode(p, &t, &te) == 0) {
        have_text = smpp_receipt_parse_text(t.text, t.text_len, out, &te) == 0;
        smpp_text_free(&t);
    }
    if (!have_text) memset(out, 0, sizeof *out);
    int text_err = have_text && out->error_code != 0;
    if (p->has_receipted_message_id && p->receipted_message_id[0])
        snprintf(out->message_id, sizeof out->message_id, "%s", p->receipted_message_id);
    if (p->has_message_state) {
        uint8_t st = p->message_state;
        const char *name =
            st < sizeof state_stat / sizeof state_stat[0] ? state_stat[st] : "UNKNOWN";
        snprintf(out->stat, sizeof out->stat, "%s", name);
        out->status = smpp_receipt_status_from_state(st);
    }
    if (p->has_network_error_code && !text_err)
        out->error_code = p->network_error_code[1] << 8 | p->network_error_code[2];
    if (!out->message_id[0])
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: receipt without a message id");
    if (!out->stat[0]) return err_set(e, ERR_INVALID_ARGUMENT, "smpp: receipt without a state");
    return 0;
}
