/*  pp_zap: the broker's ZAP handler, one directory of certificates per role. */
#include "pp_zap.h"
#include "pp_log.h"

#include <czmq.h>
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
/*  Most frames of a request we look at: RFC 27 has six plus the mechanism's credentials
    (one for CURVE). */
#define S_MAX_FRAMES 16
#define S_NAME_MAX 64

static const char *s_role_names[PP_ROLE_COUNT + 1] = {"clients", "resolvers", "apns-senders",
                                                      "mqtt-senders", "any"};
static const char *s_domains[PP_ROLE_COUNT + 1] = {"pushpipe-clients", "pushpipe-resolvers",
                                                   "pushpipe-apns-senders", "pushpipe-mqtt-senders",
                                                   "pushpipe"};

struct pp_zap_t {
    char *dirs[PP_ROLE_COUNT];
    pp_metric_t *m_ok[PP_ROLE_COUNT + 1], *m_refused[PP_ROLE_COUNT + 1];
    pp_metric_t *m_bad;
    zactor_t *actor;
    bool started; /* set by the actor before its first signal */
};

const char *pp_role_name(pp_role_t role)
{
    return (unsigned)role <= PP_ROLE_ANY ? s_role_names[role] : "unknown";
}

const char *pp_zap_domain(pp_role_t role)
{
    return (unsigned)role <= PP_ROLE_ANY ? s_domains[role] : s_domains[PP_ROLE_ANY];
}

/*  The role of a ZAP domain, or -1 for a domain that is not ours. */
static int s_role_of_domain(const char *domain, size_t len)
{
    for (int r = 0; r <= PP_ROLE_ANY; r++)
        if (strlen(s_domains[r]) == len && memcmp(s_domains[r], domain, len) == 0) return r;
    return -1;
}

/* ---- the actor -------------------------------------------------------------------------- */

/*  One role's allowed keys: the certificates directly in its directory (not in
    subdirectories; files ending in "_secret" skipped), reloaded when the directory changes.
    Not czmq's zcertstore: its disk loader reads subdirectories too and asserts (aborting
    the broker) when two files hold the same key, as one key copied twice in a directory
    would; here the second copy is ignored with a warn. */
typedef struct {
    const char *dir;
    zhashx_t *keys; /* Z85 public key -> certificate name (owned strings) */
    uint64_t sig;   /* s_dir_sig at the last load */
    bool loaded;
} s_store_t;

typedef struct {
    pp_zap_t *zap;
    s_store_t store[PP_ROLE_COUNT]; /* dir NULL: the role has no directory */
    zsock_t *handler;
    pp_ratelimit_t rl_refused, rl_ok, rl_bad, rl_dup;
} s_self_t;

static void s_free_str(void **item)
{
    free(*item);
    *item = NULL;
}

static uint64_t s_fnv(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/*  A signature of what the directory holds: names, sizes, inodes and modification times
    of its regular files (order-independent), so that adding, removing, replacing or
    editing a certificate changes it. 0 when the directory cannot be read. */
static uint64_t s_dir_sig(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    uint64_t sig = 1;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, 0) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        uint64_t h = s_fnv(14695981039346656037ull, e->d_name, strlen(e->d_name));
        h = s_fnv(h, &st.st_size, sizeof st.st_size);
        h = s_fnv(h, &st.st_ino, sizeof st.st_ino);
        h = s_fnv(h, &st.st_mtim, sizeof st.st_mtim);
        sig += h;
    }
    closedir(d);
    return sig ? sig : 1;
}

/*  A certificate's name for logs and X-Key-Name: its "name" metadata when it is 1..64
    printable characters without spaces or quotes, else "-". */
static char *s_cert_name(zcert_t *cert)
{
    const char *name = zcert_meta(cert, "name");
    size_t len = name ? strlen(name) : 0;
    bool ok = len > 0 && len <= S_NAME_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = name[i] > 0x20 && name[i] < 0x7f && name[i] != '"' && name[i] != '\\';
    char *out = strdup(ok ? name : "-");
    if (!out) abort();
    return out;
}

static void s_store_load(s_self_t *self, s_store_t *st, uint64_t sig)
{
    zhashx_t *keys = zhashx_new();
    if (!keys) abort();
    zhashx_set_destructor(keys, s_free_str);
    DIR *d = opendir(st->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        struct stat sb;
        if (e->d_name[0] == '.' || (len > 7 && strcmp(e->d_name + len - 7, "_secret") == 0) ||
            fstatat(dirfd(d), e->d_name, &sb, 0) != 0 || !S_ISREG(sb.st_mode))
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", st->dir, e->d_name) >= (int)sizeof path ||
            strlen(path) > 240) /* zcert_load builds "<path>_secret" in 256 bytes */
            continue;
        zcert_t *cert = zcert_load(path);
        if (!cert) continue; /* not a certificate: ignored, as zcertstore does */
        const char *key = zcert_public_txt(cert);
        uint32_t suppressed;
        if (zhashx_lookup(keys, key)) {
            if (pp_ratelimit_allow(&self->rl_dup, &suppressed))
                pp_warn("curve_duplicate_key", "file=%s key=%s effect=ignored suppressed=%u", path,
                        key, suppressed);
        } else
            zhashx_insert(keys, key, s_cert_name(cert));
        zcert_destroy(&cert);
    }
    if (d) closedir(d);
    zhashx_destroy(&st->keys);
    st->keys = keys;
    st->sig = sig;
    st->loaded = true;
}

