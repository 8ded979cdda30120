/*  Decode speed of a typical client frame: [3, user id, ~200-byte data map, {"ttl": 3600}].

    Prints nanoseconds per frame for pp_frame_decode and, as the baseline measured in the
    same run, for msgpack_unpack_next on the same bytes (what any decoder of the frame has
    to do at least: parse it into objects), and the ratio of the two. Not a test: nothing
    is asserted about time. Usage: bench_proto_frame [iterations]
*/
#include "pp_frame.h"
#include "pp_log.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void pstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void build(msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int(&pk, 3);
    msgpack_pack_int(&pk, 1234567);
    msgpack_pack_map(&pk, 8);
    pstr(&pk, "alert");
    pstr(&pk, "You have a new message from Alice: are we still on for lunch?");
    pstr(&pk, "badge");
    msgpack_pack_int(&pk, 3);
    pstr(&pk, "sound");
    pstr(&pk, "default");
    pstr(&pk, "thread");
    pstr(&pk, "chat-1234");
    pstr(&pk, "from");
    msgpack_pack_int(&pk, 98765);
    pstr(&pk, "ts");
    msgpack_pack_int64(&pk, 1700000000123);
    pstr(&pk, "score");
    msgpack_pack_double(&pk, 0.25);
    pstr(&pk, "url");
    pstr(&pk, "app://chat/1234/message/5678");
    msgpack_pack_map(&pk, 1);
    pstr(&pk, "ttl");
    msgpack_pack_int(&pk, 3600);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 500000;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    build(&sb);
    pp_frame_decoder_t *d = pp_frame_decoder_new(NULL);
    pp_frame_t f;
    const char *detail;
    if (pp_frame_decode(d, sb.data, sb.size, 1800000000, &f, &detail) != PP_FRAME_OK) {
        fprintf(stderr, "frame rejected: %s\n", detail);
        return 1;
    }
    printf("frame_bytes=%zu json_bytes=%zu json=%s\n", sb.size, f.data_json.len, f.data_json.ptr);

    size_t sink = 0;
    for (int round = 0; round < 3; round++) {
        uint64_t t0 = pp_mono_us();
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        for (long i = 0; i < iters; i++) {
            size_t off = 0;
            if (msgpack_unpack_next(&u, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS)
                sink += u.data.via.array.size;
        }
        msgpack_unpacked_destroy(&u);
        uint64_t t1 = pp_mono_us();
        for (long i = 0; i < iters; i++) {
            if (pp_frame_decode(d, sb.data, sb.size, 1800000000, &f, &detail) == PP_FRAME_OK)
                sink += f.n_ids;
        }
        uint64_t t2 = pp_mono_us();
        double base = (double)(t1 - t0) * 1000.0 / (double)iters;
        double ours = (double)(t2 - t1) * 1000.0 / (double)iters;
        printf("round=%d baseline_unpack_next_ns=%.0f pp_frame_decode_ns=%.0f ratio=%.2f\n", round,
               base, ours, ours / base);
    }
    pp_frame_decoder_destroy(&d);
    msgpack_sbuffer_destroy(&sb);
    return sink == 0;
}
