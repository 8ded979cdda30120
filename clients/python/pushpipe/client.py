"""pushpipe's Python client: the seed's Client, on ZeroMQ and msgpack.

The seed's call style works unchanged::

    client = Client(host, port)          # port: the broker's base port
    client(1, group_id, data)            # push to a group
    client(2, user_list, data)           # push to several users
    client(3, user_id, data)             # push to one user

Each call sends one ZMQ frame holding msgpack [push_type, push_id, data] or, with keyword
options, [push_type, push_id, data, options]. By default it is fire-and-forget (a PUSH
socket to the broker's intake, base port + 0). With ack=True (or AckClient) each call
waits for the broker's verdict on its submit endpoint (base port + 1) and returns an
Accepted, or raises Rejected.

Several brokers (active-active): Client.from_address("tcp://a:5560,tcp://b:5560") or
from_address([...]). Fire-and-forget spreads the pushes over the connected brokers (one
PUSH socket connected to all, ZMQ_IMMEDIATE on). Acknowledged mode sends to one broker
and, without an answer in time, resends the same frame to the next, with a client
message id ("id" option; generated as "pp-" + 16 hex digits when the caller gave none)
so that brokers with durability "jetstream" store it once.

Needs only Debian's python3-zmq and python3-msgpack.
"""
import atexit
import json
import os
import random
import threading
import time
import weakref

import msgpack
import zmq

__all__ = [
    "Client", "AckClient", "Accepted", "Error", "Rejected", "Timeout", "endpoint",
    "addresses", "generate_id", "DEFAULT_ADDRESS",
]

DEFAULT_ADDRESS = "tcp://127.0.0.1:5560"
DEFAULT_TIMEOUT_MS = 5000
DEFAULT_LINGER_MS = 2000
# The bounds of libpushpipe's broker lists (pushpipe.h).
MAX_BROKERS = 16
MAX_ADDRESS_LEN = 255
MAX_RETRIES = 100

GROUP, USERS, USER = 1, 2, 3

# The endpoint table of common/pp_endpoints.h: role -> offset from the base port, or the
# suffix of an ipc:// path.
_ROLES = {"intake": 0, "submit": 1}

# Option keywords: the frame's option name for each keyword the caller may use. The
# short names match pushpipe-send's flags.
_OPTION_NAMES = {
    "id": "id",
    "channels": "channels",
    "apns_push_type": "apns_push_type",
    "apns_priority": "apns_priority",
    "priority": "apns_priority",
    "apns_expiration": "apns_expiration",
    "expiration": "apns_expiration",
    "ttl": "ttl",
    "apns_collapse_id": "apns_collapse_id",
    "collapse_id": "apns_collapse_id",
    "mqtt_qos": "mqtt_qos",
    "qos": "mqtt_qos",
}
# The order options are packed in, the same as libpushpipe's, so both clients produce
# the same bytes for the same push.
_OPTION_ORDER = ["id", "channels", "apns_push_type", "apns_priority", "apns_expiration",
                 "ttl", "apns_collapse_id", "mqtt_qos"]
_APNS_PUSH_TYPES = {"alert", "background", "location", "voip", "complication",
                    "fileprovider", "mdm", "liveactivity", "pushtotalk"}


class Error(Exception):
    """Any failure of a push."""


class Timeout(Error):
    """The broker did not take (fire-and-forget) or answer (ack) the push in time. In ack
    mode the push may still have been accepted."""


class Rejected(Error):
    """The broker refused the push. reason is one of the broker's reason names
    (e.g. "bad_data", "overloaded"), detail a short explanation."""

    def __init__(self, reason, detail="", broker=None):
        super().__init__("rejected %s: %s" % (reason, detail))
        self.reason = reason
        self.detail = detail
        self.broker = broker


class Accepted:
    """The broker accepted the push and gave it the message id msg_id. broker: the
    address of the broker that answered (set by Client)."""

    __slots__ = ("msg_id", "broker")
    accepted = True

    def __init__(self, msg_id, broker=None):
        self.msg_id = msg_id
        self.broker = broker

    def __repr__(self):
        return "Accepted(%r)" % self.msg_id

    def __eq__(self, other):
        return isinstance(other, Accepted) and other.msg_id == self.msg_id

    def __hash__(self):
        return hash(self.msg_id)


