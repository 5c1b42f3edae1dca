"""``helpdesk status``, ``helpdesk watch`` and ``helpdesk department push`` (docs/scaling.md)."""

from __future__ import annotations

import logging
import os
import signal
import sys

import click

from helpdesk_core.cli.common import CliState, echo_json, fail, handle_errors
from helpdesk_core.services.permissions import SYSTEM


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@handle_errors
def status(state: CliState, as_json: bool) -> None:
    """All departments at once: state, last success, lag behind schedule, who imports and watches
    them; with HELPDESK_BROKER_URL set, the Celery queue depths too."""
    from helpdesk_core.services.scale import system_status

    with state.session(commit=False) as (_app, session, actor):
        data = system_status(session, actor=actor)
    data["celery"] = _celery_status(data["departments"])
    if as_json:
        echo_json(data)
        return
    for d in data["departments"]:
        lag = f"{d['lag_seconds']:.0f} s behind" if d["lag_seconds"] else "on time"
        extra = "".join(f", {k} {d[k]}" for k in ("importing", "watcher") if d[k])
        click.echo(f"{d['department']}: {d['state']}, {lag}, last success {d['last_success_at'] or 'never'}"
                   f"{', push off' if not d['push'] else ''}{extra}")
    if data["celery"]:
        click.echo("queues: " + ", ".join(f"{q} {n if n is not None else '?'}"
                                          for q, n in data["celery"]["queues"].items()))


def _celery_status(departments: list[dict]) -> dict | None:
    """Queue depths when the Celery set-up is configured (HELPDESK_BROKER_URL), else None."""
    if not os.environ.get("HELPDESK_BROKER_URL"):
        return None
    try:
        from helpdesk_core import tasks
    except ImportError as exc:
        return {"error": str(exc), "queues": {}}
    queues = sorted({tasks.DEFAULT_QUEUE, *(d["queue"] for d in departments if d.get("queue"))})
    return {"queues": tasks.queue_depths(queues)}


@click.command()
@click.option("--max-mailboxes", default=500, show_default=True,
              help="Most mailboxes this process watches; run several processes for more.")
@click.pass_obj
@handle_errors
def watch(state: CliState, max_mailboxes: int) -> None:
    """Hold IMAP IDLE connections and send an import to Celery when mail arrives (needs
    'helpdesk-core[celery]' and HELPDESK_BROKER_URL). Mailboxes are taken by lease, so several
    watch processes together watch each mailbox once. Stops on SIGTERM/SIGINT."""
    try:
        from helpdesk_core import tasks
    except ImportError as exc:
        fail(str(exc))
    from helpdesk_core.services.scale import watch_service

    service = watch_service(state.app(), actor=SYSTEM, enqueue=tasks.enqueue_department, limit=max_mailboxes)

    def stop(_signum: int, _frame: object) -> None:
        service.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger("helpdesk").setLevel(min(logging.getLogger().level, logging.INFO))
    click.echo(f"watching as {service.owner} (at most {max_mailboxes} mailboxes)", err=True)
    service.run()
    sys.exit(0)


@click.command("push")
@click.argument("name")
@click.argument("switch", type=click.Choice(["on", "off"]))
@click.pass_obj
@handle_errors
def department_push(state: CliState, name: str, switch: str) -> None:
    """Turn IMAP IDLE push on (default) or off for a department; polling goes on either way."""
    from helpdesk_core.services.scale import set_push

    with state.session() as (_app, session, actor):
        set_push(session, actor=actor, department=name, enabled=switch == "on")
    click.echo(f"{name}: push {switch}")


def register(main: click.Group) -> None:
    from helpdesk_core.cli.departments import department

    main.add_command(status)
    main.add_command(watch)
    department.add_command(department_push)
