#include "pp_curve.h"
#include "pp_log.h"
#include "pp_zap.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ZMQ_ZAP_ENFORCE_DOMAIN sits in zmq.h's draft section in libzmq 4.3, but Debian's
   libzmq5 4.3.4 implements it (zmq_setsockopt accepts it; tests/curve checks that a CURVE
   server without a ZAP handler then refuses everyone). We check the return value, so a
   library without it makes pp_curve_apply fail instead of silently failing open. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

#define S_Z85_ZERO "0000000000000000000000000000000000000000"

struct pp_curve_t {
    bool enabled;
    bool server;
    char public_txt[41];
    char secret_txt[41];
    char server_public_txt[41];     /* clients: the broker's key */
    char *allow_dir;                /* server */
    bool roles;                     /* server: allow_dir has role subdirectories */
    char *role_dirs[PP_ROLE_COUNT]; /* server: each role's directory (NULL: none) */
    pp_zap_t *zap;                  /* server: started by the first pp_curve_apply */
    pp_metrics_t *metrics;          /* server, optional (pp_curve_set_metrics) */
    zactor_t *monitor;              /* server, optional: handshake counters */
    int n_monitored;
};

static bool s_readable_file(pp_config_t *config, const char *key, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        pp_config_fail(config, key, "%s: %s", path, strerror(errno));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        pp_config_fail(config, key, "%s: not a regular file", path);
        return false;
    }
    if (access(path, R_OK) != 0) {
        pp_config_fail(config, key, "%s: %s", path, strerror(errno));
        return false;
    }
    return true;
}

/*  zcert_load() first tries "<path>_secret" and then path itself; both files are ZPL. It
    returns NULL when the file holds no 40-character public key, and a secret key of forty
    zeroes when the file holds no secret key. */
static zcert_t *s_load_cert(pp_config_t *config, const char *key, const char *path)
{
    if (!s_readable_file(config, key, path)) return NULL;
    if (strlen(path) > 240) { /* zcert_load builds "<path>_secret" in 256 bytes */
        pp_config_fail(config, key, "path longer than 240 bytes");
        return NULL;
    }
    zcert_t *cert = zcert_load(path);
    if (!cert)
        pp_config_fail(config, key, "%s: not a CURVE certificate (no curve/public-key)", path);
    return cert;
}

/*  The secret certificate must not be readable by group or others. zcert_load() reads
    "<path>_secret" when it exists, else path, so the check looks at the file it will read. */
static bool s_private_file(pp_config_t *config, const char *key, const char *path)
{
    char secret[300], err[700];
    snprintf(secret, sizeof secret, "%s_secret", path);
    const char *file = strlen(path) <= 240 && access(secret, F_OK) == 0 ? secret : path;
    if (pp_secret_file_check(file, err, sizeof err) == 0) return true;
    pp_config_fail(config, key, "%s", err);
    return false;
}

static void s_read_secret(pp_curve_t *c, pp_config_t *config)
{
    const char *key = "curve.secret_cert";
    const char *path = NULL;
    if (c->server) {
        path = pp_config_str(config, "curve.server_secret_cert", NULL);
        if (path) key = "curve.server_secret_cert";
    }
    if (!path) path = pp_config_str(config, "curve.secret_cert", NULL);
    if (!path || !*path) {
        pp_config_fail(config, key, "required when curve.enabled is true");
        return;
    }
    zcert_t *cert = s_load_cert(config, key, path);
    if (!cert) return;
    /* A public certificate is no secret: "holds no secret key" says more than its mode. */
    if (strcmp(zcert_secret_txt(cert), S_Z85_ZERO) == 0)
        pp_config_fail(config, key, "%s: holds no secret key (give the file ending in _secret)",
                       path);
    else if (!s_private_file(config, key, path)) {
        zcert_destroy(&cert);
        return;
    }
    snprintf(c->public_txt, sizeof c->public_txt, "%s", zcert_public_txt(cert));
    snprintf(c->secret_txt, sizeof c->secret_txt, "%s", zcert_secret_txt(cert));
    zcert_destroy(&cert);
}

