/*  pp_apns_classify: what the apns-sender does with an APNs answer, as a pure function of
    the HTTP status and the body's "reason" (the table of /work/shared/reference/apns.md,
    "Responses", as this sender applies it). Kept apart from the loop so that every status
    and reason is tested without a server (tests/apns/test_pp_apns_classify.c).
*/
#ifndef PP_APNS_CLASSIFY_H
#define PP_APNS_CLASSIFY_H

#include <stdbool.h>

typedef enum {
    PP_APNS_DELIVERED = 0, /* 200: accepted by APNs */
    PP_APNS_DROP_TOKEN,    /* the device token is no longer valid: remove it, do not retry */
    PP_APNS_REFRESH_JWT,   /* the provider token expired: sign a new one, retry */
    PP_APNS_REPLACE_JWT,   /* the provider token was refused: re-sign, retry (bounded) */
    PP_APNS_RETRY,         /* APNs could not take it now: retry after a backoff */
    PP_APNS_REJECT,        /* refused for good: count, log, give up */
} pp_apns_action_t;

/*  The action for an answer with status and reason (the body's "reason", "" or NULL when
    there was none; not trusted: any string). token_auth: the app signs provider tokens
    (JWT); for a certificate app the provider-token reasons are plain rejections.
      200                                               delivered
      410 (any reason), 400 BadDeviceToken,
      400 DeviceTokenNotForTopic                        drop the token
      403 ExpiredProviderToken (token auth)             refresh the JWT, retry
      403 InvalidProviderToken (token auth)             replace the JWT, retry
      429 (any reason), 500..599                        retry
      anything else                                     reject */
pp_apns_action_t pp_apns_classify(int status, const char *reason, bool token_auth);

/*  The action's name, for logs and tests ("delivered", "drop_token", ...). */
const char *pp_apns_action_name(pp_apns_action_t action);

/*  The reason as a metrics label: one of the reasons Apple documents (a static string), for
    a 410 with none of them "Unregistered" (the token is gone whatever the body said), else
    "other". Apple's answers are outside input: a server sending arbitrary reasons must not
    grow the metrics without bound. */
const char *pp_apns_reason_label(int status, const char *reason);

#endif
