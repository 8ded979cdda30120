/*  pp_curve against real sockets over tcp on 127.0.0.1: a czmq ROUTER as the CURVE server
    (pp_zap with a flat allow directory) and DEALER clients with an allowed key, an unknown key,
    and no CURVE at all; plus the config errors, and libzmq's fail-closed behaviour without
    a ZAP handler. */
#include "pp_curve.h"
#include "pp_log.h"
#include "pp_metrics.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char s_dir[64];
static char s_allow[128], s_server_cert[300], s_client_cert[300], s_stranger_cert[300];
static char s_pubonly_dir[128], s_pubonly_cert[300];

static void s_make_cert(const char *path, const char *public_copy)
{
    zcert_t *cert = zcert_new();
    assert_non_null(cert);
    assert_int_equal(zcert_save(cert, path), 0);
    if (public_copy) assert_int_equal(zcert_save_public(cert, public_copy), 0);
    zcert_destroy(&cert);
}

static int s_setup(void **state)
{
    (void)state;
    snprintf(s_dir, sizeof s_dir, "/tmp/pp-curve-test-XXXXXX");
    assert_non_null(mkdtemp(s_dir));
    snprintf(s_allow, sizeof s_allow, "%s/allow", s_dir);
    assert_int_equal(mkdir(s_allow, 0755), 0);
    snprintf(s_pubonly_dir, sizeof s_pubonly_dir, "%s/pub", s_dir);
    assert_int_equal(mkdir(s_pubonly_dir, 0755), 0);
    char path[256], pub[256];
    snprintf(path, sizeof path, "%s/broker.cert", s_dir);
    snprintf(pub, sizeof pub, "%s/broker.cert", s_pubonly_dir);
    s_make_cert(path, pub);
    snprintf(s_server_cert, sizeof s_server_cert, "%s_secret", path);
    snprintf(s_pubonly_cert, sizeof s_pubonly_cert, "%s", pub);
    snprintf(path, sizeof path, "%s/client.cert", s_dir);
    snprintf(pub, sizeof pub, "%s/client.cert", s_allow);
    s_make_cert(path, pub);
    snprintf(s_client_cert, sizeof s_client_cert, "%s_secret", path);
    snprintf(path, sizeof path, "%s/stranger.cert", s_dir);
    s_make_cert(path, NULL);
    snprintf(s_stranger_cert, sizeof s_stranger_cert, "%s_secret", path);
    return 0;
}

static void s_shared_stop(void);

