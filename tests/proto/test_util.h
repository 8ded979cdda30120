/*  Helpers shared by the proto unit tests: build msgpack with msgpack-c's packer. */
#ifndef PP_TEST_UTIL_H
#define PP_TEST_UTIL_H

#include <msgpack.h>
#include <string.h>

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} tpack_t;

static inline void tp_begin(tpack_t *t)
{
    msgpack_sbuffer_init(&t->sb);
    msgpack_packer_init(&t->pk, &t->sb, msgpack_sbuffer_write);
}

static inline void tp_end(tpack_t *t)
{
    msgpack_sbuffer_destroy(&t->sb);
}

static inline void tp_str(tpack_t *t, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(&t->pk, n);
    msgpack_pack_str_body(&t->pk, s, n);
}

static inline void tp_strn(tpack_t *t, const char *s, size_t n)
{
    msgpack_pack_str(&t->pk, n);
    msgpack_pack_str_body(&t->pk, s, n);
}

static inline void tp_bin(tpack_t *t, const char *s, size_t n)
{
    msgpack_pack_bin(&t->pk, n);
    msgpack_pack_bin_body(&t->pk, s, n);
}

static inline void tp_raw(tpack_t *t, const void *bytes, size_t n)
{
    msgpack_sbuffer_write(&t->sb, bytes, n);
}

#endif
