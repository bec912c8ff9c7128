"""aura.errors (API.md §9; §15 checks 1, 46; §16 rows 2, 40, 41)."""

from __future__ import annotations

import copy
import pickle

import pytest

from aura import errors
from aura.errors import (
    AuraBackendCapabilityError,
    AuraBackendError,
    AuraCapabilityError,
    AuraConstraintError,
    AuraConstraintViolation,
    AuraError,
    AuraNotLeaderError,
    AuraRetryableTransactionError,
    AuraTransactionError,
    TransactionConflictError,
)

# (class name, base class name, code, retryable default) — the §9 table.
TABLE = [
    ("AuraError", "Exception", "aura_error", False),
    ("AuraConnectionError", "AuraError", "connection_error", True),
    ("AuraClientClosedError", "AuraError", "client_closed", False),
    ("AuraTimeoutError", "AuraError", "timeout", True),
    ("AuraProtocolError", "AuraError", "protocol_error", False),
    ("AuraProtocolVersionError", "AuraProtocolError", "protocol_version_error", False),
    ("AuraQueryError", "AuraError", "query_error", False),
    ("AuraValidationError", "AuraError", "validation_error", False),
    ("AuraSchemaError", "AuraError", "schema_error", False),
    ("AuraAuthenticationError", "AuraError", "authentication_error", False),
    ("AuraAuthorizationError", "AuraError", "authorization_error", False),
    ("AuraServerError", "AuraError", "server_error", True),
    ("AuraNotFoundError", "AuraError", "not_found", False),
    ("AuraConstraintError", "AuraError", "constraint_violation", False),
    ("AuraMigrationError", "AuraError", "migration_error", False),
    ("AuraSerializationError", "AuraError", "serialization_error", False),
    ("AuraTransactionError", "AuraError", "transaction_error", False),
    (
        "AuraRetryableTransactionError",
        "AuraTransactionError",
        "retryable_transaction_error",
        True,
    ),
    (
        "AuraNonRetryableTransactionError",
        "AuraTransactionError",
        "non_retryable_transaction_error",
        False,
    ),
    ("AuraBackendError", "AuraError", "backend_error", False),
    ("AuraBackendCapabilityError", "AuraBackendError", "backend_capability_error", False),
    ("AuraDialectError", "AuraBackendError", "dialect_error", False),
    ("AuraDriverNotInstalledError", "AuraBackendError", "driver_not_installed", False),
    ("RelationshipNotLoadedError", "AuraError", "relationship_not_loaded", False),
]
SECTION_9_NAMES = {row[0] for row in TABLE} | {
    "AuraNotLeaderError",
    "AuraCapabilityError",
    "AuraConstraintViolation",
}


def cls(name: str) -> type[BaseException]:
    return Exception if name == "Exception" else getattr(errors, name)


@pytest.mark.parametrize(("name", "base", "code", "retryable"), TABLE)
def test_class_table(name: str, base: str, code: str, retryable: bool) -> None:
    klass = cls(name)
    assert klass.__bases__ == (cls(base),)
    err = klass("msg")
    assert isinstance(err, AuraError)
    assert (err.code, err.retryable, err.message) == (code, retryable, "msg")
    assert (err.request_id, err.context) == (None, {})
    assert err.args == ("msg",)


def test_section_9_names_are_exported() -> None:
    assert len(SECTION_9_NAMES) == 27
    assert set(errors.__all__) == SECTION_9_NAMES | {"TransactionConflictError"}
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), AuraError)


def test_aliases_check_1() -> None:
    assert AuraCapabilityError is AuraBackendCapabilityError
    assert AuraConstraintViolation is AuraConstraintError


def test_not_leader_class() -> None:
    assert AuraNotLeaderError.__bases__ == (AuraError,)
    err = AuraNotLeaderError("nl")
    assert (err.code, err.retryable) == ("not_leader", False)


def test_transaction_conflict_is_retryable_and_a_constraint_error() -> None:
    err = TransactionConflictError("write-write conflict")
    assert (err.code, err.retryable) == ("conflict", True)
    assert isinstance(err, AuraRetryableTransactionError)
    assert isinstance(err, AuraTransactionError)
    assert isinstance(err, AuraConstraintError)
    with pytest.raises(AuraConstraintError):
        raise err


def test_constructor_overrides() -> None:
    context = {"model": "User"}
    err = errors.AuraTimeoutError(
        "deadline", code="query_timeout", retryable=False, request_id=7, context=context
    )
    assert (err.code, err.retryable, err.request_id) == ("query_timeout", False, 7)
    assert err.context == {"model": "User"}
    context["model"] = "changed"
    assert err.context == {"model": "User"}  # copied
    assert errors.AuraQueryError("x", retryable=1).retryable is True  # type: ignore[arg-type]
    assert AuraError().message == "" and str(AuraError()) == "[aura_error] "


def test_str_and_repr() -> None:
    err = errors.AuraQueryError("limit must be non-negative")
    assert str(err) == "[query_error] limit must be non-negative"
    assert repr(err) == (
        "AuraQueryError(code='query_error', message='limit must be non-negative', "
        "retryable=False, request_id=None)"
    )
    with_id = errors.AuraServerError("boom", request_id=42)
    assert str(with_id) == "[server_error] boom (request_id=42)"
    assert repr(with_id) == (
        "AuraServerError(code='server_error', message='boom', retryable=True, request_id=42)"
    )
    assert str(AuraError("bad dsn", code="config_error")) == "[config_error] bad dsn"
    assert str(errors.AuraServerError("x", request_id=0)) == "[server_error] x (request_id=0)"


# --------------------------------------------------------------------------- not leader


