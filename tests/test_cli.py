"""The ``aura`` command line, run as a subprocess (API.md §11, §16 row 48)."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import aura
from aura import cli
from aura.backends import registry

COMMANDS = [
    [],
    ["version"],
    ["doctor"],
    ["schema"],
    ["schema", "compile"],
    ["migrate"],
    ["migrate", "diff"],
    ["explain"],
    ["explain", "file"],
    ["bench"],
    ["bench", "local"],
    ["serve"],
    ["generate"],
    ["generate", "stubs"],
]

APP_V1 = """
from aura import Field, Model, Vector


class CliAuthor(Model):
    id: int = Field(primary_key=True)
    name: str
    books: list["CliBook"]


class CliBook(Model):
    id: int = Field(primary_key=True)
    title: str
    author: CliAuthor | None = None
    embedding: Vector[3]
"""

APP_V2 = """
import enum
import uuid

from aura import Field, Model, Vector


class CliMood(enum.Enum):
    HAPPY = "happy"


class CliAuthor(Model):
    id: int = Field(primary_key=True)
    name: str = Field(alias="full_name")
    books: list["CliBook"]


class CliBook(Model):
    id: int = Field(primary_key=True)
    title: str = Field(full_text=True)
    author: CliAuthor | None = Field(default=None, on_delete="cascade")
    embedding: Vector[3] = Field(vector_index="hnsw")
    tags: list[str] = Field(default_factory=list)
    mood: CliMood = CliMood.HAPPY
    ref: uuid.UUID | None = None
    meta: dict