def endpoint(address, role):
    """The endpoint of role ("intake" or "submit") of the broker at address
    ("tcp://host:port", the base port, or "ipc:///path"), as in common/pp_endpoints.c."""
    if role not in _ROLES:
        raise ValueError("unknown role %r" % (role,))
    if not isinstance(address, str):
        raise TypeError("address must be a str")
    if address.startswith("ipc://") and len(address) > 6:
        return "%s-%s" % (address, role)
    if not address.startswith("tcp://"):
        raise ValueError("broker address must be tcp://host:port or ipc:///path, got %r"
                         % address)
    host, sep, port = address[6:].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError("broker address must be tcp://host:port, got %r" % address)
    base = int(port)
    if base < 1 or base + 6 > 65535:
        raise ValueError("broker port out of range in %r" % address)
    return "tcp://%s:%d" % (host, base + _ROLES[role])


def addresses(address):
    """The list of broker addresses in address: one address, several separated by commas
    (blanks around them ignored), or a list or tuple of addresses. Each is checked as
    endpoint() checks it; at most MAX_BROKERS, none twice."""
    if isinstance(address, str):
        items = [a.strip(" \t") for a in address.split(",")]
    elif isinstance(address, (list, tuple)):
        items = list(address)
        for a in items:
            if not isinstance(a, str):
                raise TypeError("broker addresses must be str, got %s" % type(a).__name__)
            if "," in a:
                raise ValueError("a broker address in a list must not contain a comma: %r"
                                 % a)
    else:
        raise TypeError("address must be a str or a list of str")
    if not items:
        raise ValueError("no broker address given")
    if len(items) > MAX_BROKERS:
        raise ValueError("at most %d broker addresses, got %d" % (MAX_BROKERS, len(items)))
    for a in items:
        if not a:
            raise ValueError("empty broker address in %r" % (address,))
        if len(a.encode("utf-8")) > MAX_ADDRESS_LEN:
            raise ValueError("broker address longer than %d bytes" % MAX_ADDRESS_LEN)
        endpoint(a, "intake")
    if len(set(items)) != len(items):
        raise ValueError("a broker address is given twice in %r" % (address,))
    return items


def generate_id():
    """A client message id for a push that may be resent: "pp-" and 16 random hex digits
    (what libpushpipe generates)."""
    return "pp-" + os.urandom(8).hex()


def _check_id(v, what):
    # bool is an int; True would be packed as msgpack true, which the broker refuses.
    if isinstance(v, bool) or not isinstance(v, (int, str, bytes)):
        raise TypeError("%s must be an int or a str, got %s" % (what, type(v).__name__))
    if isinstance(v, (str, bytes)) and not v:
        raise ValueError("%s is empty" % what)
    return v


def _push_id(push_type, push_id):
    if push_type == USERS:
        if isinstance(push_id, (str, bytes, int)) or push_id is None:
            raise TypeError("push type 2 takes a list of user ids, got %s"
                            % type(push_id).__name__)
        ids = [_check_id(u, "user id") for u in push_id]
        if not ids:
            raise ValueError("push type 2 needs at least one user id")
        return ids
    return _check_id(push_id, "group id" if push_type == GROUP else "user id")


def _check_value(v, depth):
    # What the broker turns into JSON (proto/pp_json.h): refuse here what it would drop.
    if depth > 64:
        raise ValueError("data nests too deep")
    if v is None or isinstance(v, (bool, int, str)):
        return
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("data holds NaN or Infinity, which JSON cannot say")
        return
    if isinstance(v, dict):
        for k, x in v.items():
            if not isinstance(k, str):
                raise TypeError("data keys must be str, got %s" % type(k).__name__)
            _check_value(x, depth + 1)
        return
    if isinstance(v, (list, tuple)):
        for x in v:
            _check_value(x, depth + 1)
        return
    raise TypeError("data holds a %s, which JSON cannot say" % type(v).__name__)


def _data(data):
    # The seed passed "json_data": a dict, or JSON text holding an object; both work.
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as e:
            raise ValueError("data is not valid JSON: %s" % e) from None
    if not isinstance(data, dict):
        raise TypeError("data must be a dict (or a JSON object), got %s"
                        % type(data).__name__)
    _check_value(data, 0)
    return data


