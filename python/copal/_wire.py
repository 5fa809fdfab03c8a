"""The connection to a database's broker, through copal's client library.

The binding is ctypes over ``libcopal-client.so`` (the library the ``copal``
command and the launcher use), not over NNG directly: the library already
finds the database's socket or ``tls+tcp://`` URL, reads its token and
TLS certificate, numbers requests under a random client id, and resends a
request that got no answer with the *same* id (the broker answers a
resent mutation with its stored reply). Python builds each request body
with the schema's generated module (``copal_pb2``, or _encode.py for
bulk_create) and hands it packed to ``cpl_client_call_packed``, which adds
the envelope and sends it; the reply comes back packed and is decoded by
Python's protobuf, which refuses a string that is not valid UTF-8. (A
library without that call: the body is unpacked and the reply repacked
by protobuf-c, the same messages.)

ctypes releases the GIL during a call, so another thread can encode the
next batch while one waits for the broker (``Job.objects.bulk_create``).
"""

import ctypes
import os
import threading

from . import copal_pb2 as pb
from .errors import CopalError, status_name

try:
    from . import _config
except ImportError:  # a source tree without a build: find it by name
    _config = None


def _library_path():
    env = os.environ.get("COPAL_CLIENT_LIBRARY")
    if env:
        return env
    if _config is not None:
        lib = _config.LIBRARY
        if getattr(_config, "RELATIVE", False):
            lib = os.path.normpath(os.path.join(
                os.path.dirname(os.path.abspath(_config.__file__)), lib))
        return lib
    return "libcopal-client.so.0"


class _Opts(ctypes.Structure):
    # cpl_client_opts, client/include/copal/client.h
    _fields_ = [
        ("db_dir", ctypes.c_char_p),
        ("url", ctypes.c_char_p),
        ("token", ctypes.c_char_p),
        ("timeout_ms", ctypes.c_int),
        ("attempts", ctypes.c_int),
        ("tls_cert", ctypes.c_char_p),
        ("tls_key", ctypes.c_char_p),
    ]


_lib = None
_lib_lock = threading.Lock()


def library():
    """The loaded client library (loaded on first use)."""
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        path = _library_path()
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            raise ImportError(
                "copal: cannot load the client library %s: %s (set "
                "COPAL_CLIENT_LIBRARY to its path)" % (path, e)) from None
        vp, cp, sz, i = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                         ctypes.c_int)
        lib.cpl_client_open.argtypes = [ctypes.POINTER(_Opts),
                                        ctypes.POINTER(vp)]
        lib.cpl_client_open.restype = i
        lib.cpl_client_close.argtypes = [vp]
        lib.cpl_client_close.restype = None
        lib.cpl_client_db.argtypes = [vp]
        lib.cpl_client_db.restype = cp
        lib.cpl_client_call.argtypes = [vp, vp, ctypes.POINTER(vp)]
        lib.cpl_client_call.restype = i
        lib.cpl_client_errmsg.argtypes = [vp]
        lib.cpl_client_errmsg.restype = cp
        lib.cpl_client_err_remote.argtypes = [vp]
        lib.cpl_client_err_remote.restype = ctypes.c_bool
        lib.cpl_strerror.argtypes = [i]
        lib.cpl_strerror.restype = cp
        lib.copal__request__unpack.argtypes = [vp, sz, cp]
        lib.copal__request__unpack.restype = vp
        lib.copal__request__free_unpacked.argtypes = [vp, vp]
        lib.copal__request__free_unpacked.restype = None
        lib.copal__reply__get_packed_size.argtypes = [vp]
        lib.copal__reply__get_packed_size.restype = sz
        lib.copal__reply__pack.argtypes = [vp, vp]
        lib.copal__reply__pack.restype = sz
        lib.cpl_reply_free.argtypes = [vp]
        lib.cpl_reply_free.restype = None
        # a library before cpl_client_call_packed: unpack and repack
        lib.copal_has_packed = hasattr(lib, "cpl_client_call_packed")
        if lib.copal_has_packed:
            lib.cpl_client_call_packed.argtypes = [
                vp, cp, sz, ctypes.POINTER(vp), ctypes.POINTER(sz)]
            lib.cpl_client_call_packed.restype = i
            lib.cpl_packed_free.argtypes = [vp, sz]
            lib.cpl_packed_free.restype = None
        _lib = lib
        return lib


