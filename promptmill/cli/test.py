"""``promptmill test``: run a test suite (prompts x models x cases) and gate a build on it.

The command is a thin wrapper over :func:`run_tests`, a plain function with real defaults, so
nothing else has to call a Typer command (whose defaults are truthy ``OptionInfo`` objects).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from .common import State, console

if TYPE_CHECKING:
    from ..suites.results import GateVerdict, SuiteResult

GATES = ("non-inferior", "superior")  # promptmill.suites.gates.GATES, without importing stats

EXIT_CODES = ("Exit status: 0 when every gate passed (or none was set), 1 when a gate failed, "
              "2 on bad input (a one-line error naming the file, line and fix).")

HELP = f"""Run a test suite: every prompt x every model x every case, with assertions.

SUITE is promptmill's suite YAML or a promptfoo config (promptfooconfig.yaml) read as it is.
Prints the prompts x models matrix (pass rate [95% CI]), the failed cases and why, and the
verdict of each gate: --threshold (a cell's pass rate), --baseline with --gate (a one-sided
paired test against a stored prompt such as NAME@production, on the same cases).

{EXIT_CODES}
"""


def suite_command(
    suite: Path = typer.Argument(..., metavar="SUITE",
                                 help="Suite YAML, or a promptfoo config file."),
    repeat: int = typer.Option(None, "--repeat", min=1, metavar="N",
                               help="Samples per case (default: the suite's 'repeat', else 1). "
                                    "With temperature > 0 this reports pass@k and flaky cases."),
    threshold: float = typer.Option(None, "--threshold", metavar="X",
                                    help="Gate: exit 1 when a prompt x model cell's pass rate "
                                         "is below X, in [0, 1]."),
    baseline: str = typer.Option(None, "--baseline", metavar="NAME@TAG|RUN",
                                 help="Compare every prompt with this stored prompt (run on the "
                                      "same cases and models) or with a recorded suite run."),
    gate: str = typer.Option(None, "--gate", metavar="non-inferior|superior",
                             help="With --baseline (default non-inferior): exit 1 unless each "
                                  "prompt is shown not worse than the baseline by more than "
                                  "--margin, or (superior) shown better."),
    margin: float = typer.Option(0.02, "--margin", metavar="M",
                                 help="Non-inferiority margin, as a pass-rate difference."),
    alpha: float = typer.Option(0.05, "--alpha", metavar="A",
                                help="Significance level of the one-sided paired test."),
    output: list[Path] = typer.Option(None, "--output", "-o", metavar="FILE",
                                      help="Also write the results; the suffix picks the "
                                           "format: .json, .jsonl, .csv, .xml (JUnit), .html. "
                                           "Repeatable."),
    model: list[str] = typer.Option(None, "--model", "-m", metavar="SPEC",
                                    help="Model spec (embedded, gguf:PATH, openai:NAME, "
                                         "fake:TEXT) replacing the suite's models. Repeatable."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Call the models even when a "
                                  "cached answer exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    export_promptfoo: Path = typer.Option(None, "--export-promptfoo", metavar="FILE",
                                          help="Write the suite as a promptfoo config to FILE "
                                               "and exit 0, running nothing."),
) -> None:
    if export_promptfoo is not None:
        export_suite(suite, export_promptfoo)
        return
    result = run_tests(suite, repeat=repeat, threshold=threshold, baseline=baseline,
                       gate=gate, margin=margin, alpha=alpha, outputs=list(output or []),
                       models=list(model or []), cache=not no_cache, progress=not quiet)
    raise typer.Exit(0 if result.passed else 1)


suite_command.__doc__ = HELP


def register(app: typer.Typer) -> None:
    app.command("test", help=HELP)(suite_command)


# ---------------------------------------------------------------------------------------------
# The plain functions


def export_suite(path: Path, destination: Path) -> None:
    """Write the suite at ``path`` as a promptfoo config (the command's --export-promptfoo)."""
    from ..suites.load import load_suite
    from ..suites.promptfoo import write_promptfoo

    write_promptfoo(load_suite(path), destination, store=State.store())  # NAME@TAG prompts
    console.print(f"wrote {destination} (a promptfoo config; 'promptmill test {destination}' "
                  "reads it back)", highlight=False, markup=False)


def run_tests(path: Path, *, repeat: int | None = None, threshold: float | None = None,
              baseline: str | None = None, gate: str | None = None, margin: float = 0.02,
              alpha: float = 0.05, outputs: list[Path] | None = None,
              models: list[str] | None = None, cache: bool = True,
              progress: bool = True) -> SuiteResult:
    """What ``promptmill test`` does: check the options, run the suite, gate, report, write.

    Every option is checked before the suite is loaded and every file before a model is
    called, so bad input costs nothing. The caller turns ``result.passed`` into the exit code.
    """
    from ..suites.load import load_suite
    from ..suites.report import print_report
    from ..suites.runner import run_suite

    outputs = outputs or []
    gate = check_options(threshold=threshold, baseline=baseline, gate=gate, margin=margin,
                         alpha=alpha, outputs=outputs)
    result = run_suite(load_suite(path), store=State.store(), repeat=repeat, cache=cache,
                       progress=progress, models=models or None, baseline=baseline)
    result.gates.extend(gates_for(result, threshold=threshold, baseline=baseline, gate=gate,
                                  margin=margin, alpha=alpha))
    record_gates(result)
    print_report(result, console)
    write_outputs(result, outputs)
    print_next_steps(result)
    return result


def print_next_steps(result: SuiteResult) -> None:
    """Where the run was recorded, and the commands that read it."""
    run_ids = [run for cell in result.cells.values() for run in cell.run_ids]
    if result.suite_run_id is not None:
        console.print(f"[dim]Recorded as suite run {result.suite_run_id} (the workbench, "
                      f"'promptmill ui', shows it at /suites/{result.suite_run_id}; "
                      f"'--baseline {result.suite_run_id}' compares a later run with it).[/]",
                      highlight=False)
    if run_ids:
        console.print(f"[dim]Evaluation runs {', '.join(map(str, run_ids[:8]))}"
                      f"{', ...' if len(run_ids) > 8 else ''}: 'promptmill show "
                      f"{run_ids[0]} --failures', 'promptmill compare A B'.[/]",
                      highlight=False)


def check_options(*, threshold: float | None, baseline: str | None, gate: str | None,
                  margin: float, alpha: float, outputs: list[Path]) -> str | None:
    """The gate and output options, checked before anything runs (the gates check their own
    arguments again, but only after every model call); returns the gate to apply with a
    baseline, None without one."""
    from ..errors import ConfigError

    if threshold is not None and not 0 <= threshold <= 1:
        raise ConfigError(f"threshold {threshold} is outside [0, 1]", where="--threshold",
                          fix="give a pass rate such as 0.9")
    if gate is not None and gate not in GATES:
        raise ConfigError(f"unknown gate '{gate}'", where="--gate",
                          fix="use non-inferior or superior")
    if gate is not None and baseline is None:
        raise ConfigError(f"--gate {gate} compares with a baseline, and none was given",
                          where="--gate", fix="add --baseline NAME@TAG (e.g. NAME@production)")
    if not 0 <= margin < 1:
        raise ConfigError(f"margin {margin} is outside [0, 1)", where="--margin",
                          fix="give a pass-rate difference such as 0.02 (2 points)")
    if not 0 < alpha < 0.5:
        raise ConfigError(f"alpha {alpha} is outside (0, 0.5)", where="--alpha",
                          fix="give a significance level such as 0.05")
    for path in outputs:
        check_output_path(path)
    return (gate or GATES[0]) if baseline is not None else None


def check_output_path(path: Path) -> None:
    from ..errors import ConfigError
    from ..suites.outputs import FORMATS

    if path.suffix.lower() not in FORMATS:
        raise ConfigError(f"cannot tell the format of '{path}' from its suffix",
                          where="--output", fix=f"end it in one of {', '.join(FORMATS)}")


def gates_for(result: SuiteResult, *, threshold: float | None, baseline: str | None,
              gate: str | None, margin: float, alpha: float) -> list[GateVerdict]:
    from ..suites.gates import baseline_gates, threshold_gates

    verdicts: list[GateVerdict] = []
    if threshold is not None:
        verdicts.extend(threshold_gates(result, threshold))
    if baseline is not None and gate is not None:
        verdicts.extend(baseline_gates(result, gate=gate, margin=margin, alpha=alpha))
    return verdicts


def record_gates(result: SuiteResult) -> None:
    """Store the verdicts with the suite run the runner recorded, for the workbench."""
    if result.suite_run_id is None or not result.gates:
        return
    from ..store.suites import save_suite_result

    save_suite_result(State.store(), result.suite_run_id, result.to_dict())


def write_outputs(result: SuiteResult, paths: list[Path]) -> None:
    from ..suites.outputs import write_output

    for path in paths:
        write_output(result, path)
        console.print(f"wrote {path}", highlight=False, markup=False)
