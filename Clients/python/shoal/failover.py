"""Calls to one of several coordinators, failing over on UNAVAILABLE.

Every coordinator of a cluster serves the same VectorStore API from the same
cluster metadata, so a call one of them cannot answer can go to another.
:class:`Coordinators` keeps one channel per address and sends each call to
one coordinator at a time: the one that answered last (sticky; an answer
that is an error other than UNAVAILABLE counts). When that
call fails with UNAVAILABLE (the coordinator is down, was killed mid-call, or
could not reach a node) it goes to the next address, then the next, cycling;
after each full round that every coordinator failed it waits a short backoff
(``INITIAL_BACKOFF`` doubling up to ``MAX_BACKOFF``). Every attempt, and every
wait, stays inside the call's one deadline (``timeout`` seconds from the
start of the call; never beyond it). With ``timeout=None`` it gives up after
``ROUNDS_WITHOUT_DEADLINE`` rounds. Any other status is final at once.

Which calls are retried, and why that is safe, is the client's business (see
``Client``): this module retries whatever it is given and tells the caller,
through :attr:`ShoalError.failed_over`, that an error came after a failover.
"""
import time

import grpc

from shoal.v1 import vector_store_pb2_grpc

from .errors import ShoalError, UnavailableError, from_rpc_error

__all__ = ["Coordinators", "parse_addresses", "INITIAL_BACKOFF", "MAX_BACKOFF", "ROUNDS_WITHOUT_DEADLINE",
           "RECONNECT_OPTIONS"]

#: Seconds to wait after the first round in which every coordinator failed ...
INITIAL_BACKOFF = 0.05
#: ... doubling after each further round, up to this.
MAX_BACKOFF = 1.0
#: With no deadline (timeout=None), how many rounds before the call fails.
ROUNDS_WITHOUT_DEADLINE = 3
#: Channel options of a client of several coordinators: a channel whose
#: coordinator was down retries the connection at least every second (gRPC's
#: default backoff grows to 2 minutes), so one that comes back is used at once.
#: The same numbers as the Swift channel's (Sources/CGRPCBridge/client.cpp).
RECONNECT_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                     ("grpc.max_reconnect_backoff_ms", 1000)]


def parse_addresses(address):
    """The coordinator addresses in ``"h1:p1,h2:p2"`` or a list of ``"host:port"``."""
    parts = address.split(",") if isinstance(address, str) else list(address)
    addresses = [a.strip() for a in parts if isinstance(a, str) and a.strip()]
    if not addresses or len(addresses) != len(parts):
        raise ValueError(f"address: expected 'host:port', several comma-separated, or a list of them; got {address!r}")
    return addresses


class Coordinators:
    """One channel (and stub) per coordinator; see the module's doc comment."""

    def __init__(self, addresses, options=(), channels=None):
        self.addresses = list(addresses)
        self._channels = channels or [grpc.insecure_channel(a, options=list(options)) for a in self.addresses]
        self._stubs = [vector_store_pb2_grpc.VectorStoreStub(c) for c in self._channels]
        self._current = 0  # the one that answered last; a plain int, so threads may share it

    @property
    def current(self):
        """The address calls go to first."""
        return self.addresses[self._current]

    def close(self):
        for channel in self._channels:
            channel.close()

    def call(self, method, request, timeout):
        """The reply of ``method`` from the first coordinator that answers.

        Raises the ShoalError of the first status other than UNAVAILABLE
        (``failed_over`` set when an earlier attempt was UNAVAILABLE), or an
        UnavailableError naming every address when none answered in time.
        """
        if len(self._stubs) == 1:
            return self._attempt(0, method, request, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        start, failures, backoff = self._current, {}, INITIAL_BACKOFF
        for attempt in _attempts(len(self._stubs), deadline is None):
            index = (start + attempt) % len(self._stubs)
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                break
            try:
                reply = self._attempt(index, method, request, remaining)
            except UnavailableError as error:
                failures[self.addresses[index]] = error.message
                if (attempt + 1) % len(self._stubs) == 0:  # a whole round failed
                    left = _remaining(deadline)
                    time.sleep(backoff if left is None else max(0.0, min(backoff, left)))
                    backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            except ShoalError as error:
                self._current = index  # it answered, if only with an error
                error.failed_over = bool(failures)
                raise
            self._current = index
            return reply
        tried = "; ".join(f"{address}: {message}" for address, message in failures.items())
        raise UnavailableError(grpc.StatusCode.UNAVAILABLE, f"no coordinator answered: {tried or 'the timeout passed'}")

    def _attempt(self, index, method, request, timeout):
        try:
            return getattr(self._stubs[index], method)(request, timeout=timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None


def _attempts(count, bounded):
    """Attempt numbers 0, 1, 2, ...: endless (the deadline ends them), or
    ROUNDS_WITHOUT_DEADLINE rounds of ``count`` when there is no deadline."""
    attempt = 0
    while not bounded or attempt < count * ROUNDS_WITHOUT_DEADLINE:
        yield attempt
        attempt += 1


def _remaining(deadline):
    return None if deadline is None else deadline - time.monotonic()
