/*  pp_reply: encode/decode round trips and malformed replies. */
#include "pp_reply.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static msgpack_sbuffer sb;
static msgpack_packer pk;

static int setup(void **state)
{
    (void)state;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    msgpack_sbuffer_destroy(&sb);
    return 0;
}

static void pack_str(const char *s)
{
    msgpack_pack_str(&pk, strlen(s));
    msgpack_pack_str_body(&pk, s, strlen(s));
}

static int decode_sb(pp_reply_t *r)
{
    return pp_reply_decode(sb.data, sb.size, r);
}

static void test_ok_round_trip(void **state)
{
    (void)state;
    assert_int_equal(pp_reply_encode_ok("01HXYZ-42", 9, &sb), 0);
    pp_reply_t r;
    assert_int_equal(decode_sb(&r), 0);
    assert_true(r.ok);
    assert_string_equal(r.id, "01HXYZ-42");
    assert_string_equal(r.reason, "");
    assert_string_equal(r.detail, "");
}

/*  With durability on, verdicts can overtake each other: "cid" names the frame. */
static void test_cid_round_trip(void **state)
{
    (void)state;
    assert_int_equal(pp_reply_encode_ok_cid("m1", 2, "order-7", 7, &sb), 0);
    pp_reply_t r;
    assert_int_equal(decode_sb(&r), 0);
    assert_true(r.ok);
    assert_string_equal(r.id, "m1");
    assert_string_equal(r.cid, "order-7");
    msgpack_sbuffer_clear(&sb);
    assert_int_equal(pp_reply_encode_error_cid("overloaded", "full", "order-8", 7, &sb), 0);
    assert_int_equal(decode_sb(&r), 0);
    assert_false(r.ok);
    assert_string_equal(r.reason, "overloaded");
    assert_string_equal(r.cid, "order-8");
    msgpack_sbuffer_clear(&sb);
    /* no cid: the map is the one without it, byte for byte */
    assert_int_equal(pp_reply_encode_ok_cid("m1", 2, NULL, 0, &sb), 0);
    assert_int_equal(decode_sb(&r), 0);
    assert_string_equal(r.cid, "");
    char big[100];
    memset(big, 'x', sizeof big);
    assert_int_equal(pp_reply_encode_ok_cid("m1", 2, big, sizeof big, &sb), -1);
}

static void test_ok_exact_bytes(void **state)
{
    (void)state;
    /* {"ok": true, "id": "m1"} as Python's msgpack.packb writes it */
    static const unsigned char want[] = {0x82, 0xa2, 'o',  'k', 0xc3, 0xa2,
                                         'i',  'd',  0xa2, 'm', '1'};
    assert_int_equal(pp_reply_encode_ok("m1", 2, &sb), 0);
    assert_int_equal(sb.size, sizeof want);
    assert_memory_equal(sb.data, want, sizeof want);
}

static void test_error_round_trip(void **state)
{
    (void)state;
    assert_int_equal(pp_reply_encode_error("bad_data", "data is an array, not a map", &sb), 0);
    pp_reply_t r;
    assert_int_equal(decode_sb(&r), 0);
    assert_false(r.ok);
    assert_string_equal(r.reason, "bad_data");
    assert_string_equal(r.detail, "data is an array, not a map");
    assert_string_equal(r.id, "");
}

static void test_error_null_detail(void **state)
{
    (void)state;
    assert_int_equal(pp_reply_encode_error("overloaded", NULL, &sb), 0);
    pp_reply_t r;
    assert_int_equal(decode_sb(&r), 0);
    assert_false(r.ok);
    assert_string_equal(r.reason, "overloaded");
    assert_string_equal(r.detail, "");
}

static void test_long_detail_cut_on_utf8_boundary(void **state)
{
    (void)state;
    char detail[601];
    /* "é" is two bytes: 300 of them cannot all fit in 255 bytes, and the cut must not
       split one */
    for (int i = 0; i < 300; i++)
        memcpy(detail + 2 * i, "\xc3\xa9", 2);
    detail[600] = '\0';
    assert_int_equal(pp_reply_encode_error("bad_data", detail, &sb), 0);
    pp_reply_t r;
    assert_int_equal(decode_sb(&r), 0);
    size_t n = strlen(r.detail);
    assert_true(n <= 255);
    assert_int_equal(n % 2, 0);
    assert_memory_equal(r.detail, detail, n);
}

