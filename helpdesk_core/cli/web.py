"""``helpdesk web``: serve the web app with uvicorn."""

from __future__ import annotations

import click

from helpdesk_core.cli.common import CliState, handle_errors


@click.command("web")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--https", "https", is_flag=True,
              help="Served over https (behind a TLS proxy): mark the session cookie Secure.")
@click.option("--public-url", envvar="HELPDESK_PUBLIC_URL", default=None, metavar="URL",
              help="The address users reach the web app at (e.g. https://helpdesk.district.org), used in "
                   "mailed links; default: the address each request came to. [env: HELPDESK_PUBLIC_URL]")
@click.pass_obj
@handle_errors
def web(state: CliState, host: str, port: int, https: bool, public_url: str | None) -> None:
    """Serve the web app: admin settings, the staff desk and the requester portal."""
    import uvicorn

    from helpdesk_core.web.app import create_app

    app = state.app()
    click.echo(f"Help desk web app on http://{host}:{port}/ (Ctrl-C stops it)")
    uvicorn.run(create_app(app, https=https, public_url=public_url), host=host, port=port, log_level="warning")
