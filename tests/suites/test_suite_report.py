"""The tables `promptmill test` prints, from SuiteResults built by hand.

(Named test_suite_report.py: tests/diagnosis/test_report.py has the plain name, and test
folders here are not packages.)
"""

from __future__ import annotations

import io

from rich.console import Console

from promptmill.suites.report import (
    failures_table,
    metric_groups_table,
    print_report,
    repeats_table,
    summary_line,
)
from promptmill.suites.results import Cell, Check, GateVerdict, Outcome, SuiteResult

PLAIN, LABELLED, MODEL = "plain@1", "labelled@3", "fake:positive"


def outcome(case: str, prompt: str, passed: bool, *, output: str = "positive",
            sample: int = 0, checks: tuple[Check, ...] | None = None,
            error: str | None = None) -> Outcome:
    if checks is None:
        checks = (Check("icontains", passed, float(passed),
                        "contains 'positive'" if passed else
                        f"expected to contain 'negative'; the output was {output!r}",
                        metric="label"),)
    return Outcome(case, prompt, MODEL, sample, output, passed, float(passed), checks,
                   error=error)


def result_of(cells: list[Cell], *, repeat: int = 1, gates: list[GateVerdict] | None = None,
              baseline: dict | None = None) -> SuiteResult:
    prompts = list(dict.fromkeys(c.prompt for c in cells))
    models = list(dict.fromkeys(c.model for c in cells))
    return SuiteResult("sentiment-suite", prompts, models, repeat,
                       {(c.prompt, c.model): c for c in cells}, gates=gates or [],
                       baseline=baseline)


def two_cells() -> SuiteResult:
    plain = Cell(PLAIN, MODEL, [outcome("r1", PLAIN, True),
                                outcome("r2", PLAIN, False, output="I think it is fine")])
    labelled = Cell(LABELLED, MODEL, [outcome("r1", LABELLED, True),
                                      outcome("r2", LABELLED, True)])
    return result_of([plain, labelled])


def text_of(result: SuiteResult, **options) -> str:
    console = Console(file=io.StringIO(), record=True, width=220, color_system=None)
    print_report(result, console, **options)
    return console.export_text()


def test_the_matrix_names_prompts_by_version_with_pass_rates_and_counts():
    text = text_of(two_cells())
    matrix = text.split("Metric groups")[0]
    assert "Suite sentiment-suite: pass rate [95% CI]" in matrix
    rows = {line.split()[1]: line for line in matrix.splitlines()
            if line.startswith("│ ") and "@" in line}
    assert set(rows) == {PLAIN, LABELLED}
    assert "50% [9%, 91%]" in rows[PLAIN] and "1/2 cases" in rows[PLAIN]
    assert "100% [34%, 100%]" in rows[LABELLED] and "2/2 cases" in rows[LABELLED]
    assert MODEL in matrix


def test_failures_show_the_output_and_why_each_assertion_failed_and_only_failures():
    text = text_of(two_cells())
    failures = text.split("Failed cases (1)")[1]
    assert "r2" in failures and f"{PLAIN} · {MODEL}" in failures
    assert "I think it is fine" in failures
    assert "icontains: expected to contain 'negative'" in failures
    assert "r1" not in failures.split("No gate")[0]  # r1 passed everywhere
    assert failures_table(result_of([Cell(LABELLED, MODEL, [outcome("r1", LABELLED, True)])])
                          ) is None


def test_a_failed_call_shows_its_error_and_a_case_threshold_failure_says_so():
    errored = outcome("r1", PLAIN, False, output=None, checks=(), error="connection refused")
    by_threshold = outcome("r2", PLAIN, False, checks=(Check("icontains", True, 1.0, "ok"),))
    text = text_of(result_of([Cell(PLAIN, MODEL, [errored, by_threshold])]))
    assert "call failed: connection refused" in text and "(no output)" in text
    assert "below the case's threshold" in text
    assert "1 error" in text  # counted in the matrix cell too


