#include "pp_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static pp_log_level_t s_level = PP_LOG_INFO;
static char s_proc[32] = "pushpipe";

static const char *s_names[] = {"debug", "info", "warn", "error", "off"};

void pp_log_init(const char *proc, pp_log_level_t level)
{
    snprintf(s_proc, sizeof s_proc, "%s", proc ? proc : "pushpipe");
    s_level = level;
}

int pp_log_level_parse(const char *text, pp_log_level_t *level)
{
    for (int i = 0; i <= PP_LOG_OFF; i++) {
        if (text && strcasecmp(text, s_names[i]) == 0) {
            *level = (pp_log_level_t)i;
            return 0;
        }
    }
    if (text && strcasecmp(text, "warning") == 0) {
        *level = PP_LOG_WARN;
        return 0;
    }
    return -1;
}

bool pp_log_enabled(pp_log_level_t level)
{
    return level >= s_level && level < PP_LOG_OFF;
}

void pp_log(pp_log_level_t level, const char *event, const char *fmt, ...)
{
    if (!pp_log_enabled(level)) return;
    /* The line is built whole and written with one call so that lines from several
       threads never interleave. */
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s proc=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, s_names[level], s_proc, event);
    if (n < 0) return;
    size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (fmt && *fmt && used < sizeof line - 2) {
        line[used++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + used, sizeof line - used, fmt, ap);
        va_end(ap);
        if (m > 0) used += (size_t)m < sizeof line - used ? (size_t)m : sizeof line - used - 1;
    }
    if (used >= sizeof line - 1) used = sizeof line - 2;
    line[used++] = '\n';
    fwrite(line, 1, used, stderr);
}

char *pp_log_quote(const void *text, size_t len, size_t max_chars, char *out, size_t outlen)
{
    const unsigned char *p = text;
    size_t o = 0;
    if (outlen < 8) {
        if (outlen) out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    size_t shown = len < max_chars ? len : max_chars;
    for (size_t i = 0; i < shown && o + 6 < outlen; i++) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    if (shown < len && o + 5 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

char *pp_log_token_prefix(const char *token, size_t len, char *out, size_t outlen)
{
    if (outlen < PP_LOG_TOKEN_PREFIX_LEN + 4) {
        if (outlen) out[0] = '\0';
        return out;
    }
    size_t n = 0;
    while (token && n < len && n < PP_LOG_TOKEN_PREFIX_LEN &&
           ((token[n] >= '0' && token[n] <= '9') || (token[n] >= 'a' && token[n] <= 'f') ||
            (token[n] >= 'A' && token[n] <= 'F')))
        n++;
    if (n == 0 && (!token || len == 0)) {
        snprintf(out, outlen, "-");
        return out;
    }
    memcpy(out, token, n);
    if (n < len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

uint64_t pp_mono_ms(void)
{
    return pp_mono_us() / 1000;
}

uint64_t pp_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t pp_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

bool pp_ratelimit_allow(pp_ratelimit_t *rl, uint32_t *suppressed)
{
    uint64_t now = pp_mono_ms();
    *suppressed = 0;
    if (now - rl->window_start_ms >= rl->window_ms) {
        rl->window_start_ms = now;
        rl->used = 0;
    }
    if (rl->used < rl->burst) {
        rl->used++;
        *suppressed = rl->suppressed;
        rl->suppressed = 0;
        return true;
    }
    rl->suppressed++;
    return false;
}
