"""The plugin manager factory and :class:`Hooks`, the typed facade through which the core calls
every hook. Nothing is registered at import time.

Plugins come from the ``helpdesk`` entry point group plus the core's own defaults
(:data:`DEFAULT_PLUGINS`, implemented with ``trylast=True`` so any plugin overrides them).

One :class:`Hooks` (one plugin manager) belongs to one application (``app.hooks``). It has exactly
one method per hook, and each hook is called from that method only, with keyword arguments. The
``register_*`` hooks run once per application: their results are kept on the facade
(:attr:`Hooks.providers`, :attr:`Hooks.thread_matchers`, :attr:`Hooks.template_folders`).

Environment: ``HELPDESK_DISABLE_PLUGINS=name1,name2`` blocks entry-point plugins by name;
``HELPDESK_TRACE_HOOKS=1`` logs every hook call at DEBUG level (logger ``helpdesk.hooks``): the hook, the
shape of its arguments (names and types, never values: hooks are handed secrets) and who answered.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import pluggy

from helpdesk_core import PROJECT_NAME, hookspecs
from helpdesk_core.errors import PluginError
from helpdesk_core.hooktypes import Classification, ThreadMatch
from helpdesk_core.inbound.matching import MatcherRegistry
from helpdesk_core.models import TicketMessage
from helpdesk_core.providers.base import ProviderRegistry

if TYPE_CHECKING:
    import click

    from helpdesk_core.errors import DeliveryError
    from helpdesk_core.hooktypes import HelpdeskContext, OutgoingMail
    from helpdesk_core.mail.message import ParsedMessage
    from helpdesk_core.models import Department, Mailbox, Ticket

DEFAULT_PLUGINS: tuple[str, ...] = (
    "helpdesk_core.defaults.classify",
    "helpdesk_core.defaults.threading",
    "helpdesk_core.defaults.store",
    "helpdesk_core.defaults.acknowledge",
    "helpdesk_core.defaults.notify",
)

log = logging.getLogger("helpdesk.hooks")
T = TypeVar("T")


def get_plugin_manager(
    *, load_entrypoints: bool = True, extra_plugins: Iterable[object] = (),
) -> pluggy.PluginManager:
    """Build a fresh plugin manager: specs, defaults, entry points, extras; then ``check_pending()``.

    :param load_entrypoints: load installed plugins from the ``helpdesk`` entry point group
    :param extra_plugins: modules or objects with hookimpls to register too (tests, embedding)
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        module: ModuleType = importlib.import_module(name)
        pm.register(module, name=name)
    if load_entrypoints:
        for blocked in filter(None, os.environ.get("HELPDESK_DISABLE_PLUGINS", "").split(",")):
            pm.set_blocked(blocked.strip())
        pm.load_setuptools_entrypoints(PROJECT_NAME)
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check_pending()
    if os.environ.get("HELPDESK_TRACE_HOOKS"):
        pm.add_hookcall_monitoring(_trace_before, _trace_after)
    return pm


def _shape(value: Any) -> str:
    """What a traced argument or result is, never what it holds: hooks are handed mailbox secrets,
    raw mail and sessions, and a trace line goes to logs (``docs/hooks.md``: tracing)."""
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return f"{type(value).__name__}[{len(value)}]"
    return type(value).__name__


def _trace_before(hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
    log.debug("call %s(%s) -> %s", hook_name, ", ".join(f"{k}={_shape(v)}" for k, v in kwargs.items()),
              ", ".join(impl.plugin_name for impl in reversed(hook_impls)))


def _trace_after(outcome: pluggy.Result[Any], hook_name: str, hook_impls: Sequence[pluggy.HookImpl],
                 kwargs: Mapping[str, Any]) -> None:
    error = outcome.exception
    log.debug("done %s: %s", hook_name, f"raised {type(error).__name__}" if error is not None
              else _shape(outcome.get_result()))


class _once(Generic[T]):  # noqa: N801 - used like @cached_property
    """Like :func:`functools.cached_property`, and thread-safe: a registration hook runs once per
    application even when two threads (a web server's) ask at the same moment. A registration that
    raises is not kept, so the error is raised again on the next use."""

    def __init__(self, collect: Callable[[Hooks], T]) -> None:
        self.collect = collect
        self.lock = threading.Lock()
        self.__doc__ = collect.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, hooks: None, owner: type | None = None) -> _once[T]: ...
    @overload
    def __get__(self, hooks: Hooks, owner: type | None = None) -> T: ...

    def __get__(self, hooks: Hooks | None, owner: type | None = None) -> T | _once[T]:
        if hooks is None:
            return self
        with self.lock:
            if self.name not in hooks.__dict__:
                hooks.__dict__[self.name] = self.collect(hooks)
        value: T = hooks.__dict__[self.name]
        return value


