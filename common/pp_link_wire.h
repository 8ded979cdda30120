/*  pp_link_wire: the wire of the link between the broker's hubs (broker/pp_dispatch.h) and
    its workers (common/pp_link.h), in one place for both ends: the command letters, the
    limits both ends agree on, the heartbeat default and its one config key, and the capped
    multipart receive both ends use. The wire itself is described in docs/link-protocol.md;
    the Python test peer (tests/lib/pp_link.py) copies its constants from here.

    Every message is multipart; its first frame (after the ROUTER's routing id on the hub
    side) is one of these letters, its arguments follow, integers big-endian.
*/
#ifndef PP_LINK_WIRE_H
#define PP_LINK_WIRE_H

#include "pp_config.h"

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

typedef enum {
    /* worker -> hub */
    PP_LINK_CREDIT = 'R', /* credit u32: that many more jobs; the first one registers */
    PP_LINK_ACKS = 'A',   /* seqs, N x u64: those jobs are done */
    PP_LINK_OUTPUT = 'O', /* body: an output of a job held (a resolver's APNS/MQTT job) */
    PP_LINK_BYE = 'B',    /* closing: requeue what I hold now */
    PP_LINK_NUDGE = 'N',  /* answer me now (with a heartbeat) */
    /* both ways */
    PP_LINK_HEARTBEAT = 'H', /* from the hub to a worker it just registered: + heartbeat_ms u32 */
    /* hub -> worker */
    PP_LINK_JOB = 'J',   /* seq u64, body: one job */
    PP_LINK_BATCH = 'K', /* one frame of entries [seq u64][len u32][len bytes] */
    PP_LINK_WHO = 'W',   /* "who are you?": I do not know your routing id */
} pp_link_cmd_t;

/*  Most jobs a worker may hold, so the most credit one worker may grant a hub: pp_link
    refuses a bigger window, and the hub clamps credit beyond it (counted as
    credit_overflow) so that a hostile worker cannot make it keep unbounded state. */
#define PP_LINK_MAX_WINDOW 100000u

/*  Most seqs in one "A" a hub accepts (a worker sends at most 1024). */
#define PP_LINK_MAX_ACKS 65536u

/*  A "K" entry's header (seq u64 + body length u32), and the most entries a worker accepts
    in one "K" (the C hub sends at most 64). */
#define PP_LINK_BATCH_ENTRY 12u
#define PP_LINK_BATCH_MAX_JOBS 4096u

/*  The heartbeat: both ends send something at least this often and the hub declares a
    worker dead after its timeout (3 heartbeats by default), so both must use the same:
    the hub states its own to each worker it registers ("H" + heartbeat_ms), and a worker
    whose heartbeat differs stops with a config error (pp_link.h). */
#define PP_LINK_DEFAULT_HEARTBEAT_MS 1000u
#define PP_LINK_MIN_HEARTBEAT_MS 10u
#define PP_LINK_MAX_HEARTBEAT_MS 60000u

/*  Reads the heartbeat from the config: the top-level key "heartbeat_ms" (one value for
    every process, like broker_address; PP_LINK_MIN_HEARTBEAT_MS..PP_LINK_MAX_HEARTBEAT_MS,
    default PP_LINK_DEFAULT_HEARTBEAT_MS). section (e.g. "resolver"; NULL: none) names the
    stage whose old key "<section>.link.heartbeat_ms" is still read: when present it is used
    (same range) with a warning that it is deprecated, and a top-level value that differs
    from it is a config error naming both keys. Errors are recorded on c (pp_proc_ready
    then exits 2); the value returned is then the default or what could be read. */
uint32_t pp_link_heartbeat_read(pp_config_t *c, const char *section);

/*  Receives one whole message from a raw libzmq socket without waiting for its first frame:
    frames into f[0..max) (max >= 1), each initialised here; a message longer than max keeps
    its last frame in f[max - 1] and drops the ones between (read, so the socket is past the
    message). *total (may be NULL) gets the number of frames the message had. Returns the
    number of frames kept in f (the caller closes them), or -1 with errno set (EAGAIN: no
    message waiting) and nothing to close. */
int pp_link_wire_recv(void *sock, zmq_msg_t *f, size_t max, size_t *total);

static inline uint32_t pp_link_get_u32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static inline uint64_t pp_link_get_u64(const uint8_t *b)
{
    return (uint64_t)pp_link_get_u32(b) << 32 | pp_link_get_u32(b + 4);
}

static inline void pp_link_put_u32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static inline void pp_link_put_u64(uint8_t *b, uint64_t v)
{
    pp_link_put_u32(b, (uint32_t)(v >> 32));
    pp_link_put_u32(b + 4, (uint32_t)v);
}

#endif