static void test_decode_long_detail_from_peer(void **state)
{
    (void)state;
    char detail[1000];
    memset(detail, 'x', sizeof detail - 1);
    detail[sizeof detail - 1] = '\0';
    msgpack_pack_map(&pk, 3);
    pack_str("ok");
    msgpack_pack_false(&pk);
    pack_str("reason");
    pack_str("too_large");
    pack_str("detail");
    pack_str(detail);
    pp_reply_t r;
    assert_int_equal(decode_sb(&r), 0);
    assert_string_equal(r.reason, "too_large");
    assert_int_equal(strlen(r.detail), 255);
}

static void test_unknown_keys_skipped(void **state)
{
    (void)state;
    msgpack_pack_map(&pk, 3);
    pack_str("later");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_nil(&pk);
    pack_str("id");
    pack_str("abc");
    pack_str("ok");
    msgpack_pack_true(&pk);
    pp_reply_t r;
    assert_int_equal(decode_sb(&r), 0);
    assert_true(r.ok);
    assert_string_equal(r.id, "abc");
}

static void test_encode_refuses_bad_args(void **state)
{
    (void)state;
    char longid[100];
    memset(longid, 'a', sizeof longid);
    assert_int_equal(pp_reply_encode_ok(NULL, 0, &sb), -1);
    assert_int_equal(pp_reply_encode_ok("", 0, &sb), -1);
    assert_int_equal(pp_reply_encode_ok(longid, 64, &sb), -1);
    assert_int_equal(pp_reply_encode_ok(longid, 63, &sb), 0);
    assert_int_equal(pp_reply_encode_error(NULL, "x", &sb), -1);
    assert_int_equal(pp_reply_encode_error("", "x", &sb), -1);
    longid[64] = '\0';
    assert_int_equal(pp_reply_encode_error(longid, "x", &sb), -1);
}

/*  Each case: a reply that must be refused. */
static void expect_bad(void)
{
    pp_reply_t r;
    memset(&r, 0x55, sizeof r);
    assert_int_equal(decode_sb(&r), -1);
    /* a refused reply leaves nothing half-filled behind */
    assert_false(r.ok);
    assert_string_equal(r.id, "");
    assert_string_equal(r.reason, "");
}

static void test_bad_not_msgpack(void **state)
{
    (void)state;
    msgpack_sbuffer_write(&sb, "\xc1\xc1", 2);
    expect_bad();
}

static void test_bad_empty(void **state)
{
    (void)state;
    pp_reply_t r;
    assert_int_equal(pp_reply_decode("", 0, &r), -1);
    assert_int_equal(pp_reply_decode(NULL, 3, &r), -1);
}

static void test_bad_every_truncation(void **state)
{
    (void)state;
    assert_int_equal(pp_reply_encode_error("bad_data", "something", &sb), 0);
    for (size_t n = 1; n < sb.size; n++) {
        pp_reply_t r;
        assert_int_equal(pp_reply_decode(sb.data, n, &r), -1);
    }
}

static void test_bad_trailing_bytes(void **state)
{
    (void)state;
    assert_int_equal(pp_reply_encode_ok("m1", 2, &sb), 0);
    msgpack_pack_nil(&pk);
    expect_bad();
}

static void test_bad_not_a_map(void **state)
{
    (void)state;
    msgpack_pack_array(&pk, 2);
    msgpack_pack_true(&pk);
    pack_str("m1");
    expect_bad();
}

static void test_bad_missing_ok(void **state)
{
    (void)state;
    msgpack_pack_map(&pk, 1);
    pack_str("id");
    pack_str("m1");
    expect_bad();
}

static void test_bad_ok_not_bool(void **state)
{
    (void)state;
    msgpack_pack_map(&pk, 2);
    pack_str("ok");
    msgpack_pack_int(&pk, 1);
    pack_str("id");
    pack_str("m1");
    expect_bad();
}

static void test_bad_ok_without_id(void **state)
{
    (void)state;
    msgpack_pack_map(&pk, 1);
    pack_str("ok");
    msgpack_pack_true(&pk);
    expect_bad();
}

static void test_bad_ok_empty_id(void **state)
{
    (void)state;
    msgpack_pack_map(&pk, 2);
    pack_str("ok");
    msgpack_pack_true(&pk);
    pack_str("id");
    pack_str("");
    expect_bad();
}

static void test_bad_id_not_str(void **state)
{
    (void)state;
    msgpack_pack_map(&pk, 2);
    pack_str("ok");
    msgpack_pack_true(&pk);
    pack_str("id");
    msgpack_pack_int(&pk, 42);
    expect_bad();
}

