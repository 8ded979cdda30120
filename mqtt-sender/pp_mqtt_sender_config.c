#include "pp_mqtt_sender_config.h"

#include "pp_endpoints.h"
#include "pp_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define S_SECTION "mqtt_sender"

/*  Several senders connect at once and MQTT brokers drop the older connection of a
    duplicate client id, so the default is unique per process. */
static void s_default_client_id(char *out, size_t outlen)
{
    char host[64] = "host";
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd) rnd = (uint32_t)random();
    snprintf(out, outlen, "pushpipe-mqtt-%s-%d-%08x", host, (int)getpid(), rnd);
}

static const char *s_str_or_null(pp_config_t *c, const char *key)
{
    const char *v = pp_config_str(c, key, "");
    return v && *v ? v : NULL;
}

void pp_mqtt_sender_config_read(pp_config_t *c, pp_mqtt_sender_config_t *cfg,
                                const char *const *brokers, size_t n_brokers)
{
    memset(cfg, 0, sizeof *cfg);
    /* Jobs held unacknowledged (link.window, default 64): what a kill -9 makes the hub send
       again (duplicates), and what keeps the MQTT window busy when jobs have few topics. */
    pp_linkset_config_read(c, &cfg->link, S_SECTION, PP_EP_MQTT_OUT, brokers, n_brokers, 64);

    pp_mqtt_conn_opts_t *m = &cfg->mqtt;
    m->uri = pp_config_str(c, S_SECTION ".uri", "tcp://127.0.0.1:1883");
    bool tls = strncmp(m->uri, "ssl://", 6) == 0 || strncmp(m->uri, "mqtts://", 8) == 0;
    if (!tls && strncmp(m->uri, "tcp://", 6) != 0 && strncmp(m->uri, "mqtt://", 7) != 0)
        pp_config_fail(c, S_SECTION ".uri", "\"%s\" is not tcp://, mqtt://, ssl:// or mqtts://",
                       m->uri);
    const char *id = pp_config_str(c, S_SECTION ".client_id", "");
    if (id && *id)
        snprintf(cfg->client_id, sizeof cfg->client_id, "%s", id);
    else
        s_default_client_id(cfg->client_id, sizeof cfg->client_id);
    m->client_id = cfg->client_id;
    m->username = s_str_or_null(c, S_SECTION ".username");
    m->password = s_str_or_null(c, S_SECTION ".password");
    if (m->password && !m->username)
        pp_config_fail(c, S_SECTION ".password", "a password needs a username");
    m->ca_file = s_str_or_null(c, S_SECTION ".tls.ca_file");
    m->cert_file = s_str_or_null(c, S_SECTION ".tls.cert_file");
    m->key_file = s_str_or_null(c, S_SECTION ".tls.key_file");
    m->tls_verify = pp_config_bool(c, S_SECTION ".tls.verify", true);
    const char *files[][2] = {{S_SECTION ".tls.ca_file", m->ca_file},
                              {S_SECTION ".tls.cert_file", m->cert_file},
                              {S_SECTION ".tls.key_file", m->key_file}};
    for (size_t i = 0; i < 3; i++) {
        if (files[i][1] && access(files[i][1], R_OK) != 0)
            pp_config_fail(c, files[i][0], "cannot read %s", files[i][1]);
        if (files[i][1] && !tls)
            pp_config_fail(c, files[i][0], "is set but uri is not ssl:// or mqtts://");
    }
    if (m->key_file && !m->cert_file)
        pp_config_fail(c, S_SECTION ".tls.key_file", "a key file needs tls.cert_file");
    m->keepalive_s = (int)pp_config_int(c, S_SECTION ".keepalive_s", 30, 0, 65535);
    m->clean_session = pp_config_bool(c, S_SECTION ".clean_session", true);
    m->connect_timeout_s = (int)pp_config_int(c, S_SECTION ".connect_timeout_s", 10, 1, 600);

    cfg->qos = (int)pp_config_int(c, S_SECTION ".qos", 1, 0, 2);
    /* MQTT message ids are 16 bits, so at most 65535 QoS 1/2 publishes can be open. */
    cfg->window = (int)pp_config_int(c, S_SECTION ".window", 1000, 1, 65535);
    m->max_inflight = cfg->window;
    cfg->buffer_max = (size_t)pp_config_int(c, S_SECTION ".buffer_max", 100000, 1, 100000000);
    cfg->drain_ms = (int)pp_config_int(c, S_SECTION ".drain_ms", 5000, 0, 3600000);
    cfg->reconnect_min_ms = (int)pp_config_int(c, S_SECTION ".reconnect_min_ms", 100, 10, 600000);
    cfg->reconnect_max_ms = (int)pp_config_int(c, S_SECTION ".reconnect_max_ms", 5000, 10, 3600000);
    if (cfg->reconnect_max_ms < cfg->reconnect_min_ms)
        pp_config_fail(c, S_SECTION ".reconnect_max_ms", "is below reconnect_min_ms");
    /* Every send counts, also the resend after a lost connection: a publish that makes the
       MQTT broker drop the connection (too large, say) must end, so there is no "forever". */
    cfg->max_attempts = (int)pp_config_int(c, S_SECTION ".max_attempts", 100, 1, 1000000);
    cfg->publish_timeout_ms =
        (int)pp_config_int(c, S_SECTION ".publish_timeout_ms", 10000, 100, 3600000);
    cfg->max_job_bytes =
        (size_t)pp_config_int(c, S_SECTION ".max_job_bytes", 16 << 20, 64, 256 << 20);
}
