"""A small threaded TCP proxy on 127.0.0.1 for black-box tests: put it between a process
and a real server (redis-server, mosquitto, the APNs test server) to cut connections or
slow them down, without touching either side.

    with TcpProxy("127.0.0.1", redis.port) as p:     # listens on p.port (a free port)
        ... point the process under test at p.port ...
        p.set_delay(0.75)   # every chunk, in both directions, is held 0.75 s
        p.cut()             # every open connection is reset (RST); new ones are reset too
        p.restore()         # new connections are forwarded again

Each accepted connection gets one thread that owns both of its sockets (nothing else
closes them, so no descriptor is closed under a thread still using it): it reads what
either side sends, holds each chunk until its due time (receipt + the delay in force when
it was received, so order is kept in each direction), forwards it, passes a half-close
(EOF) on once everything before it went out, and resets both sides when asked. A reset is
a close with SO_LINGER 0, which sends RST instead of FIN: the peer sees ECONNRESET, as when
a host or a middlebox drops a connection, not a clean end.

Counters (read them at any time): accepted (connections the listener took), forwarded
(connected to the target), refused (reset at accept while cut, or the target did not
answer), resets (open connections reset by cut() or close()), and open_connections().
"""
import select
import socket
import struct
import threading
import time

_SLICE = 0.05  # seconds: longest a connection thread waits before looking at its flags
_LINGER_0 = struct.pack("ii", 1, 0)


def _reset(sock):
    """Closes sock with RST (SO_LINGER 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_0)
    except OSError:
        pass
    sock.close()


class _Conn:
    """One proxied connection: client <-> target, run by its own thread."""

    def __init__(self, proxy, client, target):
        self.proxy = proxy
        self.socks = (client, target)  # direction 0: client -> target, 1: target -> client
        self.queues = ([], [])  # (due, bytes) per direction
        self.eof = [False, False]  # the source of the direction said EOF
        self.shut = [False, False]  # the EOF was passed on
        self.reset_asked = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _read(self, d):
        try:
            data = self.socks[d].recv(65536)
        except OSError:
            return False
        if data:
            self.queues[d].append((time.monotonic() + self.proxy.delay, data))
        else:
            self.eof[d] = True
        return True

    def _deliver(self, d, now):
        q, dst = self.queues[d], self.socks[1 - d]
        while q and q[0][0] <= now:
            try:
                dst.sendall(q.pop(0)[1])
            except OSError:
                return False
        if self.eof[d] and not q and not self.shut[d]:
            self.shut[d] = True
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        return True

    def _wait(self, now):
        """Seconds to wait for input: the next due chunk or the slice."""
        due = [q[0][0] for q in self.queues if q]
        return max(0.0, min([_SLICE] + [t - now for t in due]))

    def _run(self):
        ok = True
        while ok and not self.reset_asked.is_set():
            if all(self.shut):
                break
            readers = [s for d, s in enumerate(self.socks) if not self.eof[d]]
            try:
                ready, _, _ = select.select(readers, [], [], self._wait(time.monotonic()))
            except (OSError, ValueError):
                ok = False
                break
            for s in ready:
                ok = ok and self._read(self.socks.index(s))
            now = time.monotonic()
            ok = ok and self._deliver(0, now) and self._deliver(1, now)
        if ok and not self.reset_asked.is_set():
            for s in self.socks:
                s.close()
        else:
            for s in self.socks:
                _reset(s)
            if self.reset_asked.is_set():
                self.proxy._count("resets")
        self.proxy._forget(self)
        self.done.set()

    def reset(self):
        """Asks the thread to reset both sides; returns once it has."""
        self.reset_asked.set()
        self.done.wait(5)


class TcpProxy:
    """Forwards 127.0.0.1:port to target_host:target_port (see the module doc)."""

    def __init__(self, target_host, target_port, listen_port=None):
        self.target = (target_host, int(target_port))
        self.delay = 0.0
        self.accepted = 0
        self.forwarded = 0
        self.refused = 0
        self.resets = 0
        self._lock = threading.Lock()
        self._conns = set()
        self._cut = False
        self._closing = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", listen_port or 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _count(self, name):
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def _forget(self, conn):
        with self._lock:
            self._conns.discard(conn)

    def open_connections(self):
        with self._lock:
            return len(self._conns)

    def _accept_loop(self):
        while not self._closing:
            try:
                ready, _, _ = select.select([self._listener], [], [], _SLICE)
            except (OSError, ValueError):
                return
            if not ready or self._closing:
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            self._count("accepted")
            self._start(client)

    def _start(self, client):
        if self._cut:
            self._count("refused")
            _reset(client)
            return
        try:
            target = socket.create_connection(self.target, timeout=5)
        except OSError:
            self._count("refused")
            _reset(client)
            return
        for s in (client, target):
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(self, client, target)
        with self._lock:
            if self._cut or self._closing:  # cut() ran while we connected
                self.refused += 1
                _reset(client)
                _reset(target)
                return
            self._conns.add(conn)
            self.forwarded += 1
        conn.thread.start()

    def _reset_all(self):
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.reset()

    def cut(self):
        """Resets (RST) every open connection, and every new one until restore(). Returns
        once every connection that was open is closed."""
        with self._lock:
            self._cut = True
        self._reset_all()

    def restore(self):
        """New connections are forwarded again (the reset ones stay closed)."""
        with self._lock:
            self._cut = False

    def set_delay(self, seconds):
        """Holds each chunk received from now on, in both directions, `seconds` before
        forwarding it (0: none). A round trip through the proxy then takes 2 x seconds
        more."""
        self.delay = max(0.0, float(seconds))

    def close(self):
        """Stops listening and resets every open connection."""
        self._closing = True
        self._thread.join(5)
        self._listener.close()
        self._reset_all()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
