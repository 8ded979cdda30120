/*  Unit tests of pp_frame: every accepted shape and every reject reason of a client frame.
    Frames are built with msgpack-c's packer. */
#include "pp_frame.h"
#include "test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define NOW 1800000000

static pp_frame_decoder_t *dec;
static tpack_t tp;
static pp_frame_t fr;
static const char *detail;

static int setup(void **state)
{
    (void)state;
    dec = pp_frame_decoder_new(NULL);
    tp_begin(&tp);
    return dec ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    pp_frame_decoder_destroy(&dec);
    tp_end(&tp);
    return 0;
}

static void reset(void)
{
    msgpack_sbuffer_clear(&tp.sb);
}

static pp_frame_reason_t decode_with(pp_frame_decoder_t *d)
{
    detail = NULL;
    pp_frame_reason_t r = pp_frame_decode(d, tp.sb.data, tp.sb.size, NOW, &fr, &detail);
    assert_non_null(detail);
    return r;
}

/*  Decodes the packed frame and checks the reason; prints the detail when it differs. */
#define expect(reason)                                                                             \
    do {                                                                                           \
        pp_frame_reason_t got_ = decode_with(dec);                                                 \
        if (got_ != (reason))                                                                      \
            print_error("got %s (%s), expected %s\n", pp_frame_reason_name(got_), detail,          \
                        pp_frame_reason_name(reason));                                             \
        assert_int_equal(got_, (reason));                                                          \
    } while (0)

static void assert_id(size_t i, const char *want)
{
    assert_true(i < fr.n_ids);
    assert_int_equal(fr.ids[i].len, strlen(want));
    assert_memory_equal(fr.ids[i].ptr, want, strlen(want));
}

static void assert_json(const char *want)
{
    assert_int_equal(fr.data_json.len, strlen(want));
    assert_string_equal(fr.data_json.ptr, want);
}

/*  [type, <id packed by caller>, {"alert": "hi"}] helpers. */
static void head(int type, int n)
{
    reset();
    msgpack_pack_array(&tp.pk, (size_t)n);
    msgpack_pack_int(&tp.pk, type);
}

static void small_data(void)
{
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "alert");
    tp_str(&tp, "hi");
}

static void frame_with_id_str(int type, const char *id)
{
    head(type, 3);
    tp_str(&tp, id);
    small_data();
}

/* ---- valid frames ------------------------------------------------------------------- */

static void test_type1_group(void **state)
{
    (void)state;
    head(1, 3);
    tp_str(&tp, "group-7");
    msgpack_pack_map(&tp.pk, 3);
    tp_str(&tp, "alert");
    tp_str(&tp, "Hello");
    tp_str(&tp, "n");
    msgpack_pack_int(&tp.pk, 5);
    tp_str(&tp, "ok");
    msgpack_pack_true(&tp.pk);
    expect(PP_FRAME_OK);
    assert_string_equal(detail, "");
    assert_int_equal(fr.push_type, 1);
    assert_int_equal(fr.n_ids, 1);
    assert_id(0, "group-7");
    assert_json("{\"alert\":\"Hello\",\"n\":5,\"ok\":true}");
    assert_int_equal(fr.duplicates_removed, 0);
    /* no options: the documented defaults */
    assert_int_equal(fr.opts.channels, PP_CH_ALL);
    assert_int_equal(fr.opts.client_id.len, 0);
    assert_int_equal(fr.opts.apns_push_type.len, 0);
    assert_int_equal(fr.opts.apns_priority, 0);
    assert_int_equal(fr.opts.apns_expiration, -1);
    assert_int_equal(fr.opts.apns_collapse_id.len, 0);
    assert_int_equal(fr.opts.mqtt_qos, -1);
}

static void test_type2_users(void **state)
{
    (void)state;
    head(2, 3);
    msgpack_pack_array(&tp.pk, 3);
    msgpack_pack_int(&tp.pk, 1);
    tp_str(&tp, "u2");
    msgpack_pack_int64(&tp.pk, -3);
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "list");
    msgpack_pack_array(&tp.pk, 3);
    msgpack_pack_nil(&tp.pk);
    msgpack_pack_double(&tp.pk, 1.5);
    tp_str(&tp, "x");
    expect(PP_FRAME_OK);
    assert_int_equal(fr.push_type, 2);
    assert_int_equal(fr.n_ids, 3);
    assert_id(0, "1");
    assert_id(1, "u2");
    assert_id(2, "-3");
    assert_json("{\"list\":[null,1.5,\"x\"]}");
}

static void test_type3_user(void **state)
{
    (void)state;
    head(3, 3);
    msgpack_pack_uint64(&tp.pk, 42);
    msgpack_pack_map(&tp.pk, 0);
    expect(PP_FRAME_OK);
    assert_int_equal(fr.push_type, 3);
    assert_int_equal(fr.n_ids, 1);
    assert_id(0, "42");
    assert_json("{}");
}

static void test_int_and_str_same_id(void **state)
{
    (void)state;
    head(3, 3);
    msgpack_pack_int(&tp.pk, 42);
    small_data();
    expect(PP_FRAME_OK);
    assert_id(0, "42");

    frame_with_id_str(3, "42");
    expect(PP_FRAME_OK);
    assert_id(0, "42");

    head(2, 3);
    msgpack_pack_array(&tp.pk, 3);
    msgpack_pack_int(&tp.pk, 42);
    tp_str(&tp, "42");
    msgpack_pack_uint8(&tp.pk, 42);
    small_data();
    expect(PP_FRAME_OK);
    assert_int_equal(fr.n_ids, 1);
    assert_id(0, "42");
    assert_int_equal(fr.duplicates_removed, 2);
}

static void test_extreme_int_ids(void **state)
{
    (void)state;
    head(2, 3);
    msgpack_pack_array(&tp.pk, 4);
    msgpack_pack_uint64(&tp.pk, UINT64_MAX);
    msgpack_pack_int64(&tp.pk, INT64_MIN);
    msgpack_pack_int64(&tp.pk, -1);
    msgpack_pack_int(&tp.pk, 0);
    small_data();
    expect(PP_FRAME_OK);
    assert_int_equal(fr.n_ids, 4);
    assert_id(0, "18446744073709551615");
    assert_id(1, "-9223372036854775808");
    assert_id(2, "-1");
    assert_id(3, "0");
}

