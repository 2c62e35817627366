"""The workbench's suites pages: the recorded suite runs, one run's matrix, gates and cases."""

from __future__ import annotations

import re

import pytest
import yaml
from web_fixtures import HOSTILE

from promptmill.store.db import Store
from promptmill.store.suites import create_suite_run, finish_suite_run
from promptmill.suites.results import Cell, Check, GateVerdict, Outcome, SuiteResult

PLAIN, LABELLED, MODEL = "plain@1", "labelled@2", "fake:atlas"


def outcome(case: str, prompt: str, passed: bool, output: str, sample: int = 0) -> Outcome:
    check = Check("icontains", passed, float(passed),
                  "contains 'positive'" if passed else
                  f"expected to contain 'positive'; the output was {output!r}")
    return Outcome(case, prompt, MODEL, sample, output, passed, float(passed), (check,),
                   run_id=7)


def hand_built() -> SuiteResult:
    """Two prompts, three cases x two samples; r2 is flaky under plain, r3's output hostile."""
    plain = Cell(PLAIN, MODEL, [o for s in range(2) for o in (
        outcome("r1", PLAIN, True, "positive", s),
        outcome("r2", PLAIN, s == 0, "positive" if s == 0 else "meh", s),
        outcome("r3", PLAIN, False, HOSTILE, s))], run_ids=[7, 8])
    labelled = Cell(LABELLED, MODEL, [outcome(c, LABELLED, True, "positive", s)
                                      for s in range(2) for c in ("r1", "r2", "r3")],
                    run_ids=[9, 10])
    gate = GateVerdict("non-inferior", PLAIN, MODEL, False,
                       f"{PLAIN} could not be shown not worse than {LABELLED} on {MODEL}")
    base = Cell("plain@0", MODEL, [outcome(c, "plain@0", True, "positive")
                                   for c in ("r1", "r2", "r3")])
    return SuiteResult("sentiment-suite", [PLAIN, LABELLED], [MODEL], 2,
                       {(PLAIN, MODEL): plain, (LABELLED, MODEL): labelled}, gates=[gate],
                       source="suite.yaml", baseline={("plain@0", MODEL): base})


@pytest.fixture
def suite_store(sqlite_url) -> tuple[str, int, int]:
    """A store with a finished suite run and one still running (no result yet)."""
    store = Store(sqlite_url)
    finished = create_suite_run(store, "sentiment-suite", "suite.yaml")
    result = hand_built()
    result.suite_run_id = finished
    finish_suite_run(store, finished, "finished", result.to_dict())
    running = create_suite_run(store, "other-suite", "other.yaml")
    store.close()
    return sqlite_url, finished, running


@pytest.fixture
def suite_client(suite_store):
    from web_page_client import page_test_client

    from promptmill.web import create_app

    with page_test_client(create_app(suite_store[0])) as c:
        yield c


def test_the_nav_links_to_the_suites_page_which_lists_runs_newest_first(suite_client,
                                                                        suite_store):
    _, finished, running = suite_store
    html = suite_client.get("/runs").text
    assert '<a href="/suites">Suites</a>' in html
    page = suite_client.get("/suites")
    assert page.status_code == 200
    ids = re.findall(r'<a href="/suites/(\d+)">', page.text)
    assert ids == [str(running), str(finished)]
    assert "sentiment-suite" in page.text and "running" in page.text
    only = suite_client.get("/suites", params={"name": "other-suite"}).text
    assert re.findall(r'<a href="/suites/(\d+)">', only) == [str(running)]


def matrix_of(html: str) -> str:
    return html.split('id="matrix"')[1].split("</table>")[0]


def test_a_suite_run_shows_its_matrix_with_versions_cis_and_links_to_its_runs(suite_client,
                                                                             suite_store):
    html = suite_client.get(f"/suites/{suite_store[1]}").text
    matrix = matrix_of(html)
    assert f"<th>{PLAIN}</th>" in matrix and f"<th>{LABELLED}</th>" in matrix
    assert f"<th>{MODEL}</th>" in matrix
    # labelled passes every sample of its 3 cases: the Wilson interval, as every screen shows
    assert "100% [44%, 100%]" in matrix
    assert re.search(r"50% \[\d+%, \d+%\]", matrix)  # plain: per-case rates 1, 0.5, 0
    assert '<a href="/runs/7"' in matrix and '<a href="/runs/10"' in matrix
    assert "plain@0 <small>(baseline)</small>" in matrix


def test_gates_repeats_and_flaky_cases_are_shown(suite_client, suite_store):
    html = suite_client.get(f"/suites/{suite_store[1]}").text
    gates = html.split('id="gates"')[1].split("</ul>")[0]
    assert "FAIL" in gates and f"{PLAIN} could not be shown not worse than {LABELLED}" in gates
    repeats = html.split('id="repeats"')[1].split("</table>")[0]
    assert "pass@2" in repeats
    plain_row = next(r for r in repeats.split("<tr>") if f"{PLAIN} · {MODEL}" in r)
    assert "r2" in plain_row and "0.500" in plain_row and "0.667" in plain_row


def test_case_rows_show_each_cells_outputs_and_failed_assertions_escaped(suite_client,
                                                                        suite_store):
    html = suite_client.get(f"/suites/{suite_store[1]}").text
    cases = html.split('id="cases"')[1].split("</table>")[0]
    assert cases.count('<tr class="fail">') == 2 and cases.count('<tr class="pass">') == 1
    assert "expected to contain &#39;positive&#39;" in cases
    assert HOSTILE not in html and "&lt;script&gt;" in cases
    assert "#2" in cases  # samples are numbered
    only = suite_client.get(f"/suites/{suite_store[1]}", params={"failures": "1"}).text
    rows = only.split('id="cases"')[1].split("</table>")[0]
    assert '<tr class="pass">' not in rows and rows.count('<tr class="fail">') == 2


def test_a_running_suite_run_and_an_unknown_one(suite_client, suite_store):
    page = suite_client.get(f"/suites/{suite_store[2]}")
    assert page.status_code == 200 and "still running" in page.text
    missing = suite_client.get("/suites/999")
    assert missing.status_code == 404 and "suite run 999 does not exist" in missing.text
    assert suite_client.get("/suites/abc").status_code == 404


def test_a_suite_run_by_the_runner_shows_on_the_page(tmp_path, sqlite_url):
    """The runner's own record, not a hand-built one: the page reads what it writes."""
    from web_page_client import page_test_client

    from promptmill.store.suites import list_suite_runs
    from promptmill.suites.load import load_suite
    from promptmill.suites.runner import run_suite
    from promptmill.web import create_app

    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({
        "name": "capitals",
        "prompts": [{"name": "capital", "instruction": "Name the capital.",
                     "template": "Country: {{ country }}"}],
        "models": [{"spec": "fake", "params": {"answers": {"France": "Paris"},
                                               "default": HOSTILE}}],
        "tests": [{"id": c, "vars": {"country": c}, "assert": [{"type": "equals", "value": v}]}
                  for c, v in (("France", "Paris"), ("Peru", "Lima"))]}))
    store = Store(sqlite_url)
    run_suite(load_suite(path), store=store, progress=False)
    suite_run = list_suite_runs(store)[0]["id"]
    store.close()
    with page_test_client(create_app(sqlite_url)) as client:
        html = client.get(f"/suites/{suite_run}").text
    assert "capital@1" in matrix_of(html) and "50% [" in matrix_of(html)
    assert "Peru" in html and HOSTILE not in html