static int s_teardown(void **state)
{
    (void)state;
    s_shared_stop();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static pp_config_t *s_config(const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    char err[256];
    pp_config_t *c = pp_config_from_string(text, err, sizeof err);
    assert_non_null(c);
    return c;
}

static pp_curve_t *s_server(pp_config_t **config)
{
    *config = s_config("{\"curve\": {\"enabled\": true, \"secret_cert\": \"%s\", "
                       "\"server_public\": \"%s\", \"allow_dir\": \"%s\"}}",
                       s_server_cert, s_pubonly_cert, s_allow);
    pp_curve_t *c = pp_curve_new(*config, true);
    assert_non_null(c);
    assert_true(pp_config_ok(*config));
    return c;
}

static pp_curve_t *s_client(pp_config_t **config, const char *secret)
{
    *config = s_config("{\"curve\": {\"enabled\": true, \"secret_cert\": \"%s\", "
                       "\"server_public\": \"%s\"}}",
                       secret, s_pubonly_cert);
    pp_curve_t *c = pp_curve_new(*config, false);
    assert_non_null(c);
    if (!pp_config_ok(*config)) fail_msg("%s", pp_config_error(*config));
    return c;
}

/* ---- config ---------------------------------------------------------------------------- */

static void s_expect_error(const char *json, bool server, const char *needle)
{
    char err[256];
    pp_config_t *config = pp_config_from_string(json, err, sizeof err);
    assert_non_null(config);
    pp_curve_t *c = pp_curve_new(config, server);
    assert_non_null(c);
    assert_false(pp_config_ok(config));
    const char *e = pp_config_error(config);
    if (!strstr(e, needle)) fail_msg("error \"%s\" does not contain \"%s\"", e, needle);
    pp_curve_destroy(&c);
    assert_null(c);
    pp_config_destroy(&config);
}

static void test_off_by_default(void **state)
{
    (void)state;
    pp_config_t *config = s_config("{}");
    pp_curve_t *c = pp_curve_new(config, true);
    assert_false(pp_curve_enabled(c));
    assert_null(pp_curve_public_key(c));
    assert_int_equal(pp_curve_apply(c, NULL), 0);
    assert_true(pp_config_ok(config));
    pp_curve_destroy(&c);
    pp_config_destroy(&config);
}

static void test_config_errors(void **state)
{
    (void)state;
    char json[2048];
    s_expect_error("{\"curve\": {\"enabled\": true}}", false, "curve.secret_cert");
    s_expect_error("{\"curve\": {\"enabled\": \"yes\"}}", false, "curve.enabled");
    s_expect_error("{\"curve\": {\"enabled\": true, \"secret_cert\": \"/nonexistent/x\"}}", false,
                   "curve.secret_cert: /nonexistent/x: No such file");
    s_expect_error("{\"curve\": {\"enabled\": false, \"alow_dir\": \"/tmp\"}}", true,
                   "curve.alow_dir: unknown key");
    s_expect_error("{\"curve\": 5}", true, "curve: expected an object");
    /* A public certificate where the secret one is needed. */
    snprintf(json, sizeof json, "{\"curve\": {\"enabled\": true, \"secret_cert\": \"%s\"}}",
             s_pubonly_cert);
    s_expect_error(json, true, "holds no secret key");
    /* Not a certificate at all. */
    snprintf(json, sizeof json,
             "{\"curve\": {\"enabled\": true, \"secret_cert\": \"/etc/hostname\", "
             "\"allow_dir\": \"%s\"}}",
             s_allow);
    s_expect_error(json, true, "curve.secret_cert: /etc/hostname: not a CURVE certificate");
    /* Client without the server's key; server without an allow_dir, or a file as one. */
    snprintf(json, sizeof json, "{\"curve\": {\"enabled\": true, \"secret_cert\": \"%s\"}}",
             s_client_cert);
    s_expect_error(json, false, "curve.server_public: required");
    snprintf(json, sizeof json, "{\"curve\": {\"enabled\": true, \"secret_cert\": \"%s\"}}",
             s_server_cert);
    s_expect_error(json, true, "curve.allow_dir: required");
    snprintf(json, sizeof json,
             "{\"curve\": {\"enabled\": true, \"secret_cert\": \"%s\", \"allow_dir\": \"%s\"}}",
             s_server_cert, s_server_cert);
    s_expect_error(json, true, "curve.allow_dir");
    /* A directory given as a certificate. */
    snprintf(json, sizeof json,
             "{\"curve\": {\"enabled\": true, \"secret_cert\": \"%s\", \"allow_dir\": \"%s\"}}",
             s_dir, s_allow);
    s_expect_error(json, true, "not a regular file");
}

static void test_server_secret_cert_wins(void **state)
{
    (void)state;
    /* One config for broker and clients: the broker takes server_secret_cert. */
    pp_config_t *config = s_config(
        "{\"curve\": {\"enabled\": true, \"secret_cert\": \"%s\", "
        "\"server_secret_cert\": \"%s\", \"server_public\": \"%s\", \"allow_dir\": \"%s\"}}",
        s_client_cert, s_server_cert, s_pubonly_cert, s_allow);
    pp_curve_t *server = pp_curve_new(config, true);
    pp_curve_t *client = pp_curve_new(config, false);
    assert_true(pp_config_ok(config));
    zcert_t *broker = zcert_load(s_pubonly_cert);
    assert_non_null(broker);
    assert_string_equal(pp_curve_public_key(server), zcert_public_txt(broker));
    assert_string_not_equal(pp_curve_public_key(client), zcert_public_txt(broker));
    zcert_destroy(&broker);
    pp_curve_destroy(&server);
    pp_curve_destroy(&client);
    pp_config_destroy(&config);
}

/* ---- sockets --------------------------------------------------------------------------- */

typedef struct {
    pp_config_t *config;
    pp_curve_t *curve;
    pp_metrics_t *metrics;
    zsock_t *router;
    char endpoint[64];
} s_server_t;

static void s_server_start(s_server_t *s)
{
    s->curve = s_server(&s->config);
    s->metrics = pp_metrics_new("test");
    pp_curve_set_metrics(s->curve, s->metrics);
    s->router = zsock_new(ZMQ_ROUTER);
    assert_non_null(s->router);
    assert_int_equal(pp_curve_apply(s->curve, zsock_resolve(s->router)), 0);
    int port = zsock_bind(s->router, "tcp://127.0.0.1:*[20000-60000]");
    assert_true(port > 0);
    snprintf(s->endpoint, sizeof s->endpoint, "tcp://127.0.0.1:%d", port);
}

/*  One CURVE server for all socket tests: the ZAP handler is one per context, and its inproc
    endpoint is released asynchronously after it stops, so a second one started at once could
    fail to bind it. */
static s_server_t s_srv;

static s_server_t *s_shared(void)
{
    if (!s_srv.router) s_server_start(&s_srv);
    return &s_srv;
}

static void s_server_stop(s_server_t *s)
{
    zsock_destroy(&s->router);
    pp_curve_destroy(&s->curve);
    pp_metrics_destroy(&s->metrics);
    pp_config_destroy(&s->config);
}

static void s_shared_stop(void)
{
    if (s_srv.router) s_server_stop(&s_srv);
}

static int64_t s_handshakes(s_server_t *s, const char *result)
{
    char labels[64];
    snprintf(labels, sizeof labels, "result=\"%s\"", result);
    return pp_metrics_value(s->metrics, "curve_handshakes_total", labels);
}

static int64_t s_wait_handshakes(s_server_t *s, const char *result, int64_t want)
{
    for (int i = 0; i < 300 && s_handshakes(s, result) < want; i++)
        zclock_sleep(10);
    return s_handshakes(s, result);
}

/*  Sends "hello" from the dealer; returns true if the router got it within timeout_ms (and
    then answers it, checking the dealer receives the answer). */
static bool s_exchange(s_server_t *s, zsock_t *dealer, int timeout_ms)
{
    assert_int_equal(zstr_send(dealer, "hello"), 0);
    zsock_set_rcvtimeo(s->router, timeout_ms);
    zmsg_t *msg = zmsg_recv(s->router);
    if (!msg) return false;
    zframe_t *id = zmsg_pop(msg);
    char *body = zmsg_popstr(msg);
    assert_string_equal(body, "hello");
    free(body);
    zmsg_destroy(&msg);
    zmsg_t *reply = zmsg_new();
    zmsg_append(reply, &id);
    zmsg_addstr(reply, "ack");
    assert_int_equal(zmsg_send(&reply, s->router), 0);
    zsock_set_rcvtimeo(dealer, 2000);
    char *ack = zstr_recv(dealer);
    assert_non_null(ack);
    assert_string_equal(ack, "ack");
    free(ack);
    return true;
}

static zsock_t *s_dealer(pp_curve_t *curve, const char *endpoint)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    assert_non_null(d);
    zsock_set_linger(d, 0);
    if (curve) assert_int_equal(pp_curve_apply(curve, zsock_resolve(d)), 0);
    assert_int_equal(zsock_connect(d, "%s", endpoint), 0);
    return d;
}