static void test_bin_id(void **state)
{
    (void)state;
    head(3, 3);
    tp_bin(&tp, "user-9", 6);
    small_data();
    expect(PP_FRAME_OK);
    assert_id(0, "user-9");

    head(1, 3);
    tp_bin(&tp, "\xe7\x94\xa8\xe6\x88\xb7", 6); /* UTF-8 text as bytes */
    small_data();
    expect(PP_FRAME_OK);
    assert_id(0, "\xe7\x94\xa8\xe6\x88\xb7");

    head(3, 3);
    tp_bin(&tp, "\xff\xfe", 2);
    small_data();
    expect(PP_FRAME_BAD_UTF8);

    head(3, 3);
    tp_bin(&tp, "", 0);
    small_data();
    expect(PP_FRAME_BAD_PUSH_ID);
}

static void test_dedup_keeps_order(void **state)
{
    (void)state;
    const char *in[] = {"b", "a", "b", "c", "a", "a", "d"};
    head(2, 3);
    msgpack_pack_array(&tp.pk, 7);
    for (int i = 0; i < 7; i++)
        tp_str(&tp, in[i]);
    small_data();
    expect(PP_FRAME_OK);
    assert_int_equal(fr.n_ids, 4);
    assert_int_equal(fr.duplicates_removed, 3);
    assert_id(0, "b");
    assert_id(1, "a");
    assert_id(2, "c");
    assert_id(3, "d");
}

static void test_dedup_10000(void **state)
{
    (void)state;
    /* 10,000 ids (the default max_ids): 0..4999 then 4999..0 again, and one more run of a
       different frame after it, to check that the reused table is cleared. */
    head(2, 3);
    msgpack_pack_array(&tp.pk, 10000);
    for (int i = 0; i < 5000; i++)
        msgpack_pack_int(&tp.pk, i);
    for (int i = 4999; i >= 0; i--) {
        char s[16];
        snprintf(s, sizeof s, "%d", i);
        tp_str(&tp, s);
    }
    small_data();
    expect(PP_FRAME_OK);
    assert_int_equal(fr.n_ids, 5000);
    assert_int_equal(fr.duplicates_removed, 5000);
    for (size_t i = 0; i < 5000; i++) {
        char s[16];
        snprintf(s, sizeof s, "%zu", i);
        assert_id(i, s);
    }

    head(2, 3);
    msgpack_pack_array(&tp.pk, 2);
    tp_str(&tp, "7");
    tp_str(&tp, "x");
    small_data();
    expect(PP_FRAME_OK);
    assert_int_equal(fr.n_ids, 2);
    assert_int_equal(fr.duplicates_removed, 0);
}

static void test_too_many_ids(void **state)
{
    (void)state;
    head(2, 3);
    msgpack_pack_array(&tp.pk, 10001);
    for (int i = 0; i < 10001; i++)
        msgpack_pack_int(&tp.pk, i % 3); /* counted before de-duplication */
    small_data();
    expect(PP_FRAME_TOO_MANY_IDS);
}

static void test_id_length(void **state)
{
    (void)state;
    char id[80];
    memset(id, 'x', sizeof id);
    id[64] = '\0';
    frame_with_id_str(3, id);
    expect(PP_FRAME_OK);
    assert_int_equal(fr.ids[0].len, 64);
    id[64] = 'x';
    id[65] = '\0';
    frame_with_id_str(3, id);
    expect(PP_FRAME_ID_TOO_LONG);

    /* integer ids obey the same limit */
    pp_frame_limits_t lim = pp_frame_limits_default();
    lim.max_id_len = 3;
    pp_frame_decoder_t *d = pp_frame_decoder_new(&lim);
    head(2, 3);
    msgpack_pack_array(&tp.pk, 2);
    msgpack_pack_int(&tp.pk, 999);
    msgpack_pack_int(&tp.pk, 1000);
    small_data();
    assert_int_equal(decode_with(d), PP_FRAME_ID_TOO_LONG);
    head(3, 3);
    msgpack_pack_int(&tp.pk, -99);
    small_data();
    assert_int_equal(decode_with(d), PP_FRAME_OK);
    pp_frame_decoder_destroy(&d);
    assert_null(d);
}

static void test_id_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        size_t len;
    } bad[] = {
        {"a/b", 3},   {"a+b", 3},    {"room#1", 6}, {"a b", 3},       {"a\tb", 3},
        {"a\nb", 3},  {"a\0b", 3},   {"\x7f", 1},   {"x\xc2\x85", 3}, /* U+0085 */
        {" lead", 5}, {"trail ", 6}, {"#", 1},      {"+", 1},         {"/", 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        head(3, 3);
        tp_strn(&tp, bad[i].id, bad[i].len);
        small_data();
        expect(PP_FRAME_BAD_PUSH_ID);
        /* the same inside a type 2 list */
        head(2, 3);
        msgpack_pack_array(&tp.pk, 2);
        tp_str(&tp, "ok");
        tp_strn(&tp, bad[i].id, bad[i].len);
        small_data();
        expect(PP_FRAME_BAD_PUSH_ID);
    }
    const char *good[] = {"user:1", "a.b-c_d", "\xe7\x94\xa8\xe6\x88\xb7", "e\xcc\x81", "@x~"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        frame_with_id_str(1, good[i]);
        expect(PP_FRAME_OK);
        assert_id(0, good[i]);
    }
    /* invalid UTF-8 in a str id */
    head(3, 3);
    tp_strn(&tp, "a\xc3", 2);
    small_data();
    expect(PP_FRAME_BAD_UTF8);
}

