"""The tables ``promptmill test`` prints: what a person reads before the exit status.

One function, :func:`print_report`, prints in reading order: the prompts x models matrix
(pass rate with its 95% CI), the named metric groups, pass@k and flaky cases when cases were
sampled more than once, the failed cases (each cell's output, the assertions that failed and
why), then every gate's verdict in plain words. Prompts are always ``NAME@VERSION``.

Model output and suite text are untrusted: they go into Rich as :class:`rich.text.Text`, never
as markup, so an answer such as ``[red]`` or ``[link=...]`` is shown as it was written.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..stats import Estimate
from .results import Cell, GateVerdict, Outcome, SuiteResult

OUTPUT_WIDTH = 60  # characters of a model's answer shown in a failure row
REASON_WIDTH = 90  # characters of one assertion's reason
DEFAULT_MAX_FAILURES = 30  # failure rows printed before "... and N more"


def print_report(result: SuiteResult, console: Console, *,
                 max_failures: int = DEFAULT_MAX_FAILURES) -> None:
    """Everything a suite run found, as tables, then the verdicts and a summary line."""
    console.print(matrix_table(result))
    for table in (metric_groups_table(result), repeats_table(result)):
        if table is not None:
            console.print(table)
    failures = failures_table(result, max_failures)
    if failures is not None:
        console.print(failures)
    for line in gate_lines(result):
        console.print(line)
    console.print(summary_line(result))


# ---------------------------------------------------------------------------------------------
# The matrix


def fmt_rate(estimate: Estimate) -> str:
    """``80% [55%, 95%]``: a pass rate and its 95% CI, in the percentages people read."""
    if estimate.n == 0 or math.isnan(estimate.mean):
        return "-"
    return f"{estimate.mean:.0%} [{estimate.low:.0%}, {estimate.high:.0%}]"


def cell_text(cell: Cell, repeat: int) -> Text:
    """A matrix cell: the pass rate with its CI, the count behind it, and errors in red."""
    rate = cell.pass_rate()
    text = Text(fmt_rate(rate))
    passed = sum(o.passed for o in cell.outcomes)
    unit = "cases" if repeat <= 1 else "samples"
    text.append(f"  {passed}/{len(cell.outcomes)} {unit}", style="dim")
    errors = sum(o.error is not None for o in cell.outcomes)
    if errors:
        text.append(f"  {errors} error{'s' if errors != 1 else ''}", style="red")
    return text


def _baseline_cells(result: SuiteResult) -> dict[tuple[str, str], Cell]:
    # the runner adds ``baseline`` to SuiteResult when --baseline is given
    return getattr(result, "baseline", None) or {}


def matrix_table(result: SuiteResult) -> Table:
    """Prompts down, models across; a baseline's rows (when there is one) at the bottom."""
    table = Table(title=Text(f"Suite {result.suite}: pass rate [95% CI]"), title_justify="left")
    table.add_column("prompt", no_wrap=True)
    for model in result.models:
        table.add_column(Text(model), justify="right")
    for prompt in result.prompts:
        table.add_row(Text(prompt), *_matrix_row(result.cells, prompt, result))
    baseline = _baseline_cells(result)
    for prompt in dict.fromkeys(p for p, _ in baseline):
        table.add_row(Text(f"{prompt} (baseline)", style="dim"),
                      *_matrix_row(baseline, prompt, result))
    return table


def _matrix_row(cells: dict[tuple[str, str], Cell], prompt: str,
                result: SuiteResult) -> list[Text]:
    row = []
    for model in result.models:
        cell = cells.get((prompt, model))
        row.append(cell_text(cell, result.repeat) if cell is not None else Text("-"))
    return row


# ---------------------------------------------------------------------------------------------
# Metric groups, repeats


def _cells(result: SuiteResult) -> Iterator[Cell]:
    """The cells in the matrix's order (prompts, then models), skipping missing ones."""
    for prompt in result.prompts:
        for model in result.models:
            cell = result.cells.get((prompt, model))
            if cell is not None:
                yield cell


def metric_groups_table(result: SuiteResult) -> Table | None:
    """Mean score per named ``metric`` group, per cell; None when no assertion names one."""
    groups = {cell_key(c): c.metric_groups() for c in _cells(result)}
    names = sorted({name for by_name in groups.values() for name in by_name})
    if not names:
        return None
    table = Table(title="Metric groups: mean score [95% CI]", title_justify="left")
    table.add_column("prompt · model", no_wrap=True)
    for name in names:
        table.add_column(Text(name), justify="right")
    for key, by_name in groups.items():
        table.add_row(Text(key), *(Text(fmt_score(by_name.get(n))) for n in names))
    return table


def fmt_score(estimate: Estimate | None) -> str:
    if estimate is None or estimate.n == 0 or math.isnan(estimate.mean):
        return "-"
    return f"{estimate.mean:.2f} [{estimate.low:.2f}, {estimate.high:.2f}]"


def cell_key(cell: Cell) -> str:
    return f"{cell.prompt} · {cell.model}"


