#include "pp_msgid.h"
#include "pp_log.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct pp_msgid_t {
    uint64_t instance;
    uint64_t counter;
    char prefix[16]; /* the instance in hex, formatted once */
};

static const char s_hex[] = "0123456789abcdef";

/*  Hand-written rather than snprintf("%016llx"): this runs once per client frame and
    printf's format parsing costs more than the rest of stamping. */
static void s_hex64(uint64_t v, char out[16])
{
    for (int i = 15; i >= 0; i--) {
        out[i] = s_hex[v & 0xf];
        v >>= 4;
    }
}

static int s_hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int pp_msgid_parse_instance(const char *text, uint64_t *instance)
{
    size_t len = text ? strlen(text) : 0;
    if (len == 0 || len > 16) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        int d = s_hexval(text[i]);
        if (d < 0) return -1;
        v = v << 4 | (uint64_t)d;
    }
    *instance = v;
    return 0;
}

static int s_random64(uint64_t *out)
{
    size_t got = 0;
    unsigned char *p = (unsigned char *)out;
    while (got < sizeof *out) {
        ssize_t n = getrandom(p + got, sizeof *out - got, 0);
        if (n < 0) return -1; /* EINTR included: the caller is at startup and gives up */
        got += (size_t)n;
    }
    return 0;
}

pp_msgid_t *pp_msgid_new(const uint64_t *instance)
{
    pp_msgid_t *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    if (instance)
        g->instance = *instance;
    else if (s_random64(&g->instance) != 0) {
        free(g);
        return NULL;
    }
    g->counter = pp_wall_us();
    s_hex64(g->instance, g->prefix);
    return g;
}

void pp_msgid_destroy(pp_msgid_t **p)
{
    if (p && *p) {
        free(*p);
        *p = NULL;
    }
}

uint64_t pp_msgid_instance(const pp_msgid_t *g)
{
    return g->instance;
}

void pp_msgid_next(pp_msgid_t *g, char out[PP_MSGID_LEN + 1])
{
    memcpy(out, g->prefix, 16);
    s_hex64(g->counter++, out + 16);
    out[PP_MSGID_LEN] = '\0';
}

bool pp_msgid_valid(const char *text, size_t len)
{
    if (len != PP_MSGID_LEN) return false;
    for (size_t i = 0; i < len; i++)
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
            return false;
    return true;
}