static void test_options_all(void **state)
{
    (void)state;
    head(1, 4);
    tp_str(&tp, "g");
    small_data();
    msgpack_pack_map(&tp.pk, 7);
    tp_str(&tp, "id");
    tp_str(&tp, "client-msg-1");
    tp_str(&tp, "channels");
    tp_str(&tp, "apns");
    tp_str(&tp, "apns_push_type");
    tp_str(&tp, "background");
    tp_str(&tp, "apns_priority");
    msgpack_pack_int(&tp.pk, 5);
    tp_str(&tp, "apns_expiration");
    msgpack_pack_int64(&tp.pk, 1900000000);
    tp_str(&tp, "apns_collapse_id");
    tp_str(&tp, "score-\xe2\x9a\xbd");
    tp_str(&tp, "mqtt_qos");
    msgpack_pack_int(&tp.pk, 2);
    expect(PP_FRAME_OK);
    assert_int_equal(fr.opts.client_id.len, 12);
    assert_memory_equal(fr.opts.client_id.ptr, "client-msg-1", 12);
    assert_int_equal(fr.opts.channels, PP_CH_APNS);
    assert_int_equal(fr.opts.apns_push_type.len, 10);
    assert_memory_equal(fr.opts.apns_push_type.ptr, "background", 10);
    assert_int_equal(fr.opts.apns_priority, 5);
    assert_int_equal(fr.opts.apns_expiration, 1900000000);
    assert_int_equal(fr.opts.apns_collapse_id.len, 9);
    assert_memory_equal(fr.opts.apns_collapse_id.ptr, "score-\xe2\x9a\xbd", 9);
    assert_int_equal(fr.opts.mqtt_qos, 2);
}

static void test_options_values(void **state)
{
    (void)state;
    /* every listed push type, channel, priority and qos */
    const char *types[] = {"alert", "background",   "location",
                           "voip",  "complication", "fileprovider",
                           "mdm",   "liveactivity", "pushtotalk"};
    for (size_t i = 0; i < 9; i++) {
        head(3, 4);
        msgpack_pack_int(&tp.pk, 1);
        small_data();
        msgpack_pack_map(&tp.pk, 1);
        tp_str(&tp, "apns_push_type");
        tp_str(&tp, types[i]);
        expect(PP_FRAME_OK);
        assert_int_equal(fr.opts.apns_push_type.len, strlen(types[i]));
        assert_memory_equal(fr.opts.apns_push_type.ptr, types[i], strlen(types[i]));
    }
    const struct {
        const char *name;
        int ch;
    } chans[] = {{"all", PP_CH_ALL}, {"apns", PP_CH_APNS}, {"mqtt", PP_CH_MQTT}};
    for (size_t i = 0; i < 3; i++) {
        head(3, 4);
        msgpack_pack_int(&tp.pk, 1);
        small_data();
        msgpack_pack_map(&tp.pk, 1);
        tp_str(&tp, "channels");
        tp_str(&tp, chans[i].name);
        expect(PP_FRAME_OK);
        assert_int_equal(fr.opts.channels, chans[i].ch);
    }
    int prios[] = {10, 5, 1};
    for (size_t i = 0; i < 3; i++) {
        head(3, 4);
        msgpack_pack_int(&tp.pk, 1);
        small_data();
        msgpack_pack_map(&tp.pk, 1);
        tp_str(&tp, "apns_priority");
        msgpack_pack_int(&tp.pk, prios[i]);
        expect(PP_FRAME_OK);
        assert_int_equal(fr.opts.apns_priority, prios[i]);
    }
    for (int q = 0; q <= 2; q++) {
        head(3, 4);
        msgpack_pack_int(&tp.pk, 1);
        small_data();
        msgpack_pack_map(&tp.pk, 1);
        tp_str(&tp, "mqtt_qos");
        msgpack_pack_int(&tp.pk, q);
        expect(PP_FRAME_OK);
        assert_int_equal(fr.opts.mqtt_qos, q);
    }
    /* ttl is relative to now_s; ttl 0 keeps APNs' "once, do not store" */
    head(3, 4);
    msgpack_pack_int(&tp.pk, 1);
    small_data();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "ttl");
    msgpack_pack_int(&tp.pk, 3600);
    expect(PP_FRAME_OK);
    assert_int_equal(fr.opts.apns_expiration, NOW + 3600);
    head(3, 4);
    msgpack_pack_int(&tp.pk, 1);
    small_data();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "ttl");
    msgpack_pack_int(&tp.pk, 0);
    expect(PP_FRAME_OK);
    assert_int_equal(fr.opts.apns_expiration, 0);
    /* empty options map */
    head(3, 4);
    msgpack_pack_int(&tp.pk, 1);
    small_data();
    msgpack_pack_map(&tp.pk, 0);
    expect(PP_FRAME_OK);
    assert_int_equal(fr.opts.apns_expiration, -1);
}

/*  Packs [3, 1, {"alert":"hi"}, {key: <value packed by fn>}] and expects bad_options. */
typedef void (*packfn)(void);
static void opt_bad(const char *key, packfn value)
{
    head(3, 4);
    msgpack_pack_int(&tp.pk, 1);
    small_data();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, key);
    value();
    expect(PP_FRAME_BAD_OPTIONS);
    /* the detail names the option */
    assert_non_null(strstr(detail, key));
}

static void v_int7(void)
{
    msgpack_pack_int(&tp.pk, 7);
}
static void v_int3(void)
{
    msgpack_pack_int(&tp.pk, 3);
}
static void v_neg1(void)
{
    msgpack_pack_int(&tp.pk, -1);
}
static void v_float10(void)
{
    msgpack_pack_double(&tp.pk, 10.0);
}
static void v_str1(void)
{
    tp_str(&tp, "1");
}
static void v_nil(void)
{
    msgpack_pack_nil(&tp.pk);
}
static void v_sms(void)
{
    tp_str(&tp, "sms");
}
static void v_Alert(void)
{
    tp_str(&tp, "Alert");
}
static void v_empty(void)
{
    tp_str(&tp, "");
}
static void v_65(void)
{
    char s[66];
    memset(s, 'a', 65);
    s[65] = '\0';
    tp_str(&tp, s);
}
static void v_space(void)
{
    tp_str(&tp, "has space");
}
static void v_ctl(void)
{
    tp_str(&tp, "a\nb");
}
static void v_badutf8(void)
{
    tp_strn(&tp, "\xc3\x28", 2);
}
static void v_huge(void)
{
    msgpack_pack_uint64(&tp.pk, UINT64_MAX);
}
static void v_bin(void)
{
    tp_bin(&tp, "all", 3);
}
static void v_int64max(void)
{
    msgpack_pack_int64(&tp.pk, INT64_MAX);
}

