"""The CLI end to end on the fake model, including every bad-input path (exit status 2)."""

import json

import helpers
import yaml
from typer.testing import CliRunner

from promptmill.cli.app import app

runner = CliRunner()


def run(*args, db):
    return runner.invoke(app, ["--db", db, *map(str, args)], catch_exceptions=False)


def run_main(*args, db, capsys):
    return helpers.run_main(["--db", db, *args], capsys)


def test_eval_runs_show_compare_export(capitals_task, sqlite_url, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("name: terse\ninstruction: Capital?\ntemplate: '{{ country }}'\n")
    result = run("eval", capitals_task, "--prompt", other, "--quiet", db=sqlite_url)
    assert result.exit_code == 0, result.output
    assert "0.667" in result.output  # 8 of 12 answers right
    ask = tmp_path / "ask.yaml"
    ask.write_text("name: ask\ninstruction: Name the capital city.\n"
                   "template: 'Country: {{ country }}'\n")
    result = run("eval", capitals_task, "-p", other, "-p", ask, "-q", db=sqlite_url)
    assert "Verdict" in result.output, result.output
    listing = run("runs", db=sqlite_url)
    assert "capitals" in listing.output and "finished" in listing.output
    shown = run("show", "1", "--failures", db=sqlite_url)
    assert "I do not know" in shown.output and "Paris" not in shown.output
    compared = run("compare", "1", "2", db=sqlite_url)
    assert "no significant difference" in compared.output
    out = tmp_path / "run.jsonl"
    exported = run("export", "1", "--format", "jsonl", "-o", out, db=sqlite_url)
    assert exported.exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12 and sum(r["score"] for r in rows) == 8
    csv_out = tmp_path / "run.csv"
    run("export", "1", "--format", "csv", "-o", csv_out, db=sqlite_url)
    assert csv_out.read_text().startswith("example_id,idx,inputs")


def test_second_eval_uses_cache_and_no_cache_skips_it(capitals_task, sqlite_url):
    run("eval", capitals_task, "-q", db=sqlite_url)
    run("eval", capitals_task, "-q", db=sqlite_url)
    from promptmill.store.db import Store

    second = Store(sqlite_url).get_run(2)
    assert second["cache_hits"] == 12 and second["calls"] == 0
    run("eval", capitals_task, "-q", "--no-cache", db=sqlite_url)
    assert Store(sqlite_url).get_run(3)["calls"] == 12


def test_init_scaffolds_a_working_task(tmp_path, sqlite_url):
    result = run("init", tmp_path / "new", db=sqlite_url)
    assert result.exit_code == 0
    assert {p.name for p in (tmp_path / "new").iterdir()} >= {"task.yaml", "data.jsonl",
                                                              "prompts"}
    again = runner.invoke(app, ["init", str(tmp_path / "new")])
    assert again.exit_code == 2 and "not empty" in again.output


def _edit_config(path, **changes):
    config = yaml.safe_load(path.read_text())
    config.update(changes)
    path.write_text(yaml.safe_dump(config))


def _bad(capsys, sqlite_url, *args):
    code, output = run_main(*args, db=sqlite_url, capsys=capsys)
    assert code == 2, output
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert len(" ".join(lines)) > 0 and "Traceback" not in output
    return " ".join(" ".join(lines).split())


def test_malformed_jsonl_line(capitals_task, sqlite_url, capsys):
    data = capitals_task.parent / "data.jsonl"
    data.write_text(data.read_text() + '{"id": "x", "country": \n')
    message = _bad(capsys, sqlite_url, "eval", capitals_task)
    assert "data.jsonl:13" in message and "malformed JSON" in message and "Fix:" in message


def test_missing_field(capitals_task, sqlite_url, capsys):
    data = capitals_task.parent / "data.jsonl"
    data.write_text(data.read_text() + '{"id": "x", "country": "Chad"}\n')
    message = _bad(capsys, sqlite_url, "eval", capitals_task)
    assert "data.jsonl:13" in message and "missing field 'capital'" in message


def test_unknown_metric(capitals_task, sqlite_url, capsys):
    _edit_config(capitals_task, metric="exactish")
    message = _bad(capsys, sqlite_url, "eval", capitals_task)
    assert "unknown metric 'exactish'" in message and "exact" in message


def test_unknown_model(capitals_task, sqlite_url, capsys):
    message = _bad(capsys, sqlite_url, "eval", capitals_task, "--model", "gpt-17")
    assert "unknown model 'gpt-17'" in message and "embedded" in message


def test_missing_template_variable(capitals_task, sqlite_url, capsys):
    _edit_config(capitals_task, prompt={"template": "{{ nation }}"})
    message = _bad(capsys, sqlite_url, "eval", capitals_task)
    assert "nation" in message and "prompt.template" in message and "Fix:" in message


def test_invalid_yaml(capitals_task, sqlite_url, capsys):
    capitals_task.write_text("name: x\ndata: [oops\n")
    message = _bad(capsys, sqlite_url, "eval", capitals_task)
    assert "invalid YAML" in message and "task.yaml:" in message


def test_unknown_config_field_names_line(capitals_task, sqlite_url, capsys):
    capitals_task.write_text(capitals_task.read_text() + "temperture: 0.5\n")
    message = _bad(capsys, sqlite_url, "eval", capitals_task)
    assert "unknown field 'temperture'" in message and "task.yaml:" in message


def test_gguf_path_that_does_not_exist(capitals_task, sqlite_url, capsys, tmp_path):
    message = _bad(capsys, sqlite_url, "eval", capitals_task, "--model",
                   f"gguf:{tmp_path}/missing.gguf")
    assert "missing.gguf" in message and "GGUF file not found" in message


def test_unreachable_server(capitals_task, sqlite_url, capsys):
    from helpers import free_port

    _edit_config(capitals_task, model={"name": "openai:local", "params": {
        "base_url": f"http://127.0.0.1:{free_port()}/v1", "max_retries": 0, "timeout": 2}})
    message = _bad(capsys, sqlite_url, "eval", capitals_task)
    assert "127.0.0.1" in message and "Fix:" in message


def test_unknown_run_id(sqlite_url, capsys):
    message = _bad(capsys, sqlite_url, "show", "42")
    assert "run 42 does not exist" in message


def test_help_is_fast_and_lists_commands():
    import subprocess
    import sys

    code = ("import sys, promptmill.cli.app;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('llama_cpp', 'sqlalchemy', 'openai', 'scipy')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert loaded.strip() == "[]"  # heavy modules stay unloaded for --help
    result = runner.invoke(app, ["--help"])
    for command in ("init", "eval", "runs", "show", "compare", "export", "demo"):
        assert command in result.output
