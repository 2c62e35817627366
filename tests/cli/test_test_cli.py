"""`promptmill test`: exit codes, gates, outputs, --model, --export-promptfoo, on fake models;
the bundled suite on the embedded model; a promptfoo config against `promptmill serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import free_port, run_main, start_promptmill_serve, write_jsonl

from promptmill.prompt import Prompt
from promptmill.store.db import Store

CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Peru": "Lima"}


def write_suite(folder: Path, *, answers: dict[str, str] | None = None, **extra) -> Path:
    """Three capitals; the fake model knows ``answers`` (default: all three)."""
    suite = {
        "name": "capitals",
        "prompts": [{"name": "capital", "instruction": "Name the capital city.",
                     "template": "Country: {{ country }}"}],
        "models": [{"spec": "fake", "label": "fake-atlas",
                    "params": {"answers": answers if answers is not None else CAPITALS,
                               "default": "I do not know"}}],
        "tests": [{"id": country.lower(), "vars": {"country": country},
                   "assert": [{"type": "equals", "value": city}]}
                  for country, city in CAPITALS.items()],
        **extra,
    }
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def cli(capsys, db: str, *args) -> tuple[int, str]:
    code, text = run_main(["--db", db, "test", *map(str, args)], capsys)
    return code, " ".join(text.split())  # Rich wraps long lines; compare words


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def test_a_suite_without_gates_reports_the_matrix_and_exits_0(tmp_path, db, capsys):
    two_of_three = {"France": "Paris", "Japan": "Tokyo"}
    code, text = cli(capsys, db, write_suite(tmp_path, answers=two_of_three))
    assert code == 0, text
    assert "capital@1" in text and "fake-atlas" in text
    assert "67% [" in text and "2/3 cases" in text
    assert "peru" in text and "I do not know" in text  # the failed case, its output and why
    assert "No gate was set" in text and "Recorded as suite run" in text


def test_the_threshold_gate_decides_the_exit_status(tmp_path, db, capsys):
    suite = write_suite(tmp_path, answers={"France": "Paris", "Japan": "Tokyo"})
    code, text = cli(capsys, db, suite, "--threshold", "0.9")
    assert code == 1, text
    assert "FAIL threshold gate" in text and "capital@1" in text and "exit 1" in text
    code, text = cli(capsys, db, suite, "--threshold", "0.6")
    assert code == 0, text
    assert "PASS threshold gate" in text


@pytest.mark.parametrize("args, where", [
    (["--threshold", "1.5"], "--threshold"),
    (["--gate", "superior"], "--gate"),
    (["--gate", "better"], "--gate"),
    (["--baseline", "capital@production", "--margin", "2"], "--margin"),
    (["--baseline", "capital@production", "--alpha", "0"], "--alpha"),
    (["--output", "results.docx"], "--output"),
])
def test_bad_options_are_one_line_exit_2_before_any_model_call(tmp_path, db, capsys, args,
                                                                where):
    code, text = cli(capsys, db, write_suite(tmp_path), *args)
    assert code == 2, text
    assert f"error: {where}:" in text and "Fix:" in text
    assert "Suite capitals" not in text  # nothing ran
    store = Store(db)
    assert store.list_runs(limit=5) == []
    store.close()


def test_a_missing_suite_file_is_exit_2(tmp_path, db, capsys):
    code, text = cli(capsys, db, tmp_path / "nowhere.yaml")
    assert code == 2 and "nowhere.yaml" in text


def test_outputs_are_written_in_the_format_their_suffix_names(tmp_path, db, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code, text = cli(capsys, db, write_suite(tmp_path), "--output", out / "r.json",
                     "--output", out / "junit.xml", "-o", out / "report.html")
    assert code == 0, text
    data = json.loads((out / "r.json").read_text())
    assert data["prompts"] == ["capital@1"] and data["cells"][0]["pass_rate"] == 1.0
    assert (out / "junit.xml").read_text().lstrip().startswith("<?xml")
    assert "<html" in (out / "report.html").read_text().lower()
    assert f"wrote {out / 'r.json'}" in text


def test_model_options_replace_the_suites_models(tmp_path, db, capsys):
    code, text = cli(capsys, db, write_suite(tmp_path), "--model", "fake:Paris",
                     "--model", "fake:Lima", "--threshold", "0.3")
    assert code == 0, text
    assert "fake:Paris" in text and "fake:Lima" in text and "fake-atlas" not in text
    assert text.count("33% [") >= 2  # each knows one capital of three


def test_repeat_samples_each_case(tmp_path, db, capsys):
    code, text = cli(capsys, db, write_suite(tmp_path), "--repeat", "2")
    assert code == 0, text
    assert "Repeats: 2 samples per case" in text and "6/6 samples" in text


def test_export_promptfoo_writes_a_config_that_reads_back_and_runs_nothing(tmp_path, db,
                                                                          capsys):
    from promptmill.suites.load import load_suite

    target = tmp_path / "promptfooconfig.yaml"
    code, text = cli(capsys, db, write_suite(tmp_path), "--export-promptfoo", target)
    assert code == 0, text
    assert f"wrote {target}" in text
    config = yaml.safe_load(target.read_text())
    assert "providers" in config and len(config["tests"]) == 3
    again = load_suite(target)
    assert [c.vars for c in again.cases] == [{"country": c} for c in CAPITALS]
    store = Store(db)
    assert store.list_runs(limit=5) == []
    store.close()


# --- the baseline gates: a candidate truly worse, truly equal and truly better ----------------

GOOD, BAD = "Answer yes about item {{ item }}", "Item {{ item }}"


def save_baseline(db: str, template: str) -> None:
    """``answer`` version 1, tagged production: the prompt the candidate must not fall below."""
    store = Store(db)
    prompt = Prompt(name="answer", instruction="Reply.", template=template)
    row = store.save_prompt(prompt.name, prompt.content(), prompt.hash)
    store.tag_prompt(prompt.name, row["version"], "production")
    store.close()


def yes_suite(folder: Path, template: str, n: int = 40) -> Path:
    suite = {"name": "yes", "prompts": [{"name": "answer", "instruction": "Reply.",
                                         "template": template}],
             "models": [{"spec": "fake", "label": "fake-yes",
                         "params": {"answers": {"Answer yes": "yes"}, "default": "no"}}],
             "tests": [{"id": f"item-{i}", "vars": {"item": i},
                        "assert": [{"type": "equals", "value": "yes"}]} for i in range(n)]}
    path = folder / "yes.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


@pytest.mark.parametrize("baseline, candidate, gate, expected", [
    (GOOD, BAD, "non-inferior", 1),  # truly worse: fails the build
    (GOOD, "Answer yes, about item {{ item }}", "non-inferior", 0),  # truly equal: passes
    (BAD, GOOD, "superior", 0),  # truly better: shown superior
    (GOOD, "Answer yes, about item {{ item }}", "superior", 1),  # equal is not superior
])
def test_baseline_gates(tmp_path, db, capsys, baseline, candidate, gate, expected):
    save_baseline(db, baseline)
    code, text = cli(capsys, db, yes_suite(tmp_path, candidate), "--baseline",
                     "answer@production", "--gate", gate, "--margin", "0.1")
    assert code == expected, text
    assert f"{'PASS' if expected == 0 else 'FAIL'} {gate} gate" in text
    # both sides are named by version, never a bare name: the candidate saved as version 2
    assert "answer@2" in text and "answer@1" in text
    assert "answer@1 (baseline)" in text


def test_a_baseline_that_does_not_exist_is_exit_2(tmp_path, db, capsys):
    code, text = cli(capsys, db, yes_suite(tmp_path, GOOD), "--baseline", "answer@production")
    assert code == 2, text
    assert "answer" in text and "Fix:" in text


def test_a_recorded_suite_run_can_be_the_baseline(tmp_path, db, capsys):
    from promptmill.store.suites import list_suite_runs

    code, _ = cli(capsys, db, yes_suite(tmp_path, GOOD))
    assert code == 0
    store = Store(db)
    first = list_suite_runs(store)[0]["id"]
    store.close()
    code, text = cli(capsys, db, yes_suite(tmp_path, BAD), "--baseline", first,
                     "--gate", "non-inferior")
    assert code == 1, text
    assert "FAIL non-inferior gate" in text


def test_the_gates_are_kept_with_the_recorded_suite_run(tmp_path, db, capsys):
    from promptmill.store.suites import get_suite_run, list_suite_runs, suite_run_result

    code, _ = cli(capsys, db, write_suite(tmp_path, answers={"France": "Paris"}),
                  "--threshold", "0.5")
    assert code == 1
    store = Store(db)
    row = get_suite_run(store, list_suite_runs(store)[0]["id"])
    store.close()
    result = suite_run_result(row)
    assert result is not None
    assert [g["passed"] for g in result["gates"]] == [False]


def test_help_lists_the_exit_codes_and_every_option(capsys):
    code, text = run_main(["test", "--help"], capsys)
    text = " ".join(text.split())
    assert code == 0
    assert "0 when every gate passed" in text and "1 when a gate failed" in text
    assert "2 on bad input" in text
    for option in ("--repeat", "--threshold", "--baseline", "--gate", "--margin", "--alpha",
                   "--output", "--model", "--no-cache", "--quiet", "--export-promptfoo"):
        assert option in text, option


# --- the embedded model and promptmill serve ----------------------------------------------


@pytest.mark.real_model
@pytest.mark.slow
def test_the_bundled_suite_runs_end_to_end_on_the_embedded_model(tmp_path, db, capsys):
    from promptmill.cli.common import example_dir

    junit, results = tmp_path / "junit.xml", tmp_path / "results.json"
    code, text = cli(capsys, db, example_dir() / "suite.yaml", "--output", junit,
                     "--output", results, "--threshold", "0")
    assert code == 0, text
    assert "plain@1" in text and "labelled@1" in text and "embedded" in text
    assert "PASS threshold gate" in text
    assert junit.read_text().count("<testcase") == 20  # 10 cases x 2 prompts
    rates = {c["prompt"]: c["pass_rate"] for c in json.loads(results.read_text())["cells"]}
    # the bundled example's claim, as a suite: asking for one word helps this model
    assert rates["labelled@1"] > rates["plain@1"], rates
    code, again = cli(capsys, db, example_dir() / "suite.yaml", "--quiet")
    assert code == 0, again
    assert matrix_words(again) == matrix_words(text)  # the rerun comes from the cache


def matrix_words(text: str) -> str:
    return text.split("Suite sentiment-suite: pass rate [95% CI]")[1].split("Metric groups")[0]


@pytest.mark.server
@pytest.mark.slow
def test_a_promptfoo_config_runs_against_promptmill_serve(tmp_path, capsys, monkeypatch):
    """promptfoo's openai:chat provider with apiBaseUrl, pointed at `promptmill serve`."""
    key = "pm-suite-key-3f9a1c"
    monkeypatch.setenv("PM_SUITE_KEY", key)
    server_db = f"sqlite:///{tmp_path / 'server.db'}"
    store = Store(server_db)
    prompt = Prompt(name="capital", instruction="Name the capital city.",
                    template="{{ country }}")
    row = store.save_prompt(prompt.name, prompt.content(), prompt.hash)
    store.tag_prompt(prompt.name, row["version"], "live")
    store.close()
    write_jsonl(tmp_path / "data.jsonl", [{"id": "a", "country": "France", "city": "Paris"}])
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({
        "name": "capitals", "splits": {"train": 0, "validation": 0, "test": 1},
        "data": {"path": "data.jsonl", "input": ["country"], "target": "city", "id": "id"},
        "model": {"name": "fake", "params": {"answers": {"France": "Paris", "Japan": "Tokyo"},
                                             "default": "no idea"}}}))
    port = free_port()
    log = tmp_path / "serve.log"
    proc = start_promptmill_serve(["--prompt", "capital@live", "--config", str(task),
                                   "--api-key-env", "PM_SUITE_KEY"],
                                  {**os.environ, "PROMPTMILL_DB": server_db}, port,
                                  stdout=log.open("ab"), stderr=subprocess.STDOUT, log=log)
    try:
        config = tmp_path / "promptfooconfig.yaml"
        config.write_text(yaml.safe_dump({
            "description": "capitals through promptmill serve",
            "prompts": ["{{country}}"],
            "providers": [{"id": "openai:chat:capital", "config": {
                "apiBaseUrl": f"http://127.0.0.1:{port}/v1", "apiKeyEnvar": "PM_SUITE_KEY"}}],
            "tests": [{"vars": {"country": c}, "assert": [{"type": "icontains", "value": city}]}
                      for c, city in CAPITALS.items()]}, sort_keys=False))
        client_db = f"sqlite:///{tmp_path / 'client.db'}"
        junit = tmp_path / "junit.xml"
        code, text = cli(capsys, client_db, config, "--threshold", "0.6", "--output", junit)
        assert code == 0, text
        assert "67% [" in text and "no idea" in text  # Peru: the served prompt's fake
        assert junit.read_text().count("<failure") == 1
        code, text = cli(capsys, client_db, config, "--threshold", "0.9")
        assert code == 1, text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
