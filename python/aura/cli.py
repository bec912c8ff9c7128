"""The ``aura`` command line (API.md §11).

Exit codes: 0 success, 1 ``error: <message>`` on stderr (aura, IO and JSON
errors), 2 usage errors. No command opens a network connection.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from aura import _native, models
from aura._stubs import render_stubs
from aura.backends import registry
from aura.errors import AuraError
from aura.models import AuraModel
from aura.schema import MigrationPlan, diff_schemas, schema_document

__all__ = ["build_parser", "main"]

# Database backends `doctor` reports, with the extra that installs each.
DOCTOR_BACKENDS = ("sqlite", "postgres", "mysql", "mongodb", "redis")
BENCH_DIMENSION = 128


class CliError(Exception):
    """A failure reported as ``error: <message>`` with exit code 1."""


def _version() -> str:
    import aura  # the package __init__ owns the version

    return aura.__version__


# --------------------------------------------------------------------------- loading models


@contextmanager
def _isolated_registry() -> Iterator[None]:
    """Load a module's models without clashing with same-named models loaded
    before (``migrate diff`` loads two versions of one app)."""
    saved = dict(models._REGISTRY.items())
    models._REGISTRY.clear()
    try:
        yield
    finally:
        models._REGISTRY.clear()
        models._REGISTRY.update(saved)


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise CliError(f"No such file: {path}")
    name = path.stem if path.stem not in sys.modules else f"aura_cli_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"Cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # models resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _import_module(target: str) -> ModuleType:
    if target.endswith(".py") or os.sep in target:
        return _import_file(Path(target))
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # the console script does not add it
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        raise CliError(f"Cannot import module '{target}': {exc}") from None


def _own_models(module: ModuleType) -> list[type[AuraModel]]:
    """Model classes defined by ``module`` itself, in definition order."""
    found: dict[str, type[AuraModel]] = {}
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, AuraModel)
            and value is not AuraModel
            and value.__module__ == module.__name__
        ):
            found.setdefault(value.__name__, value)
    return list(found.values())


def _module_document(target: str) -> dict[str, Any]:
    with _isolated_registry():
        return schema_document(_own_models(_import_module(target)))


def _read_json(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"Cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None


def _schema_source(source: str) -> Any:
    return _read_json(source) if source.endswith(".json") else _module_document(source)


def _write_output(text: str, out: str | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"Cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out}")


# --------------------------------------------------------------------------- commands


def _cmd_version(args: argparse.Namespace) -> int:
    print(_version())
    return 0


def _backend_status(family: str) -> str:
    """``available`` only when the backend module is part of this build."""
    module_name = registry.BACKEND_MODULES[family]
    try:
        found = importlib.util.find_spec(module_name) is not None
        module = importlib.import_module(module_name) if found else None
    except ImportError:
        module = None
    # A module whose native driver is not in this build says so (AVAILABLE).
    if (
        module is not None
        and callable(getattr(module, "from_config", None))
        and getattr(module, "AVAILABLE", True)
    ):
        return "available"
    return f"install: aura-connector[{family}]"


def _opentelemetry_installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except ImportError:
        return False


def _cmd_doctor(args: argparse.Namespace) -> int:
    status = _native.native_status()
    print(f"aura_version: {_version()}")
    print(f"python_version: {platform.python_version()}")
    print(f"opentelemetry_installed: {str(_opentelemetry_installed()).lower()}")
    print(f"native_acceleration: {str(status['available']).lower()}")
    print(f"native_backend: {status['backend']}")
    print("backends:")
    for family in DOCTOR_BACKENDS:
        print(f"  {family}: {_backend_status(family)}")
    return 0


def _cmd_schema_compile(args: argparse.Namespace) -> int:
    document = _module_document(args.app)
    _write_output(json.dumps(document, indent=2, sort_keys=True) + "\n", args.out)
    return 0


def _cmd_migrate_diff(args: argparse.Namespace) -> int:
    plan: MigrationPlan = diff_schemas(
        _schema_source(args.from_schema), _schema_source(args.to_schema)
    )
    sys.stdout.write(plan.format())
    if args.require_safe:
        plan.require_safe()
    return 0


def _cmd_explain_file(args: argparse.Namespace) -> int:
    from aura._explain import explain_lines

    ir = _read_json(args.path)
    if not isinstance(ir, dict) or not isinstance(ir.get("operation"), str):
        raise CliError(f"{args.path} is not a Query IR object (no 'operation')")
    print("\n".join(explain_lines(ir)))
    return 0


def _cmd_bench_local(args: argparse.Namespace) -> int:
    values = [float(i % 17) / 16.0 for i in range(BENCH_DIMENSION)]
    started = time.perf_counter()
    for _ in range(args.iterations):
        data = _native.pack_f32_vector(values, BENCH_DIMENSION)
        _native.unpack_f32_vector(data, BENCH_DIMENSION)
    elapsed = time.perf_counter() - started
    if _native.unpack_f32_vector(data, BENCH_DIMENSION) != values:
        raise CliError("vector pack/unpack did not round-trip")
    print(f"native_backend: {_native.native_backend_name()}")
    print(f"iterations: {args.iterations}")
    print(
        f"vector pack/unpack round trip (dim {BENCH_DIMENSION}): "
        f"{elapsed * 1000:.3f} ms total, {elapsed / args.iterations * 1e6:.3f} us/op"
    )
    print("frame encode/decode: not measured (the bundled frame protocol is not in this build)")
    return 0


def _cmd_generate_stubs(args: argparse.Namespace) -> int:
    with _isolated_registry():
        module = _import_module(args.models)
        text = render_stubs(module.__name__, _own_models(module))
    _write_output(text, args.out)
    return 0


# --------------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _group(
    subparsers: Any, name: str, help_text: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    inner = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)
    return inner


def _add_schema_commands(subparsers: Any) -> None:
    schema = _group(subparsers, "schema", "Schema documents.")
    compile_ = schema.add_parser(
        "compile",
        help="Print the schema document of a module's models.",
        description="Print the schema document of a module's own model classes as JSON.",
    )
    compile_.add_argument("--app", required=True, metavar="MODULE", help="module with models")
    compile_.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    compile_.set_defaults(handler=_cmd_schema_compile)

    migrate = _group(subparsers, "migrate", "Schema migrations (local diffing only).")
    diff = migrate.add_parser(
        "diff",
        help="Show the changes between two schemas.",
        description="Show the changes between two schemas (.json documents or modules).",
    )
    diff.add_argument("--from", dest="from_schema", required=True, metavar="A")
    diff.add_argument("--to", dest="to_schema", required=True, metavar="B")
    diff.add_argument(
        "--require-safe", action="store_true", help="exit 1 when a change is destructive"
    )
    diff.set_defaults(handler=_cmd_migrate_diff)


def _add_tool_commands(subparsers: Any) -> None:
    explain = _group(subparsers, "explain", "Static query plans.")
    file_ = explain.add_parser(
        "file",
        help="Describe a Query IR JSON file.",
        description="Print a static plan of a Query IR JSON file (no cost estimate).",
    )
    file_.add_argument("path", metavar="PATH")
    file_.set_defaults(handler=_cmd_explain_file)

    bench = _group(subparsers, "bench", "Local micro-benchmarks.")
    local = bench.add_parser(
        "local",
        help="Time vector pack/unpack round trips.",
        description="Time vector pack/unpack round trips in this process.",
    )
    local.add_argument("--iterations", type=_positive_int, default=20000, metavar="N")
    local.set_defaults(handler=_cmd_bench_local)

    generate = _group(subparsers, "generate", "Code generation.")
    stubs = generate.add_parser(
        "stubs",
        help="Write a .pyi stub of a module's models.",
        description="Write a .pyi stub reflecting the declared annotations of model classes.",
    )
    stubs.add_argument("--models", required=True, metavar="MODULE|FILE.py")
    stubs.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    stubs.set_defaults(handler=_cmd_generate_stubs)


def _add_serve_command(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="Serve an in-memory engine over AWP 1 (and the bundled protocol).",
        description=(
            "Serve a new in-memory engine over AWP 1 (auradb://, or auradbs:// with "
            "--tls-cert and --tls-key) until interrupted; --bundled-port also serves "
            "it over the bundled protocol (aura://, auras://). The token is read from an "
            "environment variable, never from the command line, so it stays out of "
            "process listings."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7171, help="0 picks a free port")
    serve.add_argument(
        "--token-env",
        metavar="NAME",
        default="AURA_SERVE_TOKEN",
        help="environment variable holding the auth token (unset: no auth)",
    )
    serve.add_argument("--tls-cert", metavar="PEM")
    serve.add_argument("--tls-key", metavar="PEM")
    serve.add_argument(
        "--bundled-port",
        type=int,
        metavar="PORT",
        help="also serve the bundled protocol (aura://) on PORT, same engine (0: free port)",
    )
    serve.set_defaults(handler=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    import os

    from aura.server import serve

    if (args.tls_cert is None) != (args.tls_key is None):
        raise CliError("--tls-cert and --tls-key go together")
    token = os.environ.get(args.token_env) or None
    serve(
        args.host,
        args.port,
        token=token,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        bundled_port=args.bundled_port,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aura",
        description="aura-connector command line tools (only `serve` opens a network socket).",
    )
    parser.add_argument("--version", action="version", version=f"aura {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    version = subparsers.add_parser("version", help="Print the package version.")
    version.set_defaults(handler=_cmd_version)
    doctor = subparsers.add_parser(
        "doctor",
        help="Report the environment.",
        description="Report versions, native acceleration and which backends are built in.",
    )
    doctor.set_defaults(handler=_cmd_doctor)
    _add_schema_commands(subparsers)
    _add_tool_commands(subparsers)
    _add_serve_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version (0) and usage errors (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        code: int = args.handler(args)
    except AuraError as exc:
        return _fail(exc.message)
    except CliError as exc:
        return _fail(str(exc))
    return code


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