/*  The name of key (Z85) in role r's directory, or NULL when the role does not allow it.
    The directory is looked at on every call and reloaded when it changed, so a key added
    or removed counts from the next handshake on. */
static const char *s_lookup(s_self_t *self, int r, const char *key)
{
    s_store_t *st = &self->store[r];
    if (!st->dir) return NULL;
    uint64_t sig = s_dir_sig(st->dir);
    if (!st->loaded || sig != st->sig) s_store_load(self, st, sig);
    return zhashx_lookup(st->keys, key);
}

/*  The roles that do allow key, as "resolvers,apns-senders" (or "none"), for the refusal
    line: an operator then sees at once whether a key is unknown or in the wrong place. */
static void s_roles_of(s_self_t *self, const char *key, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t used = 0;
    for (int r = 0; r < PP_ROLE_COUNT; r++) {
        if (!s_lookup(self, r, key)) continue;
        int n = snprintf(out + used, outlen - used, "%s%s", used ? "," : "", s_role_names[r]);
        if (n < 0 || (size_t)n >= outlen - used) break;
        used += (size_t)n;
    }
    if (!used) snprintf(out, outlen, "none");
}

/*  ZMTP metadata (RFC 23): name length (1 byte), name, value length (4 bytes BE), value. */
static zframe_t *s_metadata(const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    zframe_t *f = zframe_new(NULL, 1 + nl + 4 + vl);
    if (!f) return NULL;
    uint8_t *p = zframe_data(f);
    p[0] = (uint8_t)nl;
    memcpy(p + 1, name, nl);
    p[1 + nl] = (uint8_t)(vl >> 24);
    p[2 + nl] = (uint8_t)(vl >> 16);
    p[3 + nl] = (uint8_t)(vl >> 8);
    p[4 + nl] = (uint8_t)vl;
    memcpy(p + 5 + nl, value, vl);
    return f;
}

static void s_reply(s_self_t *self, zframe_t *reqid, const char *status, const char *text,
                    const char *user_id, zframe_t *meta)
{
    zmsg_t *reply = zmsg_new();
    zmsg_addstr(reply, "1.0");
    if (reqid)
        zmsg_append(reply, &reqid);
    else
        zmsg_addstr(reply, "");
    zmsg_addstr(reply, status);
    zmsg_addstr(reply, text);
    zmsg_addstr(reply, user_id);
    if (meta)
        zmsg_append(reply, &meta);
    else
        zmsg_addmem(reply, NULL, 0);
    /* A REP must answer every request; a lost reply leaves that handshake to time out. */
    if (zmsg_send(&reply, self->handler) != 0) zmsg_destroy(&reply);
}

/*  Answers one request. Frames: version, request id, domain, address, routing id,
    mechanism, then the credentials (CURVE: the client's 32-byte public key). */
static void s_handle(s_self_t *self, zmsg_t *req)
{
    pp_zap_t *zap = self->zap;
    size_t nf = zmsg_size(req);
    zframe_t *f[S_MAX_FRAMES] = {0};
    zframe_t *it = zmsg_first(req);
    for (size_t i = 0; i < S_MAX_FRAMES && it; i++, it = zmsg_next(req))
        f[i] = it;
    zframe_t *reqid = nf >= 2 ? zframe_dup(f[1]) : NULL;
    bool well_formed = nf >= 6 && nf <= S_MAX_FRAMES && zframe_streq(f[0], "1.0");
    int role =
        well_formed ? s_role_of_domain((const char *)zframe_data(f[2]), zframe_size(f[2])) : -1;
    bool curve = well_formed && zframe_streq(f[5], "CURVE") && nf == 7 && zframe_size(f[6]) == 32;
    char address[64] = "-";
    if (nf >= 4)
        snprintf(address, sizeof address, "%.*s",
                 (int)(zframe_size(f[3]) < 60 ? zframe_size(f[3]) : 60),
                 (const char *)zframe_data(f[3]));
    uint32_t suppressed = 0;
    if (role < 0 || !curve) {
        /* Not a CURVE request for one of our domains: a socket of this process that should
           not ask us, or a mechanism the broker does not use. Refused: fails closed. */
        pp_metric_inc(zap->m_bad);
        if (pp_ratelimit_allow(&self->rl_bad, &suppressed)) {
            char dom[48] = "-";
            if (nf >= 3)
                snprintf(dom, sizeof dom, "%.*s",
                         (int)(zframe_size(f[2]) < 40 ? zframe_size(f[2]) : 40),
                         (const char *)zframe_data(f[2]));
            pp_warn("curve_zap_bad_request",
                    "frames=%zu domain=\"%s\" address=%s effect=refused suppressed=%u", nf, dom,
                    address, suppressed);
        }
        s_reply(self, reqid, well_formed ? "400" : "500",
                well_formed ? "Not allowed" : "Bad request", "", NULL);
        return;
    }
    char key[41];
    zmq_z85_encode(key, zframe_data(f[6]), 32);
    const char *name = NULL;
    if (role == PP_ROLE_ANY)
        for (int r = 0; r < PP_ROLE_COUNT && !name; r++)
            name = s_lookup(self, r, key);
    else
        name = s_lookup(self, role, key);
    if (!name) {
        pp_metric_inc(zap->m_refused[role]);
        if (pp_ratelimit_allow(&self->rl_refused, &suppressed)) {
            char roles[80];
            s_roles_of(self, key, roles, sizeof roles);
            pp_warn("curve_role_refused", "role=%s key=%s key_roles=%s address=%s suppressed=%u",
                    s_role_names[role], key, roles, address, suppressed);
        }
        s_reply(self, reqid, "400", "Key not allowed in this role", "", NULL);
        return;
    }
    pp_metric_inc(zap->m_ok[role]);
    if (pp_ratelimit_allow(&self->rl_ok, &suppressed))
        pp_info("curve_role_allowed", "role=%s key=%s name=%s address=%s suppressed=%u",
                s_role_names[role], key, name, address, suppressed);
    s_reply(self, reqid, "200", "OK", key, s_metadata("X-Key-Name", name));
}