def test_model_output_is_shown_as_text_never_as_markup():
    hostile = "[bold red]pwned[/bold red] [link=http://evil.example]x[/link]"
    cell = Cell(PLAIN, MODEL, [outcome("r1", PLAIN, False, output=hostile)])
    text = text_of(result_of([cell]))
    assert "[bold red]pwned[/bold red]" in text


def test_long_failure_lists_are_cut_with_a_count_of_the_rest():
    outs = [outcome(f"c{i}", PLAIN, False) for i in range(7)]
    text = text_of(result_of([Cell(PLAIN, MODEL, outs)]), max_failures=3)
    assert "Failed cases (7)" in text
    assert "4 more failed outcome(s) not shown" in text
    assert "c2" in text and "c3" not in text.split("Failed cases (7)")[1]


def test_repeats_show_pass_at_k_and_flaky_cases_only_with_more_than_one_sample():
    outs = [outcome("steady", PLAIN, True, sample=s) for s in range(3)]
    outs += [outcome("flaky", PLAIN, s == 0, sample=s) for s in range(3)]
    outs += [outcome("broken", PLAIN, False, sample=s) for s in range(3)]
    result = result_of([Cell(PLAIN, MODEL, outs)], repeat=3)
    text = text_of(result)
    assert "Repeats: 3 samples per case" in text
    repeats = text.split("Repeats: 3 samples per case")[1].split("Failed cases")[0]
    row = next(line for line in repeats.splitlines() if line.startswith("│ plain@1 · "))
    # pass@1 = mean of per-case rates (1, 1/3, 0) = 44%; pass@3 = 2 of 3 cases = 67%
    assert "44%" in row and "67%" in row and "flaky (33%)" in row
    assert "steady" not in row
    assert "4/9 samples" in text
    assert f"{PLAIN} · {MODEL} #2" in text  # failed samples are numbered from 1
    assert repeats_table(two_cells()) is None


def test_metric_groups_get_a_table_only_when_an_assertion_names_one():
    text = text_of(two_cells())
    assert "Metric groups: mean score [95% CI]" in text
    groups = text.split("Metric groups")[1].split("Failed cases")[0]
    header = next(line for line in groups.splitlines() if line.startswith("┃"))
    assert "label" in header
    # plain passed its label check on one case of two, labelled on both
    assert "0.50 [" in groups and "1.00 [0.34, 1.00]" in groups
    unnamed = Check("equals", True, 1.0, "equal")
    cell = Cell(PLAIN, MODEL, [outcome("r1", PLAIN, True, checks=(unnamed,))])
    assert metric_groups_table(result_of([cell])) is None


def test_gate_verdicts_are_printed_in_words_and_the_summary_names_the_exit_status():
    failing = GateVerdict("threshold", PLAIN, MODEL, False,
                          f"{PLAIN} on {MODEL} passes 50.0% of 2 cases, below the threshold 90.0%")
    passing = GateVerdict("threshold", LABELLED, MODEL, True,
                          f"{LABELLED} on {MODEL} passes 100.0% of 2 cases, at or above the "
                          "threshold 90.0%")
    result = two_cells()
    result.gates = [failing, passing]
    text = text_of(result)
    assert f"FAIL threshold gate: {failing.verdict}" in " ".join(text.split())
    assert f"PASS threshold gate: {passing.verdict}" in " ".join(text.split())
    assert "1 of 2 gate(s) failed: exit 1." in text
    result.gates = [passing]
    assert "All 1 gate(s) passed: exit 0." in summary_line(result).plain
    result.gates = []
    assert "No gate was set, so this exits 0" in summary_line(result).plain


def test_a_baseline_gets_its_own_rows_in_the_matrix():
    base = Cell("plain@2", MODEL, [outcome("r1", "plain@2", True), outcome("r2", "plain@2", True)])
    result = two_cells()
    result.baseline = {("plain@2", MODEL): base}
    text = text_of(result)
    row = next(line for line in text.splitlines() if "plain@2 (baseline)" in line)
    assert "100% [34%, 100%]" in row
