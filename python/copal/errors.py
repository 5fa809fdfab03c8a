"""Exceptions of the copal package."""

from . import copal_pb2 as pb


def status_name(code):
    """The schema's name of a Status code ("NOTFOUND"), or its number."""
    try:
        return pb.Status.Name(code)[len("STATUS_"):]
    except ValueError:
        return str(code)


class CopalError(Exception):
    """A request that failed.

    Attributes:
        code: the copal Status (``copal_pb2.STATUS_NOTFOUND``, ...): the
            broker's when ``remote``, else the local failure's
            (``STATUS_TIMEOUT``, ``STATUS_CONNECT``, ...).
        name: the code's name without ``STATUS_`` ("NOTFOUND").
        message: the broker's own message (or the local reason).
        remote: True when the broker refused the request.
    """

    def __init__(self, code, message, remote=True):
        self.code = int(code)
        self.name = status_name(self.code)
        self.message = message
        self.remote = remote
        super().__init__("%s (%s)" % (message, self.name))
