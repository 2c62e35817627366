"""Shared CLI pieces: the store and executor options, the bundled example, one-line errors,
and number formatting."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from ..assembly import Setup
    from ..store.db import Store

console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:
    console.width = 120  # logs and CI output: Rich's 80-column default crushes tables
err_console = Console(stderr=True)


class State:
    db_url: str | None = None
    _store: Store | None = None

    @classmethod
    def store(cls) -> Store:
        if cls._store is None:
            from ..store.db import Store

            cls._store = Store(cls.db_url)
        return cls._store


def example_dir() -> Path:
    """The bundled sentiment task that ``init`` copies and ``demo`` runs."""
    return Path(__file__).resolve().parent.parent / "examples" / "sentiment"


EXECUTOR_HELP = ("Where model calls run: local, ray (a local Ray instance) or ray://HOST:PORT "
                 "(a cluster started with 'ray start --head'); each worker loads the model once.")


def executor_for(choice: str | None, setup: Setup):
    """The ``--executor`` choice, started: Ray workers load the same model as ``setup``'s."""
    from ..assembly import model_choice
    from ..distributed import RayExecutor, make_executor

    runner = make_executor(choice, *model_choice(setup.cfg, setup.model_spec))
    if isinstance(runner, RayExecutor):  # fail on a missing cluster before a run is recorded
        with console.status(f"starting Ray workers ({runner.describe()})…"):
            runner.start(setup.model.identity)
    return runner