static void test_options_bad(void **state)
{
    (void)state;
    opt_bad("apns_priority", v_int7);
    opt_bad("apns_priority", v_float10);
    opt_bad("apns_priority", v_str1);
    opt_bad("mqtt_qos", v_int3);
    opt_bad("mqtt_qos", v_neg1);
    opt_bad("mqtt_qos", v_str1);
    opt_bad("mqtt_qos", v_nil);
    opt_bad("channels", v_sms);
    opt_bad("channels", v_bin);
    opt_bad("channels", v_int3);
    opt_bad("apns_push_type", v_Alert);
    opt_bad("apns_push_type", v_empty);
    opt_bad("apns_expiration", v_neg1);
    opt_bad("apns_expiration", v_huge);
    opt_bad("apns_expiration", v_float10);
    opt_bad("ttl", v_neg1);
    opt_bad("ttl", v_float10);
    opt_bad("ttl", v_int64max); /* now + ttl would overflow */
    opt_bad("id", v_empty);
    opt_bad("id", v_65);
    opt_bad("id", v_space);
    opt_bad("id", v_ctl);
    opt_bad("id", v_int7);
    opt_bad("apns_collapse_id", v_65);
    opt_bad("apns_collapse_id", v_empty);
    opt_bad("apns_collapse_id", v_ctl);
    opt_bad("apns_collapse_id", v_badutf8);
    opt_bad("colour", v_int7); /* unknown key */
    opt_bad("ID", v_str1);     /* keys are case-sensitive */
}

static void test_options_structure(void **state)
{
    (void)state;
    /* options not a map */
    head(3, 4);
    msgpack_pack_int(&tp.pk, 1);
    small_data();
    msgpack_pack_nil(&tp.pk);
    expect(PP_FRAME_BAD_OPTIONS);
    head(3, 4);
    msgpack_pack_int(&tp.pk, 1);
    small_data();
    msgpack_pack_array(&tp.pk, 0);
    expect(PP_FRAME_BAD_OPTIONS);
    /* a key that is not a str */
    head(3, 4);
    msgpack_pack_int(&tp.pk, 1);
    small_data();
    msgpack_pack_map(&tp.pk, 1);
    msgpack_pack_int(&tp.pk, 1);
    msgpack_pack_int(&tp.pk, 1);
    expect(PP_FRAME_BAD_OPTIONS);
    /* ttl and apns_expiration together */
    head(3, 4);
    msgpack_pack_int(&tp.pk, 1);
    small_data();
    msgpack_pack_map(&tp.pk, 2);
    tp_str(&tp, "apns_expiration");
    msgpack_pack_int(&tp.pk, 0);
    tp_str(&tp, "ttl");
    msgpack_pack_int(&tp.pk, 60);
    expect(PP_FRAME_BAD_OPTIONS);
    assert_non_null(strstr(detail, "ttl"));
    /* the same key twice */
    head(3, 4);
    msgpack_pack_int(&tp.pk, 1);
    small_data();
    msgpack_pack_map(&tp.pk, 2);
    tp_str(&tp, "mqtt_qos");
    msgpack_pack_int(&tp.pk, 0);
    tp_str(&tp, "mqtt_qos");
    msgpack_pack_int(&tp.pk, 1);
    expect(PP_FRAME_BAD_OPTIONS);
    assert_non_null(strstr(detail, "mqtt_qos"));
    /* an unknown key is quoted log-safely in the detail */
    head(3, 4);
    msgpack_pack_int(&tp.pk, 1);
    small_data();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "x\ny=\"z\"");
    msgpack_pack_int(&tp.pk, 1);
    expect(PP_FRAME_BAD_OPTIONS);
    assert_null(strchr(detail, '\n'));
    assert_non_null(strstr(detail, "x\\x0ay=\\\"z\\\""));
}

/* ---- structurally bad frames -------------------------------------------------------- */

static void test_not_msgpack(void **state)
{
    (void)state;
    reset();
    tp_raw(&tp, "\xc1", 1);
    expect(PP_FRAME_NOT_MSGPACK);
    /* 0xc1 in the middle of a valid-looking frame */
    reset();
    tp_raw(&tp, "\x93\x01\xa1g\xc1", 5);
    expect(PP_FRAME_NOT_MSGPACK);
    reset();
    tp_raw(&tp, "\x93\x01\xa1g\x81\xa1k\xc1", 8);
    expect(PP_FRAME_NOT_MSGPACK);
}

static void test_truncated(void **state)
{
    (void)state;
    /* every proper prefix of a valid frame, including the empty frame */
    head(2, 4);
    msgpack_pack_array(&tp.pk, 2);
    msgpack_pack_uint64(&tp.pk, 1234567890123ull);
    tp_str(&tp, "user-2");
    msgpack_pack_map(&tp.pk, 2);
    tp_str(&tp, "alert");
    tp_str(&tp, "a longer text to cut in the middle");
    tp_str(&tp, "f");
    msgpack_pack_double(&tp.pk, 2.5);
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "ttl");
    msgpack_pack_int(&tp.pk, 60);
    expect(PP_FRAME_OK);
    size_t full = tp.sb.size;
    char *copy = malloc(full);
    memcpy(copy, tp.sb.data, full);
    for (size_t n = 0; n < full; n++) {
        pp_frame_reason_t r = pp_frame_decode(dec, copy, n, NOW, &fr, &detail);
        if (r != PP_FRAME_TRUNCATED) print_error("prefix %zu: %s\n", n, pp_frame_reason_name(r));
        assert_int_equal(r, PP_FRAME_TRUNCATED);
        assert_int_equal(fr.n_ids, 0);
    }
    free(copy);
    /* a container that claims far more elements than there are bytes: no big allocation */
    reset();
    tp_raw(&tp, "\x93\x01\xa1g\xdf\xff\xff\xff\xff", 9);
    expect(PP_FRAME_TRUNCATED);
    reset();
    tp_raw(&tp, "\xdd\xff\xff\xff\xff\x01\x02", 7);
    expect(PP_FRAME_TRUNCATED);
    reset();
    tp_raw(&tp, "\x93\x01\xa1g\xdb\xff\xff\xff\xf0xx", 11);
    expect(PP_FRAME_TRUNCATED);
}