def _int_opt(name, v, allowed=None, minimum=None):
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError("option %s must be an int" % name)
    if allowed is not None and v not in allowed:
        raise ValueError("option %s must be one of %s" % (name, ", ".join(map(str, allowed))))
    if minimum is not None and v < minimum:
        raise ValueError("option %s must be >= %d" % (name, minimum))
    return v


def _str_opt(name, v):
    if not isinstance(v, str) or not v:
        raise TypeError("option %s must be a non-empty str" % name)
    return v


def _options(kw):
    """Maps keyword options to the frame's options map, checking them as the broker
    would: a fire-and-forget push that breaks a rule is dropped by the broker silently."""
    opts = {}
    for k, v in kw.items():
        if k not in _OPTION_NAMES:
            raise TypeError("unknown option %r" % k)
        if v is None:
            continue
        name = _OPTION_NAMES[k]
        if name in opts:
            raise TypeError("option %s given twice" % name)
        opts[name] = v
    if "id" in opts:
        v = _str_opt("id", opts["id"])
        if len(v) > 64 or any(c <= " " or c >= "\x7f" for c in v):
            raise ValueError("option id must be 1 to 64 printable ASCII characters, no spaces")
    if "channels" in opts and opts["channels"] not in ("all", "apns", "mqtt"):
        raise ValueError("option channels must be 'all', 'apns' or 'mqtt'")
    if "apns_push_type" in opts and opts["apns_push_type"] not in _APNS_PUSH_TYPES:
        raise ValueError("option apns_push_type must be one of %s"
                         % ", ".join(sorted(_APNS_PUSH_TYPES)))
    if "apns_priority" in opts:
        _int_opt("apns_priority", opts["apns_priority"], allowed=(10, 5, 1))
    if "apns_expiration" in opts:
        _int_opt("apns_expiration", opts["apns_expiration"], minimum=0)
    if "ttl" in opts:
        _int_opt("ttl", opts["ttl"], minimum=0)
    if "ttl" in opts and "apns_expiration" in opts:
        raise ValueError("options ttl and apns_expiration exclude each other")
    if "apns_collapse_id" in opts:
        v = _str_opt("apns_collapse_id", opts["apns_collapse_id"])
        if len(v.encode("utf-8")) > 64 or any(c < " " or c == "\x7f" for c in v):
            raise ValueError("option apns_collapse_id must be 1 to 64 bytes without "
                             "control characters")
    if "mqtt_qos" in opts:
        _int_opt("mqtt_qos", opts["mqtt_qos"], allowed=(0, 1, 2))
    return {k: opts[k] for k in _OPTION_ORDER if k in opts}


def encode(push_type, push_id, data, **options):
    """The client frame (bytes) for one push, as Client sends it."""
    if isinstance(push_type, bool) or push_type not in (GROUP, USERS, USER):
        raise ValueError("push_type must be 1 (group), 2 (users) or 3 (user), got %r"
                         % (push_type,))
    frame = [push_type, _push_id(push_type, push_id), _data(data)]
    opts = _options(options)
    if opts:
        frame.append(opts)
    try:
        return msgpack.packb(frame, use_bin_type=True)
    except OverflowError as e:  # an int outside msgpack's 64 bits
        raise ValueError("cannot pack the push: %s" % e) from None


def decode_reply(raw):
    """Accepted, or Rejected (returned, not raised), from the broker's reply bytes (the
    msgpack map of proto/pp_reply.h). Raises Error if raw is not a reply."""
    try:
        r = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception as e:
        raise Error("malformed reply from the broker: %s %s" % (type(e).__name__, e)) from None
    if not isinstance(r, dict) or not isinstance(r.get("ok"), bool):
        raise Error("malformed reply from the broker: %r" % (r,))
    if r["ok"]:
        if not isinstance(r.get("id"), str) or not r["id"]:
            raise Error("malformed reply from the broker: no message id")
        return Accepted(r["id"])
    reason, detail = r.get("reason"), r.get("detail", "")
    if not isinstance(reason, str) or not reason or not isinstance(detail, str):
        raise Error("malformed reply from the broker: no reason")
    return Rejected(reason, detail)


