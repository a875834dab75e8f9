/* smpp_pdu.h: a pure SMPP 3.4 codec (no I/O, no threads). It owns the PDU layouts Parley
 * needs (bind_transceiver, unbind, enquire_link, submit_sm, deliver_sm, their responses and
 * generic_nack, plus the optional TLVs message_payload, message_state,
 * receipted_message_id, network_error_code and sar_*), the text codecs (GSM 03.38 default
 * alphabet sent unpacked, Latin-1, UCS-2 big-endian with surrogate pairs), splitting long
 * texts into concatenated parts (UDH IE 0x00), reading UDH/SAR reassembly info on inbound
 * messages, and parsing delivery receipts. The session (smpp.c) is the only I/O user.
 *
 * Memory: smpp_pdu_t owns its message_payload (free with smpp_pdu_free); smpp_split_t owns
 * its parts (smpp_split_free); smpp_text_t owns its text (smpp_text_free). Everything else
 * lives in fixed-size fields sized to the 3.4 limits plus the terminating NUL. */
#ifndef PARLEY_CHANNELS_SMPP_PDU_H
#define PARLEY_CHANNELS_SMPP_PDU_H

#include "base/buf.h"
#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

#define SMPP_HEADER_LEN  16
#define SMPP_MAX_PDU_LEN 65536 /* we refuse bigger command_length values */
#define SMPP_MAX_SM_LEN  254   /* short_message limit (sm_length is one octet) */
#define SMPP_MAX_PARTS   255   /* a concatenated message has at most 255 parts */

/* ---- command ids ---- */
#define SMPP_GENERIC_NACK          0x80000000u
#define SMPP_BIND_RECEIVER         0x00000001u
#define SMPP_BIND_TRANSMITTER      0x00000002u
#define SMPP_SUBMIT_SM             0x00000004u
#define SMPP_SUBMIT_SM_RESP        0x80000004u
#define SMPP_DELIVER_SM            0x00000005u
#define SMPP_DELIVER_SM_RESP       0x80000005u
#define SMPP_UNBIND                0x00000006u
#define SMPP_UNBIND_RESP           0x80000006u
#define SMPP_BIND_TRANSCEIVER      0x00000009u
#define SMPP_BIND_TRANSCEIVER_RESP 0x80000009u
#define SMPP_ENQUIRE_LINK          0x00000015u
#define SMPP_ENQUIRE_LINK_RESP     0x80000015u
#define SMPP_IS_RESP(id)           (((id)&0x80000000u) != 0)

/* ---- command_status values (the ones Parley names; smpp_status_name knows the rest) ---- */
#define SMPP_ESME_ROK         0x00u
#define SMPP_ESME_RINVMSGLEN  0x01u
#define SMPP_ESME_RINVCMDLEN  0x02u
#define SMPP_ESME_RINVCMDID   0x03u
#define SMPP_ESME_RINVBNDSTS  0x04u
#define SMPP_ESME_RSYSERR     0x08u
#define SMPP_ESME_RBINDFAIL   0x0Du
#define SMPP_ESME_RINVPASWD   0x0Eu
#define SMPP_ESME_RINVSYSID   0x0Fu
#define SMPP_ESME_RMSGQFUL    0x14u
#define SMPP_ESME_RTHROTTLED  0x58u
#define SMPP_ESME_RX_T_APPN   0x64u /* ESME receiver temporary app error: SMSC retries */
#define SMPP_ESME_RX_P_APPN   0x65u
#define SMPP_ESME_RUNKNOWNERR 0xFFu

/* ---- TLV tags ---- */
#define SMPP_TLV_RECEIPTED_MESSAGE_ID 0x001Eu
#define SMPP_TLV_SAR_MSG_REF_NUM      0x020Cu
#define SMPP_TLV_SAR_TOTAL_SEGMENTS   0x020Eu
#define SMPP_TLV_SAR_SEGMENT_SEQNUM   0x020Fu
#define SMPP_TLV_SC_INTERFACE_VERSION 0x0210u
#define SMPP_TLV_NETWORK_ERROR_CODE   0x0423u
#define SMPP_TLV_MESSAGE_PAYLOAD      0x0424u
#define SMPP_TLV_MESSAGE_STATE        0x0427u

/* ---- data_coding and esm_class ---- */
#define SMPP_DC_DEFAULT 0x00u /* SMSC default alphabet: GSM 03.38, one septet per octet */
#define SMPP_DC_IA5     0x01u
#define SMPP_DC_BINARY  0x02u
#define SMPP_DC_LATIN1  0x03u
#define SMPP_DC_BINARY2 0x04u
#define SMPP_DC_UCS2    0x08u

