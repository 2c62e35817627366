"""``promptmill kb build|query`` end to end, including bad input (exit status 2)."""

from __future__ import annotations

import json

import pytest
from helpers import run_main
from typer.testing import CliRunner

from promptmill.cli.app import app

runner = CliRunner()


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "faq.md").write_text("# Shipping\nParcels ship in five working days.\n\n"
                                   "# Returns\nReturn [unused] items within 30 days.\n")
    (folder / "about.txt").write_text("We make kettles and toasters.")
    return folder


def test_build_then_query_as_table_and_json(docs, tmp_path):
    out = tmp_path / "kb"
    result = runner.invoke(app, ["kb", "build", str(docs), "--out", str(out),
                                 "--chunk-words", "50"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "files" in result.output and "chunks" in result.output and "seconds" in result.output
    assert (out / "kb.json").is_file()
    table = runner.invoke(app, ["kb", "query", str(out), "how long does shipping take"],
                          catch_exceptions=False)
    assert table.exit_code == 0, table.output
    assert "faq.md#1" in table.output
    raw = runner.invoke(app, ["kb", "query", str(out), "return unused items", "-k", "1",
                              "--json"], catch_exceptions=False)
    rows = json.loads(raw.output)
    assert [r["id"] for r in rows] == ["faq.md#2"]
    assert "[unused]" in rows[0]["text"] and rows[0]["score"] > 0


def test_query_with_no_match_says_so(docs, tmp_path):
    out = tmp_path / "kb"
    runner.invoke(app, ["kb", "build", str(docs), "--out", str(out)], catch_exceptions=False)
    result = runner.invoke(app, ["kb", "query", str(out), "zebra"], catch_exceptions=False)
    assert result.exit_code == 0 and "no passage matched" in result.output


def test_bad_source_exits_2_with_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, output = run_main(["kb", "build", empty, "--out", tmp_path / "kb"], capsys)
    assert code == 2
    assert "error:" in output and "no .txt or .md files" in output and "Traceback" not in output


def test_bad_jsonl_and_bad_kind_exit_2(tmp_path, capsys):
    bad = tmp_path / "kb.jsonl"
    bad.write_text('{"id": "a", "text": "ok"}\n{"id": "b"\n')
    code, output = run_main(["kb", "build", bad, "--out", tmp_path / "kb"], capsys)
    assert code == 2 and f"{bad}:2" in " ".join(output.split())
    code, output = run_main(["kb", "build", bad, "--out", tmp_path / "kb", "--kind", "x"],
                            capsys)
    assert code == 2 and "unknown knowledge base kind 'x'" in output


def test_querying_a_directory_that_is_not_a_kb_exits_2(docs, capsys):
    code, output = run_main(["kb", "query", docs, "anything"], capsys)
    assert code == 2
    assert "not a promptmill knowledge base" in output and "promptmill kb build" in output
