/*  pp_link_wire: what both ends of the link share (see pp_link_wire.h). */
#include "pp_link_wire.h"

#include "pp_log.h"

#include <errno.h>
#include <stdio.h>

#define S_KEY "heartbeat_ms"

uint32_t pp_link_heartbeat_read(pp_config_t *c, const char *section)
{
    bool top_set = pp_config_json(c, S_KEY) != NULL;
    long long top = pp_config_int(c, S_KEY, PP_LINK_DEFAULT_HEARTBEAT_MS, PP_LINK_MIN_HEARTBEAT_MS,
                                  PP_LINK_MAX_HEARTBEAT_MS);
    if (!section) return (uint32_t)top;
    char old_key[128];
    snprintf(old_key, sizeof old_key, "%s.link." S_KEY, section);
    if (!pp_config_json(c, old_key)) return (uint32_t)top;
    /* Before issue 13 each stage had its own key (and range); a file written then still
       works, but every process must end up with the same value. */
    long long old = pp_config_int(c, old_key, PP_LINK_DEFAULT_HEARTBEAT_MS,
                                  PP_LINK_MIN_HEARTBEAT_MS, PP_LINK_MAX_HEARTBEAT_MS);
    pp_warn("config_deprecated",
            "key=%s use=" S_KEY " msg=\"set the top-level " S_KEY
            " instead: one heartbeat for every process\"",
            old_key);
    if (top_set && top != old)
        pp_config_fail(c, S_KEY, "%lld differs from %s (%lld); set only the top-level " S_KEY, top,
                       old_key, old);
    return (uint32_t)(top_set ? top : old);
}

int pp_link_wire_recv(void *sock, zmq_msg_t *f, size_t max, size_t *total)
{
    zmq_msg_init(&f[0]);
    if (zmq_msg_recv(&f[0], sock, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&f[0]);
        errno = e;
        return -1;
    }
    size_t nf = 1, all = 1;
    bool more = zmq_msg_more(&f[0]);
    while (more) {
        // The rest of a message is there once its first frame is: no wait. Past max, the
        // last slot is reused, so it ends holding the message's last frame.
        zmq_msg_t *into = &f[nf < max ? nf : max - 1];
        if (nf >= max) zmq_msg_close(into);
        zmq_msg_init(into);
        if (zmq_msg_recv(into, sock, 0) < 0) {
            zmq_msg_close(into);
            if (nf >= max) nf--; // the slot reused is closed now
            break;
        }
        more = zmq_msg_more(into);
        if (nf < max) nf++;
        all++;
    }
    if (total) *total = all;
    return (int)nf;
}
