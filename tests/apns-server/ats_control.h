/*  ats_control: the APNs test server's control API, plain HTTP/1.1 on 127.0.0.1 (a
    libmicrohttpd thread of its own; all state goes through ats_state's mutex).

        POST /reset, GET /accepted[?since=N&limit=M], GET /accepted/count, GET /stats,
        POST /rules {...}     (see docs/apns-testserver.md)
*/
#ifndef ATS_CONTROL_H
#define ATS_CONTROL_H

#include "ats_state.h"

typedef struct ats_control_t ats_control_t;

/*  Starts serving on 127.0.0.1:port. Returns NULL (with a logged error) if it cannot bind. */
ats_control_t *ats_control_new(ats_state_t *state, const char *addr, int port);
void ats_control_destroy(ats_control_t **p);

#endif
