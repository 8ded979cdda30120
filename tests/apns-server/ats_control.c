#include "ats_control.h"
#include "pp_log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX (16 * 1024 * 1024) /* a token rule set of 100000 tokens fits */

struct ats_control_t {
    ats_state_t *state;
    struct MHD_Daemon *daemon;
};

typedef struct {
    char *data;
    size_t len;
    bool too_big;
} s_body_t;

static enum MHD_Result s_reply(struct MHD_Connection *c, unsigned int status, char *json)
{
    const char *text = json ? json : "{\"error\":\"out of memory\"}";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    free(json);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static char *s_error(const char *msg)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static size_t s_query_size(struct MHD_Connection *c, const char *key, size_t def)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    if (!v || !*v) return def;
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 10);
    return (end && !*end) ? (size_t)n : def;
}

static enum MHD_Result s_route(ats_control_t *ctl, struct MHD_Connection *c, const char *url,
                               const char *method, s_body_t *body)
{
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (get && strcmp(url, "/accepted") == 0)
        return s_reply(c, 200,
                       ats_state_accepted_json(ctl->state, s_query_size(c, "since", 0),
                                               s_query_size(c, "limit", (size_t)-1)));
    if (get && strcmp(url, "/accepted/count") == 0)
        return s_reply(c, 200, ats_state_count_json(ctl->state));
    if (get && strcmp(url, "/stats") == 0) return s_reply(c, 200, ats_state_stats_json(ctl->state));
    if (post && strcmp(url, "/reset") == 0) {
        ats_state_reset(ctl->state);
        pp_info("control_reset", "ok=1");
        return s_reply(c, 200, strdup("{\"ok\":true}"));
    }
    if (post && strcmp(url, "/rules") == 0) {
        if (body->too_big) return s_reply(c, 413, s_error("body too large"));
        json_error_t jerr;
        json_t *rules = json_loadb(body->data ? body->data : "", body->len, 0, &jerr);
        if (!rules) return s_reply(c, 400, s_error(jerr.text));
        char err[160];
        int rc = ats_state_apply_rules(ctl->state, rules, err, sizeof err);
        json_decref(rules);
        if (rc) return s_reply(c, 400, s_error(err));
        char q[200];
        pp_info("control_rules", "body=%s", pp_log_quote(body->data, body->len, 120, q, sizeof q));
        return s_reply(c, 200, strdup("{\"ok\":true}"));
    }
    return s_reply(c, 404, s_error("no such endpoint"));
}

static enum MHD_Result s_handler(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    ats_control_t *ctl = cls;
    s_body_t *body = *con_cls;
    if (!body) {
        body = calloc(1, sizeof *body);
        if (!body) return MHD_NO;
        *con_cls = body;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (body->len + *upload_data_size > BODY_MAX)
            body->too_big = true;
        else {
            char *grown = realloc(body->data, body->len + *upload_data_size + 1);
            if (!grown) return MHD_NO;
            body->data = grown;
            memcpy(body->data + body->len, upload_data, *upload_data_size);
            body->len += *upload_data_size;
            body->data[body->len] = 0;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    return s_route(ctl, c, url, method, body);
}

static void s_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    s_body_t *body = *con_cls;
    if (body) {
        free(body->data);
        free(body);
        *con_cls = NULL;
    }
}

ats_control_t *ats_control_new(ats_state_t *state, const char *addr, int port)
{
    ats_control_t *ctl = calloc(1, sizeof *ctl);
    if (!ctl) abort();
    ctl->state = state;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (addr && inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        pp_error("control_bind_failed", "reason=bad_address address=%s", addr);
        free(ctl);
        return NULL;
    }
    ctl->daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
                         NULL, s_handler, ctl, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_NOTIFY_COMPLETED, s_completed, ctl, MHD_OPTION_END);
    if (!ctl->daemon) {
        pp_error("control_bind_failed", "port=%d", port);
        free(ctl);
        return NULL;
    }
    return ctl;
}

void ats_control_destroy(ats_control_t **p)
{
    if (!p || !*p) return;
    MHD_stop_daemon((*p)->daemon);
    free(*p);
    *p = NULL;
}