static void test_trailing_bytes(void **state)
{
    (void)state;
    frame_with_id_str(3, "u");
    expect(PP_FRAME_OK);
    tp_raw(&tp, "\x00", 1);
    expect(PP_FRAME_TRAILING_BYTES);
    /* two frames back to back */
    frame_with_id_str(3, "u");
    size_t one = tp.sb.size;
    char *copy = malloc(one);
    memcpy(copy, tp.sb.data, one);
    tp_raw(&tp, copy, one);
    free(copy);
    expect(PP_FRAME_TRAILING_BYTES);
}

static void test_not_array(void **state)
{
    (void)state;
    reset();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "push_type");
    msgpack_pack_int(&tp.pk, 1);
    expect(PP_FRAME_NOT_ARRAY);
    reset();
    msgpack_pack_int(&tp.pk, 1);
    expect(PP_FRAME_NOT_ARRAY);
    reset();
    tp_str(&tp, "[1, \"g\", {}]");
    expect(PP_FRAME_NOT_ARRAY);
    reset();
    msgpack_pack_nil(&tp.pk);
    expect(PP_FRAME_NOT_ARRAY);
}

static void test_bad_arity(void **state)
{
    (void)state;
    for (int n = 0; n <= 6; n++) {
        if (n == 3 || n == 4) continue;
        reset();
        msgpack_pack_array(&tp.pk, (size_t)n);
        for (int i = 0; i < n; i++)
            msgpack_pack_int(&tp.pk, 1);
        expect(PP_FRAME_BAD_ARITY);
    }
}

static void test_bad_push_type(void **state)
{
    (void)state;
    int bad_ints[] = {0, 4, -1, 255, 1000};
    for (size_t i = 0; i < sizeof bad_ints / sizeof *bad_ints; i++) {
        head(bad_ints[i], 3);
        tp_str(&tp, "x");
        small_data();
        expect(PP_FRAME_BAD_PUSH_TYPE);
    }
    reset();
    msgpack_pack_array(&tp.pk, 3);
    tp_str(&tp, "1");
    tp_str(&tp, "x");
    small_data();
    expect(PP_FRAME_BAD_PUSH_TYPE);
    reset();
    msgpack_pack_array(&tp.pk, 3);
    msgpack_pack_double(&tp.pk, 1.0);
    tp_str(&tp, "x");
    small_data();
    expect(PP_FRAME_BAD_PUSH_TYPE);
    reset();
    msgpack_pack_array(&tp.pk, 3);
    msgpack_pack_nil(&tp.pk);
    tp_str(&tp, "x");
    small_data();
    expect(PP_FRAME_BAD_PUSH_TYPE);
}

/*  Packs one bad push_id of kind k. */
static void pack_bad_id(int k)
{
    switch (k) {
    case 0:
        msgpack_pack_nil(&tp.pk);
        break;
    case 1:
        msgpack_pack_double(&tp.pk, 42.0);
        break;
    case 2:
        msgpack_pack_float(&tp.pk, 1.5f);
        break;
    case 3:
        msgpack_pack_true(&tp.pk);
        break;
    case 4:
        msgpack_pack_false(&tp.pk);
        break;
    case 5:
        msgpack_pack_map(&tp.pk, 1);
        tp_str(&tp, "id");
        msgpack_pack_int(&tp.pk, 1);
        break;
    case 6:
        msgpack_pack_map(&tp.pk, 0);
        break;
    case 7:
        tp_str(&tp, "");
        break;
    case 8:
        msgpack_pack_ext_with_body(&tp.pk, "ab", 2, 5);
        break;
    }
}

static void test_bad_push_id_scalar_types(void **state)
{
    (void)state;
    for (int type = 1; type <= 3; type++) {
        for (int k = 0; k <= 8; k++) {
            head(type, 3);
            pack_bad_id(k);
            small_data();
            expect(PP_FRAME_BAD_PUSH_ID);
        }
    }
    /* the same kinds as elements of a type 2 list */
    for (int k = 0; k <= 8; k++) {
        head(2, 3);
        msgpack_pack_array(&tp.pk, 2);
        tp_str(&tp, "fine");
        pack_bad_id(k);
        small_data();
        expect(PP_FRAME_BAD_PUSH_ID);
    }
}

static void test_bad_push_id_lists(void **state)
{
    (void)state;
    /* a list for type 1 and 3 */
    for (int type = 1; type <= 3; type += 2) {
        head(type, 3);
        msgpack_pack_array(&tp.pk, 1);
        tp_str(&tp, "u1");
        small_data();
        expect(PP_FRAME_BAD_PUSH_ID);
    }
    /* a scalar for type 2 */
    head(2, 3);
    tp_str(&tp, "u1");
    small_data();
    expect(PP_FRAME_BAD_PUSH_ID);
    head(2, 3);
    msgpack_pack_int(&tp.pk, 7);
    small_data();
    expect(PP_FRAME_BAD_PUSH_ID);
    /* an empty list */
    head(2, 3);
    msgpack_pack_array(&tp.pk, 0);
    small_data();
    expect(PP_FRAME_BAD_PUSH_ID);
    /* a nested list */
    head(2, 3);
    msgpack_pack_array(&tp.pk, 2);
    tp_str(&tp, "u1");
    msgpack_pack_array(&tp.pk, 1);
    tp_str(&tp, "u2");
    small_data();
    expect(PP_FRAME_BAD_PUSH_ID);
    head(2, 3);
    msgpack_pack_array(&tp.pk, 1);
    msgpack_pack_array(&tp.pk, 0);
    small_data();
    expect(PP_FRAME_BAD_PUSH_ID);
}

