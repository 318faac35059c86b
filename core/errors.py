"""One error hierarchy for kgrag. Every error carries a message that names what is wrong and what to do."""

from __future__ import annotations


class KgragError(Exception):
    """Root of every error kgrag raises on purpose; the CLI and API turn these into one clear line."""

    #: HTTP status the API maps this error to.
    http_status: int = 500
    #: Short machine-readable slug used in API problem documents.
    code: str = "internal-error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigurationError(KgragError):
    """A setting is missing or invalid."""

    http_status = 500
    code = "configuration-error"


class InputError(KgragError):
    """The caller's input is invalid (an empty question, an unsupported file)."""

    http_status = 422
    code = "invalid-input"


class StoreNotFoundError(KgragError):
    """The store directory does not exist or holds no ingested documents."""

    http_status = 503
    code = "store-not-found"


class StoreCorruptError(KgragError):
    """A store file exists but cannot be read."""

    http_status = 503
    code = "store-corrupt"


class ModelUnavailableError(KgragError):
    """The model server cannot be reached or answered with an error."""

    http_status = 503
    code = "model-unavailable"


class ModelOutputError(KgragError):
    """The model answered, but not in the shape that was asked for (for example invalid JSON)."""

    http_status = 502
    code = "model-output-invalid"


class DocumentParseError(KgragError):
    """A source file could not be read or parsed; ingestion reports it and skips the file."""

    http_status = 422
    code = "document-unreadable"


class PromptError(KgragError):
    """A prompt template is missing, malformed, or was rendered with the wrong inputs."""

    http_status = 500
    code = "prompt-error"


class WorkflowBuildError(KgragError):
    """A workflow declaration is invalid: unknown step, unbound input, type mismatch, or a cycle."""

    http_status = 500
    code = "workflow-invalid"


class WorkflowStepError(KgragError):
    """A workflow step failed after its retries and no fallback handled it."""

    http_status = 500
    code = "workflow-step-failed"

    def __init__(self, message: str, *, step: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.step = step


class AnswerNotFoundError(KgragError):
    """No stored answer has the requested id."""

    http_status = 404
    code = "answer-not-found"


class StoreBusyError(KgragError):
    """Another ingestion run holds the store's lock."""

    http_status = 409
    code = "store-busy"


class AuthenticationError(KgragError):
    """No API key, or one that matches no configured key."""

    http_status = 401
    code = "unauthorized"


class PermissionDeniedError(KgragError):
    """The API key is valid but lacks the role the endpoint needs."""

    http_status = 403
    code = "forbidden"


class PayloadTooLargeError(KgragError):
    """A request body is over the configured size limit."""

    http_status = 413
    code = "payload-too-large"


class ModelNotFoundError(KgragError):
    """A chat request names a model (answer workflow) that this server does not offer."""

    http_status = 404
    code = "model-not-found"


class GraphBackendError(KgragError):
    """The configured graph database (Neo4j-compatible, over Bolt) cannot be reached or used."""

    http_status = 503
    code = "graph-backend-unavailable"


class UnsupportedMediaTypeError(KgragError):
    """An uploaded file (or a request body) is of a type kgrag does not ingest."""

    http_status = 415
    code = "unsupported-media-type"


class DocumentNotFoundError(KgragError):
    """No indexed document has the requested id."""

    http_status = 404
    code = "document-not-found"


class JobNotFoundError(KgragError):
    """No background job has the requested id."""

    http_status = 404
    code = "job-not-found"


class IngestEngineError(KgragError):
    """The ingestion engine could not run: the Ray cluster is unreachable, or a Ray task or actor failed."""

    http_status = 503
    code = "ingest-engine-unavailable"


class ReviewConflictError(KgragError):
    """A review that does not fit the answer's state (e.g. reviewing an answer the gate did not hold)."""

    http_status = 409
    code = "review-conflict"


class RetryLaterError(KgragError):
    """The request was refused or stopped for now; ``retry_after_s`` says when to try again (``Retry-After``)."""

    http_status = 503
    code = "retry-later"

    def __init__(self, message: str, *, retry_after_s: float = 1.0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s


class QueueFullError(RetryLaterError):
    """The model's admission queue is full: more answers are waiting than ``KGRAG_ADMISSION__QUEUE_DEPTH``."""

    http_status = 429
    code = "queue-full"


class OverloadedError(RetryLaterError):
    """The answer could not start (or finish) within its deadline behind the work queued ahead of it."""

    http_status = 503
    code = "overloaded"


class ShuttingDownError(RetryLaterError):
    """The server is shutting down and admits no new model work."""

    http_status = 503
    code = "shutting-down"


class RequestCancelledError(RetryLaterError):
    """A request's work was stopped: its deadline passed, its client left, or the server is shutting down."""

    http_status = 503
    code = "request-cancelled"


class ModelCircuitOpenError(RetryLaterError):
    """The breaker on the model endpoint is open after consecutive failures: answers fail fast until its cool-down
    ends (``Retry-After``)."""

    http_status = 503
    code = "model-circuit-open"