static void test_allowed_client_gets_through(void **state)
{
    (void)state;
    s_server_t *s = s_shared();
    int64_t ok = s_handshakes(s, "ok"), refused = s_handshakes(s, "refused");
    pp_config_t *cc;
    pp_curve_t *client = s_client(&cc, s_client_cert);
    zsock_t *d = s_dealer(client, s->endpoint);
    assert_true(s_exchange(s, d, 3000));
    assert_true(s_wait_handshakes(s, "ok", ok + 1) >= ok + 1);
    assert_int_equal(s_handshakes(s, "refused"), refused);
    zsock_destroy(&d);
    pp_curve_destroy(&client);
    pp_config_destroy(&cc);
}

static void test_unknown_key_refused(void **state)
{
    (void)state;
    s_server_t *s = s_shared();
    int64_t ok = s_handshakes(s, "ok"), refused = s_handshakes(s, "refused");
    pp_config_t *cc;
    pp_curve_t *client = s_client(&cc, s_stranger_cert);
    zsock_t *d = s_dealer(client, s->endpoint);
    assert_false(s_exchange(s, d, 700));
    assert_true(s_wait_handshakes(s, "refused", refused + 1) >= refused + 1);
    assert_int_equal(s_handshakes(s, "ok"), ok);
    zsock_destroy(&d);
    pp_curve_destroy(&client);
    pp_config_destroy(&cc);
}

