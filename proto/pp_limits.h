/*  pp_limits: the one definition of every size limit that more than one stage checks.

    A value that crosses stages (an id from a client frame, a device token from Redis, an app
    ident) is checked against the same bound by every stage that handles it, so that what
    one stage accepts the next one can carry. Stages may be configured stricter (e.g.
    broker.limits.max_id_len, resolver.token_max_len), never looser: a configured value over
    one of these bounds is a configuration error at start (exit 2, naming the key).
*/
#ifndef PP_LIMITS_H
#define PP_LIMITS_H

/*  Bytes of one id (user or group): a client frame's push_id, an id in a job, a member of
    GroupAppleUser:<gid>. Ids become Redis keys and MQTT topic levels. */
#define PP_ID_MAX_LEN 256

/*  Characters of one APNs device token (hex). Apple does not promise 64; 200 leaves room. */
#define PP_TOKEN_MAX_LEN 200

/*  Bytes of an app ident (bundle id) as stored in User:<uid> app_ident and configured under
    apns_sender.apps. */
#define PP_IDENT_MAX_LEN 200

#endif