#define SMPP_ESM_TYPE_MASK 0x3Cu /* bits 5..2: message type */
#define SMPP_ESM_RECEIPT   0x04u /* SMSC delivery receipt */
#define SMPP_ESM_INTERMED  0x20u /* intermediate delivery notification */
#define SMPP_ESM_UDHI      0x40u /* short_message starts with a User Data Header */

/* message_state TLV values (3.4 section 5.2.28) */
enum {
    SMPP_STATE_ENROUTE = 1,
    SMPP_STATE_DELIVERED = 2,
    SMPP_STATE_EXPIRED = 3,
    SMPP_STATE_DELETED = 4,
    SMPP_STATE_UNDELIVERABLE = 5,
    SMPP_STATE_ACCEPTED = 6,
    SMPP_STATE_UNKNOWN = 7,
    SMPP_STATE_REJECTED = 8,
};

/* One PDU. Only the fields of its command_id are encoded or filled in by decoding; C-string
 * arrays are sized to the 3.4 maximum including the NUL. */
typedef struct {
    uint32_t command_id, command_status, sequence;

    /* bind_transceiver; bind_transceiver_resp uses system_id */
    char system_id[16];
    char password[9];
    char system_type[13];
    uint8_t interface_version; /* 0x34 */
    uint8_t addr_ton, addr_npi;
    char address_range[41];

    /* submit_sm / deliver_sm */
    char service_type[6];
    uint8_t source_addr_ton, source_addr_npi;
    char source_addr[21];
    uint8_t dest_addr_ton, dest_addr_npi;
    char destination_addr[21];
    uint8_t esm_class, protocol_id, priority_flag;
    char schedule_delivery_time[17];
    char validity_period[17];
    uint8_t registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id;
    uint8_t sm_length;
    uint8_t short_message[255];

    /* submit_sm_resp / deliver_sm_resp */
    char message_id[65];

    /* optional TLVs: has_* says whether the TLV is present */
    uint8_t *message_payload; /* malloc'd, owned; NULL when absent */
    size_t message_payload_len;
    int has_message_state;
    uint8_t message_state;
    int has_receipted_message_id;
    char receipted_message_id[65];
    int has_network_error_code;
    uint8_t network_error_code[3]; /* network type, error code (16 bits) */
    int has_sar;
    uint16_t sar_msg_ref_num;
    uint8_t sar_total_segments, sar_segment_seqnum;
} smpp_pdu_t;

/* Zero *p and set its header (status 0). interface_version defaults to 0x34. */
void smpp_pdu_init(smpp_pdu_t *p, uint32_t command_id, uint32_t sequence);
/* Free what *p owns (message_payload); *p can be reused after smpp_pdu_init. */
void smpp_pdu_free(smpp_pdu_t *p);
/* Copy len bytes into p->message_payload (replacing any previous one). */
void smpp_pdu_set_payload(smpp_pdu_t *p, const void *data, size_t len);

/* Append the wire form of *p to out. -1 with INVALID_ARGUMENT for an unsupported command,
 * an over-long C-string, sm_length > 254, or a PDU bigger than 64 KiB. */
int smpp_pdu_encode(const smpp_pdu_t *p, buf_t *out, err_t *e);

typedef enum {
    SMPP_DECODE_ERROR = -1, /* see smpp_pdu_decode */
    SMPP_DECODE_NEED_MORE = 0,
    SMPP_DECODE_OK = 1,
} smpp_decode_t;

/* Decode the first PDU in data[0..len). Returns:
 *   SMPP_DECODE_NEED_MORE: fewer bytes than the PDU needs (*consumed = 0);
 *   SMPP_DECODE_OK: *out is filled (call smpp_pdu_free after) and *consumed is its length;
 *     a command Parley does not know decodes as its header only (answer generic_nack);
 *   SMPP_DECODE_ERROR: e says why. If the header is sane (16 <= command_length <= 64 KiB),
 *     *consumed is command_length and out holds the header, so the caller can answer
 *     generic_nack and go on; *consumed = 0 means the framing itself is broken and the
 *     connection must be dropped.
 * Several PDUs in one buffer: call again from data + *consumed. */
smpp_decode_t smpp_pdu_decode(const uint8_t *data, size_t len, smpp_pdu_t *out, size_t *consumed,
                              err_t *e);

/* "submit_sm", "deliver_sm_resp", ... or "unknown". */
const char *smpp_command_name(uint32_t command_id);
/* "ESME_RINVPASWD", ... or "ESME_0x000000NN" for values without a name (thread-safe:
 * the fallback uses a thread-local buffer). */
const char *smpp_status_name(uint32_t status);

/* ---- text: outbound ---- */

/* 1 if every character of the UTF-8 text is in the GSM 03.38 default alphabet or its
 * extension table; *septets (if not NULL) gets the length in septets (an extension char
 * counts 2). Invalid UTF-8 returns 0. */