static void test_bad_data(void **state)
{
    (void)state;
    for (int k = 0; k < 5; k++) {
        reset();
        msgpack_pack_array(&tp.pk, 3);
        msgpack_pack_int(&tp.pk, 3);
        tp_str(&tp, "u");
        switch (k) {
        case 0:
            msgpack_pack_array(&tp.pk, 0);
            break;
        case 1:
            tp_str(&tp, "{\"alert\":\"hi\"}");
            break;
        case 2:
            msgpack_pack_nil(&tp.pk);
            break;
        case 3:
            msgpack_pack_int(&tp.pk, 1);
            break;
        case 4:
            tp_bin(&tp, "{}", 2);
            break;
        }
        expect(PP_FRAME_BAD_DATA);
    }
}

static void data_frame_begin(void)
{
    head(3, 3);
    tp_str(&tp, "u");
}

static void test_bad_key(void **state)
{
    (void)state;
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    msgpack_pack_int(&tp.pk, 1);
    tp_str(&tp, "v");
    expect(PP_FRAME_BAD_KEY);
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    tp_bin(&tp, "k", 1);
    tp_str(&tp, "v");
    expect(PP_FRAME_BAD_KEY);
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    msgpack_pack_nil(&tp.pk);
    tp_str(&tp, "v");
    expect(PP_FRAME_BAD_KEY);
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    tp_strn(&tp, "k\0", 2);
    tp_str(&tp, "v");
    expect(PP_FRAME_BAD_KEY);
    /* nested */
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "outer");
    msgpack_pack_array(&tp.pk, 1);
    msgpack_pack_map(&tp.pk, 1);
    msgpack_pack_true(&tp.pk);
    msgpack_pack_int(&tp.pk, 1);
    expect(PP_FRAME_BAD_KEY);
}

static void test_bad_value(void **state)
{
    (void)state;
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "b");
    tp_bin(&tp, "\x00\x01", 2);
    expect(PP_FRAME_BAD_VALUE);
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "e");
    msgpack_pack_ext_with_body(&tp.pk, "abcd", 4, 1);
    expect(PP_FRAME_BAD_VALUE);
    /* timestamp ext (-1) deep inside */
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "a");
    msgpack_pack_array(&tp.pk, 2);
    msgpack_pack_int(&tp.pk, 1);
    msgpack_pack_ext_with_body(&tp.pk, "\0\0\0\1", 4, -1);
    expect(PP_FRAME_BAD_VALUE);
}

static void test_bad_number(void **state)
{
    (void)state;
    double d[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        data_frame_begin();
        msgpack_pack_map(&tp.pk, 1);
        tp_str(&tp, "x");
        msgpack_pack_double(&tp.pk, d[i]);
        expect(PP_FRAME_BAD_NUMBER);
        data_frame_begin();
        msgpack_pack_map(&tp.pk, 1);
        tp_str(&tp, "x");
        msgpack_pack_array(&tp.pk, 1);
        msgpack_pack_float(&tp.pk, (float)d[i]);
        expect(PP_FRAME_BAD_NUMBER);
    }
}

static void test_bad_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        {"\xc3\x28", 2},         /* bad continuation */
        {"\xc0\xaf", 2},         /* overlong '/' */
        {"\xe0\x80\xaf", 3},     /* overlong */
        {"\xed\xa0\x80", 3},     /* UTF-16 surrogate */
        {"\xe2\x82", 2},         /* cut sequence */
        {"\xf4\x90\x80\x80", 4}, /* above U+10FFFF */
        {"\xff", 1},
        {"ok\x80", 3}, /* lone continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        data_frame_begin();
        msgpack_pack_map(&tp.pk, 1);
        tp_str(&tp, "v");
        tp_strn(&tp, bad[i].s, bad[i].n);
        expect(PP_FRAME_BAD_UTF8);
        data_frame_begin();
        msgpack_pack_map(&tp.pk, 1);
        tp_strn(&tp, bad[i].s, bad[i].n);
        tp_str(&tp, "key was bad");
        expect(PP_FRAME_BAD_UTF8);
    }
}

/*  data of n nested maps {"a":{"a":...{"a":1}}} */
static void nested_maps(size_t n, bool empty_innermost)
{
    data_frame_begin();
    for (size_t i = 0; i < n; i++) {
        if (empty_innermost && i == n - 1) {
            msgpack_pack_map(&tp.pk, 0);
            return;
        }
        msgpack_pack_map(&tp.pk, 1);
        tp_str(&tp, "a");
    }
    msgpack_pack_int(&tp.pk, 1);
}

static void test_too_deep(void **state)
{
    (void)state;
    nested_maps(16, false); /* the data map is depth 1: 16 is the default limit */
    expect(PP_FRAME_OK);
    nested_maps(17, false);
    expect(PP_FRAME_TOO_DEEP);
    nested_maps(16, true);
    expect(PP_FRAME_OK);
    nested_maps(17, true);
    expect(PP_FRAME_TOO_DEEP);
    /* arrays count as well */
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "a");
    for (int i = 0; i < 16; i++)
        msgpack_pack_array(&tp.pk, 1);
    msgpack_pack_nil(&tp.pk);
    expect(PP_FRAME_TOO_DEEP);
    /* beyond msgpack-c's own 32-level stack: still too_deep, not not_msgpack */
    nested_maps(40, false);
    expect(PP_FRAME_TOO_DEEP);
    nested_maps(40, true);
    expect(PP_FRAME_TOO_DEEP);
}