def test_not_leader_check_46() -> None:
    payload = {
        "not_leader": {"leader_client_addr": "10.0.0.2:7171", "leader_id": "n2"},
        "current_node_id": "n1",
    }
    err = AuraNotLeaderError.from_server_payload("nl", payload=payload)
    assert err.leader_addr == "10.0.0.2:7171"
    assert err.leader_client_addr == "10.0.0.2:7171"
    assert err.leader_node_id == "n2"
    assert err.current_node_id == "n1"
    assert err.leader_hint is None
    assert err.retryable is True
    assert err.code == "not_leader"
    assert str(err) == (
        "[not_leader] nl (reached n1; leader at 10.0.0.2:7171; "
        "writes are not retried automatically)"
    )


def test_not_leader_missing_fields_never_raise() -> None:
    for payload in (None, {}, {"not_leader": None}, {"not_leader": "junk"}, "junk"):
        err = AuraNotLeaderError.from_server_payload("nl", payload=payload)  # type: ignore[arg-type]
        assert err.leader_addr is None
        assert err.leader_node_id is None
        assert err.current_node_id is None
        assert err.retryable is False  # no address known, no server flag
        assert str(err) == (
            "[not_leader] nl (reached unknown node; leader unknown; "
            "writes are not retried automatically)"
        )


def test_not_leader_node_without_address() -> None:
    err = AuraNotLeaderError.from_server_payload(
        "nl", request_id=9, payload={"leader_node_id": "n3", "current_node_id": "n1"}
    )
    assert (err.leader_addr, err.leader_node_id, err.retryable) == (None, "n3", False)
    assert str(err) == (
        "[not_leader] nl (reached n1; leader node n3, address unknown; "
        "writes are not retried automatically) (request_id=9)"
    )


def test_not_leader_nested_first_then_top_level() -> None:
    payload = {
        "leader_addr": "top:1",
        "leader_hint": "hint:1",
        "leader_node_id": "top-node",
        "not_leader": {"leader_addr": "nested:1", "leader_id": "nested-node"},
    }
    err = AuraNotLeaderError.from_server_payload("nl", payload=payload)
    assert err.leader_addr == "nested:1"
    assert err.leader_hint == "hint:1"
    assert err.leader_node_id == "nested-node"


def test_not_leader_address_precedence() -> None:
    assert AuraNotLeaderError("x", leader_hint="h:1").leader_addr == "h:1"
    assert AuraNotLeaderError("x", leader_hint="h:1", leader_client_addr="c:1").leader_addr == (
        "c:1"
    )
    both = AuraNotLeaderError("x", leader_addr="a:1", leader_client_addr="c:1", leader_hint="h")
    assert both.leader_addr == "a:1"
    assert both.retryable is True


def test_not_leader_server_retryable_flag_wins() -> None:
    payload = {"leader_addr": "a:1"}
    assert not AuraNotLeaderError.from_server_payload(
        "x", retryable=False, payload=payload
    ).retryable
    assert AuraNotLeaderError.from_server_payload("x", retryable=True).retryable
    assert AuraNotLeaderError("x", retryable=False, leader_addr="a:1").retryable is False


def test_not_leader_keeps_only_routing_fields_row_40() -> None:
    payload = {
        "leader_addr": "a:1",
        "current_node_id": "n1",
        "token": "s3cret",
        "not_leader": {"leader_id": "n2", "row": {"password": "x"}},
    }
    err = AuraNotLeaderError.from_server_payload("nl", payload=payload, request_id=3)
    assert err.raw_payload == {
        "leader_addr": "a:1",
        "current_node_id": "n1",
        "not_leader": {"leader_id": "n2"},
    }
    assert err.context == {
        "leader_addr": "a:1",
        "leader_node_id": "n2",
        "current_node_id": "n1",
    }
    assert "s3cret" not in repr(err.__dict__)
    assert err.request_id == 3


def test_not_leader_direct_raw_payload_and_context() -> None:
    err = AuraNotLeaderError("nl", leader_addr="a:1", context={"op": "insert"}, code="x")
    assert err.raw_payload is None
    assert err.code == "x"
    assert err.context == {"op": "insert", "leader_addr": "a:1"}


# --------------------------------------------------------------------------- pickling


def sample_errors() -> list[AuraError]:
    made: list[AuraError] = [
        getattr(errors, name)("m", request_id=5, context={"k": "v"}) for name, *_ in TABLE
    ]
    made.append(TransactionConflictError("c"))
    made.append(AuraError("bad", code="config_error", retryable=True))
    made.append(
        AuraNotLeaderError.from_server_payload(
            "nl",
            request_id=8,
            payload={"not_leader": {"leader_client_addr": "h:1", "leader_id": "n2"}},
        )
    )
    return made


@pytest.mark.parametrize("err", sample_errors(), ids=lambda e: type(e).__name__)
def test_pickle_round_trip(err: AuraError) -> None:
    for clone in (pickle.loads(pickle.dumps(err)), copy.deepcopy(err), copy.copy(err)):
        assert type(clone) is type(err)
        assert (clone.message, clone.code, clone.retryable, clone.request_id) == (
            err.message,
            err.code,
            err.retryable,
            err.request_id,
        )
        assert clone.context == err.context
        assert clone.args == err.args
        assert str(clone) == str(err) and repr(clone) == repr(err)
        assert vars(clone) == vars(err)


def test_pickled_not_leader_keeps_routing() -> None:
    err = AuraNotLeaderError("nl", leader_addr="a:1", leader_node_id="n2", current_node_id="n1")
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.leader_addr, clone.leader_node_id, clone.current_node_id) == ("a:1", "n2", "n1")
    assert clone.retryable is True


def test_errors_are_catchable_by_base() -> None:
    with pytest.raises(AuraBackendError):
        raise AuraCapabilityError("Backend 'sqlite' does not support ranked full-text search")
