/*  ats_server: the APNs test server's HTTP/2 side: TLS (OpenSSL, ALPN "h2", TLS 1.2+),
    nghttp2 server sessions fed with mem_recv/mem_send, non-blocking sockets on one epoll
    loop in one thread. Requests are checked with ats_check, rules and records go through
    ats_state, responses can be delayed by timers on the same loop.
*/
#ifndef ATS_SERVER_H
#define ATS_SERVER_H

#include "ats_check.h"
#include "ats_state.h"

typedef struct ats_server_t ats_server_t;

typedef struct {
    int port;                /* 0: any free port (see ats_server_port) */
    const char *listen_addr; /* IPv4 address to listen on; NULL: 127.0.0.1 */
    const char *cert_file, *key_file;
    const char *client_ca_file; /* NULL: no certificate auth */
    ats_check_config_t check;   /* check.cert_auth is set from client_ca_file */
    uint32_t max_concurrent_streams;
    bool stream_ramp; /* token auth: 1 stream until the first good request */
} ats_server_config_t;

/*  Loads the TLS material and binds 127.0.0.1:port. Returns NULL with a logged error.
    cfg (and what it points to) must outlive the server. */
ats_server_t *ats_server_new(const ats_server_config_t *cfg, ats_state_t *state);
void ats_server_destroy(ats_server_t **p);

/*  The port actually bound. */
int ats_server_port(ats_server_t *srv);

/*  Serves until pp_proc_stopping(). Returns 0, or -1 on a fatal loop error. */
int ats_server_run(ats_server_t *srv);

#endif
