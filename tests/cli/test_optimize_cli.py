"""`promptmill optimize`, `prompts` and `replay` end to end on the fake model."""

import yaml
from entry_point import one_line_error, run_promptmill
from helpers import write_jsonl
from typer.testing import CliRunner

from promptmill.cli.app import app

runner = CliRunner()
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
         "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu"]


def _task(tmp_path):
    rows = [{"id": w, "input": w, "output": w.upper()} for w in WORDS]
    write_jsonl(tmp_path / "data.jsonl", rows)
    answers = {w: w.upper() for w in WORDS[::2]}  # half right, whatever the prompt
    (tmp_path / "task.yaml").write_text(yaml.safe_dump({
        "name": "upper", "data": {"path": "data.jsonl", "id": "id"},
        "splits": {"train": 6, "validation": 10, "test": 10},
        "model": {"name": "fake", "params": {"answers": answers, "default": "?"}},
        "prompt": {"name": "upper", "instruction": "Uppercase it.",
                   "template": "{{ input }}"}}))
    return tmp_path / "task.yaml"


def invoke(db, *args):
    return runner.invoke(app, ["--db", db, *map(str, args)], catch_exceptions=False)


def test_optimize_prompts_and_replay(tmp_path, sqlite_url):
    config = _task(tmp_path)
    dry = invoke(sqlite_url, "optimize", config, "--method", "fewshot", "--budget-calls", "60",
                 "--dry-run")
    assert "no model calls made" in dry.output and "60" in dry.output
    out = invoke(sqlite_url, "optimize", config, "--method", "fewshot", "--budget-calls", "60",
                 "-q")
    assert out.exit_code == 0, out.output
    assert "which the search never saw" in out.output and "Verdict" in out.output
    listing = invoke(sqlite_url, "prompts", "list")
    assert "upper" in listing.output
    shown = invoke(sqlite_url, "prompts", "show", "upper@1")
    assert "Uppercase it." in shown.output
    tagged = invoke(sqlite_url, "prompts", "tag", "upper@1", "production")
    assert "upper@production -> version 1" in tagged.output
    assert "Uppercase it." in invoke(sqlite_url, "prompts", "show", "upper@production").output
    replayed = invoke(sqlite_url, "replay", "1")
    assert replayed.exit_code == 0 and "replayed exactly" in replayed.output
    replay_eval = invoke(sqlite_url, "replay", "2")  # the seed's test run
    assert "replayed exactly" in replay_eval.output


def test_limit_caps_validation_and_test_warns_and_replays(tmp_path, sqlite_url):
    config = _task(tmp_path)
    out = invoke(sqlite_url, "optimize", config, "--method", "fewshot", "--budget-calls", "40",
                 "--limit", "6", "-q")
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "--limit 6: validation and test hold at most 6 examples each" in text
    assert "cannot be significant" in text
    from promptmill.store.db import Store

    store = Store(sqlite_url)
    tests = [r for r in store.list_runs() if r["split"] == "test"]
    assert tests and all(r["n_done"] == 6 for r in tests)
    store.close()
    assert "replayed exactly" in invoke(sqlite_url, "replay", "1").output
    line = one_line_error("--db", sqlite_url, "optimize", config, "--limit", "2",
                          "--budget-calls", "40")
    assert "--limit 2 leaves too few" in line and "use --limit 5 or more" in line


def test_prompts_diff(tmp_path, sqlite_url):
    config = _task(tmp_path)
    other = tmp_path / "p2.yaml"
    other.write_text("name: upper\ninstruction: Write it in capitals.\ntemplate: '{{ input }}'\n")
    invoke(sqlite_url, "eval", config, "-q")
    invoke(sqlite_url, "eval", config, "-p", other, "-q")
    diff = invoke(sqlite_url, "prompts", "diff", "upper@1", "upper@2")
    assert "-instruction: Uppercase it." in diff.output
    assert "+instruction: Write it in capitals." in diff.output


def test_bad_optimize_input_is_one_line_exit_2(tmp_path, sqlite_url):
    config = _task(tmp_path)
    for args, expected in ((["--method", "magic", "--budget-calls", "50"], "unknown optimization"),
                           (["--budget-calls", "5"], "cannot score the seed"),
                           ([], "needs a budget")):
        message = one_line_error("--db", sqlite_url, "optimize", config, *args)
        assert expected in message and "Fix:" in message


def _seed(tmp_path, instruction: str, template: str = "{{ input }}"):
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump({"name": "upper", "instruction": instruction,
                                    "template": template}))
    return path


def test_a_seed_longer_than_the_candidate_limit_is_optimized_as_the_seed(tmp_path, sqlite_url):
    # The limit (1500 characters) guards against runaway proposals, not the user's own prompt.
    from promptmill.store.db import Store

    config = _task(tmp_path)
    long_seed = "Uppercase the word you are given, every letter of it. " * 60  # 3,300 chars
    done = run_promptmill("--db", sqlite_url, "optimize", config, "--method", "ape",
                          "--budget-calls", "60", "-q", "-p", _seed(tmp_path, long_seed))
    assert done.returncode == 0, done.stderr
    assert "optimized prompt saved as upper@" in " ".join(done.stdout.split())
    store = Store(sqlite_url)
    run = next(r for r in store.list_runs() if r["kind"] == "optimize")
    assert run["status"] == "finished"
    seed_row = store.candidates(run["id"])[0]
    assert seed_row["origin"] == "seed" and long_seed.strip() in seed_row["body"]


def test_a_seed_that_fails_to_render_is_one_line(tmp_path, sqlite_url):
    config = _task(tmp_path)
    message = one_line_error("--db", sqlite_url, "optimize", config, "--budget-calls", "60",
                             "-p", _seed(tmp_path, "Uppercase it.", "{{ input.upper(1, 2) }}"))
    assert "template" in message and "Fix:" in message


def test_human_feedback_reaches_the_proposer_and_replays(tmp_path, sqlite_url):
    from promptmill.models.fake import FakeModel
    from promptmill.store.db import Store
    from promptmill.web.queries import add_rating

    config = _task(tmp_path)
    assert invoke(sqlite_url, "eval", config, "--split", "validation", "-q").exit_code == 0
    store = Store(sqlite_url)
    failed = [r for r in store.iter_results(1) if r["score"] == 0]
    add_rating(store, 1, failed[0]["example_id"], 0.0, "ALWAYS SHOUT THE WORD BACK")
    seen = []
    original = FakeModel.generate

    def spy(self, request, params):
        seen.append(str(request))
        return original(self, request, params)

    FakeModel.generate = spy
    try:
        out = invoke(sqlite_url, "optimize", config, "--method", "protegi", "--budget-calls",
                     "40", "--human-feedback", "-q")
    finally:
        FakeModel.generate = original
    assert out.exit_code == 0, out.output
    assert "showing the proposer 1 reviewer comments on 1 examples" in out.output
    assert any("reviewers said: ALWAYS SHOUT THE WORD BACK" in r for r in seen)
    optimization = next(r for r in store.list_runs() if r["kind"] == "optimize")
    replayed = invoke(sqlite_url, "replay", str(optimization["id"]))
    assert "replayed exactly" in replayed.output, replayed.output
