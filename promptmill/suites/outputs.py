"""A suite run written to a file for other tools: JSON, JSONL, CSV, JUnit XML or one HTML page.

:func:`write_output` picks the format from the file's suffix. Model outputs are untrusted
text: XML escapes them (and drops the characters XML 1.0 cannot carry), HTML is rendered with
promptmill's sandboxed, autoescaping Jinja2 environment.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .results import Cell, Outcome, SuiteResult

__all__ = ["FORMATS", "html_context", "render", "to_csv", "to_html", "to_json", "to_jsonl",
           "to_junit", "write_output"]


def _json_ready(value: Any) -> Any:
    """NaN and infinities become null: strict JSON, which every other tool can read."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


def _dumps(value: Any, **options: Any) -> str:
    return json.dumps(_json_ready(value), ensure_ascii=False, allow_nan=False, **options)


def to_json(result: SuiteResult) -> str:
    return _dumps(result.to_dict(), indent=2) + "\n"


def _outcomes(result: SuiteResult) -> list[Outcome]:
    return [o for cell in result.cells.values() for o in cell.outcomes]


def to_jsonl(result: SuiteResult) -> str:
    """One outcome per line, each with the suite's name, for line-by-line tools (jq, pandas)."""
    lines = [_dumps({"suite": result.suite, **asdict(o)}) for o in _outcomes(result)]
    return "".join(line + "\n" for line in lines)


CSV_COLUMNS = ("suite", "prompt", "model", "case_id", "sample", "passed", "score", "error",
               "failed_assertions", "reasons", "output", "seconds", "tokens_in", "tokens_out",
               "cached", "run_id")


def _csv_row(suite: str, o: Outcome) -> list[Any]:
    failed = o.failed_checks
    return [suite, o.prompt, o.model, o.case_id, o.sample, o.passed, o.score, o.error or "",
            "; ".join(c.type for c in failed), "; ".join(c.reason for c in failed),
            o.output or "", o.seconds, o.tokens_in, o.tokens_out, o.cached,
            "" if o.run_id is None else o.run_id]


def to_csv(result: SuiteResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_row(result.suite, o) for o in _outcomes(result))
    return buffer.getvalue()


# --- JUnit XML (the Jenkins/Ant schema CI servers read) --------------------------------------

# characters XML 1.0 cannot hold at all, even escaped (control codes a model may emit)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _testcase_name(o: Outcome, repeat: int) -> str:
    return f"{o.case_id} #{o.sample}" if repeat > 1 else o.case_id


def _add_problem(testcase: Any, o: Outcome) -> None:
    from xml.etree import ElementTree as ET

    if o.error is not None:
        error = ET.SubElement(testcase, "error", message=_xml_text(o.error), type="call-error")
        error.text = _xml_text(o.error)
        return
    failed = o.failed_checks
    types = ", ".join(c.type for c in failed) or "case threshold"
    reasons = [f"{c.type}: {c.reason}" for c in failed] or [
        f"weighted score {o.score:.3f} is below the case's threshold"]
    failure = ET.SubElement(testcase, "failure", message=_xml_text(types), type="assertion")
    failure.text = _xml_text("\n".join(reasons))


def _testcase(suite_el: Any, suite: str, o: Outcome, repeat: int) -> None:
    from xml.etree import ElementTree as ET

    testcase = ET.SubElement(suite_el, "testcase", name=_xml_text(_testcase_name(o, repeat)),
                             classname=_xml_text(suite), time=f"{o.seconds:.3f}",
                             assertions=str(len(o.checks)))
    if not o.passed:
        _add_problem(testcase, o)
    if o.output is not None:
        ET.SubElement(testcase, "system-out").text = _xml_text(o.output)


def _testsuite(root: Any, result: SuiteResult, cell: Cell, index: int) -> dict[str, int]:
    from xml.etree import ElementTree as ET

    errors = sum(o.error is not None for o in cell.outcomes)
    failures = sum(not o.passed and o.error is None for o in cell.outcomes)
    counts = {"tests": len(cell.outcomes), "failures": failures, "errors": errors}
    seconds = sum(o.seconds for o in cell.outcomes)
    attributes = {"name": _xml_text(f"{cell.prompt} @ {cell.model}"), "id": str(index),
                  "time": f"{seconds:.3f}", **{k: str(v) for k, v in counts.items()}}
    suite_el = ET.SubElement(root, "testsuite", attributes)
    for o in cell.outcomes:
        _testcase(suite_el, result.suite, o, result.repeat)
    return counts