def repeats_table(result: SuiteResult) -> Table | None:
    """pass@1, pass@k and the flaky cases (passed on some samples, failed on others).

    None without repeats: with one sample per case pass@k is the pass rate and nothing can be
    flaky, so the table would only repeat the matrix.
    """
    if result.repeat <= 1:
        return None
    k = result.repeat
    table = Table(title=f"Repeats: {k} samples per case", title_justify="left")
    for col in ("prompt · model", "pass@1", f"pass@{k}", "flaky cases (pass rate)"):
        table.add_column(col, justify="left" if col.startswith(("prompt", "flaky")) else "right",
                         no_wrap=col.startswith("prompt"))
    for cell in _cells(result):
        table.add_row(Text(cell_key(cell)), f"{cell.pass_at_k(1):.0%}",
                      f"{cell.pass_at_k(k):.0%}", flaky_text(cell))
    return table


def flaky_text(cell: Cell) -> Text:
    flaky = cell.flaky_cases()
    if not flaky:
        return Text("none", style="dim")
    rates = cell.case_pass_rates()
    return Text(", ".join(f"{case} ({rates[case]:.0%})" for case in flaky), style="yellow")


# ---------------------------------------------------------------------------------------------
# Failures


def failed_outcomes(result: SuiteResult) -> list[Outcome]:
    """Every failed outcome, grouped by case in the suite's order, then by cell and sample."""
    order = {case: i for i, case in enumerate(result.case_ids())}
    failed = [o for cell in _cells(result) for o in cell.outcomes if not o.passed]
    return sorted(failed, key=lambda o: order.get(o.case_id, len(order)))


def failures_table(result: SuiteResult, limit: int = DEFAULT_MAX_FAILURES) -> Table | None:
    """One row per failed case x cell x sample: the output and each failed assertion's why."""
    failed = failed_outcomes(result)
    if not failed:
        return None
    shown = failed[:limit]
    caption = (f"{len(failed) - len(shown)} more failed outcome(s) not shown: write them all "
               "with --output report.html (or .json, .csv)") if len(failed) > len(shown) else None
    table = Table(title=f"Failed cases ({len(failed)})", title_justify="left", caption=caption,
                  caption_justify="left", show_lines=True)
    table.add_column("case", no_wrap=True)
    table.add_column("prompt · model", no_wrap=True)
    table.add_column("output", max_width=OUTPUT_WIDTH)
    table.add_column("failed assertions: why")
    previous = None
    for outcome in shown:
        case = Text(outcome.case_id) if outcome.case_id != previous else Text("")
        previous = outcome.case_id
        table.add_row(case, Text(_where(outcome, result.repeat)), output_text(outcome),
                      why_text(outcome))
    return table


def _where(outcome: Outcome, repeat: int) -> str:
    sample = f" #{outcome.sample + 1}" if repeat > 1 else ""
    return f"{outcome.prompt} · {outcome.model}{sample}"


def output_text(outcome: Outcome) -> Text:
    if outcome.output is None:
        return Text("(no output)", style="dim")
    return Text(clip(outcome.output, OUTPUT_WIDTH))


def why_text(outcome: Outcome) -> Text:
    """The call's error, else each failed assertion on its own line as ``type: reason``."""
    if outcome.error is not None:
        return Text(f"call failed: {clip(outcome.error, REASON_WIDTH)}", style="red")
    lines = [f"{check.type}: {clip(check.reason, REASON_WIDTH)}"
             for check in outcome.failed_checks]
    if not lines:  # a case threshold failed although no single assertion did
        lines = [f"weighted score {outcome.score:.2f} is below the case's threshold"]
    return Text("\n".join(lines))


def clip(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# ---------------------------------------------------------------------------------------------
# Gates and the summary


def gate_lines(result: SuiteResult) -> list[Text]:
    """One line per gate: PASS or FAIL, the gate, and its verdict in plain words."""
    return [gate_line(gate) for gate in result.gates]


def gate_line(gate: GateVerdict) -> Text:
    line = Text("PASS " if gate.passed else "FAIL ", style="bold green" if gate.passed
                else "bold red")
    line.append(f"{gate.gate} gate: ", style="bold")
    line.append(gate.verdict)
    return line


def summary_line(result: SuiteResult) -> Text:
    """What ran, and what the exit status will be and why."""
    n_cases = len(result.case_ids())
    samples = f" x {result.repeat} samples" if result.repeat > 1 else ""
    text = Text(f"{len(result.prompts)} prompt(s) x {len(result.models)} model(s) x "
                f"{n_cases} case(s){samples}. ")
    failed = [g for g in result.gates if not g.passed]
    if not result.gates:
        text.append("No gate was set, so this exits 0 whatever failed; add --threshold 0.9 "
                    "or --baseline NAME@production to fail a build.", style="dim")
    elif failed:
        text.append(f"{len(failed)} of {len(result.gates)} gate(s) failed: exit 1.",
                    style="bold red")
    else:
        text.append(f"All {len(result.gates)} gate(s) passed: exit 0.", style="bold green")
    return text
