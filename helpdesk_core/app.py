"""The application object: configuration, database, plugins, storage and secrets in one place.

Build one per process (CLI invocation, worker, web app, Celery worker) and pass it to the service
functions together with a session the caller owns::

    app = Helpdesk.from_config(Config.from_env())
    with app.session() as session:
        ...

An application has one plugin manager behind one hook facade (``app.hooks``), built with it: the
registration hooks (providers, thread matchers, template folders) run once per application.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pluggy
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from helpdesk_core.config import Config
from helpdesk_core.crypto import SecretBox, load_or_create_key
from helpdesk_core.db import make_engine, make_sessionmaker, upgrade
from helpdesk_core.hooktypes import HelpdeskContext
from helpdesk_core.plugins import Hooks
from helpdesk_core.providers.base import ProviderRegistry
from helpdesk_core.settings import GeneralSettings
from helpdesk_core.storage import AttachmentStorage


@dataclass
class Helpdesk:
    config: Config
    engine: Engine
    hooks: Hooks
    secrets: SecretBox
    storage: AttachmentStorage
    sessionmaker: SessionMaker[Session] = field(repr=False)

    @classmethod
    def from_config(
        cls, config: Config, *, create_key: bool = False, load_entrypoints: bool = True,
        extra_plugins: Iterable[object] = (), engine: Engine | None = None, hooks: Hooks | None = None,
    ) -> Helpdesk:
        """Build the application; ``hooks`` reuses a facade built already in this process (the CLI
        builds it before parsing its arguments), else one is built from ``load_entrypoints`` and
        ``extra_plugins``."""
        key = config.secret_key or load_or_create_key(config.secret_key_file, create=create_key)
        engine = engine or make_engine(config.database_url)
        hooks = hooks or Hooks.build(load_entrypoints=load_entrypoints, extra_plugins=extra_plugins)
        return cls(config=config, engine=engine, hooks=hooks, secrets=SecretBox(key),
                   storage=AttachmentStorage(config.attachments_dir),
                   sessionmaker=make_sessionmaker(engine))

    @property
    def pm(self) -> pluggy.PluginManager:
        """The plugin manager, for listing plugins; call hooks through :attr:`hooks`."""
        return self.hooks.pm

    @property
    def providers(self) -> ProviderRegistry:
        return self.hooks.providers

    def session(self) -> Session:
        return self.sessionmaker()

    def upgrade(self) -> None:
        upgrade(self.engine)

    def context(self, session: Session, settings: GeneralSettings | None = None) -> HelpdeskContext:
        return HelpdeskContext(session=session, settings=settings or GeneralSettings.load(session),
                               storage=self.storage, secrets=self.secrets, hooks=self.hooks,
                               now=datetime.now(UTC))
