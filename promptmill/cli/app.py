"""The ``promptmill`` command. Heavy modules are imported inside commands, so --help is fast."""

from __future__ import annotations

import os
import sys

import typer

from . import demo as demo_cmds
from . import diagnose as diagnose_cmds
from . import evaluate as evaluate_cmds
from . import induce as induce_cmds
from . import kb as kb_cmds
from . import optimize as optimize_cmds
from . import prompts as prompt_cmds
from . import replay as replay_cmds
from . import runs as run_cmds
from . import scaffold
from . import serve as serve_cmds
from . import test as test_cmds
from . import tune as tune_cmds
from . import ui as ui_cmds
from .common import State, describe_unexpected, print_error

app = typer.Typer(name="promptmill", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False,
                  help="Design, evaluate and optimize prompts. Start with 'promptmill demo'.")


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"promptmill {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    db: str = typer.Option(None, "--db", envvar="PROMPTMILL_DB", metavar="URL",
                           help="SQLAlchemy URL of the store (default: SQLite in "
                                "$PROMPTMILL_HOME or ~/.promptmill)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    State.db_url = db
    State._store = None  # one store per invocation, even when invoked in-process by tests


scaffold.register(app)
evaluate_cmds.register(app)
demo_cmds.register(app)
run_cmds.register(app)
optimize_cmds.register(app)
prompt_cmds.register(app)
replay_cmds.register(app)
kb_cmds.register(app)
induce_cmds.register(app)
diagnose_cmds.register(app)
tune_cmds.register(app)
serve_cmds.register(app)
test_cmds.register(app)
ui_cmds.register(app)


def main() -> None:
    """Run the CLI: every failure is one line on stderr, never a traceback.

    A PromptmillError (bad input, explained where it was found) exits 2; so do file, encoding
    and YAML errors that escaped those checks. Anything else is a bug in promptmill: one line
    and exit 1, with the traceback only when PROMPTMILL_DEBUG=1.
    """
    from ..errors import PromptmillError

    try:
        app()
    except PromptmillError as exc:
        print_error(exc.one_line())
        sys.exit(2)
    except KeyboardInterrupt:
        print_error("interrupted")
        sys.exit(130)
    except BrokenPipeError:  # `promptmill runs | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if os.environ.get("PROMPTMILL_DEBUG", "") not in ("", "0"):
            raise
        message, code = describe_unexpected(exc)
        print_error(message)
        sys.exit(code)


if __name__ == "__main__":
    main()
