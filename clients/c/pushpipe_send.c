/*  pushpipe-send: send one push to a pushpipe broker from the command line.

    A one-shot command built on libpushpipe, not a pipeline process: it has no config
    file, metrics or run loop, so it does not use the pp_proc skeleton. Exit codes:
    0 sent (or accepted), 1 not delivered (timeout, connection), 2 bad usage or input,
    3 rejected by the broker (acknowledged mode).
*/
#include "pushpipe.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_NOT_SENT 1
#define EXIT_USAGE 2
#define EXIT_REJECTED 3

/*  Far above the broker's default frame limit (64 KiB), so that the broker, not this
    tool, is what decides; the bound only keeps a runaway pipe from eating memory. */
#define MAX_STDIN_BYTES (1024 * 1024)

static const char *s_usage =
    "usage: pushpipe-send (--group ID | --users ID,ID,... | --user ID) [options] [DATA|-]\n"
    "\n"
    "Sends one push to a pushpipe broker. DATA is a JSON object; when it is absent or \"-\"\n"
    "it is read from standard input.\n"
    "\n"
    "  --group ID          push to the members of a group (push type 1)\n"
    "  --users ID,ID,...   push to several users (push type 2)\n"
    "  --user ID           push to one user (push type 3)\n"
    "  --broker ADDR,...   broker address, or several separated by commas (default\n"
    "                      $PUSHPIPE_BROKER or tcp://127.0.0.1:5560)\n"
    "  --ack               wait for the broker's verdict; prints \"accepted <msg_id>\" or\n"
    "                      \"rejected <reason>: <detail>\"; with several brokers, a push\n"
    "                      not answered in time is resent to the next one\n"
    "  --timeout-ms MS     how long to wait for a broker (default 5000; with --ack, per\n"
    "                      broker tried)\n"
    "  --retries N         with --ack: resends after a timeout, each to the next broker\n"
    "                      (default: the number of brokers - 1, each broker once)\n"
    "  --id ID             client message id, for tracing and de-duplication (with\n"
    "                      --ack and a possible resend, one is generated if not given)\n"
    "  --channels CH       all, apns or mqtt\n"
    "  --ttl SECONDS       APNs expiration relative to now\n"
    "  --expiration UNIX   APNs expiration as UNIX seconds (0 = deliver once)\n"
    "  --priority P        APNs priority: 10, 5 or 1\n"
    "  --push-type TYPE    apns-push-type: alert, background, ...\n"
    "  --collapse-id ID    apns-collapse-id\n"
    "  --qos Q             MQTT QoS: 0, 1 or 2\n"
    "  --curve-server F    CurveZMQ: the broker's public certificate (pushpipe-keygen)\n"
    "  --curve-cert F      CurveZMQ: this client's secret certificate (NAME.cert_secret)\n"
    "  -h, --help          this text\n"
    "\n"
    "Exit status: 0 sent or accepted, 1 not delivered (timeout, connection), 2 bad usage or\n"
    "input, 3 rejected by the broker.\n";

static int s_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "pushpipe-send: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'pushpipe-send --help'.\n");
    return EXIT_USAGE;
}

static int s_parse_int(const char *text, long long min, long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || !end || end == text || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/*  Splits "1,2,3" in place into ids. Returns the count, or -1 on an empty id. */
static long s_split_ids(char *list, const char ***ids_out)
{
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    const char **ids = calloc(n, sizeof *ids);
    if (!ids) return -1;
    size_t i = 0;
    char *p = list;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (!*p) {
            free(ids);
            return -1;
        }
        ids[i++] = p;
        if (!comma) break;
        p = comma + 1;
    }
    *ids_out = ids;
    return (long)i;
}