static void s_read_server_public(pp_curve_t *c, pp_config_t *config)
{
    const char *key = "curve.server_public";
    const char *path = pp_config_str(config, key, NULL);
    if (!path || !*path) {
        pp_config_fail(config, key, "required when curve.enabled is true");
        return;
    }
    zcert_t *cert = s_load_cert(config, key, path);
    if (!cert) return;
    snprintf(c->server_public_txt, sizeof c->server_public_txt, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
}

/*  Returns the number of public certificates (files not ending in "_secret"; directories
    are not counted) in dir, or -1 with a config error. */
static int s_count_certs(pp_config_t *config, const char *key, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        pp_config_fail(config, key, "%s: %s", dir, strerror(errno));
        return -1;
    }
    int n = 0, secrets = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.') continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode)) continue;
        if (len > 7 && strcmp(e->d_name + len - 7, "_secret") == 0)
            secrets++;
        else
            n++;
    }
    closedir(d);
    if (secrets)
        pp_warn("curve_allow_dir_has_secrets",
                "allow_dir=%s secret_files=%d hint=\"only public certificates belong here\"", dir,
                secrets);
    return n;
}

/*  Roles (common/pp_zap.h): a subdirectory per role under allow_dir turns them on; none
    keeps the flat layout, where every allowed key may use every socket. */
static void s_read_role_dirs(pp_curve_t *c, pp_config_t *config, const char *key, const char *dir)
{
    char path[PATH_MAX];
    for (int r = 0; r < PP_ROLE_COUNT; r++) {
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, pp_role_name(r)) >= (int)sizeof path) {
            pp_config_fail(config, key, "%s: path too long", dir);
            return;
        }
        if (stat(path, &st) != 0) continue;
        if (!S_ISDIR(st.st_mode)) {
            /* A file named like a role would be a certificate nobody meant as one. */
            pp_config_fail(config, key,
                           "%s: not a directory (role directories are %s/, %s/, "
                           "%s/, %s/)",
                           path, pp_role_name(0), pp_role_name(1), pp_role_name(2),
                           pp_role_name(3));
            return;
        }
        c->role_dirs[r] = strdup(path);
        if (!c->role_dirs[r]) abort();
        c->roles = true;
    }
    if (!c->roles) {
        int n = s_count_certs(config, key, dir);
        if (n < 0) return;
        if (n == 0)
            pp_warn("curve_allow_dir_empty", "allow_dir=%s effect=\"every client is refused\"",
                    dir);
        pp_warn("curve_roles_off",
                "allow_dir=%s effect=\"every allowed key may use every socket (client keys can "
                "act as resolvers and senders)\" hint=\"put keys in %s/clients, %s/resolvers, "
                "%s/apns-senders, %s/mqtt-senders (docs/security.md)\"",
                dir, dir, dir, dir, dir);
        for (int r = 0; r < PP_ROLE_COUNT; r++)
            if (!(c->role_dirs[r] = strdup(dir))) abort();
        return;
    }
    for (int r = 0; r < PP_ROLE_COUNT; r++) {
        if (!c->role_dirs[r]) {
            pp_warn("curve_role_dir_missing",
                    "allow_dir=%s role=%s effect=\"every key is refused "
                    "on this role's sockets\"",
                    dir, pp_role_name(r));
            continue;
        }
        int n = s_count_certs(config, key, c->role_dirs[r]);
        if (n < 0) return;
        if (n == 0)
            pp_warn("curve_role_dir_empty",
                    "dir=%s role=%s effect=\"every key is refused on "
                    "this role's sockets\"",
                    c->role_dirs[r], pp_role_name(r));
    }
    int flat = s_count_certs(config, key, dir);
    if (flat > 0)
        pp_warn("curve_allow_dir_flat_ignored",
                "allow_dir=%s files=%d effect=\"ignored: with role directories only the keys in "
                "them are allowed\"",
                dir, flat);
}

