"""``helpdesk department …``: departments and their mailboxes."""

from __future__ import annotations

import sys
from typing import Any

import click
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.cli.common import CliState, action, emit, fail, handle_errors, listing
from helpdesk_core.errors import HelpdeskError, MailboxError
from helpdesk_core.providers.base import ConfigField, MailboxProvider, ProviderRegistry
from helpdesk_core.services import departments as svc
from helpdesk_core.services.permissions import Actor


@click.group()
def department() -> None:
    """Departments and their mailboxes."""


@department.command("add")
@click.argument("name")
@click.option("--sender", required=True, help="The department's address replies are sent From.")
@click.option("--interval", default=5, show_default=True, type=int, help="Minutes between import cycles.")
@action
def department_add(_app: Helpdesk, session: Session, actor: Actor, name: str, sender: str, interval: int) -> str:
    """Create a department (it works without a mailbox too)."""
    dept = svc.add_department(session, actor=actor, name=name, sender=sender, interval_minutes=interval)
    return f"Department {dept.name!r} created (sender {dept.sender_address})."


def _department_line(d: dict[str, Any]) -> str:
    mb = "" if "mailbox" not in d else d["mailbox"]["identity"] if d["mailbox"] else "no mailbox"
    return f"{d['name']}  <{d['sender']}>  every {d['interval_minutes']} min  {mb}"


@department.command("list")
@listing(_department_line)
def department_list(_app: Helpdesk, session: Session, actor: Actor) -> list[dict[str, Any]]:
    """List departments."""
    return svc.department_summaries(session, actor=actor)


# ---- set-mailbox: its options are the installed providers' declared fields ------------------

#: options of set-mailbox that are not provider fields (a field of the same name: --set NAME=VALUE)
_FIXED_OPTIONS = ("name", "provider", "extra", "secret_stdin", "no_validate", "help")
_CLICK_TYPES: dict[str, Any] = {"int": int, "path": click.Path()}
_META = "helpdesk.provider_field_options"
_PROBLEM = "helpdesk.provider_field_options.problem"


def _stdin_flag(field_name: str) -> str:
    return f"{field_name}_stdin"


def _field_options(providers: ProviderRegistry) -> list[click.Option]:
    """One option per field name declared by any installed provider: ``--host`` for a plain
    field, ``--password-stdin`` (a flag: read it from standard input) for a secret one. Nothing
    is guessed from names: ``ConfigField.secret`` alone decides."""
    by_name: dict[str, list[tuple[str, ConfigField]]] = {}
    for provider_name, provider in sorted(providers.providers.items()):
        for f in provider.fields:
            by_name.setdefault(_stdin_flag(f.name) if f.secret else f.name, []).append((provider_name, f))
    options: list[click.Option] = []
    for dest, declared in by_name.items():
        if dest in _FIXED_OPTIONS:
            continue
        first, owners = declared[0][1], ", ".join(name for name, _ in declared)
        flag = "--" + dest.replace("_", "-")
        if first.secret:
            options.append(click.Option([flag, dest], is_flag=True, help=(
                f"{first.label} (secret {first.name!r}): read it from standard input, or from a hidden "
                f"prompt on a terminal. {first.help} [{owners}]".replace("  ", " "))))
            continue
        types = {f.type for _, f in declared}
        if types == {"choice"}:
            choices = list(dict.fromkeys(c for _, f in declared for c in f.choices))
            click_type: Any = click.Choice(choices)
        else:
            click_type = _CLICK_TYPES.get(types.pop(), str) if len(types) == 1 else str
        options.append(click.Option([flag, dest], type=click_type, default=None,
                                    help=f"{first.help or first.label} [{owners}]"))
    return options


def _installed_providers(ctx: click.Context) -> ProviderRegistry:
    """The providers of this invocation's application (its one plugin manager); none when there
    is no application (e.g. no secret key before ``helpdesk init``): the reason is kept for
    :meth:`ProviderFieldsCommand.parse_args`."""
    state = ctx.find_object(CliState)
    try:
        if state is not None:
            return state.app().providers
    except HelpdeskError as exc:
        ctx.meta[_PROBLEM] = exc
    return ProviderRegistry()