static void test_too_deep_configured(void **state)
{
    (void)state;
    /* a decoder cannot be configured past what msgpack-c can hold */
    pp_frame_limits_t lim = pp_frame_limits_default();
    lim.max_depth = 1000;
    pp_frame_decoder_t *d = pp_frame_decoder_new(&lim);
    nested_maps(PP_FRAME_MAX_DEPTH_LIMIT, true);
    assert_int_equal(decode_with(d), PP_FRAME_OK);
    nested_maps(PP_FRAME_MAX_DEPTH_LIMIT, false);
    assert_int_equal(decode_with(d), PP_FRAME_OK);
    nested_maps(PP_FRAME_MAX_DEPTH_LIMIT + 1, true);
    assert_int_equal(decode_with(d), PP_FRAME_TOO_DEEP);
    pp_frame_decoder_destroy(&d);

    lim.max_depth = 2;
    d = pp_frame_decoder_new(&lim);
    nested_maps(2, false);
    assert_int_equal(decode_with(d), PP_FRAME_OK);
    assert_string_equal(fr.data_json.ptr, "{\"a\":{\"a\":1}}");
    nested_maps(3, false);
    assert_int_equal(decode_with(d), PP_FRAME_TOO_DEEP);
    pp_frame_decoder_destroy(&d);
}

static void test_million_deep(void **state)
{
    (void)state;
    /* 1,000,000 nested arrays: with the default limits the size check stops it; with a
       frame limit large enough it must be too_deep, and never a crash. */
    const size_t depth = 1000000;
    unsigned char *buf = malloc(depth + 16);
    size_t n = 0;
    memcpy(buf,
           "\x93\x03\xa1u\x81\xa1"
           "a",
           7);
    n = 7;
    memset(buf + n, 0x91, depth);
    n += depth;
    buf[n++] = 0x01;
    assert_int_equal(pp_frame_decode(dec, buf, n, NOW, &fr, &detail), PP_FRAME_TOO_LARGE);

    pp_frame_limits_t lim = pp_frame_limits_default();
    lim.max_frame_bytes = 4 * depth;
    pp_frame_decoder_t *d = pp_frame_decoder_new(&lim);
    assert_int_equal(pp_frame_decode(d, buf, n, NOW, &fr, &detail), PP_FRAME_TOO_DEEP);
    /* as the whole frame, and as the push_id */
    memset(buf, 0x91, depth);
    buf[depth] = 0x01;
    assert_int_equal(pp_frame_decode(d, buf, depth + 1, NOW, &fr, &detail), PP_FRAME_TOO_DEEP);
    memcpy(buf, "\x93\x02", 2);
    assert_int_equal(pp_frame_decode(d, buf, depth + 1, NOW, &fr, &detail), PP_FRAME_TOO_DEEP);
    /* and cut short: the depth is found before the end */
    assert_int_equal(pp_frame_decode(d, buf, depth / 2, NOW, &fr, &detail), PP_FRAME_TOO_DEEP);
    pp_frame_decoder_destroy(&d);
    free(buf);
}

static void test_too_large(void **state)
{
    (void)state;
    /* frame over max_frame_bytes (65536) */
    size_t big = 70000;
    char *s = malloc(big);
    memset(s, 'x', big);
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "v");
    tp_strn(&tp, s, big);
    expect(PP_FRAME_TOO_LARGE);
    /* just under the frame limit: fine */
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "v");
    tp_strn(&tp, s, 65000);
    expect(PP_FRAME_OK);
    assert_int_equal(fr.data_json.len, 65000 + 8);
    /* a frame under the limit whose JSON is over it: control characters become \u00XX */
    memset(s, 0x01, 20000);
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "v");
    tp_strn(&tp, s, 20000);
    expect(PP_FRAME_TOO_LARGE);
    free(s);

    /* exact boundaries with a small max_json_bytes */
    pp_frame_limits_t lim = pp_frame_limits_default();
    lim.max_json_bytes = 16;
    pp_frame_decoder_t *d = pp_frame_decoder_new(&lim);
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "k");
    tp_str(&tp, "123456789"); /* {"k":"123456789"} is 17 bytes */
    assert_int_equal(decode_with(d), PP_FRAME_TOO_LARGE);
    data_frame_begin();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "k");
    tp_str(&tp, "12345678"); /* 16 bytes */
    assert_int_equal(decode_with(d), PP_FRAME_OK);
    assert_string_equal(fr.data_json.ptr, "{\"k\":\"12345678\"}");
    pp_frame_decoder_destroy(&d);

    lim = pp_frame_limits_default();
    lim.max_frame_bytes = 10;
    d = pp_frame_decoder_new(&lim);
    frame_with_id_str(3, "u"); /* 13 bytes */
    assert_int_equal(decode_with(d), PP_FRAME_TOO_LARGE);
    pp_frame_decoder_destroy(&d);
}

/*  Every msgpack format, written by hand (also the non-minimal ones a packer never picks),
    so that the structure scan's size of each is checked. */