static char *s_read_stdin(void)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > MAX_STDIN_BYTES) {
                fprintf(stderr, "pushpipe-send: data on stdin is larger than %d bytes\n",
                        MAX_STDIN_BYTES);
                free(buf);
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, stdin);
        len += n;
        if (n == 0) {
            if (ferror(stdin)) {
                fprintf(stderr, "pushpipe-send: cannot read stdin: %s\n", strerror(errno));
                free(buf);
                return NULL;
            }
            break;
        }
    }
    if (len > MAX_STDIN_BYTES) {
        fprintf(stderr, "pushpipe-send: data on stdin is larger than %d bytes\n", MAX_STDIN_BYTES);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        fprintf(stderr, "pushpipe-send: data on stdin contains a NUL byte\n");
        free(buf);
        return NULL;
    }
    return buf;
}

typedef struct {
    int push_type;
    char *target; /* the --group/--users/--user argument */
    const char *broker;
    bool ack;
    long long timeout_ms;
    long long retries; /* -1: the library's default */
    pp_push_options_t opts;
    const char *data_arg;
    const char *curve_server; /* certificate files, both or neither */
    const char *curve_cert;
} s_args_t;

enum {
    OPT_GROUP = 256,
    OPT_USERS,
    OPT_USER,
    OPT_BROKER,
    OPT_ACK,
    OPT_TIMEOUT,
    OPT_RETRIES,
    OPT_ID,
    OPT_CHANNELS,
    OPT_TTL,
    OPT_EXPIRATION,
    OPT_PRIORITY,
    OPT_PUSH_TYPE,
    OPT_COLLAPSE_ID,
    OPT_QOS,
    OPT_CURVE_SERVER,
    OPT_CURVE_CERT,
};

static const struct option s_options[] = {
    {"group", required_argument, 0, OPT_GROUP},
    {"users", required_argument, 0, OPT_USERS},
    {"user", required_argument, 0, OPT_USER},
    {"broker", required_argument, 0, OPT_BROKER},
    {"ack", no_argument, 0, OPT_ACK},
    {"timeout-ms", required_argument, 0, OPT_TIMEOUT},
    {"retries", required_argument, 0, OPT_RETRIES},
    {"id", required_argument, 0, OPT_ID},
    {"channels", required_argument, 0, OPT_CHANNELS},
    {"ttl", required_argument, 0, OPT_TTL},
    {"expiration", required_argument, 0, OPT_EXPIRATION},
    {"priority", required_argument, 0, OPT_PRIORITY},
    {"push-type", required_argument, 0, OPT_PUSH_TYPE},
    {"collapse-id", required_argument, 0, OPT_COLLAPSE_ID},
    {"qos", required_argument, 0, OPT_QOS},
    {"curve-server", required_argument, 0, OPT_CURVE_SERVER},
    {"curve-cert", required_argument, 0, OPT_CURVE_CERT},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static int s_set_target(s_args_t *a, int type, char *arg)
{
    if (a->push_type) return s_usage_error("%s", "give only one of --group, --users, --user");
    a->push_type = type;
    a->target = arg;
    return 0;
}

/*  Returns 0, -1 for --help, or an exit code. */
static int s_parse(int argc, char **argv, s_args_t *a)
{
    long long v;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+:h", s_options, NULL)) != -1) {
        int rc = 0;
        switch (ch) {
        case OPT_GROUP:
            rc = s_set_target(a, PP_PUSH_GROUP, optarg);
            break;
        case OPT_USERS:
            rc = s_set_target(a, PP_PUSH_USERS, optarg);
            break;
        case OPT_USER:
            rc = s_set_target(a, PP_PUSH_USER, optarg);
            break;
        case OPT_BROKER:
            a->broker = optarg;
            break;
        case OPT_ACK:
            a->ack = true;
            break;
        case OPT_TIMEOUT:
            if (s_parse_int(optarg, 0, 3600000, &a->timeout_ms) != 0)
                return s_usage_error("--timeout-ms must be 0..3600000, got '%s'", optarg);
            break;
        case OPT_RETRIES:
            if (s_parse_int(optarg, 0, PP_CLIENT_MAX_RETRIES, &a->retries) != 0)
                return s_usage_error("--retries must be 0..100, got '%s'", optarg);
            break;
        case OPT_ID:
            a->opts.id = optarg;
            break;
        case OPT_CHANNELS:
            a->opts.channels = optarg;
            break;
        case OPT_TTL:
            if (s_parse_int(optarg, 0, INT64_MAX, &v) != 0)
                return s_usage_error("--ttl must be a number of seconds >= 0, got '%s'", optarg);
            a->opts.has_ttl = true;
            a->opts.ttl = v;
            break;
        case OPT_EXPIRATION:
            if (s_parse_int(optarg, 0, INT64_MAX, &v) != 0)
                return s_usage_error("--expiration must be UNIX seconds >= 0, got '%s'", optarg);
            a->opts.has_apns_expiration = true;
            a->opts.apns_expiration = v;
            break;
        case OPT_PRIORITY:
            if (s_parse_int(optarg, 1, 10, &v) != 0 || (v != 1 && v != 5 && v != 10))
                return s_usage_error("--priority must be 10, 5 or 1, got '%s'", optarg);
            a->opts.apns_priority = (int)v;
            break;
        case OPT_PUSH_TYPE:
            a->opts.apns_push_type = optarg;
            break;
        case OPT_COLLAPSE_ID:
            a->opts.apns_collapse_id = optarg;
            break;
        case OPT_QOS:
            if (s_parse_int(optarg, 0, 2, &v) != 0)
                return s_usage_error("--qos must be 0, 1 or 2, got '%s'", optarg);
            a->opts.has_mqtt_qos = true;
            a->opts.mqtt_qos = (int)v;
            break;
        case OPT_CURVE_SERVER:
            a->curve_server = optarg;
            break;
        case OPT_CURVE_CERT:
            a->curve_cert = optarg;
            break;
        case 'h':
            return -1;
        case ':':
            return s_usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return s_usage_error("unknown option '%s'", argv[optind - 1]);
        }
        if (rc) return rc;
    }
    if (!a->push_type) return s_usage_error("%s", "give one of --group, --users, --user");
    if (a->retries >= 0 && !a->ack) return s_usage_error("%s", "--retries needs --ack");
    if (!a->curve_server != !a->curve_cert)
        return s_usage_error("%s", "CurveZMQ needs both --curve-server and --curve-cert");
    if (argc - optind > 1)
        return s_usage_error("unexpected argument '%s' (give the data as one argument)",
                             argv[optind + 1]);
    a->data_arg = optind < argc ? argv[optind] : "-";
    return 0;
}

