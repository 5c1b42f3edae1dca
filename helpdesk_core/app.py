"""The application object: configuration, database, plugins, storage and secrets in one place.

Build one per process (CLI invocation, worker, web app, Celery worker) and pass it to the service
functions together with a session the caller owns::

    app = Helpdesk.from_config(Config.from_env())
    with app.session() as session:
        ...
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import pluggy
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from helpdesk_core.config import Config
from helpdesk_core.hooktypes import HelpdeskContext
from helpdesk_core.crypto import SecretBox, load_or_create_key
from helpdesk_core.db import make_engine, make_sessionmaker, upgrade
from helpdesk_core.plugins import collect_providers, get_plugin_manager
from helpdesk_core.providers.base import ProviderRegistry
from helpdesk_core.settings import GeneralSettings
from helpdesk_core.storage import AttachmentStorage


@dataclass
class Helpdesk:
    config: Config
    engine: Engine
    pm: pluggy.PluginManager
    secrets: SecretBox
    storage: AttachmentStorage
    sessionmaker: SessionMaker[Session] = field(repr=False)

    @classmethod
    def from_config(
        cls, config: Config, *, create_key: bool = False, load_entrypoints: bool = True,
        extra_plugins: Iterable[object] = (), engine: Engine | None = None,
    ) -> Helpdesk:
        key = config.secret_key or load_or_create_key(config.secret_key_file, create=create_key)
        engine = engine or make_engine(config.database_url)
        pm = get_plugin_manager(load_entrypoints=load_entrypoints, extra_plugins=extra_plugins)
        return cls(config=config, engine=engine, pm=pm, secrets=SecretBox(key),
                   storage=AttachmentStorage(config.attachments_dir),
                   sessionmaker=make_sessionmaker(engine))

    @cached_property
    def providers(self) -> ProviderRegistry:
        return collect_providers(self.pm)

    def session(self) -> Session:
        return self.sessionmaker()

    def upgrade(self) -> None:
        upgrade(self.engine)

    def context(self, session: Session, settings: GeneralSettings | None = None) -> HelpdeskContext:
        return HelpdeskContext(session=session, settings=settings or GeneralSettings.load(session),
                               storage=self.storage, secrets=self.secrets, pm=self.pm,
                               now=datetime.now(UTC))