class ProviderFieldsCommand(click.Command):
    """A command whose options include one per field of the installed providers."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        self.get_params(ctx)
        problem = ctx.meta.get(_PROBLEM)
        if problem is not None and not set(args) & set(ctx.help_option_names):
            fail(problem.message, 1)  # the real reason, not "no such option --host"
        return super().parse_args(ctx, args)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if _META not in ctx.meta:
            ctx.meta[_META] = _field_options(_installed_providers(ctx))
        params: list[click.Parameter] = [*self.params, *ctx.meta[_META]]
        help_option = self.get_help_option(ctx)
        return params + [help_option] if help_option is not None else params


def _read_secret(field: ConfigField, provider: str) -> str:
    """One secret: a hidden prompt on a terminal, else one line of standard input."""
    if sys.stdin.isatty():
        return str(click.prompt(f"{field.label or field.name} ({provider})", hide_input=True))
    line = sys.stdin.readline()
    if not line:
        fail(f"Standard input ended before the secret {field.name!r}: give one line per secret, in the "
             "order of the options (the --NAME-stdin flags first, then each --secret-stdin NAME).", 2)
    return line.rstrip("\r\n")


def _split_settings(provider: MailboxProvider, options: dict[str, Any], extra: tuple[str, ...],
                    secret_names: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """The plain settings (options, ``--set``) and the secrets (standard input / prompt) for
    ``provider``. A secret given as an argument is refused: command lines are visible to others.
    Secrets are read in the provider's field order for the flags, then as --secret-stdin names."""
    fields = {f.name: f for f in provider.fields}
    secret_fields = [f for f in provider.fields if f.secret]
    how = "pass it with --secret-stdin {0} (one line of standard input, or a hidden prompt on a terminal)"
    flags = {o.name for o in click.get_current_context().meta[_META] if o.is_flag}
    flagged = [key[: -len("_stdin")] for key in flags if options.get(key)]
    wanted = [f.name for f in secret_fields if f.name in flagged]
    wanted += sorted(set(flagged) - set(wanted))  # another provider's secrets: refused below
    config = {key: value for key, value in options.items() if key not in flags and value is not None}
    for item in extra:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            fail(f"--set takes KEY=VALUE (got {item!r}).", 2)
        if key in fields and fields[key].secret:
            fail(f"{key!r} is a secret setting of provider {provider.name!r} and is never taken from the "
                 f"command line (others can read it there): {how.format(key)}.", 2)
        config[key] = value
    wanted.extend(secret_names)
    for name in wanted:
        if name not in fields or not fields[name].secret:
            known = ", ".join(f.name for f in secret_fields) or "none"
            plain = f" ({name!r} is a plain setting: use --set {name}=VALUE)" if name in fields else ""
            fail(f"{name!r} is not a secret setting of provider {provider.name!r}{plain}; its secret settings: "
                 f"{known}.", 2)
    return config, {name: _read_secret(fields[name], provider.name) for name in dict.fromkeys(wanted)}


@department.command("set-mailbox", cls=ProviderFieldsCommand)
@click.argument("name")
@click.option("--provider", default="generic", show_default=True,
              help="The mailbox provider (see 'helpdesk plugins'); its settings are the options below.")
@click.option("--set", "extra", multiple=True, metavar="KEY=VALUE",
              help="Any plain provider setting (secrets: --secret-stdin).")
@click.option("--secret-stdin", "secret_stdin", multiple=True, metavar="NAME",
              help="Read the provider's secret setting NAME from standard input (one line per secret, "
                   "after those of the --NAME-stdin flags), or prompt for it on a terminal. Repeatable.")
@click.option("--no-validate", is_flag=True, hidden=True)
@click.pass_obj
@handle_errors
def department_set_mailbox(state: CliState, name: str, provider: str, extra: tuple[str, ...],
                           secret_stdin: tuple[str, ...], no_validate: bool, **options: Any) -> None:
    """Configure the department's mailbox (and outgoing mail server). Connectivity is checked first;
    nothing is saved on failure.

    The options come from the installed providers' settings: plain ones as --NAME VALUE or
    --set NAME=VALUE, secret ones only from standard input (--NAME-stdin, --secret-stdin NAME) or
    a hidden prompt; a secret is never accepted as an argument. With --password-stdin and
    --smtp-password-stdin, the password is the first line and the SMTP password the second."""
    with state.session() as (app, session, actor):
        config, secrets = _split_settings(app.providers.get(provider), options, extra, secret_stdin)
        try:
            facts = svc.set_mailbox(app, session, actor=actor, department=name, provider=provider,
                                    config=config, secrets=secrets, validate=not no_validate)
        except MailboxError as exc:
            fail(f"[{exc.kind}] {exc.message} Nothing was saved.", 1)
        waiting = facts.get("waiting")
        extra_info = f" ({waiting} messages waiting)" if waiting is not None else ""
        if facts.get("smtp"):
            extra_info += f"; outgoing mail via {facts['smtp']} checked"
        if facts.get("move_to_folder"):
            extra_info += f"; imported mail is moved to folder {facts['move_to_folder']!r}"
        done = "saved without checking the connection" if no_validate else "checked and saved"
        click.echo(f"Mailbox of {name!r} {done}{extra_info}.")