static void s_read_allow_dir(pp_curve_t *c, pp_config_t *config)
{
    const char *key = "curve.allow_dir";
    const char *dir = pp_config_str(config, key, NULL);
    if (!dir || !*dir) {
        pp_config_fail(config, key, "required in the broker when curve.enabled is true");
        return;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        pp_config_fail(config, key, "%s: %s", dir, strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        pp_config_fail(config, key, "%s: not a directory", dir);
        return;
    }
    c->allow_dir = strdup(dir);
    if (!c->allow_dir) abort();
    s_read_role_dirs(c, config, key, dir);
}

/*  The section is shared by every process and no program's unknown-key check covers it,
    so it checks its own keys: a misspelt "alow_dir" must not leave a broker open. */
static void s_check_keys(pp_config_t *config)
{
    json_t *sec = pp_config_json(config, "curve");
    if (!sec) return;
    if (!json_is_object(sec)) {
        pp_config_fail(config, "curve", "expected an object");
        return;
    }
    static const char *const known[] = {"enabled",       "secret_cert", "server_secret_cert",
                                        "server_public", "allow_dir",   NULL};
    const char *k;
    json_t *v;
    json_object_foreach(sec, k, v)
    {
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++)
            ok = strcmp(k, known[i]) == 0;
        if (!ok) {
            char path[160];
            snprintf(path, sizeof path, "curve.%.120s", k);
            pp_config_fail(config, path, "unknown key (misspelt?)");
        }
    }
}

pp_curve_t *pp_curve_new(pp_config_t *config, bool server)
{
    pp_curve_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->server = server;
    s_check_keys(config);
    /* Every stage shares the config file, so every stage accepts the binding rule's key. */
    (void)pp_config_bool(config, "insecure_bind", false);
    c->enabled = pp_config_bool(config, "curve.enabled", false);
    if (!c->enabled) return c;
    if (!zsys_has_curve()) {
        pp_config_fail(config, "curve.enabled", "this libzmq was built without CURVE");
        return c;
    }
    s_read_secret(c, config);
    if (server)
        s_read_allow_dir(c, config);
    else
        s_read_server_public(c, config);
    return c;
}

void pp_curve_destroy(pp_curve_t **p)
{
    if (!p || !*p) return;
    pp_curve_t *c = *p;
    zactor_destroy(&c->monitor);
    pp_zap_destroy(&c->zap);
    free(c->allow_dir);
    for (int r = 0; r < PP_ROLE_COUNT; r++)
        free(c->role_dirs[r]);
    /* The secret key should not linger in freed memory. */
    explicit_bzero(c->secret_txt, sizeof c->secret_txt);
    free(c);
    *p = NULL;
}

bool pp_curve_enabled(const pp_curve_t *c)
{
    return c && c->enabled;
}

bool pp_curve_roles(const pp_curve_t *c)
{
    return pp_curve_enabled(c) && c->server && c->roles;
}

const char *pp_curve_public_key(const pp_curve_t *c)
{
    return pp_curve_enabled(c) ? c->public_txt : NULL;
}

static int s_setopt(void *sock, int opt, const void *value, size_t len, const char *name)
{
    if (zmq_setsockopt(sock, opt, value, len) == 0) return 0;
    pp_error("curve_setsockopt_failed", "option=%s error=\"%s\"", name, zmq_strerror(errno));
    return -1;
}

/*  Our own ZAP handler, not czmq's zauth: zauth checks one allow list for every ZAP domain
    and sets no User-Id (see common/pp_zap.h). */
static int s_start_auth(pp_curve_t *c)
{
    c->zap = pp_zap_new((const char *const *)c->role_dirs, c->metrics);
    if (!c->zap) return -1; /* logged */
    pp_info("curve_server", "public_key=%s allow_dir=%s roles=%s zap_domain=%s", c->public_txt,
            c->allow_dir, c->roles ? "on" : "off", PP_CURVE_ZAP_DOMAIN);
    return 0;
}

static int s_apply_server(pp_curve_t *c, void *sock, pp_role_t role)
{
    if (!c->zap && s_start_auth(c) != 0) return -1;
    int one = 1;
    const char *domain = pp_zap_domain(role);
    if (s_setopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one, "ZMQ_CURVE_SERVER") ||
        s_setopt(sock, ZMQ_CURVE_SECRETKEY, c->secret_txt, 40, "ZMQ_CURVE_SECRETKEY") ||
        s_setopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain), "ZMQ_ZAP_DOMAIN") ||
        s_setopt(sock, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one, "ZMQ_ZAP_ENFORCE_DOMAIN"))
        return -1;
    return 0;
}

