"""Backends: capability records and the DSN → backend registry."""

from aura.backends.capabilities import CAPABILITY_FLAGS, BackendCapabilities
from aura.backends.registry import (
    SCHEME_FAMILY,
    BackendURL,
    backend_family,
    backend_from_config,
    parse_backend_url,
    resolve_backend,
)

__all__ = [
    "CAPABILITY_FLAGS",
    "SCHEME_FAMILY",
    "BackendCapabilities",
    "BackendURL",
    "backend_family",
    "backend_from_config",
    "parse_backend_url",
    "resolve_backend",
]
