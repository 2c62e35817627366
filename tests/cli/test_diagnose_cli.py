"""``promptmill diagnose`` and multi-run ``compare`` end to end on the fake model."""

import json

import helpers
from typer.testing import CliRunner

from promptmill.cli.app import app

runner = CliRunner()


def run(*args, db):
    return runner.invoke(app, ["--db", db, *map(str, args)], catch_exceptions=False)


def test_diagnose_prints_writes_and_applies(capitals_task, sqlite_url, tmp_path):
    assert run("eval", capitals_task, "-q", db=sqlite_url).exit_code == 0
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    result = run("diagnose", "1", "--html", html, "--json", js, "--robustness", "--n", "12",
                 "--kinds", "casing,whitespace", db=sqlite_url)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "4 failures" in out and "Failure categories" in out and "Robustness" in out
    assert "refusal" in out and "casing" in out
    assert html.read_text().startswith("<!doctype html>")
    data = json.loads(js.read_text())
    assert data["n"] == 12 and data["n_failures"] == 4
    assert {r["kind"] for r in data["robustness"]} == {"casing", "whitespace"}
    suggestion = data["suggestions"][0]["id"]
    applied = run("diagnose", "1", "--apply", suggestion, "--clusters", "none", db=sqlite_url)
    assert applied.exit_code == 0, applied.output
    assert "saved ask@2" in applied.output


def test_compare_many_runs(capitals_task, sqlite_url, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("name: other\ninstruction: Capital?\ntemplate: '{{ country }}'\n")
    run("eval", capitals_task, "-q", db=sqlite_url)
    run("eval", capitals_task, "-p", other, "-q", db=sqlite_url)
    run("eval", capitals_task, "-q", "--no-cache", db=sqlite_url)
    result = run("compare", "1", "2", "3", "--json", tmp_path / "c.json", db=sqlite_url)
    assert result.exit_code == 0, result.output
    assert "3 runs over 12 shared examples" in result.output
    assert "What changed in run 2" in result.output and "instruction" in result.output
    saved = json.loads((tmp_path / "c.json").read_text())
    assert [t["run"] for t in saved["tests"]] == [2, 3]


def test_diagnose_bad_input_exits_2(capitals_task, sqlite_url, capsys):
    code, out = helpers.run_main(["--db", sqlite_url, "diagnose", "7"], capsys)
    assert code == 2 and "run 7 does not exist" in out and "Traceback" not in out
    run("eval", capitals_task, "-q", db=sqlite_url)
    code, out = helpers.run_main(["--db", sqlite_url, "diagnose", "1", "--calibration"], capsys)
    assert code == 2 and "no log-probabilities" in out and "--compute" in out
    code, out = helpers.run_main(["--db", sqlite_url, "diagnose", "1", "--apply", "zzz"],
                                 capsys)
    assert code == 2 and "no suggestion 'zzz'" in out
    code, out = helpers.run_main(["--db", sqlite_url, "diagnose", "1", "--robustness",
                                  "--kinds", "sideways"], capsys)
    assert code == 2 and "unknown perturbation 'sideways'" in out


def test_calibration_compute_rescores_with_logprobs(capitals_task, sqlite_url):
    run("eval", capitals_task, "-q", db=sqlite_url)
    result = run("diagnose", "1", "--calibration", "--compute", db=sqlite_url)
    assert result.exit_code == 0, result.output
    assert "re-scored with logprobs as run 2" in result.output
    assert "Calibration: ECE" in result.output


def test_no_failures_is_a_clear_message(tmp_path, sqlite_url):
    helpers.write_jsonl(tmp_path / "d.jsonl", [{"id": str(i), "q": f"q{i}", "a": "ok"}
                                               for i in range(6)])
    (tmp_path / "t.yaml").write_text(
        "name: easy\ndata: {path: d.jsonl, input: [q], target: a, id: id}\n"
        "splits: {train: 0, validation: 0, test: 6}\nmetric: exact\n"
        "model: 'fake:ok'\nprompt: {instruction: Say ok., template: '{{ q }}'}\n")
    run("eval", tmp_path / "t.yaml", "-q", db=sqlite_url)
    result = run("diagnose", "1", db=sqlite_url)
    assert result.exit_code == 0 and "No failures" in result.output