def _register_each(caller: pluggy.HookCaller, make_register: Callable[[str], Callable[..., None]]) -> None:
    """Run a ``register_*`` hook one implementation at a time, in pluggy's call order, each with a
    ``register`` callback that knows its plugin's name: a registry can then name the plugin that
    registered something bad. Registration hooks take no wrappers."""
    for impl in reversed(caller.get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            raise PluginError(f"Plugin {impl.plugin_name} wraps {caller.name}, a registration hook: "
                              "implement it as a plain hook.")
        log.debug("%s: %s", caller.name, impl.plugin_name)
        args = {"register": make_register(impl.plugin_name)}
        impl.function(*[args[name] for name in impl.argnames])


class Hooks:
    """The typed facade over one application's plugin manager: one method per hook.

    The core calls hooks only through here (``app.hooks.find_ticket(...)``), never through
    ``pm.hook``. Each method names its arguments, checks what the plugins returned and turns it into
    the typed result the core works with.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    @classmethod
    def build(cls, *, load_entrypoints: bool = True, extra_plugins: Iterable[object] = ()) -> Hooks:
        """A facade over a fresh plugin manager (:func:`get_plugin_manager`)."""
        return cls(get_plugin_manager(load_entrypoints=load_entrypoints, extra_plugins=extra_plugins))

    # -- registration: once per application ---------------------------------------------------

    @_once
    def providers(self) -> ProviderRegistry:
        """The mailbox providers of ``helpdesk_register_providers``."""
        registry = ProviderRegistry()
        _register_each(self.pm.hook.helpdesk_register_providers,
                       lambda plugin: lambda provider: registry.register(provider, plugin=plugin))
        return registry

    @_once
    def thread_matchers(self) -> MatcherRegistry:
        """The thread-matching strategies of ``helpdesk_register_thread_matchers``."""
        registry = MatcherRegistry()
        _register_each(self.pm.hook.helpdesk_register_thread_matchers,
                       lambda plugin: lambda name, matcher: registry.register(name, matcher, plugin=plugin))
        return registry

    @_once
    def template_folders(self) -> tuple[Path, ...]:
        """The template folders of ``helpdesk_register_template_folders``, in registration order."""
        folders: list[Path] = []

        def register_for(plugin: str) -> Callable[[Path], None]:
            def register(folder: Path) -> None:
                try:
                    path = Path(folder)
                except TypeError:
                    raise PluginError(f"Plugin {plugin} registered the template folder {folder!r}: "
                                      "register a pathlib.Path.") from None
                if not path.is_dir():
                    raise PluginError(f"Plugin {plugin} registered the template folder {path}, which "
                                      "is not a directory: reinstall the plugin or fix its path.")
                folders.append(path)
            return register

        _register_each(self.pm.hook.helpdesk_register_template_folders, register_for)
        return tuple(folders)

    def register_routes(self, *, register: Callable[..., None]) -> None:
        """Let plugins add web pages (``helpdesk_register_routes``); called by ``create_app``."""
        self.pm.hook.helpdesk_register_routes(register=register)

    def register_commands(self, cli: click.Group) -> None:
        """Let plugins add commands to the ``helpdesk`` group (``helpdesk_register_commands``)."""
        self.pm.hook.helpdesk_register_commands(cli=cli)

    # -- inbound mail ---------------------------------------------------------------------------

    def classify_message(self, *, message: ParsedMessage, department: Department,
                         context: HelpdeskContext) -> Classification:
        """``helpdesk_classify_message``; ordinary mail when no plugin decides."""
        result = self.pm.hook.helpdesk_classify_message(message=message, department=department,
                                                        context=context)
        return _typed(result, Classification, "helpdesk_classify_message") or Classification()

    def find_ticket(self, *, message: ParsedMessage, department: Department,
                    classification: Classification, context: HelpdeskContext) -> ThreadMatch:
        """``helpdesk_find_ticket``, as found: the caller settles it
        (:func:`helpdesk_core.inbound.matching.settle`). ``ThreadMatch()`` when nobody found one."""
        result = self.pm.hook.helpdesk_find_ticket(message=message, department=department,
                                                   classification=classification, context=context)
        return _typed(result, ThreadMatch, "helpdesk_find_ticket") or ThreadMatch()

    def message_to_ticket(self, *, message: ParsedMessage, department: Department, ticket: Ticket | None,
                          classification: Classification, match: ThreadMatch,
                          context: HelpdeskContext) -> TicketMessage:
        """``helpdesk_message_to_ticket``; some plugin (at least the default) must store it."""
        result = self.pm.hook.helpdesk_message_to_ticket(
            message=message, department=department, ticket=ticket, classification=classification,
            match=match, context=context)
        stored = _typed(result, TicketMessage, "helpdesk_message_to_ticket")
        if stored is None:
            raise PluginError("No plugin stored the message (helpdesk_message_to_ticket returned None).")
        return stored

    def message_imported(self, *, message: ParsedMessage, ticket_message: TicketMessage, created: bool,
                         department: Department, classification: Classification, match: ThreadMatch,
                         context: HelpdeskContext) -> None:
        """``helpdesk_message_imported``: every plugin is notified."""
        self.pm.hook.helpdesk_message_imported(
            message=message, ticket_message=ticket_message, created=created, department=department,
            classification=classification, match=match, context=context)

    # -- outbound mail --------------------------------------------------------------------------

    def deliver_reply(self, *, mails: list[OutgoingMail], department: Department, mailbox: Mailbox | None,
                      secrets: dict[str, str]) -> list[DeliveryError | None] | None:
        """``helpdesk_deliver_reply``, the override point of outgoing delivery: one result per
        mail (None: sent), or None when no plugin delivers for this mailbox."""
        result: list[DeliveryError | None] | None = self.pm.hook.helpdesk_deliver_reply(
            mails=mails, department=department, mailbox=mailbox, secrets=secrets)
        return result

    # -- introspection ------------------------------------------------------------------------

    #: the plugin names of the core's own defaults
    default_plugins = frozenset(DEFAULT_PLUGINS)

    def only_defaults(self, *hooks: str) -> bool:
        """Whether only the core's defaults (:data:`DEFAULT_PLUGINS`) implement these hooks, e.g.
        the importer writes a chunk in bulk only while the default store is the one in effect."""
        return all(self.pm.get_name(impl.plugin) in self.default_plugins
                   for hook in hooks for impl in getattr(self.pm.hook, hook).get_hookimpls())

    def implemented(self, hook: str) -> bool:
        """Whether any registered plugin implements the hook named ``hook`` (e.g.
        ``"helpdesk_deliver_reply"``: then a department without a mailbox may still send mail)."""
        caller = getattr(self.pm.hook, hook, None)
        return caller is not None and bool(caller.get_hookimpls())


def _typed(result: object, kind: type[T], hook: str) -> T | None:
    """``result`` when it is None or a ``kind``; a PluginError telling the plugin author what to return."""
    if result is None or isinstance(result, kind):
        return result
    raise PluginError(f"A plugin's {hook} returned {type(result).__name__} {result!r}: return a "
                      f"{kind.__name__} or None.")


def describe_plugins(pm: pluggy.PluginManager, registry: ProviderRegistry) -> list[dict[str, object]]:
    """What ``helpdesk plugins --json`` prints: each plugin, its hooks, version and providers."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    out: list[dict[str, object]] = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin) or repr(plugin)
        dist = dists.get(id(plugin))
        hooks = sorted(h.name for h in (pm.get_hookcallers(plugin) or []))
        out.append({
            "name": name,
            "default": name in DEFAULT_PLUGINS,
            "distribution": dist.project_name if dist else None,
            "version": dist.version if dist else None,
            "hooks": hooks,
            "providers": [p.describe() for n, p in sorted(registry.providers.items())
                          if registry.plugin_of.get(n) == name],
        })
    return sorted(out, key=lambda p: (bool(p["default"]), str(p["name"])))
