/*  pp_apns_keepalive: a hook that the apns-sender's blocking calls (getaddrinfo when a
    connection is made, Redis commands of the shared JWT and of invalid-token removal) run
    before and after they block.

    The sender sets it to pp_link_tick: the broker's hub declares a worker dead when it has
    heard nothing for 3 heartbeats and sends its unacknowledged jobs to another sender
    (duplicates), so a sender must keep talking to the hub while it waits on something
    else. One process-wide hook (not an argument threaded through every module) because
    the calls sit deep in modules that know nothing of the link. Not thread-safe: the
    sender is one thread.
*/
#ifndef PP_APNS_KEEPALIVE_H
#define PP_APNS_KEEPALIVE_H

typedef void(pp_apns_keepalive_fn)(void *arg);

/*  Installs fn (NULL removes it). */
void pp_apns_keepalive_set(pp_apns_keepalive_fn *fn, void *arg);

/*  Runs the hook if one is set. Cheap: call it freely around anything that may block. */
void pp_apns_keepalive(void);

#endif