static void test_plain_client_refused(void **state)
{
    (void)state;
    s_server_t *s = s_shared();
    int64_t ok = s_handshakes(s, "ok"), failed = s_handshakes(s, "failed");
    zsock_t *d = s_dealer(NULL, s->endpoint);
    assert_false(s_exchange(s, d, 700));
    assert_true(s_wait_handshakes(s, "failed", failed + 1) >= failed + 1);
    assert_int_equal(s_handshakes(s, "ok"), ok);
    zsock_destroy(&d);
}

static void test_key_added_to_allow_dir_is_picked_up(void **state)
{
    (void)state;
    s_server_t *s = s_shared();
    /* A new client's public certificate dropped into allow_dir while the server runs. */
    char path[256], pub[256];
    snprintf(path, sizeof path, "%s/late.cert", s_dir);
    snprintf(pub, sizeof pub, "%s/late.cert", s_allow);
    zclock_sleep(1100); /* zcertstore notices changes by the directory's mtime (seconds) */
    s_make_cert(path, pub);
    char secret[300];
    snprintf(secret, sizeof secret, "%s_secret", path);
    pp_config_t *cc;
    pp_curve_t *client = s_client(&cc, secret);
    zsock_t *d = s_dealer(client, s->endpoint);
    assert_true(s_exchange(s, d, 3000));
    zsock_destroy(&d);
    pp_curve_destroy(&client);
    pp_config_destroy(&cc);
    unlink(pub);
    unlink(path);
    unlink(secret);
}

/*  libzmq itself: a CURVE server with ZAP_ENFORCE_DOMAIN and no ZAP handler refuses
    a client whose key it never saw (fails closed); without enforcement it lets it in.
    A context of its own, so that the ZAP handler of the other tests is not there. */
