/*  pp_jwt_share: when to renew a provider token, and sharing it between senders (Redis).

    Apple wants a token renewed no more than once per 20 minutes and no less than once per
    hour, counted per team. Several apns-senders of one team that each mint their own
    tokens look like too many updates (429 TooManyProviderTokenUpdates). So, with Redis
    configured, the token of (team, key) lives in the hash pushpipe:apns:jwt:<team>:<kid>
    {iat, token}: a sender that needs a token runs one Lua script that keeps the stored
    token if it is fresh enough and otherwise stores the sender's newly signed one; every
    sender then uses whatever the script returns. Only one of many racing senders wins;
    the others adopt its token (jwt_adopted_total vs jwt_minted_total).
    Without Redis each sender mints its own: fine for one sender, but N senders of one team
    renew N times as often as Apple counts (see docs/apns-sender.md).

    Timing (apns_sender.jwt.*): renew_s 3000 (50 min), min_renew_s 1200 (20 min floor),
    max_age_s 3300 (55 min: never adopt or keep using a token older than this).

    ExpiredProviderToken: if the rejected token is older than min_renew_s, renew now
    (or adopt a newer shared one). If it is younger, Apple cannot be right by the clock
    (iat within the hour); re-signing at once would risk TooManyProviderTokenUpdates and
    would not fix a skewed clock, so the renewal waits until the floor is reached and the
    affected notifications wait with it (bounded by their attempts and expiration).

    Verification: a token found in Redis is adopted only if it verifies with the public
    half of our own key (alg ES256, kid, iss, iat within max_age_s, signature; pp_jwt_verify)
    and the hash's iat is the token's. Anything else (another key's token, a forgery,
    garbage, a key of the wrong type) is counted in jwt_share_rejected_total{reason},
    logged, and replaced by our freshly signed token with a compare-and-set: only if the
    key still holds that bad value, so a good token another sender stored meanwhile is
    verified and adopted instead of overwritten. Without this, one bad token in Redis was
    used by every sender of the team until its renewal, 50 minutes later.

    InvalidProviderToken: the token we sent was refused although it verifies with our key
    (revoked key, or APNs confused). Re-sign and replace it in Redis (compare-and-set as
    above), and retry; at most one such re-sign per refused_resign_s (default 60) per
    (team, key), so that a key Apple truly refuses costs one token update a minute and each
    notification its normal retry.max_attempts, not a loop.
*/
#ifndef PP_JWT_SHARE_H
#define PP_JWT_SHARE_H

#include "pp_apns_apps.h"
#include "pp_apns_redis.h"
#include "pp_metrics.h"

#include <stdint.h>

typedef struct pp_jwt_share_t pp_jwt_share_t;

typedef struct {
    int64_t renew_s;
    int64_t min_renew_s;
    int64_t max_age_s;
    int64_t refused_resign_s; /* least time between re-signs after InvalidProviderToken */
} pp_jwt_timing_t;

/*  redis: NULL or not enabled = no sharing. Registers its counters in m. */
pp_jwt_share_t *pp_jwt_share_new(const pp_apns_redis_opts_t *redis, const pp_jwt_timing_t *t,
                                 pp_metrics_t *m);
void pp_jwt_share_destroy(pp_jwt_share_t **p);

/*  Makes sure cred holds a token usable at now_s (UNIX seconds): keeps it, adopts the shared
    one, or signs a new one. Returns 0, or -1 if no token could be made (logged). */
int pp_jwt_share_ensure(pp_jwt_share_t *s, pp_apns_cred_t *cred, int64_t now_s);

/*  A request signed with the token of rejected_iat got 403 ExpiredProviderToken. Schedules
    the renewal as described above and returns how many ms the request should wait before
    it is sent again (0: now, with the token ensure() will give). */
int64_t pp_jwt_share_on_expired(pp_jwt_share_t *s, pp_apns_cred_t *cred, int64_t rejected_iat,
                                int64_t now_s);

/*  A request signed with the token of rejected_iat got 403 InvalidProviderToken. Schedules
    a re-sign (now, or when refused_resign_s has passed since the last one) and returns how
    many ms the request should wait before it is sent again. */
int64_t pp_jwt_share_on_invalid(pp_jwt_share_t *s, pp_apns_cred_t *cred, int64_t rejected_iat,
                                int64_t now_s);

#endif
