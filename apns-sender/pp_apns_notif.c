#include "pp_apns_notif.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *s_dup(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

static void s_msg_free(pp_apns_msg_t *m)
{
    free(m->msg_id);
    free(m->topic);
    free(m->push_type);
    free(m->collapse_id);
    free(m->payload);
    free(m);
}

pp_apns_msg_t *pp_apns_msg_new(pp_apns_app_t *app, uint8_t env, const char *msg_id,
                               size_t msg_id_len, const char *topic, const char *push_type,
                               int priority, int64_t expiration, const char *collapse_id,
                               size_t collapse_len, const char *payload, size_t payload_len,
                               uint64_t received_us)
{
    pp_apns_msg_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->refs = 1;
    m->app = app;
    m->env = env;
    m->expiration = expiration;
    m->received_us = received_us;
    m->msg_id = s_dup(msg_id, msg_id_len);
    m->topic = strdup(topic);
    m->push_type = strdup(push_type);
    m->collapse_id = s_dup(collapse_id ? collapse_id : "", collapse_id ? collapse_len : 0);
    m->payload = s_dup(payload, payload_len);
    m->payload_len = payload_len;
    snprintf(m->priority, sizeof m->priority, "%d", priority);
    if (expiration >= 0) snprintf(m->expiry, sizeof m->expiry, "%lld", (long long)expiration);
    if (!m->msg_id || !m->topic || !m->push_type || !m->collapse_id || !m->payload) {
        s_msg_free(m);
        return NULL;
    }
    return m;
}

void pp_apns_msg_on_done(pp_apns_msg_t *m, pp_apns_msg_done_fn *done, void *owner, uint64_t seq)
{
    m->done = done;
    m->done_owner = owner;
    m->seq = seq;
}

void pp_apns_msg_release(pp_apns_msg_t **p)
{
    if (!p || !*p) return;
    pp_apns_msg_t *m = *p;
    *p = NULL;
    if (--m->refs > 0) return;
    if (m->done) m->done(m->done_owner, m->seq);
    s_msg_free(m);
}

pp_apns_notif_t *pp_apns_notif_new(pp_apns_msg_t *msg, const char *uid, size_t uid_len,
                                   const char *token, size_t token_len)
{
    pp_apns_notif_t *n = malloc(sizeof *n + uid_len + 1 + token_len + 1);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->msg = msg;
    msg->refs++;
    n->uid = n->data;
    memcpy(n->uid, uid, uid_len);
    n->uid[uid_len] = '\0';
    n->token = n->data + uid_len + 1;
    memcpy(n->token, token, token_len);
    n->token[token_len] = '\0';
    n->token_len = token_len;
    return n;
}

void pp_apns_notif_destroy(pp_apns_notif_t **p)
{
    if (!p || !*p) return;
    pp_apns_notif_t *n = *p;
    pp_apns_msg_t *m = n->msg;
    free(n);
    pp_apns_msg_release(&m);
    *p = NULL;
}

void pp_apns_notif_rejected(pp_metrics_t *m, const char *reason, uint64_t n)
{
    char labels[128];
    snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
    pp_metric_add(
        pp_metrics_counter(m, "rejected_total", "Notifications APNs refused (not retried)", labels),
        n);
}
