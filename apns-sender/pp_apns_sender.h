/*  pp_apns_sender: the apns-sender's loop. Takes APNS jobs from the broker (PULL on
    apns_out), turns each [uid, token] target into a notification, and delivers them over
    the apps' HTTP/2 connection pools; handles the answers (delivered, invalid token,
    retry with backoff, rejected), the retry queue, provider tokens, and the drain on stop.

    One thread: zmq_poll waits on the ZMQ socket and every connection's socket at once,
    with a timeout set by the earliest timer (retries, reconnects, PINGs).
*/
#ifndef PP_APNS_SENDER_H
#define PP_APNS_SENDER_H

#include "pp_proc.h"

typedef struct pp_apns_sender_t pp_apns_sender_t;

/*  Reads the apns_sender section (errors go to the config; check with pp_proc_ready).
    Returns NULL only when out of memory. */
pp_apns_sender_t *pp_apns_sender_new(pp_proc_t *proc);
void pp_apns_sender_destroy(pp_apns_sender_t **p);

/*  Connects to the broker and runs until SIGTERM/SIGINT, then drains for at most
    apns_sender.drain_ms. Returns the exit code (0, or 1 if the broker socket failed). */
int pp_apns_sender_run(pp_apns_sender_t *s);

#endif