static void test_bad_id_too_long(void **state)
{
    (void)state;
    char id[65];
    memset(id, 'a', 64);
    id[64] = '\0';
    msgpack_pack_map(&pk, 2);
    pack_str("ok");
    msgpack_pack_true(&pk);
    pack_str("id");
    pack_str(id);
    expect_bad();
}

static void test_bad_id_with_nul(void **state)
{
    (void)state;
    msgpack_pack_map(&pk, 2);
    pack_str("ok");
    msgpack_pack_true(&pk);
    pack_str("id");
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "a\0b", 3);
    expect_bad();
}

static void test_bad_error_without_reason(void **state)
{
    (void)state;
    msgpack_pack_map(&pk, 2);
    pack_str("ok");
    msgpack_pack_false(&pk);
    pack_str("detail");
    pack_str("x");
    expect_bad();
}

static void test_bad_reason_too_long(void **state)
{
    (void)state;
    char reason[100];
    memset(reason, 'r', 99);
    reason[99] = '\0';
    msgpack_pack_map(&pk, 2);
    pack_str("ok");
    msgpack_pack_false(&pk);
    pack_str("reason");
    pack_str(reason);
    expect_bad();
}

static void test_bad_detail_not_str(void **state)
{
    (void)state;
    msgpack_pack_map(&pk, 3);
    pack_str("ok");
    msgpack_pack_false(&pk);
    pack_str("reason");
    pack_str("bad_data");
    pack_str("detail");
    msgpack_pack_array(&pk, 0);
    expect_bad();
}

static void test_bad_key_not_str(void **state)
{
    (void)state;
    msgpack_pack_map(&pk, 2);
    pack_str("ok");
    msgpack_pack_true(&pk);
    msgpack_pack_int(&pk, 1);
    pack_str("m1");
    expect_bad();
}

static void test_bad_duplicate_key(void **state)
{
    (void)state;
    msgpack_pack_map(&pk, 3);
    pack_str("ok");
    msgpack_pack_true(&pk);
    pack_str("id");
    pack_str("m1");
    pack_str("ok");
    msgpack_pack_false(&pk);
    expect_bad();
}

static void test_bad_too_large(void **state)
{
    (void)state;
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    msgpack_pack_map(&pk, 3);
    pack_str("ok");
    msgpack_pack_true(&pk);
    pack_str("id");
    pack_str("m1");
    pack_str("padding");
    pack_str(big);
    expect_bad();
}

static void test_bad_deep_nesting(void **state)
{
    (void)state;
    msgpack_pack_map(&pk, 2);
    pack_str("ok");
    msgpack_pack_true(&pk);
    pack_str("x");
    for (int i = 0; i < 200; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    expect_bad();
}

static void test_bad_huge_claim(void **state)
{
    (void)state;
    /* an array header claiming 2^32-1 elements in a 20-byte reply: refused before
       msgpack-c would try to allocate for them */
    msgpack_pack_map(&pk, 3);
    pack_str("ok");
    msgpack_pack_true(&pk);
    pack_str("id");
    pack_str("m1");
    pack_str("x");
    msgpack_sbuffer_write(&sb, "\xdd\xff\xff\xff\xff", 5);
    expect_bad();
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_write(&sb, "\xdf\x7f\xff\xff\xff", 5);
    expect_bad();
}

/*  Flipping bytes of a valid reply must never crash (ASan watches) and every accepted
    result must be a complete one. */
static void test_byte_flips(void **state)
{
    (void)state;
    assert_int_equal(pp_reply_encode_error("bad_data", "flip me", &sb), 0);
    unsigned char buf[64];
    assert_true(sb.size <= sizeof buf);
    for (size_t i = 0; i < sb.size; i++) {
        for (int v = 0; v < 256; v++) {
            memcpy(buf, sb.data, sb.size);
            buf[i] = (unsigned char)v;
            pp_reply_t r;
            if (pp_reply_decode(buf, sb.size, &r) == 0)
                assert_true(r.ok ? r.id[0] != '\0' : r.reason[0] != '\0');
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ok_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cid_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ok_exact_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_null_detail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_detail_cut_on_utf8_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_long_detail_from_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_refuses_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_not_msgpack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_every_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_trailing_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_not_a_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_missing_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ok_not_bool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ok_without_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ok_empty_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_id_not_str, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_id_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_id_with_nul, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_error_without_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_reason_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_detail_not_str, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_key_not_str, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_duplicate_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_deep_nesting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_huge_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byte_flips, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