"""


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aura.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


@pytest.fixture
def apps(tmp_path: Path) -> Path:
    (tmp_path / "cliapp_v1.py").write_text(APP_V1)
    (tmp_path / "cliapp_v2.py").write_text(APP_V2)
    return tmp_path


# --------------------------------------------------------------------------- basics


def test_version_commands() -> None:
    assert run("--version").stdout == f"aura {aura.__version__}\n"
    result = run("version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{aura.__version__}\n", "")


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "aura"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (0, f"aura {aura.__version__}\n")


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: aura {' '.join(command)}".rstrip())
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("nope",), "argument COMMAND: invalid choice: 'nope'"),
        (("schema", "compile"), "the following arguments are required: --app"),
        (("migrate", "diff", "--from", "a.json"), "the following arguments are required: --to"),
        (("bench", "local", "--iterations", "0"), "must be a positive integer, got '0'"),
        (("bench", "local", "--iterations", "x"), "must be a positive integer, got 'x'"),
        (("explain", "file"), "the following arguments are required: PATH"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.startswith("usage: aura")


def test_main_in_process_returns_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out == f"{aura.__version__}\n"
    assert cli.main(["bench", "local", "--iterations", "-3"]) == 2
    assert capsys.readouterr().err.endswith("must be a positive integer, got '-3'\n")
    assert cli.main(["explain", "file", "/nonexistent/ir.json"]) == 1
    assert capsys.readouterr().err == (
        "error: Cannot read /nonexistent/ir.json: No such file or directory\n"
    )
    assert isinstance(cli.build_parser().parse_args(["doctor"]).handler, type(cli.main))


# --------------------------------------------------------------------------- doctor


def test_doctor() -> None:
    result = run("doctor")
    status = aura.native_status()
    assert result.returncode == 0 and result.stderr == ""
    try:
        import opentelemetry.trace  # noqa: F401

        otel = "true"
    except ImportError:
        otel = "false"
    assert result.stdout == (
        f"aura_version: {aura.__version__}\n"
        f"python_version: {platform.python_version()}\n"
        f"opentelemetry_installed: {otel}\n"
        f"native_acceleration: {str(status['available']).lower()}\n"
        f"native_backend: {status['backend']}\n"
        "backends:\n"
        # Built into the Rust core (postgres/mysql/mongodb/redis: cargo features on by default).
        "  sqlite: available\n"
        "  postgres: available\n"
        "  mysql: available\n"
        "  mongodb: available\n"
        "  redis: available\n"
    )


def test_doctor_reports_a_built_in_backend_as_available(monkeypatch: pytest.MonkeyPatch) -> None:
    modules = {**registry.BACKEND_MODULES, "sqlite": "aura.backends.memory"}
    monkeypatch.setattr(registry, "BACKEND_MODULES", modules)
    assert cli._backend_status("sqlite") == "available"
    # Importable but without a backend factory is not "available".
    monkeypatch.setattr(registry, "BACKEND_MODULES", {**modules, "redis": "aura.errors"})
    assert cli._backend_status("redis") == "install: aura-connector[redis]"
    assert cli._backend_status("mysql") == "available"  # built into the Rust core


def test_doctor_reports_a_driver_left_out_of_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from aura.backends import mongodb, redis

    assert cli._backend_status("mongodb") == "available"
    assert cli._backend_status("redis") == "available"
    monkeypatch.setattr(mongodb, "AVAILABLE", False)
    monkeypatch.setattr(redis, "AVAILABLE", False)
    assert cli._backend_status("mongodb") == "install: aura-connector[mongodb]"
    assert cli._backend_status("redis") == "install: aura-connector[redis]"


# --------------------------------------------------------------------------- schema / migrate


def test_schema_compile_prints_sorted_indented_document(apps: Path) -> None:
    result = run("schema", "compile", "--app", "cliapp_v1", cwd=apps)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert result.stdout == json.dumps(document, indent=2, sort_keys=True) + "\n"
    assert [m["name"] for m in document["models"]] == ["CliAuthor", "CliBook"]
    assert document["models"][1]["relationships"] == [
        {"kind": "link", "name": "author", "target": "CliAuthor"}
    ]


def test_schema_compile_out_file(apps: Path) -> None:
    result = run("schema", "compile", "--app", "cliapp_v1.py", "--out", "s.json", cwd=apps)
    assert (result.returncode, result.stdout, result.stderr) == (0, "wrote s.json\n", "")
    compiled = run("schema", "compile", "--app", "cliapp_v1", cwd=apps).stdout
    assert (apps / "s.json").read_text() == compiled


def test_schema_compile_unknown_module_exits_1(tmp_path: Path) -> None:
    result = run("schema", "compile", "--app", "cli_no_such_module", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "error: Cannot import module 'cli_no_such_module': No module named 'cli_no_such_module'\n"
    )


def test_migrate_diff_between_modules_and_files(apps: Path) -> None:
    run("schema", "compile", "--app", "cliapp_v1", "--out", "v1.json", cwd=apps)
    from_module = run("migrate", "diff", "--from", "cliapp_v1", "--to", "cliapp_v2", cwd=apps)
    from_json = run("migrate", "diff", "--from", "v1.json", "--to", "cliapp_v2.py", cwd=apps)
    assert from_module.returncode == 0, from_module.stderr
    assert from_module.stdout == from_json.stdout
    lines = from_module.stdout.splitlines()
    assert lines[:3] == [
        "# Aura migration",
        "",
        "Schema format 1 -> 1; 8 change(s), 2 destructive.",
    ]
    assert (
        '- alter_field CliAuthor.name [DESTRUCTIVE]: storage_name: "name" -> "full_name"' in lines
    )
    assert (
        "- add_field CliBook.meta [DESTRUCTIVE]: add field meta: dict (NOT NULL without default)"
        in lines
    )
    assert '- alter_field CliBook.embedding: vector_index: null -> "hnsw"' in lines
    assert "- alter_field CliBook.title: full_text: false -> true" in lines
    assert (
        "- alter_relationship CliBook.author: author: link -> CliAuthor => "
        "author: link -> CliAuthor (on_delete cascade)" in lines
    )


def test_migrate_diff_require_safe(apps: Path) -> None:
    safe = run(
        "migrate", "diff", "--from", "cliapp_v1", "--to", "cliapp_v1", "--require-safe", cwd=apps
    )
    assert (safe.returncode, safe.stdout, safe.stderr) == (
        0,
        "# Aura migration\n\nNo schema changes detected.\n",
        "",
    )
    unsafe = run(
        "migrate", "diff", "--from", "cliapp_v1", "--to", "cliapp_v2", "--require-safe", cwd=apps
    )
    assert unsafe.returncode == 1
    assert unsafe.stdout.startswith("# Aura migration\n")
    assert (
        unsafe.stderr == "error: Migration has destructive changes: CliAuthor.name, CliBook.meta\n"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "{not json",
            "bad.json is not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        (
            '{"format_version": 9, "models": []}',
            "Unsupported schema format_version 9 in the old schema",
        ),
        ('"text"', "The old schema must be a schema document or a list of model dicts, got str"),
    ],
)
def test_migrate_diff_bad_inputs_exit_1(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.json").write_text(content)
    (tmp_path / "empty.json").write_text('{"format_version": 1, "models": []}')
    result = run("migrate", "diff", "--from", "bad.json", "--to", "empty.json", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"error: {message}\n")


def test_migrate_diff_missing_file_exits_1(tmp_path: Path) -> None:
    result = run("migrate", "diff", "--from", "gone.json", "--to", "gone.json", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "error: Cannot read gone.json: No such file or directory\n"


# --------------------------------------------------------------------------- explain


def write_ir(tmp_path: Path, ir: dict[str, Any]) -> str:
    path = tmp_path / "ir.json"
    path.write_text(json.dumps(ir))
    return str(path)


def field(name: str) -> dict[str, Any]:
    return {"kind": "field", "model": "CliDoc", "field": name}


SECRET_FILTER = {
    "kind": "compare",
    "op": "eq",
    "left": field("title"),
    "right": {"kind": "literal", "value": "s3cret"},
}


def test_explain_hybrid_row_48(tmp_path: Path) -> None:
    ir = {
        "operation": "select",
        "model": "CliDoc",
        "filters": [SECRET_FILTER],
        "limit": 5,
        "hybrid": {
            "text_field": "body",
            "text_query": "s3cret words",
            "vector_field": "embedding",
            "vector": [0.25, 0.5, 0.75],
            "top_k": 5,
            "metric": "dot",
            "weights": {"text": 0.3, "vector": 0.7},
            "fusion": "reciprocal_rank_fusion",
            "operator": "and",
        },
        "consistency": "eventual",
        "timeout_ms": 250,
    }
    result = run("explain", "file", write_ir(tmp_path, ir))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == textwrap.dedent(
        """\
        operation: select
        model: CliDoc
        retrieval: hybrid (reciprocal_rank_fusion: text field body + vector field embedding, \
metric dot, top_k 5)
        filters: 1 (combined with AND)
        sort terms: 0
        limit: 5
        consistency: eventual
        timeout_ms: 250
        cost: not estimated (static plan)
        """
    )
    assert "s3cret" not in result.stdout and "0.25" not in result.stdout


def test_explain_text_search_row_48(tmp_path: Path) -> None:
    ir = {
        "operation": "select",
        "model": "CliDoc",
        "projection": ["title", "body"],
        "include": [{"link": "author", "limit": 2}],
        "sort": [{"field": "id", "direction": "desc"}, {"field": "title", "direction": "asc"}],
        "limit": 10,
        "offset": 20,
        "text_search": {"field": "body", "query": "s3cret", "operator": "or", "rank": "bm25"},
        "consistency": "strong",
    }
    result = run("explain", "file", write_ir(tmp_path, ir))
    assert result.stdout == textwrap.dedent(
        """\
        operation: select
        model: CliDoc
        retrieval: ranked full-text (bm25 on body, operator or)
        filters: 0 (combined with AND)
        sort terms: 2 (id desc, title asc)
        projection: title, body
        include: author
        limit: 10
        offset: 20
        consistency: strong
        cost: not estimated (static plan)
        """
    )


@pytest.mark.parametrize(
    ("clauses", "mode"),
    [
        ({}, "filter scan (unranked)"),
        (
            {"vector": {"field": "embedding", "metric": "cosine", "query": [1.0]}},
            "exact vector (cosine on embedding)",
        ),
        (
            {
                "vector": {"field": "embedding", "metric": "euclidean", "query": [1.0]},
                "vector_ann": {},
            },
            "approximate vector (euclidean on embedding)",
        ),
        ({"text": {"fields": ["title", "body"], "query": "x"}}, "legacy text match on title, body"),
        (
            {
                "vector": {"field": "e", "metric": "dot", "query": [1.0]},
                "text": {"fields": ["body"], "query": "x"},
            },
            "exact vector (dot on e) blended with legacy text on body",
        ),
    ],
)
def test_explain_retrieval_modes(tmp_path: Path, clauses: dict[str, Any], mode: str) -> None:
    ir = {"operation": "select", "model": "CliDoc", **clauses, "consistency": "strong"}
    result = run("explain", "file", write_ir(tmp_path, ir))
    assert result.stdout.splitlines()[2] == f"retrieval: {mode}"


@pytest.mark.parametrize(
    ("ir", "lines"),
    [
        ({"operation": "count", "model": "CliDoc", "filters": [SECRET_FILTER]}, ["filters: 1"]),
        (
            {
                "operation": "insert",
                "model": "CliDoc",
                "rows": [{"id": 1}, {"id": 2}],
                "on_conflict": "ignore",
            },
            ["rows: 2", "on_conflict: ignore"],
        ),
        (
            {"operation": "update", "model": "CliDoc", "filters": [], "set": {"title": "s3cret"}},
            ["filters: 0", "set fields: title"],
        ),
        (
            {"operation": "upsert", "model": "CliDoc", "key": {"id": 1}, "values": {}},
            ["key fields: id"],
        ),
        (
            {
                "operation": "raw",
                "statement": "SELECT * FROM CliDoc WHERE id = $id",
                "params": {"id": 1},
            },
            ["parameters: 1 (statement not shown)"],
        ),
        (
            {
                "operation": "traverse",
                "model": "CliDoc",
                "start": [],
                "steps": [{}, {}],
                "max_depth": 5,
            },
            ["steps: 2", "max_depth: 5"],
        ),
    ],
)
def test_explain_other_operations(tmp_path: Path, ir: dict[str, Any], lines: list[str]) -> None:
    result = run("explain", "file", write_ir(tmp_path, ir))
    model = ir.get("model", "-")
    expected = [f"operation: {ir['operation']}", f"model: {model}", *lines]
    assert result.stdout.splitlines() == [*expected, "cost: not estimated (static plan)"]
    assert "s3cret" not in result.stdout


def test_explain_rejects_non_ir(tmp_path: Path) -> None:
    path = write_ir(tmp_path, {"model": "CliDoc"})
    result = run("explain", "file", path)
    assert (result.returncode, result.stderr) == (
        1,
        f"error: {path} is not a Query IR object (no 'operation')\n",
    )


# --------------------------------------------------------------------------- bench / stubs


def test_bench_local_reports_only_what_it_measures() -> None:
    result = run("bench", "local", "--iterations", "50")
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0] == f"native_backend: {aura.native_status()['backend']}"
    assert lines[1] == "iterations: 50"
    assert re.fullmatch(
        r"vector pack/unpack round trip \(dim 128\): \d+\.\d{3} ms total, \d+\.\d{3} us/op",
        lines[2],
    )
    assert lines[3:] == [
        "frame encode/decode: not measured (the bundled frame protocol is not in this build)"
    ]


STUB_V2 = '''\
"""Type stubs for the models of cliapp_v2 (generated by `aura generate stubs`)."""

from __future__ import annotations

import cliapp_v2
import uuid
from aura import Model, Vector


class CliAuthor(Model):
    id: int
    name: str
    books: list[CliBook]
    def __init__(self, *, id: int, name: str, books: list[CliBook] = ...) -> None: ...


class CliBook(Model):
    id: int
    title: str
    author: CliAuthor | None
    embedding: Vector[3]
    tags: list[str]
    mood: cliapp_v2.CliMood
    ref: uuid.UUID | None
    meta: dict
    def __init__(
        self,
        *,
        id: int,
        title: str,
        author: CliAuthor | None = ...,
        embedding: Vector[3],
        tags: list[str] = ...,
        mood: cliapp_v2.CliMood = ...,
        ref: uuid.UUID | None = ...,
        meta: dict,
    ) -> None: ...
'''


def test_generate_stubs_from_module_and_file(apps: Path) -> None:
    result = run("generate", "stubs", "--models", "cliapp_v2", cwd=apps)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == STUB_V2
    written = run("generate", "stubs", "--models", "cliapp_v2.py", "--out", "m.pyi", cwd=apps)
    assert (written.returncode, written.stdout) == (0, "wrote m.pyi\n")
    assert (apps / "m.pyi").read_text() == STUB_V2
    compile(STUB_V2, "m.pyi", "exec")


def test_generate_stubs_inheritance_and_empty_module(tmp_path: Path) -> None:
    (tmp_path / "cliapp_inherit.py").write_text(
        "from typing import Any\nfrom aura import Model\n\n"
        "class CliBase(Model):\n    id: int\n\n"
        "class CliChild(CliBase):\n    extra: Any = None\n"
    )
    (tmp_path / "cliapp_empty.py").write_text("X = 1\n")
    result = run("generate", "stubs", "--models", "cliapp_inherit.py", cwd=tmp_path)
    assert result.stdout.split("\n\n\n")[1:] == [
        "class CliBase(Model):\n    id: int\n    def __init__(self, *, id: int) -> None: ...",
        "class CliChild(CliBase):\n    id: int\n    extra: Any\n"
        "    def __init__(self, *, id: int, extra: Any = ...) -> None: ...\n",
    ]
    assert "from typing import Any\n" in result.stdout
    empty = run("generate", "stubs", "--models", "cliapp_empty.py", cwd=tmp_path)
    assert empty.stdout.endswith("\n\n# no model classes found\n")


def test_generate_stubs_missing_file_exits_1(tmp_path: Path) -> None:
    result = run("generate", "stubs", "--models", "nowhere/app.py", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (1, "error: No such file: nowhere/app.py\n")


def test_serve_runs_an_awp_server_until_interrupted(tmp_path: Any) -> None:
    import asyncio
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "CLI_SERVE_TOKEN": "t0ken-secret"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aura.cli",
            "serve",
            "--port",
            "0",
            "--token-env",
            "CLI_SERVE_TOKEN",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("aura serve: listening on auradb://127.0.0.1:")
        dsn = line.split(" on ", 1)[1].strip()

        async def ping() -> bool:
            from aura.config import TokenAuth

            async with aura.connect(dsn, auth=TokenAuth("t0ken-secret")) as client:
                return await client.ping()

        assert asyncio.run(ping()) is True
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "t0ken-secret" not in out + err


def test_serve_needs_cert_and_key_together() -> None:
    result = run("serve", "--port", "0", "--tls-cert", "c.pem")
    assert result.returncode == 1
    assert result.stderr == "error: --tls-cert and --tls-key go together\n"
