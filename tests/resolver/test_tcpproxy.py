"""Self-test of tests/lib/pp_tcpproxy.py against a real redis-server: commands pass through
unchanged; set_delay holds every chunk in both directions (checked as a lower bound only,
which a slow machine cannot break); cut() resets open connections with RST and resets new
ones until restore(); the counters count; close() ends everything."""
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ next to the sources

import pp_harness as h  # noqa: E402
from pp_tcpproxy import TcpProxy  # noqa: E402

args = h.parse_args()
c = h.Checks()
wd = h.workdir("tcpproxy")
redis = h.Redis(wd)
direct = redis.client()


def resp(*words):
    out = b"*%d\r\n" % len(words)
    for w in words:
        w = w.encode() if isinstance(w, str) else w
        out += b"$%d\r\n%s\r\n" % (len(w), w)
    return out


def recv_reply(s, want):
    """Reads until `want` bytes arrived; returns them (or what came before EOF)."""
    got = b""
    while len(got) < want:
        chunk = s.recv(want - len(got))
        if not chunk:
            break
        got += chunk
    return got


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    return s


def proxied_clients():
    """Connections redis-server has from the proxy (everything but our direct client)."""
    return len(direct.client_list()) - 1


with TcpProxy("127.0.0.1", redis.port) as p:
    c.check(p.port > 0 and p.port != redis.port, "listens on a port of its own (%d)" % p.port)
    # --- pass-through, byte for byte, in both directions
    s = connect(p.port)
    value = bytes(range(256)) * 512  # 128 KiB with every byte value: several chunks
    s.sendall(resp("SET", "k", value))
    c.eq(recv_reply(s, 5), b"+OK\r\n", "SET through the proxy answered")
    c.eq(direct.get("k"), value, "the 128 KiB value arrived intact at Redis")
    s.sendall(resp("GET", "k"))
    head = b"$%d\r\n" % len(value)
    c.eq(recv_reply(s, len(head) + len(value) + 2), head + value + b"\r\n",
         "GET through the proxy returned it intact")
    c.eq(p.accepted, 1, "accepted counts the connection")
    c.eq(p.forwarded, 1, "forwarded counts it")
    c.eq(p.open_connections(), 1, "one connection open")
    # --- delay: each direction is held, so a round trip takes at least 2 x delay
    p.set_delay(0.4)
    t0 = time.monotonic()
    s.sendall(resp("PING"))
    c.eq(recv_reply(s, 7), b"+PONG\r\n", "PING answered with a delay")
    elapsed = time.monotonic() - t0
    c.check(elapsed >= 0.8, "the round trip took at least 2 x 0.4 s (%.2f s)" % elapsed)
    # order is kept under delay: a pipeline of 20 INCRs answers 1..20 in order
    s.sendall(b"".join(resp("INCR", "n") for _ in range(20)))
    want = b"".join(b":%d\r\n" % i for i in range(1, 21))
    c.eq(recv_reply(s, len(want)), want, "20 pipelined replies in order through the delay")
    p.set_delay(0)
    # --- cut: the open connection is reset (RST: ECONNRESET, not a clean EOF)
    p.cut()
    c.eq(p.resets, 1, "cut() reset the open connection")
    c.eq(p.open_connections(), 0, "no connection open after cut()")
    try:
        s.sendall(resp("PING"))
        data = s.recv(16)
        outcome = "eof" if data == b"" else "data"
    except ConnectionResetError:
        outcome = "reset"
    except OSError as e:
        outcome = "error %s" % e
    c.eq(outcome, "reset", "the client sees a reset (RST), not an EOF")
    s.close()
    h.wait_for(lambda: proxied_clients() == 0, 5, what="Redis to see the proxied client go")
    c.eq(proxied_clients(), 0, "the Redis side of the connection was closed too")
    # while cut: a new connection is taken and reset at once. On loopback the RST can
    # arrive before connect() has returned to us, so connect() itself may see it.
    s = None
    try:
        s = connect(p.port)
        s.sendall(resp("PING"))
        outcome = "eof" if s.recv(16) == b"" else "data"
    except ConnectionResetError:
        outcome = "reset"
    except OSError as e:
        outcome = "error %s" % e
    if s is not None:
        s.close()
    c.eq(outcome, "reset", "a connection made while cut is reset")
    c.eq(p.refused, 1, "refused counts it")
    c.eq(p.forwarded, 1, "it was not forwarded")
    # --- restore: new connections are forwarded again
    p.restore()
    s = connect(p.port)
    s.sendall(resp("PING"))
    c.eq(recv_reply(s, 7), b"+PONG\r\n", "after restore() a new connection works")
    c.eq(p.accepted, 3, "accepted counts all three connections")
    c.eq(p.forwarded, 2, "forwarded counts the two that reached Redis")
    # a clean close by the client is passed on as a clean close
    s.shutdown(socket.SHUT_WR)
    c.eq(s.recv(16), b"", "a half-close is passed on (Redis closes, the client sees EOF)")
    s.close()
    h.wait_for(lambda: p.open_connections() == 0, 5, what="the connection to end")
    c.eq(p.resets, 1, "a clean close is not a reset")
    # one more open connection for close() to end
    s = connect(p.port)
    s.sendall(resp("PING"))
    c.eq(recv_reply(s, 7), b"+PONG\r\n", "one more connection before close()")
    port = p.port
c.eq(p.open_connections(), 0, "leaving the with block closed every connection")
try:
    s.sendall(resp("PING"))
    outcome = "eof" if s.recv(16) == b"" else "data"
except OSError:
    outcome = "reset"
s.close()
c.eq(outcome, "reset", "the open connection was reset by close()")
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    listening = True
except OSError:
    listening = False
c.check(not listening, "nothing listens on the proxy's port after close()")
c.finish()