static void test_every_format(void **state)
{
    (void)state;
    static const unsigned char data_ok[] = {
        0xde, 0x00, 0x11,                                                 /* map 16 of 17 pairs */
        0xa1, 'a',  0x7f,                                                 /* positive fixint */
        0xa1, 'b',  0xe0,                                                 /* negative fixint */
        0xa1, 'c',  0xcc, 0xff,                                           /* uint 8 */
        0xa1, 'd',  0xcd, 0xff, 0xff,                                     /* uint 16 */
        0xa1, 'e',  0xce, 0xff, 0xff, 0xff, 0xff,                         /* uint 32 */
        0xa1, 'f',  0xcf, 0,    0,    0,    0,    0,    0,    0,    1,    /* uint 64 */
        0xa1, 'g',  0xd0, 0x80,                                           /* int 8 */
        0xa1, 'h',  0xd1, 0x80, 0x00,                                     /* int 16 */
        0xa1, 'i',  0xd2, 0xff, 0xff, 0xff, 0xfe,                         /* int 32 */
        0xa1, 'j',  0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd, /* int 64 */
        0xa1, 'k',  0xca, 0x3f, 0x80, 0x00, 0x00,                         /* float 32: 1.0 */
        0xa1, 'l',  0xcb, 0x40, 0x04, 0,    0,    0,    0,    0,    0,    /* float 64: 2.5 */
        0xd9, 0x01, 'm',  0xda, 0x00, 0x02, 'x',  'y', /* str 8 key, str 16 value */
        0xdb, 0,    0,    0,    1,    'n',  0xdc, 0x00, 0x02, 0xc0, 0xc3, /* str 32 key, array 16 */
        0xa1, 'o',  0xdd, 0,    0,    0,    1,    0xc2,                   /* array 32 */
        0xa1, 'p',  0xde, 0x00, 0x01, 0xa1, 'q',  0x90,                   /* map 16 */
        0xa1, 'r',  0xdf, 0,    0,    0,    1,    0xa1, 's',  0x80,       /* map 32 */
    };
    data_frame_begin();
    tp_raw(&tp, data_ok, sizeof data_ok);
    expect(PP_FRAME_OK);
    assert_json("{\"a\":127,\"b\":-32,\"c\":255,\"d\":65535,\"e\":4294967295,\"f\":1,"
                "\"g\":-128,\"h\":-32768,\"i\":-2,\"j\":-3,\"k\":1.0,\"l\":2.5,"
                "\"m\":\"xy\",\"n\":[null,true],\"o\":[false],\"p\":{\"q\":[]},"
                "\"r\":{\"s\":{}}}");

    /* bin and ext of every width: sized right, they reach the data check (bad_value);
       sized wrong, the scan would say truncated or trailing_bytes */
    static const struct {
        const char *bytes;
        size_t len;
    } values[] = {
        {"\xc4\x02xy", 4},                 /* bin 8 */
        {"\xc5\x00\x02xy", 5},             /* bin 16 */
        {"\xc6\x00\x00\x00\x02xy", 7},     /* bin 32 */
        {"\xd4\x01x", 3},                  /* fixext 1 */
        {"\xd5\x01xy", 4},                 /* fixext 2 */
        {"\xd6\x01wxyz", 6},               /* fixext 4 */
        {"\xd7\x01qrstuvwx", 10},          /* fixext 8 */
        {"\xd8\x01ghijklmnopqrstuv", 18},  /* fixext 16 */
        {"\xc7\x02\x01xy", 5},             /* ext 8 */
        {"\xc8\x00\x02\x01xy", 6},         /* ext 16 */
        {"\xc9\x00\x00\x00\x02\x01xy", 8}, /* ext 32 */
    };
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        data_frame_begin();
        msgpack_pack_map(&tp.pk, 2);
        tp_str(&tp, "v");
        tp_raw(&tp, values[i].bytes, values[i].len);
        tp_str(&tp, "w");
        msgpack_pack_int(&tp.pk, 1);
        expect(PP_FRAME_BAD_VALUE);
        /* and one byte short of it is truncated */
        data_frame_begin();
        msgpack_pack_map(&tp.pk, 1);
        tp_str(&tp, "v");
        tp_raw(&tp, values[i].bytes, values[i].len - 1);
        expect(PP_FRAME_TRUNCATED);
    }
}

static void test_reason_names(void **state)
{
    (void)state;
    const char *want[] = {"ok",          "not_msgpack",  "truncated",     "trailing_bytes",
                          "not_array",   "bad_arity",    "bad_push_type", "bad_push_id",
                          "id_too_long", "too_many_ids", "bad_data",      "bad_key",
                          "bad_value",   "bad_number",   "bad_utf8",      "too_deep",
                          "too_large",   "bad_options",  "multipart"};
    assert_int_equal(sizeof want / sizeof *want, PP_FRAME_REASON_COUNT);
    for (int i = 0; i < PP_FRAME_REASON_COUNT; i++)
        assert_string_equal(pp_frame_reason_name((pp_frame_reason_t)i), want[i]);
    assert_string_equal(pp_frame_reason_name(PP_FRAME_REASON_COUNT), "unknown");
    assert_string_equal(pp_frame_reason_name((pp_frame_reason_t)-1), "unknown");
}

static void test_reject_clears_frame(void **state)
{
    (void)state;
    /* ids were fine, options were not: the frame is not half-filled */
    head(2, 4);
    msgpack_pack_array(&tp.pk, 1);
    tp_str(&tp, "u");
    small_data();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "mqtt_qos");
    msgpack_pack_int(&tp.pk, 9);
    expect(PP_FRAME_BAD_OPTIONS);
    assert_int_equal(fr.n_ids, 0);
    assert_null(fr.ids);
    assert_int_equal(fr.data_json.len, 0);
    assert_int_equal(fr.opts.mqtt_qos, -1);
    /* a NULL detail pointer is allowed */
    assert_int_equal(pp_frame_decode(dec, tp.sb.data, tp.sb.size, NOW, &fr, NULL),
                     PP_FRAME_BAD_OPTIONS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type1_group),
        cmocka_unit_test(test_type2_users),
        cmocka_unit_test(test_type3_user),
        cmocka_unit_test(test_int_and_str_same_id),
        cmocka_unit_test(test_extreme_int_ids),
        cmocka_unit_test(test_bin_id),
        cmocka_unit_test(test_dedup_keeps_order),
        cmocka_unit_test(test_dedup_10000),
        cmocka_unit_test(test_too_many_ids),
        cmocka_unit_test(test_id_length),
        cmocka_unit_test(test_id_bytes),
        cmocka_unit_test(test_options_all),
        cmocka_unit_test(test_options_values),
        cmocka_unit_test(test_options_bad),
        cmocka_unit_test(test_options_structure),
        cmocka_unit_test(test_not_msgpack),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_not_array),
        cmocka_unit_test(test_bad_arity),
        cmocka_unit_test(test_bad_push_type),
        cmocka_unit_test(test_bad_push_id_scalar_types),
        cmocka_unit_test(test_bad_push_id_lists),
        cmocka_unit_test(test_bad_data),
        cmocka_unit_test(test_bad_key),
        cmocka_unit_test(test_bad_value),
        cmocka_unit_test(test_bad_number),
        cmocka_unit_test(test_bad_utf8),
        cmocka_unit_test(test_too_deep),
        cmocka_unit_test(test_too_deep_configured),
        cmocka_unit_test(test_million_deep),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_every_format),
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_reject_clears_frame),
    };
    return cmocka_run_group_tests_name("proto_frame", tests, setup, teardown);
}
