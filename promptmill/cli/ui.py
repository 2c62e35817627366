"""``promptmill ui``: the web workbench over the same store as the CLI."""

from __future__ import annotations

import os

import typer

from .common import State, console, fail, is_loopback

DEFAULT_TOKEN_ENV = "PROMPTMILL_UI_TOKEN"




def ui_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Anything but "
                             "loopback needs a token."),
    port: int = typer.Option(8765, "--port", min=1, max=65535),
    token_env: str = typer.Option(DEFAULT_TOKEN_ENV, "--token-env", metavar="VAR",
                                  help="Environment variable holding the access token."),
    open_browser: bool = typer.Option(False, "--open/--no-open",
                                      help="Open the workbench in a browser."),
) -> None:
    """Serve the web workbench: runs, compare, prompts, optimizations, playground, ratings."""
    token = os.environ.get(token_env) or None
    if not is_loopback(host) and not token:
        fail(f"--host {host} is reachable from other machines, so the workbench needs a token. "
             f"Fix: export {token_env}=<a long random string>, or bind --host 127.0.0.1")
    from ..errors import require

    uvicorn = require("uvicorn", "web", "promptmill ui")
    require("fastapi", "web", "promptmill ui")
    from ..web.app import create_app

    app = create_app(State.store().url, token=token)
    url = f"http://{host}:{port}/" + (f"?token={token}" if token else "")
    console.print(f"promptmill workbench on [bold]http://{host}:{port}/[/] "
                  f"(store {State.store().safe_url()})" + (", token required" if token else ""),
                  highlight=False)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the promptmill app."""
    app.command("ui")(ui_command)
