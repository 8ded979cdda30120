#include "pp_apns_classify.h"

#include <stddef.h>
#include <string.h>

static bool s_is(const char *reason, const char *name)
{
    return reason && !strcmp(reason, name);
}

pp_apns_action_t pp_apns_classify(int status, const char *reason, bool token_auth)
{
    if (status == 200) return PP_APNS_DELIVERED;
    if (status == 410 || (status == 400 && (s_is(reason, "BadDeviceToken") ||
                                            s_is(reason, "DeviceTokenNotForTopic"))))
        return PP_APNS_DROP_TOKEN;
    /* A certificate app has no provider token to renew: these are then config errors. */
    if (status == 403 && token_auth && s_is(reason, "ExpiredProviderToken"))
        return PP_APNS_REFRESH_JWT;
    /* Not a config error to give up on: the token may be a bad one (say, adopted before
       verification existed, or APNs lost track of it). Re-signing is bounded by
       apns_sender.jwt.refused_resign_s and the notification's attempts. */
    if (status == 403 && token_auth && s_is(reason, "InvalidProviderToken"))
        return PP_APNS_REPLACE_JWT;
    if (status == 429 || (status >= 500 && status <= 599)) return PP_APNS_RETRY;
    return PP_APNS_REJECT;
}

const char *pp_apns_action_name(pp_apns_action_t action)
{
    static const char *const names[] = {"delivered",   "drop_token", "refresh_jwt",
                                        "replace_jwt", "retry",      "reject"};
    return (unsigned)action < sizeof names / sizeof names[0] ? names[action] : "unknown";
}

const char *pp_apns_reason_label(int status, const char *reason)
{
    static const char *const known[] = {"BadCollapseId",
                                        "BadDeviceToken",
                                        "BadExpirationDate",
                                        "BadMessageId",
                                        "BadPriority",
                                        "BadTopic",
                                        "DeviceTokenNotForTopic",
                                        "DuplicateHeaders",
                                        "IdleTimeout",
                                        "InvalidPushType",
                                        "MissingDeviceToken",
                                        "MissingTopic",
                                        "PayloadEmpty",
                                        "TopicDisallowed",
                                        "BadCertificate",
                                        "BadCertificateEnvironment",
                                        "ExpiredProviderToken",
                                        "Forbidden",
                                        "InvalidProviderToken",
                                        "MissingProviderToken",
                                        "UnrelatedKeyIdInToken",
                                        "BadPath",
                                        "MethodNotAllowed",
                                        "ExpiredToken",
                                        "Unregistered",
                                        "PayloadTooLarge",
                                        "TooManyProviderTokenUpdates",
                                        "TooManyRequests",
                                        "InternalServerError",
                                        "ServiceUnavailable",
                                        "Shutdown",
                                        NULL};
    for (int i = 0; reason && known[i]; i++)
        if (!strcmp(known[i], reason)) return known[i];
    return status == 410 ? "Unregistered" : "other";
}
