/*  pp-apns-testserver: an APNs stand-in that speaks Apple's HTTP/2 provider API, checks
    requests as Apple does, records what it accepts, and injects faults on demand through
    a control API. One instance is one APNs environment. See docs/apns-testserver.md.
*/
#include "ats_control.h"
#include "ats_server.h"
#include "ats_state.h"
#include "pp_proc.h"

#include <openssl/pem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_PORT = 1000,
    OPT_CERT,
    OPT_KEY,
    OPT_ENV,
    OPT_JWT_KEY,
    OPT_TEAM,
    OPT_KEY_ID,
    OPT_CLIENT_CA,
    OPT_TOPICS,
    OPT_CONTROL_PORT,
    OPT_MAX_STREAMS,
    OPT_NO_RAMP,
    OPT_JWT_MAX_AGE,
    OPT_MAX_RECORDS,
    OPT_MIN_TOKEN_INTERVAL,
    OPT_LISTEN,
};

typedef struct {
    long port, control_port, max_streams, jwt_max_age, max_records, min_token_interval;
    const char *listen;
    const char *cert, *key, *env, *jwt_key, *team, *key_id, *client_ca, *topics;
    bool no_ramp;
} s_opts_t;

static const struct option s_options[] = {
    {"port", required_argument, NULL, OPT_PORT},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"env", required_argument, NULL, OPT_ENV},
    {"jwt-public-key", required_argument, NULL, OPT_JWT_KEY},
    {"team-id", required_argument, NULL, OPT_TEAM},
    {"key-id", required_argument, NULL, OPT_KEY_ID},
    {"client-ca", required_argument, NULL, OPT_CLIENT_CA},
    {"topics", required_argument, NULL, OPT_TOPICS},
    {"control-port", required_argument, NULL, OPT_CONTROL_PORT},
    {"max-concurrent-streams", required_argument, NULL, OPT_MAX_STREAMS},
    {"no-stream-ramp", no_argument, NULL, OPT_NO_RAMP},
    {"jwt-max-age-s", required_argument, NULL, OPT_JWT_MAX_AGE},
    {"max-records", required_argument, NULL, OPT_MAX_RECORDS},
    {"min-token-interval-s", required_argument, NULL, OPT_MIN_TOKEN_INTERVAL},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {NULL, 0, NULL, 0},
};

static const char s_usage[] =
    "  --port N                   HTTP/2 TLS port (0: any free port)\n"
    "  --listen ADDR              IPv4 address of the TLS port (default 127.0.0.1; tests in\n"
    "                             network namespaces use the namespace's address; the\n"
    "                             control API stays on 127.0.0.1)\n"
    "  --cert FILE --key FILE     server certificate chain and key (PEM)\n"
    "  --env sandbox|production   recorded with each notification (default sandbox)\n"
    "  --jwt-public-key FILE --team-id T --key-id K   token auth (ES256)\n"
    "  --client-ca FILE           certificate auth: verify client certs against this CA\n"
    "  --topics A,B               allowed apns-topic values (default: any)\n"
    "  --control-port M           control API (HTTP/1.1) on 127.0.0.1:M\n"
    "  --max-concurrent-streams K (default 1000)\n"
    "  --no-stream-ramp           token auth: allow K streams from the start\n"
    "  --jwt-max-age-s S          (default 3600)\n"
    "  --max-records N            accepted notifications kept (default 2000000)\n"
    "  --min-token-interval-s S   429 TooManyProviderTokenUpdates when the team's JWT changes\n"
    "                             sooner than S s after the last change (default 0: off)\n";

static int s_long(const char *flag, const char *arg, long min, long max, long *out)
{
    char *end = NULL;
    long v = strtol(arg, &end, 10);
    if (!end || *end || end == arg || v < min || v > max) {
        fprintf(stderr, "pp-apns-testserver: %s: want an integer %ld..%ld, got %s\n", flag, min,
                max, arg);
        return -1;
    }
    *out = v;
    return 0;
}

