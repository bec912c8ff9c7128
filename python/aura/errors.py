"""The aura exception taxonomy (API.md §9).

Every error carries a stable ``code``, a ``retryable`` flag, an optional
``request_id`` and a ``context`` dict of non-secret data. Messages name
fields, models, hosts and codes, never credentials or bound values.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuraAuthenticationError",
    "AuraAuthorizationError",
    "AuraBackendCapabilityError",
    "AuraBackendError",
    "AuraCapabilityError",
    "AuraClientClosedError",
    "AuraConnectionError",
    "AuraConstraintError",
    "AuraConstraintViolation",
    "AuraDialectError",
    "AuraDriverNotInstalledError",
    "AuraError",
    "AuraMigrationError",
    "AuraNonRetryableTransactionError",
    "AuraNotFoundError",
    "AuraNotLeaderError",
    "AuraProtocolError",
    "AuraProtocolVersionError",
    "AuraQueryError",
    "AuraRetryableTransactionError",
    "AuraSchemaError",
    "AuraSerializationError",
    "AuraServerError",
    "AuraTimeoutError",
    "AuraTransactionError",
    "AuraValidationError",
    "RelationshipNotLoadedError",
    "TransactionConflictError",
]


class AuraError(Exception):
    """Base of every aura error."""

    default_code: ClassVar[str] = "aura_error"
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        retryable: bool | None = None,
        request_id: int | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.retryable = self.default_retryable if retryable is None else bool(retryable)
        self.request_id = request_id
        self.context: dict[str, Any] = dict(context) if context else {}

    def __str__(self) -> str:
        text = f"[{self.code}] {self.message}"
        if self.request_id is not None:
            text += f" (request_id={self.request_id})"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"retryable={self.retryable!r}, request_id={self.request_id!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # The state (third item) restores subclass attributes such as
        # AuraNotLeaderError.leader_addr, which _rebuild alone would lose.
        return (
            _rebuild,
            (type(self), self.message, self.code, self.retryable, self.request_id, self.context),
            dict(self.__dict__),
        )


def _rebuild(
    cls: type[AuraError],
    message: str,
    code: str,
    retryable: bool,
    request_id: int | None,
    context: dict[str, Any],
) -> AuraError:
    err = cls.__new__(cls)
    AuraError.__init__(
        err, message, code=code, retryable=retryable, request_id=request_id, context=context
    )
    return err


class AuraConnectionError(AuraError):
    default_code = "connection_error"
    default_retryable = True


class AuraClientClosedError(AuraError):
    default_code = "client_closed"


class AuraTimeoutError(AuraError):
    default_code = "timeout"
    default_retryable = True


class AuraProtocolError(AuraError):
    default_code = "protocol_error"


class AuraProtocolVersionError(AuraProtocolError):
    default_code = "protocol_version_error"


class AuraQueryError(AuraError):
    default_code = "query_error"


class AuraValidationError(AuraError):
    default_code = "validation_error"


class AuraSchemaError(AuraError):
    default_code = "schema_error"


class AuraAuthenticationError(AuraError):
    default_code = "authentication_error"


class AuraAuthorizationError(AuraError):
    default_code = "authorization_error"


class AuraServerError(AuraError):
    default_code = "server_error"
    default_retryable = True


class AuraNotFoundError(AuraError):
    default_code = "not_found"


class AuraConstraintError(AuraError):
    default_code = "constraint_violation"


AuraConstraintViolation = AuraConstraintError


class AuraMigrationError(AuraError):
    default_code = "migration_error"


class AuraSerializationError(AuraError):
    default_code = "serialization_error"


class AuraTransactionError(AuraError):
    default_code = "transaction_error"


class AuraRetryableTransactionError(AuraTransactionError):
    default_code = "retryable_transaction_error"
    default_retryable = True


class AuraNonRetryableTransactionError(AuraTransactionError):
    default_code = "non_retryable_transaction_error"


class TransactionConflictError(AuraRetryableTransactionError, AuraConstraintError):
    """A first-committer-wins commit conflict (code ``conflict``, retryable).

    It is both a retryable transaction error and a constraint error, so
    ``except AuraConstraintError`` clauses keep catching it (API.md §16 row 2).
    """

    default_code = "conflict"
    default_retryable = True


class AuraBackendError(AuraError):
    default_code = "backend_error"


class AuraBackendCapabilityError(AuraBackendError):
    default_code = "backend_capability_error"


AuraCapabilityError = AuraBackendCapabilityError


class AuraDialectError(AuraBackendError):
    default_code = "dialect_error"


class AuraDriverNotInstalledError(AuraBackendError):
    default_code = "driver_not_installed"


class RelationshipNotLoadedError(AuraError):
    default_code = "relationship_not_loaded"


_NOT_LEADER_FIELDS = (
    "leader_hint",
    "leader_addr",
    "leader_client_addr",
    "leader_node_id",
    "current_node_id",
)


class AuraNotLeaderError(AuraError):
    """A write reached a follower; carries the routing hints the server gave."""

    default_code = "not_leader"

    def __init__(
        self,
        message: str = "",
        *,
        leader_hint: str | None = None,
        leader_addr: str | None = None,
        leader_client_addr: str | None = None,
        leader_node_id: str | None = None,
        current_node_id: str | None = None,
        raw_payload: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        self.leader_hint = leader_hint
        self.leader_client_addr = leader_client_addr
        self.leader_addr = leader_addr or leader_client_addr or leader_hint
        self.leader_node_id = leader_node_id
        self.current_node_id = current_node_id
        self.raw_payload = _routing_only(raw_payload)
        if kw.get("retryable") is None:
            kw["retryable"] = self.leader_addr is not None
        context = dict(kw.pop("context", None) or {})
        context.update({k: v for k, v in self._routing().items() if v is not None})
        super().__init__(message, context=context, **kw)

    def _routing(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _NOT_LEADER_FIELDS}

    @classmethod
    def from_server_payload(
        cls,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        request_id: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> AuraNotLeaderError:
        payload = payload if isinstance(payload, dict) else {}
        nested = payload.get("not_leader")
        nested = nested if isinstance(nested, dict) else {}

        def pick(*names: str) -> Any:
            for source in (nested, payload):
                for name in names:
                    value = source.get(name)
                    if value is not None:
                        return value
            return None

        return cls(
            message,
            leader_hint=pick("leader_hint"),
            leader_addr=pick("leader_addr"),
            leader_client_addr=pick("leader_client_addr"),
            leader_node_id=pick("leader_node_id", "leader_id"),
            current_node_id=pick("current_node_id"),
            raw_payload=payload,
            code=code,
            retryable=retryable,
            request_id=request_id,
        )

    def __str__(self) -> str:
        node = self.current_node_id or "unknown node"
        if self.leader_addr:
            leader = f"leader at {self.leader_addr}"
        elif self.leader_node_id:
            leader = f"leader node {self.leader_node_id}, address unknown"
        else:
            leader = "leader unknown"
        text = (
            f"[{self.code}] {self.message} (reached {node}; {leader}; "
            "writes are not retried automatically)"
        )
        if self.request_id is not None:
            text += f" (request_id={self.request_id})"
        return text


def _routing_only(payload: dict[str, Any] | None) -> dict[str, Any] | None:
    """Keep only the known routing fields of a not-leader payload (§16 row 40)."""
    if not isinstance(payload, dict):
        return None
    keep = (*_NOT_LEADER_FIELDS, "leader_id")
    out: dict[str, Any] = {k: payload[k] for k in keep if k in payload}
    nested = payload.get("not_leader")
    if isinstance(nested, dict):
        out["not_leader"] = {k: nested[k] for k in keep if k in nested}
    return out