def to_junit(result: SuiteResult) -> str:
    """<testsuites>, one <testsuite> per prompt x model, one <testcase> per case x sample."""
    from xml.etree import ElementTree as ET

    root = ET.Element("testsuites", name=_xml_text(result.suite))
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for index, cell in enumerate(result.cells.values()):
        for key, count in _testsuite(root, result, cell, index).items():
            totals[key] += count
    root.attrib.update({k: str(v) for k, v in totals.items()})
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# --- HTML: one self-contained page -----------------------------------------------------------

@lru_cache(maxsize=1)
def _html_template() -> Any:
    from jinja2 import FileSystemLoader

    from ..templating import sandboxed_environment

    # autoescape on for every template: outputs, case ids and reasons are untrusted text
    env = sandboxed_environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                                autoescape=True)
    return env.get_template("report.html.j2")


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{value * 100:.1f}%"


def _matrix_cell(cell: Cell, gates: dict[tuple[str, str], bool]) -> dict[str, Any]:
    rate = cell.pass_rate()
    # coloured only by a gate's decision: without one, no rate is "good" or "bad"
    return {"rate": _percent(rate.mean), "low": _percent(rate.low), "high": _percent(rate.high),
            "n": rate.n, "gate": gates.get((cell.prompt, cell.model))}


def _gate_outcomes(result: SuiteResult) -> dict[tuple[str, str], bool]:
    """Per cell, whether every gate on it passed (cells without a gate are left out)."""
    decided: dict[tuple[str, str], bool] = {}
    for g in result.gates:
        key = (g.prompt, g.model)
        decided[key] = decided.get(key, True) and g.passed
    return decided


def _matrix(result: SuiteResult) -> list[dict[str, Any]]:
    """Prompts down, models across; the baseline's rows (if any) at the bottom."""
    gates = _gate_outcomes(result)
    baseline = result.baseline or {}
    rows = []
    for cells, prompts, is_baseline in ((result.cells, result.prompts, False),
                                        (baseline, [p for p, _ in baseline], True)):
        for prompt in dict.fromkeys(prompts):
            row = [_matrix_cell(cells[(prompt, m)], gates) if (prompt, m) in cells else None
                   for m in result.models]
            rows.append({"prompt": prompt, "baseline": is_baseline, "cells": row})
    return rows


def _sample_view(o: Outcome) -> dict[str, Any]:
    return {"sample": o.sample, "passed": o.passed, "output": o.output, "error": o.error,
            "score": f"{o.score:.2f}", "failed": [(c.type, c.reason) for c in o.failed_checks]}


def _columns(result: SuiteResult) -> list[tuple[Cell, bool]]:
    """Every cell shown per case: the suite's, then the baseline's (marked)."""
    return ([(cell, False) for cell in result.cells.values()]
            + [(cell, True) for cell in (result.baseline or {}).values()])


def _case_rows(result: SuiteResult, columns: list[tuple[Cell, bool]]) -> list[dict[str, Any]]:
    by_cell = [cell.by_case() for cell, _ in columns]
    rows = []
    for case in result.case_ids():
        row = [[_sample_view(o) for o in sorted(cases.get(case, []), key=lambda o: o.sample)]
               for cases in by_cell]
        under_test = row[:len(result.cells)]
        rows.append({"case": case, "cells": row,
                     "passed": all(s["passed"] for samples in under_test for s in samples)})
    return rows


def html_context(result: SuiteResult) -> dict[str, Any]:
    """What the page shows, as plain data (the template only lays it out)."""
    flaky = [(c.prompt, c.model, c.flaky_cases()) for c in result.cells.values()
             if c.flaky_cases()]
    columns = _columns(result)
    return {"r": result, "matrix": _matrix(result),
            "columns": [(c.prompt, c.model, is_baseline) for c, is_baseline in columns],
            "cases": _case_rows(result, columns), "flaky": flaky, "gates": result.gates}


def to_html(result: SuiteResult) -> str:
    """A complete HTML document with inline CSS and no script: it opens from a file offline."""
    return _html_template().render(**html_context(result))


FORMATS: dict[str, Callable[[SuiteResult], str]] = {
    ".json": to_json, ".jsonl": to_jsonl, ".csv": to_csv, ".xml": to_junit, ".html": to_html}


def render(result: SuiteResult, suffix: str) -> str:
    """The run as the text of a file with this suffix (``.json``, ``.xml``...)."""
    writer = FORMATS.get(suffix.lower())
    if writer is None:
        raise ConfigError(f"cannot write a {suffix or 'suffix-less'} file",
                          where="--output",
                          fix=f"end the file name with one of {', '.join(FORMATS)}")
    return writer(result)


def write_output(result: SuiteResult, path: str | Path) -> Path:
    """Write the run to ``path`` in the format its suffix names; returns the path."""
    target = Path(path)
    text = render(result, target.suffix)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target
