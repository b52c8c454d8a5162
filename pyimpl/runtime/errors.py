"""Typed runtime errors: every failure a caller can see is a DynamoError subclass."""


class DynamoError(Exception):
    """Base of all runtime errors."""


class ConfigurationError(DynamoError):
    """An invalid runtime configuration (e.g. the inproc plane with non-mem discovery)."""


class NoInstancesError(DynamoError):
    """No live instance can serve the endpoint (or the chosen instance is gone)."""


class EndpointNotFoundError(NoInstancesError, TimeoutError):
    """The endpoint never appeared within the client's timeout, or the instance does not serve it.
    Also a TimeoutError, so callers of wait_for_instances(timeout) may catch either."""


class DisconnectedError(DynamoError):
    """The connection to the instance was lost."""


class ConnectError(DisconnectedError, ConfigurationError):
    """The runtime cannot reach its deployment (e.g. no NATS server at the configured URL): the
    service is unavailable, which may also mean the URL is wrong."""


class StreamIncompleteError(DisconnectedError):
    """A response stream ended before its end marker (worker died or went away mid-stream)."""


class StreamInterruptedError(DynamoError):
    """Messages of a stream may have been lost in transit (the connection to the NATS server dropped and came
    back): the stream cannot be trusted to complete, though its instance may be fine (not a DisconnectedError,
    so the instance stays in rotation)."""


class CancelledError(DynamoError):
    """The stream was cancelled (its context was stopped or killed)."""


class RemoteHandlerError(DynamoError):
    """The remote handler raised; `message` carries its text."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class PayloadTooLargeError(DynamoError):
    """A payload exceeds what the request plane can carry."""
