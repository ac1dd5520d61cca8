"""Errors raised by the Shoal client.

Every error the server returns is raised as a :class:`ShoalError` (or the
subclass for its status code) carrying ``.code`` (a ``grpc.StatusCode``) and
``.message`` (the server's text, meant for a person). Bad arguments caught
before any call (a malformed ``where``, mismatched lengths) raise
``ValueError`` instead.
"""
import grpc

__all__ = [
    "ShoalError", "InvalidArgumentError", "NotFoundError", "AlreadyExistsError",
    "ResourceExhaustedError", "FailedPreconditionError", "UnavailableError",
    "DeadlineExceededError", "from_rpc_error",
]


class ShoalError(Exception):
    """A failed call: the gRPC status ``code`` and the server's ``message``.

    ``failed_over`` is True when a client of several coordinators got this
    error from one it turned to after an earlier one answered UNAVAILABLE.
    """

    failed_over = False

    def __init__(self, code, message):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class InvalidArgumentError(ShoalError):
    """INVALID_ARGUMENT: wrong dimension, non-finite values, bad filter, k out of range, ..."""


class NotFoundError(ShoalError):
    """NOT_FOUND: unknown collection."""


class AlreadyExistsError(ShoalError):
    """ALREADY_EXISTS: a collection of that name exists."""


class ResourceExhaustedError(ShoalError):
    """RESOURCE_EXHAUSTED: a request over the server's size limit."""


class FailedPreconditionError(ShoalError):
    """FAILED_PRECONDITION: the cluster cannot do it now (e.g. too few nodes)."""


class UnavailableError(ShoalError):
    """UNAVAILABLE: the server, a node or a shard did not answer."""


class DeadlineExceededError(ShoalError):
    """DEADLINE_EXCEEDED: the call's timeout passed."""


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}


def from_rpc_error(error):
    """The ShoalError for a ``grpc.RpcError`` (the subclass of its code)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else None) or str(error)
    return _BY_CODE.get(code, ShoalError)(code, message)