static int s_apply_client(pp_curve_t *c, void *sock)
{
    if (s_setopt(sock, ZMQ_CURVE_SERVERKEY, c->server_public_txt, 40, "ZMQ_CURVE_SERVERKEY") ||
        s_setopt(sock, ZMQ_CURVE_PUBLICKEY, c->public_txt, 40, "ZMQ_CURVE_PUBLICKEY") ||
        s_setopt(sock, ZMQ_CURVE_SECRETKEY, c->secret_txt, 40, "ZMQ_CURVE_SECRETKEY"))
        return -1;
    return 0;
}

/* ---- handshake monitor ------------------------------------------------------------------ */

typedef struct {
    pp_metric_t *ok, *refused, *failed;
    pp_ratelimit_t rl;
} s_mon_t;

static void s_mon_event(s_mon_t *m, zsock_t *pair)
{
    zmsg_t *msg = zmsg_recv(pair);
    if (!msg) return;
    zframe_t *head = zmsg_first(msg);
    zframe_t *where = zmsg_next(msg);
    if (head && zframe_size(head) == 6) {
        uint16_t event;
        uint32_t value;
        memcpy(&event, zframe_data(head), 2);
        memcpy(&value, zframe_data(head) + 2, 4);
        char ep[128] = "";
        if (where)
            snprintf(ep, sizeof ep, "%.*s",
                     (int)(zframe_size(where) < 120 ? zframe_size(where) : 120),
                     (const char *)zframe_data(where));
        uint32_t suppressed = 0;
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            pp_metric_inc(m->ok);
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            pp_metric_inc(m->refused);
            if (pp_ratelimit_allow(&m->rl, &suppressed))
                pp_warn("curve_refused", "endpoint=%s zap_status=%u suppressed=%u", ep, value,
                        suppressed);
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                   event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            /* Other events (ZMQ_EVENT_MONITOR_STOPPED when a socket closes) are not
               handshakes. */
            pp_metric_inc(m->failed);
            if (pp_ratelimit_allow(&m->rl, &suppressed))
                pp_warn("curve_handshake_failed",
                        "endpoint=%s zmq_event=0x%x detail=0x%x suppressed=%u", ep, event, value,
                        suppressed);
        }
    }
    zmsg_destroy(&msg);
}

/*  Actor: owns the PAIR sockets that libzmq's socket monitors talk to. Commands on the
    pipe: "WATCH" <inproc endpoint> (answers with a signal), and $TERM. */
static void s_monitor_actor(zsock_t *pipe, void *args)
{
    s_mon_t m = {0};
    pp_metrics_t *metrics = args;
    const char *help = "CURVE handshakes on the broker's sockets by result";
    m.ok = pp_metrics_counter(metrics, "curve_handshakes_total", help, "result=\"ok\"");
    m.refused = pp_metrics_counter(metrics, "curve_handshakes_total", help, "result=\"refused\"");
    m.failed = pp_metrics_counter(metrics, "curve_handshakes_total", help, "result=\"failed\"");
    m.rl = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 5);
    zlist_t *pairs = zlist_new();
    zpoller_t *poller = zpoller_new(pipe, NULL);
    zsock_signal(pipe, 0);
    while (true) {
        zsock_t *which = zpoller_wait(poller, -1);
        if (!which) break; /* interrupted or terminated */
        if (which == pipe) {
            char *cmd = NULL, *endpoint = NULL;
            if (zstr_recvx(pipe, &cmd, &endpoint, NULL) < 0) break;
            bool term = cmd && streq(cmd, "$TERM");
            if (!term && cmd && streq(cmd, "WATCH") && endpoint) {
                zsock_t *pair = zsock_new_pair(NULL);
                int rc = pair ? zsock_connect(pair, "%s", endpoint) : -1;
                if (rc == 0) {
                    zpoller_add(poller, pair);
                    zlist_append(pairs, pair);
                } else
                    zsock_destroy(&pair);
                zsock_signal(pipe, rc == 0 ? 0 : 1);
            }
            zstr_free(&cmd);
            zstr_free(&endpoint);
            if (term) break;
        } else
            s_mon_event(&m, which);
    }
    zpoller_destroy(&poller);
    zsock_t *pair;
    while ((pair = zlist_pop(pairs)))
        zsock_destroy(&pair);
    zlist_destroy(&pairs);
}

