"""The hook contract: every hook documented with its exact signature and exercised by a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy
import pytest

from helpdesk_core import hookspecs
from helpdesk_core.plugins import DEFAULT_PLUGINS, get_plugin_manager

ROOT = Path(__file__).resolve().parent.parent
HOOKS = {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
         if name.startswith("helpdesk_")}


def signature_line(name: str) -> str:
    sig = inspect.signature(HOOKS[name])
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_documented_with_its_signature(name):
    docs = (ROOT / "docs" / "hooks.md").read_text()
    assert f"### `{name}`" in docs, f"docs/hooks.md has no section for {name}"
    assert signature_line(name) in docs, f"docs/hooks.md lacks the exact signature:\n{signature_line(name)}"
    assert HOOKS[name].__doc__ and ":param" in HOOKS[name].__doc__ or not inspect.signature(HOOKS[name]).parameters


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_exercised_by_a_test(name):
    """Some test other than this one implements or calls the hook."""
    sources = [p for p in [*ROOT.glob("tests/**/*.py"), *ROOT.glob("plugins/*/tests/**/*.py")]
               if p.name != Path(__file__).name]
    users = [p for p in sources if re.search(rf"\b{name}\b", p.read_text(errors="replace"))]
    assert users, f"no test implements or calls {name}"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_called_from_exactly_one_core_function(name):
    core = [p for p in (ROOT / "helpdesk_core").rglob("*.py") if p.name != "hookspecs.py"]
    calls = [f"{p.relative_to(ROOT)}:{i}" for p in core
             for i, line in enumerate(p.read_text().splitlines(), 1) if f"hook.{name}(" in line]
    assert len(calls) == 1, f"{name} is called from {calls}; call each hook from one core function"


def test_firstresult_specs_say_so():
    for name, fn in HOOKS.items():
        opts = pm_spec_opts(name)
        if opts.get("firstresult"):
            assert "Stops at first non-None result" in fn.__doc__, name


def pm_spec_opts(name: str) -> dict:
    pm = get_plugin_manager(load_entrypoints=False)
    return getattr(pm.hook, name).spec.opts


def test_defaults_are_trylast_plugins():
    pm = get_plugin_manager(load_entrypoints=False)
    for name in DEFAULT_PLUGINS:
        plugin = pm.get_plugin(name)
        assert plugin is not None
        for caller in pm.get_hookcallers(plugin):
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    assert impl.trylast, f"{name}.{caller.name} must be trylast"


def test_misspelled_hook_is_refused():
    class Typo:
        @pluggy.HookimplMarker("helpdesk")
        def helpdesk_find_tiket(self):  # noqa: D401
            return None

    with pytest.raises(pluggy.PluginValidationError):
        get_plugin_manager(load_entrypoints=False, extra_plugins=[Typo()])


def test_each_manager_is_fresh():
    a = get_plugin_manager(load_entrypoints=False)
    b = get_plugin_manager(load_entrypoints=False)
    assert a is not b and a.get_plugins() is not b.get_plugins()