int smpp_gsm_fits(const char *utf8, size_t len, size_t *septets);

/* The parts of one outbound text, each ready to be a submit_sm short_message. */
typedef struct {
    uint8_t len;
    uint8_t data[159]; /* UDH (6 bytes) + up to 153 septets or 134 octets of UCS-2 */
} smpp_part_t;

typedef struct {
    uint8_t data_coding; /* SMPP_DC_DEFAULT or SMPP_DC_UCS2 */
    uint8_t esm_class;   /* 0, or SMPP_ESM_UDHI when there are several parts */
    size_t count;        /* 1..255 */
    smpp_part_t *parts;  /* malloc'd */
} smpp_split_t;

/* Encode utf8 as GSM (if it fits) or UCS-2 and split it: a single part up to 160 septets /
 * 70 UCS-2 units; otherwise parts of 153 septets / 67 units behind the UDH
 * 05 00 03 ref total seq, never splitting an escape pair or a surrogate pair. -1 with
 * INVALID_ARGUMENT for invalid UTF-8 or more than 255 parts. An empty text is one empty
 * part. */
int smpp_split(const char *utf8, size_t len, uint8_t ref, smpp_split_t *out, err_t *e);
void smpp_split_free(smpp_split_t *s);

/* ---- text: inbound ---- */

typedef struct {
    char *text; /* malloc'd UTF-8, NUL-terminated */
    size_t text_len;
    int concat;         /* 1 if this is one part of a concatenated message */
    uint16_t ref;       /* concatenation reference (8- or 16-bit) */
    uint8_t total, seq; /* parts in all, this part's number (1-based) */
} smpp_text_t;

/* Decode a deliver_sm's message (short_message, or message_payload when sm_length is 0)
 * to UTF-8 by data_coding (0 GSM, 1 IA5, 3 Latin-1, 8 UCS-2; other 8-bit codings are read
 * as Latin-1), after stripping a UDH (esm_class 0x40) and reading its concatenation IE
 * (0x00 or 0x08), or the sar_* TLVs. -1 with INVALID_ARGUMENT for a malformed UDH. */
int smpp_text_decode(const smpp_pdu_t *p, smpp_text_t *out, err_t *e);
void smpp_text_free(smpp_text_t *t);
/* Raw converters (used by smpp_text_decode; exposed for tests). They append to out. */
void smpp_gsm_to_utf8(const uint8_t *in, size_t len, buf_t *out);
void smpp_ucs2_to_utf8(const uint8_t *in, size_t len, buf_t *out);
void smpp_latin1_to_utf8(const uint8_t *in, size_t len, buf_t *out);

/* ---- delivery receipts ---- */

typedef enum {
    SMPP_RECEIPT_UNKNOWN = 0,       /* UNKNOWN or an unrecognised stat: no status change */
    SMPP_RECEIPT_DELIVERED,         /* DELIVRD */
    SMPP_RECEIPT_FAILED,            /* UNDELIV, REJECTD, EXPIRED, DELETED */
    SMPP_RECEIPT_QUEUED_ON_CHANNEL, /* ENROUTE, ACCEPTD */
} smpp_receipt_status_t;

typedef struct {
    char message_id[65]; /* the SMSC's id, as in submit_sm_resp */
    char stat[8];        /* "DELIVRD", ... (from the text, or named from message_state) */
    smpp_receipt_status_t status;
    int error_code; /* err: field, or the network_error_code TLV; 0 if none */
} smpp_receipt_t;

/* 1 if the deliver_sm is a delivery receipt or intermediate notification (esm_class). */
int smpp_is_receipt(const smpp_pdu_t *p);
/* Parse the receipt from the TLVs (receipted_message_id, message_state,
 * network_error_code), which win when present, and from the short_message text
 * "id:... sub:... dlvrd:... submit date:... done date:... stat:... err:... text:...".
 * -1 with INVALID_ARGUMENT when no message id or no state can be found. */
int smpp_receipt_parse(const smpp_pdu_t *p, smpp_receipt_t *out, err_t *e);
/* Parse just the text form (keys are case-insensitive; unknown keys are ignored). */
int smpp_receipt_parse_text(const char *text, size_t len, smpp_receipt_t *out, err_t *e);
/* Map a stat word ("DELIVRD") or a message_state value to a status. */
smpp_receipt_status_t smpp_receipt_status_from_stat(const char *stat);
smpp_receipt_status_t smpp_receipt_status_from_state(uint8_t message_state);
/* "DELIVERED", "FAILED", "QUEUED_ON_CHANNEL" or "UNKNOWN". */
const char *smpp_receipt_status_name(smpp_receipt_status_t s);

#endif