def fmt_score(mean: float, low: float | None = None, high: float | None = None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if low is None or high is None:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def clip(text: Any, width: int = 60) -> str:
    text = "" if text is None else " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def is_loopback(host: str) -> bool:
    """Is ``host`` reachable only from this machine? Servers bound elsewhere need a key."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def print_error(message: str) -> None:
    """``message`` as one line on stderr, shown as text whatever it quotes from the input.

    Brackets are not Rich markup, and control characters (a terminal escape sequence in a
    file name, a NUL, a right-to-left override) are printed as escapes, never sent raw.
    """
    from rich.markup import escape

    one_line = " ".join(str(message).split())
    visible = "".join(c if c.isprintable() else repr(c)[1:-1] for c in one_line)
    err_console.print(f"[bold red]error:[/] {escape(visible)}", highlight=False,
                      soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    print_error(message)
    raise typer.Exit(code)


def note_renamed(old: str, new: str) -> None:
    """One line on stderr: the command typed is an old name, and which command replaces it."""
    err_console.print(f"note: 'promptmill {old}' is deprecated and goes in the next release; "
                      f"use 'promptmill {new}'", highlight=False, markup=False, soft_wrap=True)


def renamed_alias(command: Callable[..., Any], old: str, new: str) -> Callable[..., Any]:
    """``command`` under its old name, kept for one release: register it with hidden=True.

    The alias has the command's own signature (functools.wraps), so Typer gives it the same
    arguments, options and defaults; it only says first that the name is deprecated.
    """
    @functools.wraps(command)
    def alias(*args: Any, **kwargs: Any) -> Any:
        note_renamed(old, new)
        return command(*args, **kwargs)

    return alias


# ---------------------------------------------------------------------------------------------
# The last line of defence: exceptions no check turned into a PromptmillError

INTERNAL_HINT = "please report it; set PROMPTMILL_DEBUG=1 for the traceback"


def describe_unexpected(exc: BaseException) -> tuple[str, int]:
    """One line and an exit status for an exception that escaped every command.

    Bad files and a hostile environment (OSError, undecodable text, broken YAML or JSON, invalid
    fields) are the user's to fix: status 2, naming the file. Anything else is a bug: status 1.
    """
    for kinds, explain in _explainers():
        if isinstance(exc, kinds):
            return explain(exc), 2
    if type(exc).__module__.split(".")[0] == "yaml":
        return _yaml_problem(exc), 2
    detail = _clip_line(f"{type(exc).__name__}: {exc}")
    return f"internal error: {detail} — {INTERNAL_HINT}", 1


def _os_problem(exc: OSError) -> str:
    import socket

    network = isinstance(exc, ConnectionError | TimeoutError | socket.gaierror)
    name = exc.filename or (None if network else _file_in_traceback(exc))
    reason = {PermissionError: "permission denied", IsADirectoryError:
              "this is a directory, not a file", FileNotFoundError: "no such file or folder",
              NotADirectoryError: "a part of this path is a file, not a folder"}.get(
        type(exc), exc.strerror or str(exc))
    fix = {PermissionError: "check the file's permissions (and that its folder is writable)",
           IsADirectoryError: "give the path of a file inside it",
           FileNotFoundError: "check the path"}.get(type(exc), "check the file and its disk")
    where = f"{name}: " if name else ""
    return _clip_line(f"{where}{reason}. Fix: {fix}")


def _decode_problem(exc: UnicodeDecodeError) -> str:
    name = _file_in_traceback(exc)
    where = f"{name}: " if name else ""
    return _clip_line(f"{where}not valid {exc.encoding.upper()} (byte offset {exc.start}). "
                      "Fix: save the file as UTF-8")


def _yaml_problem(exc: BaseException) -> str:
    mark = getattr(exc, "problem_mark", None)
    name = getattr(mark, "name", None)
    if not name or name.startswith("<"):
        name = _file_in_traceback(exc)
    line = f":{mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"{name}{line}: " if name else ""
    return _clip_line(f"{where}invalid YAML ({problem}). Fix: check indentation and quoting")


def _json_problem(exc: BaseException) -> str:
    name = _file_in_traceback(exc)
    where = f"{name}: " if name else ""
    return _clip_line(f"{where}malformed JSON ({exc}). Fix: correct the JSON")


def _csv_problem(exc: BaseException) -> str:
    name = _file_in_traceback(exc)
    where = f"{name}: " if name else ""
    return _clip_line(f"{where}unreadable CSV ({exc}). Fix: check the quoting")


def _validation_problem(exc: BaseException) -> str:
    first = exc.errors()[0]  # type: ignore[attr-defined]
    field = ".".join(str(p) for p in first["loc"]) or "(top level)"
    title = getattr(exc, "title", "settings")
    return _clip_line(f"{title}: field '{field}': {first['msg']}. Fix: correct the value")


def _explainers() -> list[tuple[Any, Any]]:
    """(exception class, explainer) pairs; imported only on the error path, so --help is fast."""
    import csv
    import json

    kinds: list[tuple[Any, Any]] = [(OSError, _os_problem),
                                    (UnicodeDecodeError, _decode_problem),
                                    (json.JSONDecodeError, _json_problem),
                                    (csv.Error, _csv_problem)]
    try:
        from pydantic import ValidationError
    except ImportError:  # pragma: no cover - pydantic is a core dependency
        return kinds
    return [*kinds, (ValidationError, _validation_problem)]


def _file_in_traceback(exc: BaseException) -> str | None:
    """The file the failing code was working on: a path or open file in the innermost frames.

    Errors such as UnicodeDecodeError do not carry the file name; the code that read it does.
    """
    import io
    from pathlib import PurePath

    tb, frames = exc.__traceback__, []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        values = list(frame.f_locals.values())
        # not every IOBase has a name (BytesIO has none), and a name may be a descriptor int
        names = [getattr(v, "name", None) for v in values if isinstance(v, io.IOBase)]
        handles = [name for name in names if isinstance(name, str)]
        paths = [str(v) for v in values if isinstance(v, PurePath)]
        if handles or paths:  # an open file is what was being read; else the last path named
            return (handles or paths[-1:])[0]
    return None


def _clip_line(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def prompt_label(store, run: dict) -> str:
    """A run's prompt as NAME@VERSION (the store's version), never a bare name or a hash:
    two versions of one prompt must read differently in every table and verdict."""
    row = store.get_prompt_by_id(run["prompt_id"]) if run.get("prompt_id") else None
    return f"{row['name']}@{row['version']}" if row else run["prompt_hash"][:8]