static bool s_raw_exchange(bool enforce)
{
    void *ctx = zmq_ctx_new();
    void *server = zmq_socket(ctx, ZMQ_ROUTER);
    void *client = zmq_socket(ctx, ZMQ_DEALER);
    zcert_t *sc = zcert_new(), *cc = zcert_new();
    int one = 1, zero = 0, timeout = 700;
    assert_int_equal(zmq_setsockopt(server, ZMQ_CURVE_SERVER, &one, sizeof one), 0);
    assert_int_equal(zmq_setsockopt(server, ZMQ_CURVE_SECRETKEY, zcert_secret_txt(sc), 40), 0);
    assert_int_equal(zmq_setsockopt(server, ZMQ_ZAP_DOMAIN, "pushpipe", 8), 0);
    assert_int_equal(
        zmq_setsockopt(server, 93 /* ZMQ_ZAP_ENFORCE_DOMAIN */, enforce ? &one : &zero, sizeof one),
        0);
    assert_int_equal(zmq_setsockopt(server, ZMQ_RCVTIMEO, &timeout, sizeof timeout), 0);
    assert_int_equal(zmq_setsockopt(client, ZMQ_CURVE_SERVERKEY, zcert_public_txt(sc), 40), 0);
    assert_int_equal(zmq_setsockopt(client, ZMQ_CURVE_PUBLICKEY, zcert_public_txt(cc), 40), 0);
    assert_int_equal(zmq_setsockopt(client, ZMQ_CURVE_SECRETKEY, zcert_secret_txt(cc), 40), 0);
    assert_int_equal(zmq_setsockopt(client, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(server, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_bind(server, "tcp://127.0.0.1:*"), 0);
    char ep[64];
    size_t eplen = sizeof ep;
    assert_int_equal(zmq_getsockopt(server, ZMQ_LAST_ENDPOINT, ep, &eplen), 0);
    assert_int_equal(zmq_connect(client, ep), 0);
    assert_int_equal(zmq_send(client, "x", 1, 0), 1);
    char buf[16];
    int got = zmq_recv(server, buf, sizeof buf, 0); /* identity frame, or -1 on timeout */
    zmq_close(client);
    zmq_close(server);
    zmq_ctx_term(ctx);
    zcert_destroy(&sc);
    zcert_destroy(&cc);
    return got > 0;
}

static void test_fails_closed_without_zap_handler(void **state)
{
    (void)state;
    assert_true(s_raw_exchange(false)); /* control: the same setup gets through */
    assert_false(s_raw_exchange(true));
}

/* ---- security rules (docs/security.md) ------------------------------------------------- */

static void test_loopback(void **state)
{
    (void)state;
    const char *yes[] = {
        "tcp://127.0.0.1:5560", "tcp://127.1.2.3:5560", "tcp://[::1]:5560", "tcp://localhost:5560",
        "tcp://LOCALHOST:1",    "ipc:///run/pp/broker", "inproc://x",       NULL};
    const char *no[] = {"tcp://0.0.0.0:5560",
                        "tcp://*:5560",
                        "tcp://10.0.0.1:5560",
                        "tcp://[::]:5560",
                        "tcp://eth0:5560",
                        "tcp://broker:5560",
                        "tcp://128.0.0.1:1",
                        "tcp://[::2]:5560",
                        "tcp://127.0.0.1",
                        "udp://127.0.0.1:1",
                        "",
                        NULL};
    for (int i = 0; yes[i]; i++)
        if (!pp_endpoint_is_loopback(yes[i])) fail_msg("%s should be loopback", yes[i]);
    for (int i = 0; no[i]; i++)
        if (pp_endpoint_is_loopback(no[i])) fail_msg("%s should not be loopback", no[i]);
    assert_false(pp_endpoint_is_loopback(NULL));
}

static void s_bind(const char *json, const char *endpoint, const char *needle)
{
    pp_config_t *c = s_config("%s", json);
    pp_curve_check_bind(c, "broker.bind", endpoint);
    if (!needle) {
        if (!pp_config_ok(c)) fail_msg("%s: unexpected %s", endpoint, pp_config_error(c));
    } else if (pp_config_ok(c) || !strstr(pp_config_error(c), needle))
        fail_msg("%s: error \"%s\" lacks \"%s\"", endpoint,
                 pp_config_ok(c) ? "(none)" : pp_config_error(c), needle);
    /* insecure_bind counts as read, so no program calls it an unknown key */
    const char *const top[] = {"", NULL};
    if (!needle) {
        pp_config_check_unknown(c, top);
        assert_true(pp_config_ok(c));
    }
    pp_config_destroy(&c);
}

static void test_check_bind(void **state)
{
    (void)state;
    s_bind("{}", "tcp://0.0.0.0:5560",
           "config: broker.bind: tcp://0.0.0.0:5560 is not loopback and curve.enabled is false: "
           "turn CURVE on (docs/security.md) or set \"insecure_bind\": true");
    s_bind("{\"insecure_bind\": false}", "tcp://*:5560", "is not loopback");
    s_bind("{\"insecure_bind\": true}", "tcp://0.0.0.0:5560", NULL);
    s_bind("{\"insecure_bind\": true}", NULL, NULL);
    s_bind("{\"curve\": {\"enabled\": true}}", "tcp://0.0.0.0:5560", NULL);
    s_bind("{}", "tcp://127.0.0.1:5560", NULL);
    s_bind("{}", "ipc:///tmp/x", NULL);
    s_bind("{\"insecure_bind\": \"yes\"}", "tcp://127.0.0.1:5560", "insecure_bind");
}

static void test_secret_file_modes(void **state)
{
    (void)state;
    char path[200], err[512];
    snprintf(path, sizeof path, "%s/modes", s_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    const mode_t bad[] = {0644, 0640, 0604, 0444, 0440};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(chmod(path, bad[i]), 0);
        assert_int_equal(pp_secret_file_check(path, err, sizeof err), -1);
        char want[256];
        snprintf(want, sizeof want, "permissions %04o for %s are too open", (unsigned)bad[i], path);
        if (!strstr(err, want)) fail_msg("\"%s\" lacks \"%s\"", err, want);
    }
    const mode_t good[] = {0600, 0400, 0620, 0602}; /* write bits are not the question here */
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(chmod(path, good[i]), 0);
        assert_int_equal(pp_secret_file_check(path, err, sizeof err), 0);
    }
    /* A file that is not there is the loader's to report. */
    assert_int_equal(pp_secret_file_check("/nonexistent/pp-key", err, sizeof err), 0);
    unlink(path);

    /* The secret certificate itself, world-readable: refused, naming the key. */
    char cert[160], json[1024];
    snprintf(cert, sizeof cert, "%s/open.cert", s_dir);
    s_make_cert(cert, NULL);
    snprintf(path, sizeof path, "%s_secret", cert);
    assert_int_equal(chmod(path, 0644), 0);
    snprintf(json, sizeof json,
             "{\"curve\": {\"enabled\": true, \"secret_cert\": \"%s\", "
             "\"server_public\": \"%s\"}}",
             path, s_pubonly_cert);
    char want[512];
    snprintf(want, sizeof want, "config: curve.secret_cert: permissions 0644 for %s are too open",
             path);
    s_expect_error(json, false, want);
    assert_int_equal(chmod(path, 0600), 0);
    pp_config_t *config = NULL;
    pp_curve_t *c = s_client(&config, path);
    pp_curve_destroy(&c);
    pp_config_destroy(&config);
}

static void test_token_prefix(void **state)
{
    (void)state;
    char out[16];
    const char *tok = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    assert_string_equal(pp_log_token_prefix(tok, strlen(tok), out, sizeof out), "a1b2c3d4...");
    assert_string_equal(pp_log_token_prefix("ABCDEF01", 8, out, sizeof out), "ABCDEF01");
    assert_string_equal(pp_log_token_prefix("abc", 3, out, sizeof out), "abc");
    assert_string_equal(pp_log_token_prefix("", 0, out, sizeof out), "-");
    assert_string_equal(pp_log_token_prefix(NULL, 0, out, sizeof out), "-");
    /* Not hex: cut there, so that nothing a client sent can forge fields. */
    assert_string_equal(pp_log_token_prefix("ab\" x=1 ffff", 13, out, sizeof out), "ab...");
    assert_string_equal(pp_log_token_prefix("zz", 2, out, sizeof out), "...");
    char tiny[4];
    assert_string_equal(pp_log_token_prefix(tok, strlen(tok), tiny, sizeof tiny), "");
}

int main(void)
{
    pp_log_init("test-curve", PP_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_by_default),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_server_secret_cert_wins),
        cmocka_unit_test(test_allowed_client_gets_through),
        cmocka_unit_test(test_unknown_key_refused),
        cmocka_unit_test(test_plain_client_refused),
        cmocka_unit_test(test_key_added_to_allow_dir_is_picked_up),
        cmocka_unit_test(test_fails_closed_without_zap_handler),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_check_bind),
        cmocka_unit_test(test_secret_file_modes),
        cmocka_unit_test(test_token_prefix),
    };
    int rc = cmocka_run_group_tests(tests, s_setup, s_teardown);
    zsys_shutdown();
    return rc;
}