static int s_option(pp_proc_t *proc, int val, const char *arg, void *ctx)
{
    (void)proc;
    s_opts_t *o = ctx;
    switch (val) {
    case OPT_PORT:
        return s_long("--port", arg, 0, 65535, &o->port);
    case OPT_CERT:
        o->cert = arg;
        return 0;
    case OPT_KEY:
        o->key = arg;
        return 0;
    case OPT_ENV:
        if (strcmp(arg, "sandbox") != 0 && strcmp(arg, "production") != 0) {
            fprintf(stderr, "pp-apns-testserver: --env: sandbox or production, got %s\n", arg);
            return -1;
        }
        o->env = arg;
        return 0;
    case OPT_JWT_KEY:
        o->jwt_key = arg;
        return 0;
    case OPT_TEAM:
        o->team = arg;
        return 0;
    case OPT_KEY_ID:
        o->key_id = arg;
        return 0;
    case OPT_CLIENT_CA:
        o->client_ca = arg;
        return 0;
    case OPT_TOPICS:
        o->topics = arg;
        return 0;
    case OPT_LISTEN:
        o->listen = arg;
        return 0;
    case OPT_CONTROL_PORT:
        return s_long("--control-port", arg, 1, 65535, &o->control_port);
    case OPT_MAX_STREAMS:
        return s_long("--max-concurrent-streams", arg, 1, 1000000, &o->max_streams);
    case OPT_NO_RAMP:
        o->no_ramp = true;
        return 0;
    case OPT_JWT_MAX_AGE:
        return s_long("--jwt-max-age-s", arg, 1, 100000000, &o->jwt_max_age);
    case OPT_MAX_RECORDS:
        return s_long("--max-records", arg, 0, 100000000, &o->max_records);
    case OPT_MIN_TOKEN_INTERVAL:
        return s_long("--min-token-interval-s", arg, 0, 100000000, &o->min_token_interval);
    }
    return -1;
}

static char **s_split_topics(const char *list)
{
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    char **out = calloc(n + 1, sizeof *out);
    char *copy = strdup(list);
    if (!out || !copy) abort();
    size_t i = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        out[i++] = strdup(t);
    free(copy);
    return out;
}

static void s_free_topics(char **topics)
{
    for (char **t = topics; t && *t; t++)
        free(*t);
    free(topics);
}

static EVP_PKEY *s_load_es256_key(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "pp-apns-testserver: --jwt-public-key: cannot open %s\n", path);
        return NULL;
    }
    EVP_PKEY *key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (!key || !EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_bits(key) != 256) {
        fprintf(stderr,
                "pp-apns-testserver: --jwt-public-key: %s is not a P-256 public key "
                "(PEM)\n",
                path);
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

int main(int argc, char **argv)
{
    s_opts_t o = {.port = -1,
                  .max_streams = 1000,
                  .jwt_max_age = 3600,
                  .max_records = 2000000,
                  .env = "sandbox"};
    pp_proc_t *proc = pp_proc_new("apns-testserver", "apns_testserver", s_usage, argc, argv,
                                  s_options, s_option, &o);
    if (o.port < 0 || !o.cert || !o.key) {
        fprintf(stderr, "pp-apns-testserver: --port, --cert and --key are required\n");
        return 2;
    }
    if (o.jwt_key && (!o.team || !o.key_id)) {
        fprintf(stderr, "pp-apns-testserver: --jwt-public-key needs --team-id and --key-id\n");
        return 2;
    }
    ats_server_config_t cfg = {
        .port = (int)o.port,
        .listen_addr = o.listen,
        .cert_file = o.cert,
        .key_file = o.key,
        .client_ca_file = o.client_ca,
        .max_concurrent_streams = (uint32_t)o.max_streams,
        .stream_ramp = !o.no_ramp,
        .check = {.team_id = o.team,
                  .key_id = o.key_id,
                  .jwt_max_age_s = o.jwt_max_age,
                  .cert_auth = o.client_ca != NULL,
                  .topics = o.topics ? s_split_topics(o.topics) : NULL},
    };
    if (o.jwt_key && !(cfg.check.jwt_key = s_load_es256_key(o.jwt_key))) return 2;
    if (pp_proc_ready(proc, 0) != 0) return 2;

    int rc = 1;
    ats_state_t *state = ats_state_new(o.env, (size_t)o.max_records);
    ats_state_set_min_token_interval(state, o.min_token_interval);
    ats_control_t *control = NULL;
    ats_server_t *srv = ats_server_new(&cfg, state);
    if (srv && o.control_port > 0) {
        /* libmicrohttpd's thread inherits this mask, so SIGTERM reaches the loop's thread
           and interrupts epoll_wait at once. */
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        control = ats_control_new(state, NULL, (int)o.control_port);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (srv && (control || o.control_port <= 0)) {
        const char *auth = cfg.check.jwt_key ? (o.client_ca ? "token,cert" : "token")
                                             : (o.client_ca ? "cert" : "none");
        pp_info("ready", "port=%d control_port=%ld env=%s auth=%s", ats_server_port(srv),
                o.control_port, o.env, auth);
        printf("listening port=%d\n", ats_server_port(srv));
        fflush(stdout);
        rc = ats_server_run(srv) == 0 ? 0 : 1;
    }
    ats_control_destroy(&control);
    ats_server_destroy(&srv);
    ats_state_destroy(&state);
    EVP_PKEY_free(cfg.check.jwt_key);
    s_free_topics(cfg.check.topics);
    pp_info("stopped", "rc=%d", rc);
    pp_proc_destroy(&proc);
    return rc;
}