/*  Reads the Z85 key named `name` ("public-key" or "secret-key") from a czmq certificate
    file (the format pushpipe-keygen writes: `name = "<40 characters>"`). Parsed by hand
    because libpushpipe and this tool deliberately do not depend on czmq. Returns 0, or -1
    with a message on stderr. */
static int s_cert_key(const char *path, const char *name, char out[41])
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "pushpipe-send: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[512];
    int rc = -1;
    while (rc != 0 && fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strlen(name);
        if (strncmp(p, name, n) != 0) continue;
        p = strchr(p + n, '"');
        if (!p || strlen(p) < 42 || p[41] != '"') continue;
        memcpy(out, p + 1, 40);
        out[40] = '\0';
        rc = 0;
    }
    fclose(f);
    if (rc != 0) fprintf(stderr, "pushpipe-send: %s has no %s\n", path, name);
    return rc;
}

static int s_set_curve(pp_client_t *c, const s_args_t *a)
{
    char server[41], pub[41], sec[41];
    if (s_cert_key(a->curve_server, "public-key", server) != 0 ||
        s_cert_key(a->curve_cert, "public-key", pub) != 0 ||
        s_cert_key(a->curve_cert, "secret-key", sec) != 0)
        return -1;
    if (pp_client_set_curve(c, server, pub, sec) != 0) {
        fprintf(stderr, "pushpipe-send: CurveZMQ: %s\n", pp_client_error(c));
        return -1;
    }
    return 0;
}

