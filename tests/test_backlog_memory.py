"""A long backlog imports with memory flat: the cycle keeps counts, not one object per message,
and its session holds nothing of a batch once that batch is committed (issue 16). Checked by
counting, not timing: the ORM identity map seen while importing a late batch is no larger than
while importing the second, and the cycle's result holds no per-message items."""

from __future__ import annotations

import gc
from dataclasses import fields

from helpdesk_core import hookimpl
from helpdesk_core.inbound.cycle import run_cycle
from helpdesk_core.services.departments import add_department, set_mailbox
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.settings import set_setting
from helpdesk_core.testing.apps import make_app
from helpdesk_core.testing.fake import FakePlugin
from mailfactory import plain

BATCH, BATCHES = 10, 12


class IdentityMapWatch:
    """Records the size of the session's identity map when each message is imported."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    @hookimpl
    def helpdesk_message_imported(self, context):
        self.sizes.append(len(context.session.identity_map))


def test_a_long_cycle_holds_nothing_per_message_across_batches(sqlite_url, tmp_path):
    from helpdesk_core.testing.apps import environment

    fake, watch = FakePlugin(), IdentityMapWatch()
    app = make_app(environment(tmp_path / "home", sqlite_url), extra_plugins=(fake, watch))
    app.upgrade()
    with app.session() as s:
        add_department(s, actor=SYSTEM, name="Tech", sender="techhelp@district.test")
        set_mailbox(app, s, actor=SYSTEM, department="Tech", provider="fake", config={"mailbox": "tech"},
                    secrets={})
        set_setting(s, "mail.rate_limit_per_hour", 0)
        s.commit()
    box = fake.provider.mailbox("tech")
    for i in range(BATCH * BATCHES):
        box.deliver(plain(subject=f"Request {i}", sender=f"user{i % 7}@example.test"))
    gc_was = gc.isenabled()
    gc.disable()  # what is freed must be freed by the cycle, not by a lucky collection
    try:
        result = run_cycle(app, 1, batch_size=BATCH)
    finally:
        if gc_was:
            gc.enable()
    assert result.error is None and result.created == BATCH * BATCHES and not box.messages
    sizes = watch.sizes
    second, last = sizes[BATCH:2 * BATCH], sizes[-BATCH:]
    assert max(last) <= max(second), f"identity map grows batch by batch: {sizes}"
    # the summary is counts (a 50,000-mail cycle must not keep 50,000 outcomes)
    for f in fields(result):
        value = getattr(result, f.name)
        assert not isinstance(value, (list, tuple, set)), f"CycleResult.{f.name} is a per-message collection"
    assert len(result.skipped_by_reason) <= 1
    app.engine.dispose()


def test_the_attachment_store_remembers_a_bounded_number_of_folders(tmp_path):
    """Blobs live in up to 65,536 ``ab/cd`` folders; the store remembers which it made (to save a
    stat per blob) only up to a bound: over a backlog of 50,000 mails that set had grown by
    ~300 bytes a mail."""
    from helpdesk_core.storage import MADE_FOLDERS_KEPT, AttachmentStorage

    storage = AttachmentStorage(tmp_path / "attachments")
    keys = [storage.put(f"blob {i}".encode()) for i in range(3 * MADE_FOLDERS_KEPT)]
    assert len(storage._made) <= MADE_FOLDERS_KEPT
    assert all(storage.path(k).read_bytes() == f"blob {i}".encode() for i, k in enumerate(keys))
