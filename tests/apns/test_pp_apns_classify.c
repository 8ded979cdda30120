/*  pp_apns_classify: every status and reason of APNs' response table
    (/work/shared/reference/apns.md, "Responses") gets the action the sender takes, with and
    without token auth, and reasons become bounded metrics labels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pp_apns_classify.h"

#include <stdbool.h>
#include <string.h>

typedef struct {
    int status;
    const char *reason;
    pp_apns_action_t token;       /* the action for a token-auth app */
    pp_apns_action_t certificate; /* the action for a certificate app */
} s_case_t;

/* Every row of the reference's table, reason by reason. */
static const s_case_t s_cases[] = {
    {200, "", PP_APNS_DELIVERED, PP_APNS_DELIVERED},
    {200, NULL, PP_APNS_DELIVERED, PP_APNS_DELIVERED},
    {400, "BadCollapseId", PP_APNS_REJECT, PP_APNS_REJECT},
    {400, "BadDeviceToken", PP_APNS_DROP_TOKEN, PP_APNS_DROP_TOKEN},
    {400, "BadExpirationDate", PP_APNS_REJECT, PP_APNS_REJECT},
    {400, "BadMessageId", PP_APNS_REJECT, PP_APNS_REJECT},
    {400, "BadPriority", PP_APNS_REJECT, PP_APNS_REJECT},
    {400, "BadTopic", PP_APNS_REJECT, PP_APNS_REJECT},
    {400, "DeviceTokenNotForTopic", PP_APNS_DROP_TOKEN, PP_APNS_DROP_TOKEN},
    {400, "DuplicateHeaders", PP_APNS_REJECT, PP_APNS_REJECT},
    {400, "IdleTimeout", PP_APNS_REJECT, PP_APNS_REJECT},
    {400, "InvalidPushType", PP_APNS_REJECT, PP_APNS_REJECT},
    {400, "MissingDeviceToken", PP_APNS_REJECT, PP_APNS_REJECT},
    {400, "MissingTopic", PP_APNS_REJECT, PP_APNS_REJECT},
    {400, "PayloadEmpty", PP_APNS_REJECT, PP_APNS_REJECT},
    {400, "TopicDisallowed", PP_APNS_REJECT, PP_APNS_REJECT},
    {403, "BadCertificate", PP_APNS_REJECT, PP_APNS_REJECT},
    {403, "BadCertificateEnvironment", PP_APNS_REJECT, PP_APNS_REJECT},
    {403, "Forbidden", PP_APNS_REJECT, PP_APNS_REJECT},
    /* Re-signed and retried (bounded), not a config error: the token may be a bad one. */
    {403, "InvalidProviderToken", PP_APNS_REPLACE_JWT, PP_APNS_REJECT},
    {403, "MissingProviderToken", PP_APNS_REJECT, PP_APNS_REJECT},
    {403, "ExpiredProviderToken", PP_APNS_REFRESH_JWT, PP_APNS_REJECT},
    /* The reference says "new connection"; the sender rejects it today. */
    {403, "UnrelatedKeyIdInToken", PP_APNS_REJECT, PP_APNS_REJECT},
    {404, "BadPath", PP_APNS_REJECT, PP_APNS_REJECT},
    {405, "MethodNotAllowed", PP_APNS_REJECT, PP_APNS_REJECT},
    {410, "Unregistered", PP_APNS_DROP_TOKEN, PP_APNS_DROP_TOKEN},
    {410, "ExpiredToken", PP_APNS_DROP_TOKEN, PP_APNS_DROP_TOKEN},
    {413, "PayloadTooLarge", PP_APNS_REJECT, PP_APNS_REJECT},
    {429, "TooManyRequests", PP_APNS_RETRY, PP_APNS_RETRY},
    {429, "TooManyProviderTokenUpdates", PP_APNS_RETRY, PP_APNS_RETRY},
    {500, "InternalServerError", PP_APNS_RETRY, PP_APNS_RETRY},
    {503, "ServiceUnavailable", PP_APNS_RETRY, PP_APNS_RETRY},
    {503, "Shutdown", PP_APNS_RETRY, PP_APNS_RETRY},
};

static void test_reference_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const s_case_t *c = &s_cases[i];
        pp_apns_action_t t = pp_apns_classify(c->status, c->reason, true);
        pp_apns_action_t x = pp_apns_classify(c->status, c->reason, false);
        if (t != c->token || x != c->certificate)
            fail_msg("%d %s: token %s (want %s), certificate %s (want %s)", c->status,
                     c->reason ? c->reason : "(null)", pp_apns_action_name(t),
                     pp_apns_action_name(c->token), pp_apns_action_name(x),
                     pp_apns_action_name(c->certificate));
        /* Documented reasons are their own label. */
        if (c->reason && c->reason[0])
            assert_string_equal(pp_apns_reason_label(c->status, c->reason), c->reason);
    }
}

