"""The one plugin-manager factory. Nothing is registered at import time.

Plugins come from the ``helpdesk`` entry point group plus the core's own defaults
(:data:`DEFAULT_PLUGINS`, implemented with ``trylast=True`` so any plugin overrides them).

Environment: ``HELPDESK_DISABLE_PLUGINS=name1,name2`` blocks entry-point plugins by name;
``HELPDESK_TRACE_HOOKS=1`` logs every hook call at DEBUG level (logger ``helpdesk.hooks``).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable
from types import ModuleType

import pluggy

from helpdesk_core import PROJECT_NAME, hookspecs
from helpdesk_core.providers.base import MailboxProvider, ProviderRegistry

DEFAULT_PLUGINS: tuple[str, ...] = (
    "helpdesk_core.defaults.classify",
    "helpdesk_core.defaults.threading",
    "helpdesk_core.defaults.store",
    "helpdesk_core.defaults.acknowledge",
    "helpdesk_core.defaults.notify",
)

log = logging.getLogger("helpdesk.hooks")


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
        pm.trace.root.setwriter(log.debug)
        pm.enable_tracing()
    return pm


def collect_providers(pm: pluggy.PluginManager) -> ProviderRegistry:
    """Call ``helpdesk_register_providers`` on every plugin and return the registry."""
    registry = ProviderRegistry()

    def register(provider: MailboxProvider) -> None:
        registry.register(provider, plugin=_plugin_name_of(pm, provider))

    pm.hook.helpdesk_register_providers(register=register)
    return registry


def _plugin_name_of(pm: pluggy.PluginManager, provider: object) -> str:
    module = type(provider).__module__
    for name, plugin in pm.list_name_plugin():
        plugin_module = getattr(plugin, "__name__", "")
        if plugin_module and (module == plugin_module or module.startswith(plugin_module.split(".")[0] + ".")):
            return name
    return module


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
