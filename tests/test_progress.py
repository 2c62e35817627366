"""Without a terminal, progress is a plain line every few seconds, never silence."""

import io

from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models.fake import FakeModel
from promptmill.progress import PlainTicker, eta_words
from promptmill.prompt import Prompt
from promptmill.task import Example


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_ticker_writes_at_most_once_per_interval_and_at_the_end():
    clock, out = Clock(), io.StringIO()
    ticker = PlainTicker(every=10, stream=out, clock=clock)
    for step in range(25):
        clock.now = step  # one second per step
        ticker.tick(lambda: f"at {clock.now:.0f}")
    ticker.finish(lambda: "done")
    assert out.getvalue().splitlines() == ["at 10", "at 20", "done"]


def test_eta_words():
    assert eta_words(10, 40, 5.0) == ", about 15 s left"
    assert eta_words(1, 100, 60.0) == ", about 99 min left"
    assert eta_words(0, 10, 1.0) == "" and eta_words(10, 10, 1.0) == ""


def test_a_piped_evaluation_prints_plain_progress_lines(store, capsys, monkeypatch):
    import promptmill.progress as progress

    monkeypatch.setattr(progress, "PLAIN_EVERY_SECONDS", 0.0)
    examples = [Example(str(i), {"input": f"q{i}"}, "yes") for i in range(5)]
    Evaluator(FakeModel(default="yes"), get_metric("exact"), store, progress=True).evaluate(
        examples, Prompt(template="{{ input }}"), task="t")
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("t/test: 5/5 examples, mean 1.000, ")
    assert any(line.startswith("t/test: 1/5 examples") for line in lines)


def test_a_piped_optimization_prints_plain_progress_lines(capsys, monkeypatch):
    import promptmill.progress as progress
    from promptmill.cli.optimize_flow import LiveDisplay
    from promptmill.optimize import Budget

    monkeypatch.setattr(progress, "PLAIN_EVERY_SECONDS", 0.0)
    with LiveDisplay(Budget(calls=100)) as display:
        display.update({"event": "accepted", "incumbent_score": 0.5, "calls": 40,
                        "tokens": 900, "seconds": 3.0, "candidate_idx": 2,
                        "detail": {"reason": "p=0.01"}})
    err = capsys.readouterr().err
    assert "optimizing: best validation 0.500, budget used calls 40/100; latest: #2 accepted" \
        in err


def test_the_display_names_auto_s_plan_and_never_a_missing_candidate(capsys, monkeypatch):
    import promptmill.progress as progress
    from promptmill.cli.optimize_flow import LiveDisplay
    from promptmill.optimize import Budget

    monkeypatch.setattr(progress, "PLAIN_EVERY_SECONDS", 0.0)
    base = {"incumbent_score": 0.5, "calls": 40, "tokens": 900, "seconds": 3.0,
            "candidate_idx": None}
    with LiveDisplay(Budget(calls=100)) as display:
        display.update({**base, "event": "auto decision", "detail": {
            "method": "fewshot+protegi", "reasons": ["medium budget", "300 training examples"]}})
        display.update({**base, "event": "search finished", "detail": {}})
    out = capsys.readouterr()
    text = out.out + out.err
    assert "auto chose fewshot+protegi: medium budget; 300 training examples" in text
    assert "latest: search finished" in text and "#None" not in text
