"""The hook contract: every hook documented with its exact signature, called from exactly one
method of the facade, exercised by its own test; registration once per application; no untyped
channel between hooks."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pluggy
import pytest
from sqlalchemy import func, select

from helpdesk_core import hookimpl, hookspecs
from helpdesk_core.hooktypes import HelpdeskContext
from helpdesk_core.models import OutboxMessage
from helpdesk_core.plugins import DEFAULT_PLUGINS, Hooks, get_plugin_manager
from helpdesk_core.services.departments import set_department_options, set_mailbox
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.services.replies import reply_to_ticket
from helpdesk_core.testing.apps import ingest, installation, make_app
from mailfactory import plain

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "helpdesk_core"
HOOKS = {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
         if name.startswith("helpdesk_")}
REGISTRATION_HOOKS = sorted(name for name in HOOKS if name.startswith("helpdesk_register_"))


def signature_line(name: str) -> str:
    sig = inspect.signature(HOOKS[name])
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_documented_with_its_signature(name):
    docs = (ROOT / "docs" / "hooks.md").read_text()
    assert f"### `{name}`" in docs, f"docs/hooks.md has no section for {name}"
    assert signature_line(name) in docs, f"docs/hooks.md lacks the exact signature:\n{signature_line(name)}"
    assert HOOKS[name].__doc__ and ":param" in HOOKS[name].__doc__ or not inspect.signature(HOOKS[name]).parameters


def facade_methods() -> dict[str, list[str]]:
    """hook name → the methods of ``plugins.Hooks`` that reference it; checks keyword-only calls."""
    [facade] = [n for n in parse(CORE / "plugins.py").body if isinstance(n, ast.ClassDef) and n.name == "Hooks"]
    found: dict[str, list[str]] = {name: [] for name in HOOKS}
    for method in facade.body:
        if not isinstance(method, ast.FunctionDef):
            continue
        for node in ast.walk(method):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in HOOKS:
                assert not node.args, f"Hooks.{method.name} calls {node.func.attr} with positional arguments"
            if isinstance(node, ast.Attribute) and node.attr in HOOKS and method.name not in found[node.attr]:
                found[node.attr].append(method.name)
    return found


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_called_from_exactly_one_method_of_the_facade(name):
    methods = facade_methods()[name]
    assert len(methods) == 1 and not methods[0].startswith("_"), \
        f"{name} is used by Hooks methods {methods}; call each hook from one public method of the facade"
    others = [other for other, used_by in facade_methods().items() if other != name and methods[0] in used_by]
    assert not others, f"Hooks.{methods[0]} calls {name} and {others}: one method per hook"


def test_the_core_calls_hooks_only_through_the_facade():
    """No ``pm.hook.helpdesk_*`` outside ``plugins.Hooks`` (in ``plugins.py``: only inside the class)."""
    offenders = []
    for path in CORE.rglob("*.py"):
        if path.name == "hookspecs.py":
            continue
        tree = parse(path)
        if path == CORE / "plugins.py":
            tree.body = [n for n in tree.body if not (isinstance(n, ast.ClassDef) and n.name == "Hooks")]
        offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
                      if isinstance(node, ast.Attribute) and node.attr in HOOKS]
    assert not offenders, f"hooks called outside the facade: {offenders}"


def hook_tests() -> dict[str, list[Path]]:
    """test function name → the test modules that define it and implement the hook it names."""
    sources = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("plugins/*/tests/**/*.py")]
    found: dict[str, list[Path]] = {}
    for path in sources:
        functions = {n.name for n in ast.walk(parse(path)) if isinstance(n, ast.FunctionDef)}
        for name in HOOKS:
            if f"test_hook_{name}" in functions and name in functions:
                found.setdefault(f"test_hook_{name}", []).append(path)
    return found


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_has_its_own_test(name):
    """A ``test_hook_<hook>`` exists next to a plugin implementing the hook (it must assert what the
    plugin changes; see tests/test_hooks.py)."""
    assert hook_tests().get(f"test_hook_{name}"), \
        f"write test_hook_{name}: a test whose plugin implements {name} and changes what the core does"


def test_firstresult_specs_say_so():
    pm = get_plugin_manager(load_entrypoints=False)
    for name, fn in HOOKS.items():
        if getattr(pm.hook, name).spec.opts.get("firstresult"):
            assert "Stops at first non-None result" in fn.__doc__, name


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


def test_no_untyped_channel_between_hooks(app):
    assert "extra" not in {f.name for f in dataclasses.fields(HelpdeskContext)}
    with app.session() as session:
        context = app.context(session)
        assert not hasattr(context, "extra")
        assert context.hooks is app.hooks


# ---- once per application ------------------------------------------------------------------------

@dataclass
class CountsRegistrations:
    folder: Path
    calls: Counter[str] = field(default_factory=Counter)

    @hookimpl
    def helpdesk_register_providers(self, register):
        self.calls["helpdesk_register_providers"] += 1

    @hookimpl
    def helpdesk_register_thread_matchers(self, register):
        self.calls["helpdesk_register_thread_matchers"] += 1

    @hookimpl
    def helpdesk_register_template_folders(self, register):
        self.calls["helpdesk_register_template_folders"] += 1
        register(self.folder)


def test_registration_hooks_run_once_per_application(hd_env, tmp_path):
    counter = CountsRegistrations(tmp_path)
    app = installation(hd_env, counter, departments={"Tech": "techhelp@district.test"})
    with app.session() as s:
        set_department_options(s, actor=SYSTEM, department="Tech", acknowledge=True)
        set_mailbox(app, s, actor=SYSTEM, department="Tech", provider="generic", validate=False, secrets={},
                    config={"protocol": "maildir", "path": str(tmp_path / "Maildir"), "email": "techhelp@district.test"})
        s.commit()
    for i in range(3):  # three new tickets, three acknowledgements rendered
        raw = plain(subject=f"Printer {i}", sender=f"p{i}@example.test")
        assert ingest(app, raw, department="Tech").status == "created"
    raw = plain(subject="Re: [Ticket #1]", sender="p0@example.test")
    assert ingest(app, raw, department="Tech").status == "updated"
    for ticket_id in (1, 2):  # two replies rendered
        with app.session() as s:
            reply_to_ticket(app, s, actor=SYSTEM, ticket_id=ticket_id, body="On it.")
            s.commit()
    with app.session() as s:
        assert s.scalar(select(func.count(OutboxMessage.id))) == 5
    assert app.providers is app.providers
    # register_commands runs per CLI invocation and register_routes per web app (create_app)
    assert counter.calls == {name: 1 for name in REGISTRATION_HOOKS
                             if name not in ("helpdesk_register_commands", "helpdesk_register_routes")}

    other = make_app(hd_env, extra_plugins=[counter])  # another application registers afresh
    assert "generic" in other.providers.providers and other.hooks.template_folders == (tmp_path,)
    assert counter.calls["helpdesk_register_providers"] == counter.calls["helpdesk_register_template_folders"] == 2


def test_one_plugin_manager_per_cli_invocation(cli, monkeypatch):
    """The command hook and the invocation's application share one plugin manager."""
    built: list[pluggy.PluginManager] = []

    class Counting(pluggy.PluginManager):
        def __init__(self, project_name: str) -> None:
            super().__init__(project_name)
            built.append(self)

    monkeypatch.setattr(pluggy, "PluginManager", Counting)
    cli("settings", "set", "mail.thread_matchers", "subject_reference,message_id")
    assert len(built) == 1
    assert "generic" in {p["name"] for p in cli.json("plugins", "--json")["providers"]}
    assert len(built) == 2


def test_a_facade_is_built_over_one_manager():
    hooks = Hooks.build(load_entrypoints=False)
    assert hooks.thread_matchers is hooks.thread_matchers
    assert hooks.thread_matchers.names() == ["message_id", "subject_reference"]