_live = weakref.WeakSet()
_live_lock = threading.Lock()


@atexit.register
def _flush_at_exit():
    # The seed's callers send and exit. Closing each live client here makes the flush
    # of queued pushes explicit and bounded by its linger time, instead of depending on
    # the order in which the interpreter collects sockets and contexts at exit.
    with _live_lock:
        clients = list(_live)
    for c in clients:
        try:
            c.close()
        except Exception:
            pass


class Client:
    """A connection to a pushpipe broker, or to several. Not thread-safe: use one per
    thread.

    Client(host, port, ack=False, timeout_ms=5000, linger_ms=2000, sndhwm=1000,
           immediate=False, curve=None, retries=None)
    port is the broker's base port (the address every pushpipe process is given); for
    several brokers use from_address.
    immediate (fire-and-forget): queue pushes only while connected to the broker, so a
    push to an absent broker raises Timeout instead of waiting in the queue for it.
    Always on with several brokers.
    curve: (server_public_z85, client_public_z85, client_secret_z85) for CurveZMQ.
    retries (ack): resends after a timeout or a malformed answer, each to the next
    broker; None means one per other broker (len(addresses) - 1). Each attempt has the
    whole timeout_ms. With retries > 0 every push carries a client message id.

    Attributes: addresses (the list), address and endpoint (the broker the next
    acknowledged push goes to first, which is the one that answered last; the first
    broker for fire-and-forget), resends (count), message_id (of the last push).
    """

    def __init__(self, host="127.0.0.1", port=5560, ack=False, timeout_ms=DEFAULT_TIMEOUT_MS,
                 linger_ms=DEFAULT_LINGER_MS, sndhwm=1000, immediate=False, curve=None,
                 retries=None, _address=None):
        self.addresses = addresses(_address if _address is not None
                                   else "tcp://%s:%d" % (host, int(port)))
        self.ack = bool(ack)
        self._role = "submit" if self.ack else "intake"
        self.endpoints = [endpoint(a, self._role) for a in self.addresses]
        self._current = 0
        if timeout_ms < 0:
            raise ValueError("timeout_ms must be >= 0")
        if retries is None:
            retries = len(self.addresses) - 1
        if isinstance(retries, bool) or not isinstance(retries, int) or \
                not 0 <= retries <= MAX_RETRIES:
            raise ValueError("retries must be an int 0..%d" % MAX_RETRIES)
        self.retries = retries
        self.resends = 0
        self.message_id = None
        self.timeout_ms = timeout_ms
        self.linger_ms = linger_ms
        self.sndhwm = sndhwm
        self.immediate = bool(immediate)
        self.curve = curve
        self._ctx = zmq.Context()
        self._sock = None
        with _live_lock:
            _live.add(self)

    @classmethod
    def from_address(cls, address=DEFAULT_ADDRESS, **kw):
        """A client for the broker at address, e.g. "tcp://push.internal:5560", or for
        several brokers: "tcp://a:5560,tcp://b:5560" or ["tcp://a:5560", "tcp://b:5560"]."""
        return cls(_address=address, **kw)

    @property
    def address(self):
        return self.addresses[self._current]

    @property
    def endpoint(self):
        return self.endpoints[self._current]

    def _socket(self):
        if self._sock is None:
            if self._ctx is None:
                raise Error("client is closed")
            s = self._ctx.socket(zmq.DEALER if self.ack else zmq.PUSH)
            s.setsockopt(zmq.LINGER, self.linger_ms)
            s.setsockopt(zmq.SNDHWM, self.sndhwm)
            # Several brokers: queue only to connected ones, so a dead broker's share of
            # the round robin goes to the others instead of into its queue.
            many = len(self.endpoints) > 1
            s.setsockopt(zmq.IMMEDIATE, 1 if (self.immediate or many) and not self.ack else 0)
            if self.curve:
                server_public, public, secret = self.curve
                s.curve_serverkey = _key(server_public)
                s.curve_publickey = _key(public)
                s.curve_secretkey = _key(secret)
            if self.ack:
                # One broker at a time: an answer can only come from where the frame went.
                s.connect(self.endpoint)
            else:
                # A random rotation: a short-lived client sends to the first connection
                # that completes and would otherwise always favour the first broker.
                start = random.randrange(len(self.endpoints))
                for i in range(len(self.endpoints)):
                    s.connect(self.endpoints[(start + i) % len(self.endpoints)])
            self._sock = s
        return self._sock

    def _reset(self):
        # After a timeout the verdict may still arrive; a fresh socket cannot confuse it
        # with the next push's (the zguide's Lazy Pirate).
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def _send(self, parts, deadline):
        sock = self._socket()
        left = int(max(0, (deadline - time.monotonic()) * 1000))
        sock.setsockopt(zmq.SNDTIMEO, left if left > 0 else 0)
        try:
            sock.send_multipart(parts, copy=True)
        except zmq.Again:
            if self.ack:
                self._reset()
            raise Timeout("would block: the send queue is full" if self.timeout_ms == 0
                          else "timeout: the broker did not take the push in time") from None

    def send(self, push_type, push_id, data, raise_on_reject=True, **options):
        """Sends one push. Fire-and-forget: returns None once queued. Ack: returns
        Accepted, or raises Rejected (returns it when raise_on_reject is False)."""
        if self.ack and self.retries > 0 and options.get("id") is None:
            # A push that may be resent needs a client id, or the broker that got the
            # first send and the one that got the resend would store two messages.
            options["id"] = generate_id()
        frame = encode(push_type, push_id, data, **options)
        self.message_id = options.get("id")
        if not self.ack:
            self._send([frame], time.monotonic() + self.timeout_ms / 1000.0)
            return None
        reply = self._ack_send(frame)
        reply.broker = self.address
        if isinstance(reply, Rejected) and raise_on_reject:
            raise reply
        return reply

    def _ack_send(self, frame):
        # Lazy Pirate with failover: after a timeout or a malformed answer the socket is
        # gone (_reset), and the same bytes go to the next broker. A verdict ends it: a
        # rejection is about the frame, another broker would say the same.
        if self._ctx is None:
            raise Error("client is closed")
        attempts = 1 + self.retries
        last = None
        for i in range(attempts):
            if i:
                self.resends += 1
            deadline = time.monotonic() + self.timeout_ms / 1000.0
            try:
                self._send([b"", frame], deadline)
                return self._wait_reply(deadline)
            except Error as e:  # Timeout, or a malformed answer
                self._reset()
                self._current = (self._current + 1) % len(self.addresses)
                last = e
        if attempts > 1:
            raise type(last)("%s (%d attempts over %d broker%s)"
                             % (last, attempts, len(self.addresses),
                                "" if len(self.addresses) == 1 else "s")) from None
        raise last

    __call__ = send

    def _wait_reply(self, deadline):
        sock = self._sock
        while True:
            left = max(0, int((deadline - time.monotonic()) * 1000))
            if sock.poll(left, zmq.POLLIN):
                parts = sock.recv_multipart()
                if len(parts) != 2 or parts[0] != b"":
                    self._reset()
                    raise Error("malformed reply from the broker (%d parts)" % len(parts))
                try:
                    return decode_reply(parts[1])
                except Error:
                    self._reset()
                    raise
            if left == 0:
                self._reset()
                raise Timeout("timeout: no answer from the broker within %d ms"
                              % self.timeout_ms)

    def push_group(self, group_id, data, **options):
        return self.send(GROUP, group_id, data, **options)

    def push_users(self, user_ids, data, **options):
        return self.send(USERS, user_ids, data, **options)

    def push_user(self, user_id, data, **options):
        return self.send(USER, user_id, data, **options)

    def close(self):
        """Closes the socket, waiting up to linger_ms for queued pushes to go out."""
        if self._sock is not None:
            self._sock.close(linger=self.linger_ms)
            self._sock = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        with _live_lock:
            _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _key(z85):
    if isinstance(z85, str):
        z85 = z85.encode("ascii")
    if len(z85) != 40:
        raise ValueError("CURVE keys are 40 characters of Z85")
    return z85


class AckClient(Client):
    """Client(..., ack=True): every push waits for the broker's verdict."""

    def __init__(self, host="127.0.0.1", port=5560, **kw):
        kw["ack"] = True
        super().__init__(host, port, **kw)
