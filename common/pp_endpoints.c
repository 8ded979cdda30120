#include "pp_endpoints.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_names[PP_EP_COUNT] = {"intake",  "submit",   "resolve", "apns_in",
                                           "mqtt_in", "apns_out", "mqtt_out"};

const char *pp_endpoint_name(pp_ep_t which)
{
    return which < PP_EP_COUNT ? s_names[which] : "unknown";
}

int pp_endpoint(const char *base, pp_ep_t which, char *out, size_t outlen)
{
    if (!base || which >= PP_EP_COUNT) return -1;
    if (strncmp(base, "ipc://", 6) == 0 && base[6]) {
        int n = snprintf(out, outlen, "%s-%s", base, s_names[which]);
        return n > 0 && (size_t)n < outlen ? 0 : -1;
    }
    if (strncmp(base, "tcp://", 6) != 0) return -1;
    const char *colon = strrchr(base + 6, ':');
    if (!colon || colon == base + 6) return -1;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (!end || *end || port < 1 || port + PP_EP_COUNT - 1 > 65535) return -1;
    int n = snprintf(out, outlen, "%.*s:%ld", (int)(colon - base), base, port + (long)which);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}
