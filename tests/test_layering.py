"""The layout's rules, read from the source: imports point down only, and no file names a path
outside the repository.

cli → services → inbound/outbound → mail/providers/models. Checked here:

* ``inbound/``, ``outbound/``, ``mail/``, ``defaults/`` never import ``services/`` or ``cli/``;
* ``mail/`` imports no database module (models, db, settings, SQLAlchemy);
* ``services/`` never imports ``cli/``; ``cli/`` imports no models, engine or permission check;
* no runtime module (the core outside ``testing/``, the bundled plugins' packages) imports
  ``helpdesk_core.testing`` (the test servers are for tests and benchmarks only).

Module-level and function-level imports count (``ast`` walks the whole module); imports inside an
``if TYPE_CHECKING:`` block do not, since they never run.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "helpdesk_core"

#: (importing module, imported module) pairs that break a rule today and are being fixed by another
#: change of the same restructuring; the lead removes each entry when that change is merged.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "plugins":
        parts = parts[2:]  # plugins/<dist>/<package>/...
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(nodes: list[ast.stmt] | list[ast.AST]) -> Iterator[ast.AST]:
    """Every node below ``nodes``, except the bodies of ``if TYPE_CHECKING:``."""
    for node in nodes:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _walk(node.orelse)
            continue
        yield node
        yield from _walk(list(ast.iter_child_nodes(node)))


def imports_in(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """The absolute names ``module`` imports; ``from a import b`` gives ``a`` and ``a.b``."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _walk(ast.parse(source).body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def imports_of(path: Path) -> set[str]:
    return imports_in(path.read_text(encoding="utf-8"), _module_name(path), is_package=path.name == "__init__.py")


def _modules(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _runtime_modules() -> list[Path]:
    core = [p for p in _modules(CORE) if "testing" not in p.relative_to(CORE).parts]
    plugins = [p for p in _modules(*(ROOT / "plugins").glob("*/helpdesk_*"))]
    return core + plugins


def _violations(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in paths:
        module = _module_name(path)
        for name in sorted(imports_of(path)):
            if not any(name == f or name.startswith(f + ".") for f in forbidden):
                continue
            if any(module == m and (name == n or name.startswith(n + ".")) for m, n in KNOWN_EXCEPTIONS):
                continue
            out.append(f"{module} imports {name}")
    return out


ENGINE = ("inbound", "outbound", "mail", "defaults")


@pytest.mark.parametrize("area", ENGINE)
def test_engine_never_imports_services_or_cli(area: str) -> None:
    assert _violations(_modules(CORE / area), ("helpdesk_core.services", "helpdesk_core.cli")) == []


def test_mail_imports_no_database_module() -> None:
    forbidden = ("helpdesk_core.models", "helpdesk_core.db", "helpdesk_core.settings", "sqlalchemy")
    assert _violations(_modules(CORE / "mail"), forbidden) == []


def test_services_never_import_the_cli() -> None:
    assert _violations(_modules(CORE / "services"), ("helpdesk_core.cli",)) == []


def test_the_cli_reaches_the_database_only_through_services() -> None:
    """No ORM queries, permission checks or engine calls in the CLI: it calls ``services/``."""
    forbidden = ("helpdesk_core.models", "helpdesk_core.inbound", "helpdesk_core.outbound",
                 "helpdesk_core.services.permissions.require_manage_settings")
    assert _violations(_modules(CORE / "cli"), forbidden) == []


def test_cli_group_modules_do_not_import_the_main_group() -> None:
    """``cli/main.py`` assembles the groups; a group importing it back would be a circle."""
    groups = [p for p in _modules(CORE / "cli") if p.name not in ("main.py", "__init__.py")]
    assert _violations(groups, ("helpdesk_core.cli.main",)) == []


def test_no_runtime_module_imports_the_test_support() -> None:
    assert _violations(_runtime_modules(), ("helpdesk_core.testing",)) == []


def test_known_exceptions_still_exist() -> None:
    """An allowed exception that no longer occurs must be removed from the list."""
    present = {(_module_name(p), n) for p in _modules(CORE) for n in imports_of(p)}
    stale = [pair for pair in KNOWN_EXCEPTIONS if not any(
        m == pair[0] and (n == pair[1] or n.startswith(pair[1] + ".")) for m, n in present)]
    assert stale == []


# ------------------------------------------------------------------------- paths outside the repo

#: written in pieces so this file does not name them itself
OUTSIDE = ("/" + "work/", ".." + "/shared")
SKIP_DIRS = {"__pycache__", "node_modules", "build", "dist"}


def _repository_files() -> Iterator[Path]:
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            if not name.startswith("."):
                yield Path(folder, name)


def test_no_file_names_a_path_outside_the_repository() -> None:
    offenders = []
    for path in _repository_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary test data
        for needle in OUTSIDE:
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


def test_the_walker_counts_function_level_imports_and_skips_type_checking() -> None:
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    import helpdesk_core.cli\nelse:\n    import json\n"
              "def f():\n    from ..services import tickets\n    from . import parsing\n")
    names = imports_in(source, "helpdesk_core.mail.probe")
    assert {"helpdesk_core.services.tickets", "helpdesk_core.mail.parsing", "json"} <= names
    assert "helpdesk_core.cli" not in names