static int s_send(const s_args_t *a, const char *const *ids, size_t n_ids, const char *data)
{
    pp_client_t *c = pp_client_new(a->broker, a->ack ? PP_CLIENT_ACK : 0);
    if (!c) {
        fprintf(stderr,
                "pushpipe-send: bad broker address '%s' (want tcp://host:port or "
                "ipc:///path, or up to %d of them separated by commas, none twice)\n",
                a->broker, PP_CLIENT_MAX_BROKERS);
        return EXIT_USAGE;
    }
    if (a->curve_server && s_set_curve(c, a) != 0) {
        pp_client_destroy(&c);
        return EXIT_USAGE;
    }
    pp_client_set_timeout(c, (int)a->timeout_ms);
    if (a->retries >= 0) pp_client_set_retries(c, (int)a->retries);
    /*  A one-shot command must not report success for a push that only sits in a queue
        for a broker that is not there: queue only on a live connection. */
    if (!a->ack) pp_client_set_immediate(c, true);
    pp_client_result_t res;
    int rc = pp_client_push(c, a->push_type, ids, n_ids, data, &a->opts, &res);
    int code = 0;
    /*  stdout keeps its one-line form; a failover is worth a note on stderr. */
    bool verdict = rc == 0 || pp_client_status(c) == PP_CLIENT_E_REJECTED;
    if (a->ack && pp_client_resends(c) > 0)
        fprintf(stderr, "pushpipe-send: resent %llu time(s) with client id %s%s%s\n",
                (unsigned long long)pp_client_resends(c), pp_client_message_id(c),
                verdict ? ", answered by " : "", verdict ? pp_client_broker(c) : "");
    if (rc == 0 && a->ack) {
        printf("accepted %s\n", res.msg_id);
    } else if (rc != 0 && pp_client_status(c) == PP_CLIENT_E_REJECTED) {
        printf("rejected %s: %s\n", res.reason, res.detail);
        code = EXIT_REJECTED;
    } else if (rc != 0) {
        fprintf(stderr, "pushpipe-send: %s\n", pp_client_error(c));
        code = pp_client_status(c) == PP_CLIENT_E_INPUT ? EXIT_USAGE : EXIT_NOT_SENT;
    }
    pp_client_destroy(&c);
    return code;
}

int main(int argc, char **argv)
{
    s_args_t a = {0};
    a.broker = getenv("PUSHPIPE_BROKER");
    if (!a.broker || !*a.broker) a.broker = "tcp://127.0.0.1:5560";
    a.timeout_ms = PP_CLIENT_DEFAULT_TIMEOUT_MS;
    a.retries = -1;
    int rc = s_parse(argc, argv, &a);
    if (rc < 0) {
        fputs(s_usage, stdout);
        return 0;
    }
    if (rc) return rc;

    const char **ids = NULL;
    char *users_copy = NULL;
    long n_ids = 1;
    if (a.push_type == PP_PUSH_USERS) {
        /*  Split a copy so that the error message can quote what was given. */
        char *copy = strdup(a.target);
        n_ids = copy ? s_split_ids(copy, &ids) : -1;
        if (n_ids < 0) {
            free(copy);
            return s_usage_error("--users needs a comma-separated list of ids, got '%s'", a.target);
        }
        users_copy = copy;
    } else {
        if (!*a.target) return s_usage_error("%s", "the id is empty");
        ids = calloc(1, sizeof *ids);
        if (!ids) return EXIT_NOT_SENT;
        ids[0] = a.target;
    }

    char *stdin_data = NULL;
    const char *data = a.data_arg;
    if (strcmp(data, "-") == 0) {
        stdin_data = s_read_stdin();
        if (!stdin_data) {
            free(ids);
            free(users_copy);
            return EXIT_USAGE;
        }
        data = stdin_data;
    }
    rc = s_send(&a, ids, (size_t)n_ids, data);
    free(stdin_data);
    free(ids);
    free(users_copy);
    return rc;
}
