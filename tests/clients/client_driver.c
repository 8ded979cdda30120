/*  client_driver: drives libpushpipe (the static library) from a script, for the
    integration tests.

    usage: client_driver BROKER_ADDRESS[,ADDRESS...] [--ack] [--timeout-ms MS] [--immediate]
                         [--retries N] [--multi] [--verbose]
                         [--curve SERVER_PUBLIC CLIENT_PUBLIC CLIENT_SECRET] < script

    --multi: split the address list here and use pp_client_new_multi (else the list goes
    to pp_client_new as it is). --verbose: results of acknowledged pushes also say
    " broker=<address> resends=<total> cid=<client message id> ms=<elapsed>".

    One push per line, fields separated by tabs:
        KIND  IDS  DATA  OPTIONS
    KIND: group | users | user | raw1 | raw2 | raw3 (raw: DATA is the msgpack map in hex)
    IDS: one id, or ids separated by commas for users/raw2
    DATA: JSON text (or hex for raw)
    OPTIONS: "-" or key=value pairs separated by ';' (id, channels, apns_push_type,
             apns_priority, apns_expiration, ttl, apns_collapse_id, mqtt_qos)
    For each line it prints one of
        sent | accepted <msg_id> | rejected <reason>: <detail> | error <status> <message>
*/
#include "pushpipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_IDS 64

static bool s_verbose;

static long long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_hex(const char *hex, unsigned char *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (unsigned char)v;
    }
    *len = n / 2;
    return 0;
}

static void s_options(char *spec, pp_push_options_t *o)
{
    memset(o, 0, sizeof *o);
    if (strcmp(spec, "-") == 0) return;
    for (char *kv = strtok(spec, ";"); kv; kv = strtok(NULL, ";")) {
        char *eq = strchr(kv, '=');
        if (!eq) continue;
        *eq = '\0';
        const char *k = kv, *v = eq + 1;
        if (!strcmp(k, "id"))
            o->id = v;
        else if (!strcmp(k, "channels"))
            o->channels = v;
        else if (!strcmp(k, "apns_push_type"))
            o->apns_push_type = v;
        else if (!strcmp(k, "apns_collapse_id"))
            o->apns_collapse_id = v;
        else if (!strcmp(k, "apns_priority"))
            o->apns_priority = atoi(v);
        else if (!strcmp(k, "apns_expiration")) {
            o->has_apns_expiration = true;
            o->apns_expiration = atoll(v);
        } else if (!strcmp(k, "ttl")) {
            o->has_ttl = true;
            o->ttl = atoll(v);
        } else if (!strcmp(k, "mqtt_qos")) {
            o->has_mqtt_qos = true;
            o->mqtt_qos = atoi(v);
        }
    }
}

static int s_run_line(pp_client_t *c, char *line, bool ack)
{
    char *f[4] = {0};
    char *save = NULL;
    int n = 0;
    for (char *t = strtok_r(line, "\t", &save); t && n < 4; t = strtok_r(NULL, "\t", &save))
        f[n++] = t;
    if (n < 3) {
        printf("error script bad line\n");
        return -1;
    }
    pp_push_options_t opts;
    s_options(n == 4 ? f[3] : "-", &opts);
    const char *ids[MAX_IDS];
    size_t n_ids = 0;
    char *isave = NULL;
    for (char *t = strtok_r(f[1], ",", &isave); t && n_ids < MAX_IDS;
         t = strtok_r(NULL, ",", &isave))
        ids[n_ids++] = t;
    pp_client_result_t res;
    int rc;
    long long start = s_now_ms();
    if (!strcmp(f[0], "group"))
        rc = pp_client_push_group(c, ids[0], f[2], &opts, &res);
    else if (!strcmp(f[0], "user"))
        rc = pp_client_push_user(c, ids[0], f[2], &opts, &res);
    else if (!strcmp(f[0], "users"))
        rc = pp_client_push_users(c, ids, n_ids, f[2], &opts, &res);
    else if (!strncmp(f[0], "raw", 3)) {
        unsigned char buf[4096];
        size_t len = 0;
        if (s_hex(f[2], buf, sizeof buf, &len) != 0) {
            printf("error script bad hex\n");
            return -1;
        }
        rc = pp_client_push_raw(c, atoi(f[0] + 3), ids, n_ids, buf, len, &opts, &res);
    } else {
        printf("error script bad kind\n");
        return -1;
    }
    if (rc == 0)
        ack ? printf("accepted %s", res.msg_id) : printf("sent");
    else if (pp_client_status(c) == PP_CLIENT_E_REJECTED)
        printf("rejected %s: %s", res.reason, res.detail);
    else
        printf("error %d %s", (int)pp_client_status(c), pp_client_error(c));
    if (s_verbose && ack)
        printf(" broker=%s resends=%llu cid=%s ms=%lld", pp_client_broker(c),
               (unsigned long long)pp_client_resends(c), pp_client_message_id(c),
               s_now_ms() - start);
    printf("\n");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: client_driver ADDRESS [--ack] [--timeout-ms MS] < script\n");
        return 2;
    }
    bool ack = false, immediate = false, multi = false;
    int timeout = -1, retries = -1;
    char **curve = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--ack"))
            ack = true;
        else if (!strcmp(argv[i], "--immediate"))
            immediate = true;
        else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
            timeout = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--retries") && i + 1 < argc)
            retries = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--multi"))
            multi = true;
        else if (!strcmp(argv[i], "--verbose"))
            s_verbose = true;
        else if (!strcmp(argv[i], "--curve") && i + 3 < argc) {
            curve = argv + i + 1;
            i += 3;
        }
    }
    pp_client_t *c = NULL;
    if (multi) {
        const char *list[PP_CLIENT_MAX_BROKERS + 1];
        size_t n = 0;
        for (char *t = strtok(argv[1], ","); t && n < PP_CLIENT_MAX_BROKERS + 1;
             t = strtok(NULL, ","))
            list[n++] = t;
        c = pp_client_new_multi(list, n, ack ? PP_CLIENT_ACK : 0);
    } else {
        c = pp_client_new(argv[1], ack ? PP_CLIENT_ACK : 0);
    }
    if (!c) {
        printf("error new bad address\n");
        return 2;
    }
    if (timeout >= 0) pp_client_set_timeout(c, timeout);
    if (immediate) pp_client_set_immediate(c, true);
    if (retries >= 0 && pp_client_set_retries(c, retries) != 0) {
        printf("error retries %s\n", pp_client_error(c));
        pp_client_destroy(&c);
        return 2;
    }
    if (curve && pp_client_set_curve(c, curve[0], curve[1], curve[2]) != 0) {
        printf("error curve %s\n", pp_client_error(c));
        pp_client_destroy(&c);
        return 2;
    }
    char line[8192];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0]) s_run_line(c, line, ack);
    }
    pp_client_destroy(&c);
    return c == NULL ? 0 : 1;
}
