"""aura-connector: an async, typed data connector with a Rust core.

Declare models, compose immutable queries that compile to one Query IR, and
run them against the backend a DSN names (API.md).
"""

from aura._native import native_status
from aura.backends import BackendCapabilities, resolve_backend
from aura.backends.base import Backend, BackendResult
from aura.client import Aura, Client, LeaderRedirect, Transaction, connect
from aura.config import (
    ClientConfig,
    PasswordAuth,
    PoolConfig,
    RetryPolicy,
    TLSConfig,
    TokenAuth,
    parse_dsn,
)
from aura.errors import (
    AuraAuthenticationError,
    AuraAuthorizationError,
    AuraBackendCapabilityError,
    AuraBackendError,
    AuraCapabilityError,
    AuraClientClosedError,
    AuraConnectionError,
    AuraConstraintError,
    AuraConstraintViolation,
    AuraDialectError,
    AuraDriverNotInstalledError,
    AuraError,
    AuraMigrationError,
    AuraNonRetryableTransactionError,
    AuraNotFoundError,
    AuraNotLeaderError,
    AuraProtocolError,
    AuraProtocolVersionError,
    AuraQueryError,
    AuraRetryableTransactionError,
    AuraSchemaError,
    AuraSerializationError,
    AuraServerError,
    AuraTimeoutError,
    AuraTransactionError,
    AuraValidationError,
    RelationshipNotLoadedError,
)
from aura.fields import Field, FieldInfo
from aura.models import AuraModel, Model, get_model, registered_models
from aura.observability import LatencyHistogram, Metrics, TelemetryConfig, query_fingerprint
from aura.query import (
    AggregateResult,
    FieldReference,
    QueryBuilder,
    SearchResultPage,
    and_,
    not_,
    or_,
)
from aura.schema import (
    Change,
    LockImpactEstimate,
    MigrationPlan,
    ModelSchema,
    diff_schemas,
    generate_migration,
    schema_document,
    schema_json,
)
from aura.scores import SearchScores, search_scores
from aura.vectors import Vector

__version__ = "0.1.0"

__all__ = [
    # client
    "Aura",
    "Client",
    "LeaderRedirect",
    "Transaction",
    "connect",
    # models
    "AuraModel",
    "Field",
    "FieldInfo",
    "Model",
    "Vector",
    "get_model",
    "registered_models",
    # query
    "AggregateResult",
    "FieldReference",
    "QueryBuilder",
    "SearchResultPage",
    "and_",
    "not_",
    "or_",
    # scores
    "SearchScores",
    "search_scores",
    # schema
    "ModelSchema",
    "schema_document",
    "schema_json",
    # migrations
    "Change",
    "LockImpactEstimate",
    "MigrationPlan",
    "diff_schemas",
    "generate_migration",
    # observability
    "LatencyHistogram",
    "Metrics",
    "TelemetryConfig",
    "query_fingerprint",
    # native
    "native_status",
    # backends
    "Backend",
    "BackendCapabilities",
    "BackendResult",
    "resolve_backend",
    # config
    "ClientConfig",
    "PasswordAuth",
    "PoolConfig",
    "RetryPolicy",
    "TLSConfig",
    "TokenAuth",
    "parse_dsn",
    # errors
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
]
