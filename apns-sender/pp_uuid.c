#include "pp_uuid.h"

#include <openssl/rand.h>
#include <stdint.h>
#include <string.h>

static _Thread_local uint64_t s_state[4];
static _Thread_local int s_seeded;

static uint64_t s_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/*  xoshiro256** (Blackman and Vigna), public domain reference algorithm. */
static uint64_t s_next(void)
{
    uint64_t *s = s_state;
    uint64_t result = s_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return result;
}

int pp_uuid_v4(char out[PP_UUID_LEN + 1])
{
    if (!s_seeded) {
        if (RAND_bytes((unsigned char *)s_state, sizeof s_state) != 1 ||
            (s_state[0] | s_state[1] | s_state[2] | s_state[3]) == 0) {
            out[0] = '\0';
            return -1;
        }
        s_seeded = 1;
    }
    uint64_t r[2] = {s_next(), s_next()};
    unsigned char b[16];
    memcpy(b, r, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10xx (RFC 4122) */
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
    return 0;
}

static int s_is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int pp_uuid_is_v4(const char *text, unsigned long len)
{
    if (!text || len != PP_UUID_LEN) return 0;
    for (unsigned long i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-') return 0;
        } else if (!s_is_hex(text[i]))
            return 0;
    }
    if (text[14] != '4') return 0;
    return strchr("89abAB", text[19]) != NULL;
}