void pp_curve_set_metrics(pp_curve_t *c, pp_metrics_t *metrics)
{
    if (!pp_curve_enabled(c) || !c->server || c->monitor || !metrics) return;
    c->metrics = metrics;
    c->monitor = zactor_new(s_monitor_actor, metrics);
    if (!c->monitor) pp_warn("curve_monitor_failed", "effect=\"no handshake counters\"");
}

static void s_watch(pp_curve_t *c, void *sock)
{
    /* Unique per process, not per pp_curve_t: a closed socket's monitor endpoint is
       released asynchronously, and a new pp_curve_t may get the old one's address. */
    static atomic_uint s_next = 0;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://pp-curve-monitor-%d-%u", (int)getpid(),
             atomic_fetch_add(&s_next, 1));
    c->n_monitored++;
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (zmq_socket_monitor(sock, endpoint, events) != 0 ||
        zstr_sendx(c->monitor, "WATCH", endpoint, NULL) != 0 || zsock_wait(c->monitor) != 0)
        pp_warn("curve_monitor_failed", "endpoint=%s effect=\"no handshake counters\"", endpoint);
}

int pp_curve_apply(pp_curve_t *c, void *zmq_socket)
{
    return pp_curve_apply_role(c, zmq_socket, PP_ROLE_ANY);
}

int pp_curve_apply_role(pp_curve_t *c, void *zmq_socket, pp_role_t role)
{
    if (!pp_curve_enabled(c)) return 0;
    if (!zmq_socket || (unsigned)role > PP_ROLE_ANY) {
        pp_error("curve_apply_failed", "error=\"%s\"", zmq_socket ? "bad role" : "no socket");
        return -1;
    }
    int rc = c->server ? s_apply_server(c, zmq_socket, role) : s_apply_client(c, zmq_socket);
    if (rc == 0 && c->server && c->monitor) s_watch(c, zmq_socket);
    return rc;
}

/* ---- security rules --------------------------------------------------------------------- */

bool pp_endpoint_is_loopback(const char *endpoint)
{
    if (!endpoint) return false;
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0) return true;
    if (strncmp(endpoint, "tcp://", 6) != 0) return false;
    const char *host = endpoint + 6;
    const char *colon = strrchr(host, ':');
    if (!colon || colon == host || colon - host > 200) return false;
    char name[208];
    snprintf(name, sizeof name, "%.*s", (int)(colon - host), host);
    if (strcasecmp(name, "localhost") == 0) return true;
    struct in_addr v4;
    if (inet_pton(AF_INET, name, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    size_t len = strlen(name);
    if (len > 2 && name[0] == '[' && name[len - 1] == ']') {
        name[len - 1] = '\0';
        struct in6_addr v6;
        return inet_pton(AF_INET6, name + 1, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
    }
    return false; /* *, 0.0.0.0, another address, a host or interface name */
}

void pp_curve_check_bind(pp_config_t *config, const char *key, const char *endpoint)
{
    bool insecure = pp_config_bool(config, "insecure_bind", false);
    if (!endpoint || pp_endpoint_is_loopback(endpoint)) return;
    if (pp_config_bool(config, "curve.enabled", false)) return;
    if (!insecure) {
        pp_config_fail(config, key,
                       "%s is not loopback and curve.enabled is false: turn CURVE on "
                       "(docs/security.md) or set \"insecure_bind\": true",
                       endpoint);
        return;
    }
    pp_warn("insecure_bind",
            "key=%s bind=%s curve=off effect=\"no encryption, no authentication: whoever "
            "reaches this address can send and receive\"",
            key, endpoint);
}

int pp_secret_file_check(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (!path || stat(path, &st) != 0) return 0;
    if ((st.st_mode & (S_IRGRP | S_IROTH)) == 0) return 0;
    /* Group-readable is allowed only for a root-owned file whose group is our own and
       that nobody else may read or write: how Kubernetes mounts a secret for a non-root
       pod (fsGroup, defaultMode 0440). Any other group could be shared. */
    if (!(st.st_mode & (S_IROTH | S_IWOTH | S_IWGRP)) && st.st_uid == 0 && st.st_uid != getuid() &&
        st.st_gid == getegid())
        return 0;
    snprintf(err, errlen,
             "permissions %04o for %s are too open: a secret key must not be readable by group "
             "or others (chmod 600 %s)",
             (unsigned)(st.st_mode & 07777), path, path);
    return -1;
}