/*  The action depends on the status, and on the reason only where the table says so. */
static void test_status_decides(void **state)
{
    (void)state;
    /* Every 410 drops the token, whatever (or whether) the reason. */
    assert_int_equal(pp_apns_classify(410, "", true), PP_APNS_DROP_TOKEN);
    assert_int_equal(pp_apns_classify(410, NULL, false), PP_APNS_DROP_TOKEN);
    assert_int_equal(pp_apns_classify(410, "SomethingNew", true), PP_APNS_DROP_TOKEN);
    /* Every 429 and 5xx is retried, also with reasons APNs may add. */
    for (int st = 500; st <= 599; st++)
        assert_int_equal(pp_apns_classify(st, "", true), PP_APNS_RETRY);
    assert_int_equal(pp_apns_classify(429, "Whatever", false), PP_APNS_RETRY);
    assert_int_equal(pp_apns_classify(502, NULL, true), PP_APNS_RETRY);
    /* The token reasons count only with their own status. */
    assert_int_equal(pp_apns_classify(403, "BadDeviceToken", true), PP_APNS_REJECT);
    assert_int_equal(pp_apns_classify(400, "ExpiredProviderToken", true), PP_APNS_REJECT);
    assert_int_equal(pp_apns_classify(400, "InvalidProviderToken", true), PP_APNS_REJECT);
    assert_int_equal(pp_apns_classify(400, "", true), PP_APNS_REJECT);
    assert_int_equal(pp_apns_classify(400, NULL, true), PP_APNS_REJECT);
    assert_int_equal(pp_apns_classify(403, NULL, true), PP_APNS_REJECT);
    /* Reasons match exactly (no prefix, no case folding). */
    assert_int_equal(pp_apns_classify(400, "baddevicetoken", true), PP_APNS_REJECT);
    assert_int_equal(pp_apns_classify(400, "BadDeviceTokenX", true), PP_APNS_REJECT);
    assert_int_equal(pp_apns_classify(403, "ExpiredProviderToke", true), PP_APNS_REJECT);
    /* Statuses APNs does not document, and no answer at all, are rejections. */
    int odd[] = {0, -1, 1, 100, 199, 201, 204, 301, 401, 402, 406, 499, 600, 999, 100000};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        assert_int_equal(pp_apns_classify(odd[i], "", true), PP_APNS_REJECT);
}

static void test_labels(void **state)
{
    (void)state;
    /* Anything else is "other", so that a server cannot grow the metrics without bound. */
    assert_string_equal(pp_apns_reason_label(400, "NotAReason"), "other");
    assert_string_equal(pp_apns_reason_label(400, ""), "other");
    assert_string_equal(pp_apns_reason_label(403, NULL), "other");
    assert_string_equal(pp_apns_reason_label(500, "other"), "other");
    /* A 410 without a documented reason is still an unregistered token. */
    assert_string_equal(pp_apns_reason_label(410, ""), "Unregistered");
    assert_string_equal(pp_apns_reason_label(410, NULL), "Unregistered");
    assert_string_equal(pp_apns_reason_label(410, "Gone"), "Unregistered");
    assert_string_equal(pp_apns_reason_label(410, "ExpiredToken"), "ExpiredToken");
    /* Labels are static strings, not the caller's buffer. */
    char buf[32];
    strcpy(buf, "BadTopic");
    const char *l = pp_apns_reason_label(400, buf);
    assert_ptr_not_equal(l, buf);
    assert_string_equal(l, "BadTopic");
}

static void test_action_names(void **state)
{
    (void)state;
    assert_string_equal(pp_apns_action_name(PP_APNS_DELIVERED), "delivered");
    assert_string_equal(pp_apns_action_name(PP_APNS_DROP_TOKEN), "drop_token");
    assert_string_equal(pp_apns_action_name(PP_APNS_REFRESH_JWT), "refresh_jwt");
    assert_string_equal(pp_apns_action_name(PP_APNS_REPLACE_JWT), "replace_jwt");
    assert_string_equal(pp_apns_action_name(PP_APNS_RETRY), "retry");
    assert_string_equal(pp_apns_action_name(PP_APNS_REJECT), "reject");
    assert_string_equal(pp_apns_action_name((pp_apns_action_t)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_table),
        cmocka_unit_test(test_status_decides),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_action_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