@department.command("set")
@click.argument("name")
@click.option("--acknowledge/--no-acknowledge", default=None,
              help="Send an automatic acknowledgement for each new ticket opened by a person.")
@click.option("--reopen/--new-ticket-on-closed", "reopen_closed", default=None,
              help="A reply to a closed ticket reopens it (default), or opens a new ticket.")
@click.option("--templates-dir", type=click.Path(file_okay=False), default=None,
              help="Folder overriding the mail templates (reply/, acknowledgement/); '' for the defaults.")
@click.option("--rename", default=None, metavar="NEW", help="A new name for the department.")
@click.option("--sender", default=None, help="A new address replies are sent From.")
@click.option("--interval", type=int, default=None, help="Minutes between import cycles.")
@click.option("--auto-close-days", type=int, default=None, help="Close resolved tickets after N days (0: never).")
@click.option("--notify-staff/--no-notify-staff", default=None,
              help="Mail the department's staff about new tickets and requester replies.")
@action
def department_set(_app: Helpdesk, session: Session, actor: Actor, name: str, acknowledge: bool | None,
                   reopen_closed: bool | None, templates_dir: str | None, rename: str | None = None,
                   sender: str | None = None, interval: int | None = None, auto_close_days: int | None = None,
                   notify_staff: bool | None = None) -> str:
    """Change department options, its name, sender address or import interval."""
    from helpdesk_core.services.administration import update_department

    name = update_department(session, actor=actor, department=name, rename=rename, sender=sender,
                             interval_minutes=interval, auto_close_days=auto_close_days,
                             notify_staff=notify_staff).name
    options = svc.set_department_options(session, actor=actor, department=name, acknowledge=acknowledge,
                                         reopen_closed=reopen_closed, templates_dir=templates_dir)
    return f"{name}: " + ", ".join(f"{k}={v}" for k, v in sorted(options.items()))


@department.command("clear-mailbox")
@click.argument("name")
@action
def department_clear_mailbox(_app: Helpdesk, session: Session, actor: Actor, name: str) -> str:
    """Remove the department's mailbox; it keeps working for internal tickets."""
    removed = svc.clear_mailbox(session, actor=actor, department=name)
    return f"Mailbox of {name!r} removed." if removed else f"{name!r} had no mailbox."


def _status_line(item: tuple[str, Any]) -> str:
    key, value = item
    if key == "last_cycle" and value:
        value = ", ".join(f"{k}={v}" for k, v in value.items())
    return f"{key.replace('_', ' ')}: {value if value is not None else '-'}"


@department.command("status")
@click.argument("name")
@listing(_status_line, rows=dict.items)
def department_status(_app: Helpdesk, session: Session, actor: Actor, name: str) -> dict[str, Any]:
    """Health of the department's import."""
    return svc.department_status(session, actor=actor, department=name)


@department.command("verify")
@click.argument("name")
@click.option("--timeout", default=30.0, show_default=True, type=float,
              help="Seconds the import looks for the test mail.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def department_verify(state: CliState, name: str, timeout: float, as_json: bool) -> None:
    """Verify end to end: send a test mail From the department to its own address, import until
    it is seen, delete it without a ticket; report each leg (exit 1 when one fails)."""
    from helpdesk_core.services.verify import verify_end_to_end

    with state.session(commit=False) as (app, session, actor):
        dept_id = svc.get_department(session, name).id
    report = verify_end_to_end(app, actor=actor, department_id=dept_id, timeout=timeout)
    emit(report, as_json, lambda leg: f"{leg['leg']}: {'ok' if leg['ok'] else 'FAILED' if leg['ok'] is False else '-'}"
                                      f"  {leg['detail']}", rows=report["legs"])
    if not report["ok"]:
        sys.exit(1)
