"""``promptmill ui``: the web workbench over the same store as the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from .common import State, console, fail, is_loopback

DEFAULT_TOKEN_ENV = "PROMPTMILL_UI_TOKEN"


WILDCARDS = ("0.0.0.0", "::", "")


def _url_host(host: str) -> str:
    if host in WILDCARDS:  # every address: this machine's own is the one that surely works
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _root_folder(root: Path | None) -> Path:
    folder = (root or Path.cwd()).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "no folder there"
        fail(f"--root {root}: {what}. Fix: give the folder that holds your task configs, or "
             "leave --root out to use the current folder")
    return folder.resolve()


def _checked_hosts(names: list[str]) -> tuple[str, ...]:
    from ..web.security import parse_host

    for name in names:
        if parse_host(name) is None:
            fail(f"--allowed-host {name!r} is not a host name. Fix: give a name such as "
                 "workbench.lan, optionally with its port (workbench.lan:8765)")
    return tuple(names)


def ui_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Anything but "
                             "loopback needs a token."),
    port: int = typer.Option(8765, "--port", min=1, max=65535),
    token_env: str = typer.Option(DEFAULT_TOKEN_ENV, "--token-env", metavar="VAR",
                                  help="Environment variable holding the access token."),
    allowed_host: list[str] = typer.Option(
        [], "--allowed-host", metavar="NAME",
        help="Another name the browser may use for this server (repeatable). The bound "
             "address and loopback names are always allowed; other Host headers get 400."),
    root: Path | None = typer.Option(
        None, "--root", metavar="DIR",
        help="Folder whose files the playground may read as task configs (default: the "
             "current folder)."),
    open_browser: bool = typer.Option(False, "--open/--no-open",
                                      help="Open the workbench in a browser."),
) -> None:
    """Serve the web workbench: runs, compare, prompts, optimizations, playground, ratings."""
    token = os.environ.get(token_env) or None
    if not is_loopback(host) and not token:
        fail(f"--host {host} is reachable from other machines, so the workbench needs a token. "
             f"Fix: export {token_env}=<a long random string>, or bind --host 127.0.0.1")
    folder, names = _root_folder(root), _checked_hosts(allowed_host)
    from ..errors import require

    uvicorn = require("uvicorn", "web", "promptmill ui")
    require("fastapi", "web", "promptmill ui")
    from ..web.app import create_app

    app = create_app(State.store().url, token=token, root=folder, host=host, port=port,
                     allowed_hosts=names)
    base = f"http://{_url_host(host)}:{port}/"
    console.print(f"promptmill workbench on [bold]{base}[/] "
                  f"(store {State.store().safe_url()}, configs under {folder})"
                  + (", token required" if token else ""), highlight=False)
    if host in WILDCARDS and not names:
        console.print("other machines reach it only by a name given with --allowed-host "
                      "(the Host header of any other name gets 400)", highlight=False)
    if open_browser:
        import webbrowser

        webbrowser.open(base + (f"?token={token}" if token else ""))
    uvicorn.run(app, host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the promptmill app."""
    app.command("ui")(ui_command)
