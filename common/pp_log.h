/*  pp_log: one line per event, level and key=value fields, on stderr.

    A line reads
        2026-11-27T10:00:00.123Z level=info proc=broker event=started bind=tcp://0.0.0.0:5560
    The event name is a short snake_case word; the fields are printf-formatted by the
    caller and must already be key=value pairs. Values from outside must go through
    pp_log_quote() so that a hostile string cannot forge fields or lines.
*/
#ifndef PP_LOG_H
#define PP_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    PP_LOG_DEBUG = 0,
    PP_LOG_INFO,
    PP_LOG_WARN,
    PP_LOG_ERROR,
    PP_LOG_OFF
} pp_log_level_t;

/*  Sets the process name shown in every line and the lowest level printed. */
void pp_log_init(const char *proc, pp_log_level_t level);

/*  Parses "debug", "info", "warn", "error" or "off". Returns 0, or -1 if unknown. */
int pp_log_level_parse(const char *text, pp_log_level_t *level);

bool pp_log_enabled(pp_log_level_t level);

void pp_log(pp_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define pp_debug(event, ...) pp_log(PP_LOG_DEBUG, event, __VA_ARGS__)
#define pp_info(event, ...) pp_log(PP_LOG_INFO, event, __VA_ARGS__)
#define pp_warn(event, ...) pp_log(PP_LOG_WARN, event, __VA_ARGS__)
#define pp_error(event, ...) pp_log(PP_LOG_ERROR, event, __VA_ARGS__)

/*  Writes a printable, quoted form of the first len bytes of text into out (at most
    outlen bytes, always terminated): quotes, backslashes, control and non-ASCII bytes are
    escaped, and text longer than max_chars is cut with "...". Returns out. */
char *pp_log_quote(const void *text, size_t len, size_t max_chars, char *out, size_t outlen);

/*  A device token for a log line: its first 8 characters followed by "..." when it is
    longer, never the whole token (a token addresses a user's device; logs travel further
    than the database). Only hex digits are shown: the prefix stops at the first other byte,
    so the result is safe unquoted. An empty token gives "-". Returns out (outlen >= 12). */
#define PP_LOG_TOKEN_PREFIX_LEN 8
char *pp_log_token_prefix(const char *token, size_t len, char *out, size_t outlen);

/*  Rate limit for noisy events (bad client input, for example): allows `burst` lines
    per `window_ms`; the first line after a window in which lines were suppressed carries
    suppressed=N. Not thread-safe: one limiter per thread. */
typedef struct {
    uint64_t window_start_ms;
    uint32_t window_ms;
    uint32_t burst;
    uint32_t used;
    uint32_t suppressed;
} pp_ratelimit_t;

#define PP_RATELIMIT_INIT(window_ms_, burst_)                                                      \
    {                                                                                              \
        0, (window_ms_), (burst_), 0, 0                                                            \
    }

/*  Returns true if a line may be written now; *suppressed receives the number of lines
    dropped since the last one allowed. */
bool pp_ratelimit_allow(pp_ratelimit_t *rl, uint32_t *suppressed);

/*  Milliseconds and microseconds of CLOCK_MONOTONIC and of the wall clock. */
uint64_t pp_mono_ms(void);
uint64_t pp_mono_us(void);
uint64_t pp_wall_us(void);

#endif