def _b(s):
    return None if s is None else os.fsencode(s)


class Connection:
    """One client of one database's broker.

    Made by :func:`copal.connect`. A connection is used by one thread at a
    time (like the C client); :meth:`call` sends one request body and
    returns the reply's body, or raises :class:`CopalError`.
    """

    def __init__(self, db=None, url=None, token=None, timeout_ms=0,
                 attempts=0, tls_cert=None, tls_key=None):
        lib = library()
        self._lib = lib
        self._opts = _Opts(_b(db), _b(url), _b(token), int(timeout_ms),
                           int(attempts), _b(tls_cert), _b(tls_key))
        h = ctypes.c_void_p()
        rv = lib.cpl_client_open(ctypes.byref(self._opts), ctypes.byref(h))
        if rv != 0:
            what = db or os.environ.get("COPAL_DB") or url or "(none)"
            if rv == pb.STATUS_INVAL and db is None and url is None:
                msg = "no database given and COPAL_DB is not set"
            else:
                msg = "cannot open %s: %s" % (
                    what, lib.cpl_strerror(rv).decode())
            raise CopalError(rv, msg, remote=False)
        self._h = h
        self._lock = threading.Lock()
        self.db = lib.cpl_client_db(h).decode() or None
        self.url = url

    def close(self):
        """Closes the connection (also done when it is garbage)."""
        h, self._h = getattr(self, "_h", None), None
        if h:
            self._lib.cpl_client_close(h)

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, field, body):
        """Sends ``Request(field=body)`` and returns the reply's body.

        Raises CopalError: the broker's refusal (its status and message,
        ``remote`` true) or a local failure (no answer, no connection).
        """
        req = pb.Request()
        getattr(req, field).CopyFrom(body)
        return self.call_packed(field, req.SerializeToString())

    def call_packed(self, field, data):
        """The same with the Request (without envelope) already packed."""
        lib = self._lib
        if not self._h:
            raise CopalError(pb.STATUS_INVAL, "the connection is closed",
                             remote=False)
        if lib.copal_has_packed:
            rep, n = ctypes.c_void_p(), ctypes.c_size_t()
            with self._lock:
                rv = lib.cpl_client_call_packed(self._h, data, len(data),
                                                ctypes.byref(rep),
                                                ctypes.byref(n))
                if rv != 0:
                    raise CopalError(rv,
                                     lib.cpl_client_errmsg(self._h).decode(
                                         "utf-8", "replace"), remote=False)
            try:
                raw = ctypes.string_at(rep, n.value)
            finally:
                lib.cpl_packed_free(rep, n)
            return decode(raw, field)
        creq = lib.copal__request__unpack(None, len(data), data)
        if not creq:
            raise CopalError(pb.STATUS_PROTO, "the request does not encode",
                             remote=False)
        rep = ctypes.c_void_p()
        try:
            with self._lock:
                rv = lib.cpl_client_call(self._h, creq, ctypes.byref(rep))
                if rv != 0:
                    raise CopalError(rv,
                                     lib.cpl_client_errmsg(self._h).decode(
                                         "utf-8", "replace"), remote=False)
            n = lib.copal__reply__get_packed_size(rep)
            buf = ctypes.create_string_buffer(n)
            lib.copal__reply__pack(rep, buf)
            raw = buf.raw
        finally:
            lib.copal__request__free_unpacked(creq, None)
            if rep:
                lib.cpl_reply_free(rep)
        return decode(raw, field)


def decode(raw, field):
    """The body ``field`` of the packed Reply raw; CopalError for a
    refusal (the broker's status and message), a reply that does not
    decode, or one with another body."""
    r = pb.Reply()
    # the strict decoder: invalid UTF-8 in a string field is an error
    try:
        r.ParseFromString(raw)
    except Exception as e:
        raise CopalError(pb.STATUS_PROTO,
                         "the broker's reply does not decode: %s" % e,
                         remote=False) from None
    if r.status != 0:
        raise CopalError(r.status, r.error or status_name(r.status),
                         remote=True)
    if r.WhichOneof("body") != field:
        raise CopalError(pb.STATUS_PROTO,
                         "the broker answered %s with %s" % (
                             field, r.WhichOneof("body")), remote=False)
    return getattr(r, field)
