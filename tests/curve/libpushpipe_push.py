"""Helper of test_curve_broker.py: one acknowledged push through libpushpipe (ctypes) with
CURVE keys. Runs in its own process so that an AddressSanitizer build of the library can
be preloaded. Prints "rc=<n> accepted=<0|1> set_curve=<n>".
usage: libpushpipe_push.py LIB BROKER_ADDRESS SERVER_PUB CLIENT_PUB CLIENT_SECRET TIMEOUT_MS"""
import ctypes
import sys


class Result(ctypes.Structure):
    _fields_ = [("accepted", ctypes.c_bool), ("msg_id", ctypes.c_char * 64),
                ("reason", ctypes.c_char * 64), ("detail", ctypes.c_char * 256)]


lib_path, address, spub, cpub, csec, timeout = sys.argv[1:7]
lib = ctypes.CDLL(lib_path)
lib.pp_client_new.restype = ctypes.c_void_p
lib.pp_client_new.argtypes = [ctypes.c_char_p, ctypes.c_int]
lib.pp_client_set_curve.argtypes = [ctypes.c_void_p] + [ctypes.c_char_p] * 3
lib.pp_client_set_timeout.argtypes = [ctypes.c_void_p, ctypes.c_int]
lib.pp_client_push_user.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                    ctypes.c_void_p, ctypes.POINTER(Result)]
lib.pp_client_destroy.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
cl = ctypes.c_void_p(lib.pp_client_new(address.encode(), 1))  # PP_CLIENT_ACK
sc = lib.pp_client_set_curve(cl, spub.encode(), cpub.encode(), csec.encode())
lib.pp_client_set_timeout(cl, int(timeout))
res = Result()
rc = lib.pp_client_push_user(cl, b"46", b'{"t":"libpushpipe"}', None, ctypes.byref(res))
lib.pp_client_destroy(ctypes.byref(cl))
print("rc=%d accepted=%d set_curve=%d" % (rc, 1 if res.accepted else 0, sc), flush=True)