static void s_actor(zsock_t *pipe, void *args)
{
    s_self_t self = {.zap = args};
    self.rl_refused = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 10);
    self.rl_ok = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 10);
    self.rl_bad = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 5);
    self.rl_dup = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 5);
    for (int r = 0; r < PP_ROLE_COUNT; r++)
        self.store[r].dir = self.zap->dirs[r];
    self.handler = zsock_new(ZMQ_REP);
    int rc = self.handler ? zsock_bind(self.handler, S_ZAP_ENDPOINT) : -1;
    zpoller_t *poller = rc == 0 ? zpoller_new(pipe, self.handler, NULL) : NULL;
    /* zactor_new waits for this signal but ignores its status: report through started. */
    self.zap->started = poller != NULL;
    zsock_signal(pipe, poller ? 0 : 1);
    while (poller) {
        zsock_t *which = zpoller_wait(poller, -1);
        if (!which) break; /* interrupted or terminated */
        if (which == pipe) {
            char *cmd = zstr_recv(pipe);
            bool term = !cmd || streq(cmd, "$TERM");
            zstr_free(&cmd);
            if (term) break;
        } else {
            zmsg_t *req = zmsg_recv(self.handler);
            if (!req) break;
            s_handle(&self, req);
            zmsg_destroy(&req);
        }
    }
    zpoller_destroy(&poller);
    zsock_destroy(&self.handler);
    for (int r = 0; r < PP_ROLE_COUNT; r++)
        zhashx_destroy(&self.store[r].keys);
}

/* ---- interface -------------------------------------------------------------------------- */

pp_zap_t *pp_zap_new(const char *const role_dirs[PP_ROLE_COUNT], pp_metrics_t *metrics)
{
    pp_zap_t *z = calloc(1, sizeof *z);
    if (!z) return NULL;
    for (int r = 0; r < PP_ROLE_COUNT; r++)
        if (role_dirs[r] && !(z->dirs[r] = strdup(role_dirs[r]))) abort();
    if (metrics) {
        const char *help = "CURVE handshakes the broker's ZAP handler answered, by role";
        for (int r = 0; r <= PP_ROLE_ANY; r++) {
            char l[96];
            snprintf(l, sizeof l, "role=\"%s\",result=\"ok\"", s_role_names[r]);
            z->m_ok[r] = pp_metrics_counter(metrics, "curve_zap_total", help, l);
            snprintf(l, sizeof l, "role=\"%s\",result=\"refused\"", s_role_names[r]);
            z->m_refused[r] = pp_metrics_counter(metrics, "curve_zap_total", help, l);
        }
        z->m_bad = pp_metrics_counter(metrics, "curve_zap_total", help,
                                      "role=\"unknown\",result=\"refused\"");
    }
    z->actor = zactor_new(s_actor, z);
    if (!z->actor || !z->started) {
        pp_error("curve_zap_failed",
                 "endpoint=%s error=\"cannot start the ZAP handler (is "
                 "another one bound in this process?)\"",
                 S_ZAP_ENDPOINT);
        pp_zap_destroy(&z);
        return NULL;
    }
    return z;
}

void pp_zap_destroy(pp_zap_t **p)
{
    if (!p || !*p) return;
    pp_zap_t *z = *p;
    zactor_destroy(&z->actor);
    for (int r = 0; r < PP_ROLE_COUNT; r++)
        free(z->dirs[r]);
    free(z);
    *p = NULL;
}
