"""Every --output format of a suite run, on results built by hand (one hostile)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from jinja2.sandbox import SandboxedEnvironment
from lxml import etree

from promptmill.errors import ConfigError
from promptmill.suites import outputs
from promptmill.suites.outputs import render, write_output
from promptmill.suites.results import Cell, Check, GateVerdict, Outcome, SuiteResult

XSD = Path(__file__).parent / "junit.xsd"
HOSTILE = '<script>alert("x")</script>\x1b[31m & done'

CONTAINS_OK = Check("contains", True, 1.0, "found 'positive'")
CONTAINS_NO = Check("contains", False, 0.0, "'positive' not in the output")
NOT_REGEX_NO = Check("not-regex", False, 0.0, "matched <b> at 3")


def outcome(case: str, prompt: str, model: str, sample: int, output: str | None,
            checks: tuple[Check, ...], error: str | None = None) -> Outcome:
    passed = error is None and all(c.passed for c in checks)
    return Outcome(case, prompt, model, sample, output, passed,
                   sum(c.score for c in checks) / max(1, len(checks)), checks, error,
                   seconds=0.25, tokens_in=10, tokens_out=3, run_id=7)


@pytest.fixture
def result() -> SuiteResult:
    """2 prompts x 1 model x 2 cases x 2 samples: a pass, a flaky case, a failure, an error."""
    new = Cell("sentiment@3", "embedded", [
        outcome("happy", "sentiment@3", "embedded", 0, "positive", (CONTAINS_OK,)),
        outcome("happy", "sentiment@3", "embedded", 1, "positive, yes", (CONTAINS_OK,)),
        outcome("<b>hostile</b>", "sentiment@3", "embedded", 0, HOSTILE,
                (CONTAINS_NO, NOT_REGEX_NO)),
        outcome("<b>hostile</b>", "sentiment@3", "embedded", 1, "positive", (CONTAINS_OK,)),
    ], run_ids=[7])
    old = Cell("sentiment@2", "embedded", [
        outcome("happy", "sentiment@2", "embedded", 0, "positive", (CONTAINS_OK,)),
        outcome("happy", "sentiment@2", "embedded", 1, None, (), error="timed out after 30 s"),
        outcome("<b>hostile</b>", "sentiment@2", "embedded", 0, "meh", (CONTAINS_NO,)),
        outcome("<b>hostile</b>", "sentiment@2", "embedded", 1, "meh", (CONTAINS_NO,)),
    ], run_ids=[8])
    gate = GateVerdict("threshold", "sentiment@2", "embedded", False,
                       "sentiment@2 on embedded passes 25.0% of 2 cases, below the threshold "
                       "90.0%")
    return SuiteResult("sentiment <suite>", ["sentiment@3", "sentiment@2"], ["embedded"], 2,
                       {("sentiment@3", "embedded"): new, ("sentiment@2", "embedded"): old},
                       gates=[gate], source="suite.yaml")


def _strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_write_output_picks_the_format_by_suffix(tmp_path, result):
    for suffix in (".json", ".jsonl", ".csv", ".xml", ".html"):
        path = write_output(result, tmp_path / "out" / f"run{suffix.upper()}")
        assert path.read_text(encoding="utf-8") == render(result, suffix)


def test_unknown_suffix_is_a_config_error_naming_output_and_suffixes(tmp_path, result):
    with pytest.raises(ConfigError) as info:
        write_output(result, tmp_path / "run.yaml")
    assert info.value.where == "--output"
    assert ".json, .jsonl, .csv, .xml, .html" in info.value.one_line()
    assert not (tmp_path / "run.yaml").exists()


def test_json_is_strict_and_complete(result):
    data = _strict_json(render(result, ".json"))
    assert data["suite"] == "sentiment <suite>" and data["passed"] is False
    new = next(c for c in data["cells"] if c["prompt"] == "sentiment@3")
    assert new["pass_rate"] == pytest.approx(0.75) and new["flaky_cases"] == ["<b>hostile</b>"]
    assert new["pass_at_k"]["2"] == pytest.approx(1.0)
    assert len(new["outcomes"]) == 4 and data["gates"][0]["passed"] is False


def test_jsonl_has_one_outcome_per_line(result):
    lines = render(result, ".jsonl").splitlines()
    assert len(lines) == 8
    rows = [_strict_json(line) for line in lines]
    assert {r["suite"] for r in rows} == {"sentiment <suite>"}
    errored = [r for r in rows if r["error"]]
    assert len(errored) == 1 and errored[0]["prompt"] == "sentiment@2" and not errored[0]["passed"]
    assert rows[2]["checks"][1] == {"type": "not-regex", "passed": False, "score": 0.0,
                                    "reason": "matched <b> at 3", "weight": 1.0, "metric": None}


def test_csv_round_trips_outputs_and_names_failed_assertions(result):
    rows = list(csv.DictReader(io.StringIO(render(result, ".csv"))))
    assert len(rows) == 8 and tuple(rows[0]) == outputs.CSV_COLUMNS
    hostile = rows[2]
    assert hostile["output"] == HOSTILE and hostile["passed"] == "False"
    assert hostile["failed_assertions"] == "contains; not-regex"
    assert hostile["reasons"] == "'positive' not in the output; matched <b> at 3"
    assert rows[5]["error"] == "timed out after 30 s" and rows[5]["output"] == ""


def _junit(result: SuiteResult) -> etree._Element:
    text = render(result, ".xml")
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    document = etree.fromstring(text.encode("utf-8"))
    schema.assertValid(document)
    return document


def test_junit_validates_against_the_schema(result):
    root = _junit(result)
    assert root.tag == "testsuites" and root.get("tests") == "8"
    assert root.get("failures") == "3" and root.get("errors") == "1"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["sentiment@3 @ embedded", "sentiment@2 @ embedded"]
    assert [s.get("tests") for s in suites] == ["4", "4"]


def test_junit_testcases_carry_failures_errors_and_outputs(result):
    new, old = _junit(result).findall("testsuite")
    cases = new.findall("testcase")
    assert [c.get("name") for c in cases] == ["happy #0", "happy #1", "<b>hostile</b> #0",
                                              "<b>hostile</b> #1"]
    assert {c.get("classname") for c in cases} == {"sentiment <suite>"}
    failure = cases[2].find("failure")
    assert failure.get("message") == "contains, not-regex"
    assert failure.text == "contains: 'positive' not in the output\nnot-regex: matched <b> at 3"
    # the ESC character cannot exist in XML 1.0: replaced, the rest kept as text
    assert cases[2].find("system-out").text == HOSTILE.replace("\x1b", "\ufffd")
    assert cases[0].find("failure") is None and cases[0].find("error") is None
    error = old.findall("testcase")[1].find("error")
    assert error.get("message") == "timed out after 30 s"
    assert old.findall("testcase")[1].find("failure") is None


def test_junit_without_repeats_names_testcases_by_case_id(result):
    result.repeat = 1
    names = [c.get("name") for c in _junit(result).iter("testcase")]
    assert names[0] == "happy"


def test_html_is_self_contained_and_escapes_hostile_text(result):
    page = render(result, ".html")
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "<b>hostile</b>" not in page and "&lt;b&gt;hostile&lt;/b&gt;" in page
    assert "sentiment &lt;suite&gt;" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert "<style>" in page


def test_html_shows_matrix_gates_flaky_cases_and_failed_assertions(result):
    page = render(result, ".html")
    matrix = page.split('id="matrix"')[1].split("</section>")[0]
    assert "75.0%" in matrix and "25.0%" in matrix and "[" in matrix
    assert 'class="num bad"' in matrix  # the cell its threshold gate failed
    gates = page.split('id="gates"')[1].split("</section>")[0]
    assert "FAIL" in gates and "below the threshold 90.0%" in gates
    flaky = page.split('id="flaky"')[1].split("</section>")[0]
    assert "sentiment@3" in flaky and "&lt;b&gt;hostile&lt;/b&gt;" in flaky
    cases = page.split('id="cases"')[1]
    assert "&#39;positive&#39; not in the output" in cases and "<code>not-regex</code>" in cases
    assert "error: timed out after 30 s" in cases


def test_html_renders_in_the_sandbox_with_autoescape():
    template = outputs._html_template()
    assert isinstance(template.environment, SandboxedEnvironment)
    assert template.environment.autoescape is True


def test_the_baseline_shows_in_html_and_json_but_is_not_a_junit_testsuite(result):
    old = result.cells.pop(("sentiment@2", "embedded"))
    result.prompts, result.gates = ["sentiment@3"], []
    result.baseline = {("sentiment@2", "embedded"): old}
    page = render(result, ".html")
    matrix = page.split('id="matrix"')[1].split("</section>")[0]
    assert "sentiment@2</b> <span class=\"muted\">(baseline)</span>" in matrix
    assert "25.0%" in matrix and 'class="num bad"' not in matrix  # no gate: no colour
    assert "@ embedded (baseline)" in page.split('id="cases"')[1]
    data = _strict_json(render(result, ".json"))
    assert [c["prompt"] for c in data["baseline"]] == ["sentiment@2"]
    assert [s.get("name") for s in _junit(result).iter("testsuite")] == [
        "sentiment@3 @ embedded"]
