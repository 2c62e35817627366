"""Running a suite: the prompts x models matrix, repeats, the cache, resuming, the baseline, and
the record every invocation leaves in the store."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

from promptmill.errors import ConfigError
from promptmill.models.base import Generation, Model, last_user_text
from promptmill.models.fake import FakeModel
from promptmill.prompt import Prompt
from promptmill.store.suites import get_suite_run, list_suite_runs, suite_run_result
from promptmill.suites import runner
from promptmill.suites.load import load_suite
from promptmill.suites.results import SuiteResult
from promptmill.suites.runner import run_suite

MATRIX = """\
name: capitals
prompts:
  - name: terse
    template: "{{ country }}"
  - name: polite
    instruction: Answer politely.
    template: "Please, the capital of {{ country }}?"
models:
  - spec: fake
    label: knows-all
  - spec: fake
    label: knows-france
tests:
  - {id: fr, vars: {country: France}, assert: [{type: equals, value: Paris}]}
  - {id: jp, vars: {country: Japan}, assert: [{type: equals, value: Tokyo}]}
  - {id: pe, vars: {country: Peru}, assert: [{type: contains, value: Lima}]}
"""
ALL = {"France": "Paris", "Japan": "Tokyo", "Peru": "Lima"}


def suite_at(tmp_path: Path, text: str = MATRIX):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return load_suite(path)


@pytest.fixture
def models(monkeypatch):
    """The models the runner loads, by their name in the suite, so tests can count calls."""
    built: dict[str, Model] = {
        "knows-all": FakeModel(answers=ALL, name="all"),
        "knows-france": FakeModel(answers={"France": "Paris"}, default="no idea",
                                  name="france")}
    monkeypatch.setattr(runner, "_load", lambda entry: built[entry.name])
    return built


def calls(models: dict[str, Model]) -> int:
    return sum(getattr(m, "calls", 0) for m in models.values())


# --- the matrix -----------------------------------------------------------------------------
def test_every_prompt_runs_against_every_model(tmp_path, store, models):
    result = run_suite(suite_at(tmp_path), store=store, progress=False)
    assert result.prompts == ["terse@1", "polite@1"]
    assert result.models == ["knows-all", "knows-france"]
    rates = {key: cell.pass_rate().mean for key, cell in result.cells.items()}
    assert rates == {("terse@1", "knows-all"): 1.0, ("terse@1", "knows-france"): 1 / 3,
                     ("polite@1", "knows-all"): 1.0, ("polite@1", "knows-france"): 1 / 3}
    assert calls(models) == 12
    failed = result.cell("polite@1", "knows-france").by_case()["jp"][0]
    assert failed.output == "no idea" and not failed.passed and failed.score == 0.0
    assert [c.type for c in failed.failed_checks] == ["equals"] and failed.failed_checks[0].reason


def test_each_cell_is_an_ordinary_run_that_knows_its_suite(tmp_path, store, models):
    result = run_suite(suite_at(tmp_path), store=store, progress=False)
    cell = result.cell("polite@1", "knows-france")
    (run_id,) = cell.run_ids
    run = store.get_run(run_id)
    assert run["task"] == "suite:capitals" and run["split"] == "suite"
    assert run["n_done"] == 3 and run["score_sum"] == 1.0  # a run's mean is its pass rate
    config = json.loads(run["config"])
    assert {k: config[k] for k in ("suite", "suite_run", "prompt_label", "model", "sample")} == \
        {"suite": "capitals", "suite_run": result.suite_run_id, "prompt_label": "polite@1",
         "model": "knows-france", "sample": 0}
    assert store.get_prompt_by_id(run["prompt_id"])["name"] == "polite"
    assert len({r for c in result.cells.values() for r in c.run_ids}) == 4


def test_the_invocation_is_recorded_with_its_matrix(tmp_path, store, models):
    result = run_suite(suite_at(tmp_path), store=store, progress=False)
    row = get_suite_run(store, result.suite_run_id)
    assert row is not None and row["status"] == "finished" and row["finished_at"] is not None
    assert row["name"] == "capitals" and row["source"] == str(tmp_path / "suite.yaml")
    again = SuiteResult.from_dict(suite_run_result(row))
    assert again.prompts == result.prompts and again.models == result.models
    for key, cell in result.cells.items():
        assert again.cells[key].outcomes == cell.outcomes
        assert again.cells[key].run_ids == cell.run_ids
    assert [r["id"] for r in list_suite_runs(store)] == [result.suite_run_id]


def test_progress_is_told_after_each_evaluation(tmp_path, store, models):
    seen = []
    run_suite(suite_at(tmp_path), store=store, progress=False, on_progress=seen.append)
    assert [(p.done, p.total) for p in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert {(p.prompt, p.model) for p in seen} == {
        (p, m) for p in ("terse@1", "polite@1") for m in ("knows-all", "knows-france")}


def test_models_given_replace_the_suites(tmp_path, store):
    result = run_suite(suite_at(tmp_path), store=store, progress=False, models=["fake:Paris"])
    assert result.models == ["fake:Paris"]
    assert result.cell("terse@1", "fake:Paris").case_pass_rates() == \
        {"fr": 1.0, "jp": 0.0, "pe": 0.0}
    with pytest.raises(ConfigError) as info:
        run_suite(suite_at(tmp_path), store=store, progress=False, models=["nosuch:x"])
    assert info.value.where == "--model"


def test_a_failed_call_is_a_failed_case_with_its_error(tmp_path, store, monkeypatch):
    broken = FakeModel(answers=ALL, fail_on="Japan")
    monkeypatch.setattr(runner, "_load", lambda entry: broken)
    result = run_suite(suite_at(tmp_path), store=store, progress=False, models=["fake"])
    outcome = result.cell("terse@1", "fake").by_case()["jp"][0]
    assert not outcome.passed and outcome.output is None and "Japan" in outcome.error
    assert result.cell("terse@1", "fake").case_pass_rates()["fr"] == 1.0


def test_bad_input_stops_before_any_model_is_loaded_or_run_recorded(tmp_path, store,
                                                                  monkeypatch):
    loaded = []
    monkeypatch.setattr(runner, "_load", loaded.append)
    text = MATRIX.replace("vars: {country: Peru}", "vars: {country: Peru, contry: Peru}")
    with pytest.raises(ConfigError, match="contry"):
        run_suite(suite_at(tmp_path, text), store=store, progress=False)
    assert loaded == [] and store.list_runs() == [] and list_suite_runs(store) == []


def test_an_assertion_its_type_cannot_use_names_its_line_before_any_call(tmp_path, store,
                                                                         models):
    text = MATRIX.replace("[{type: equals, value: Tokyo}]", "[{type: latency}]")
    with pytest.raises(ConfigError) as info:
        run_suite(suite_at(tmp_path, text), store=store, progress=False)
    assert info.value.where == f"{tmp_path / 'suite.yaml'}:15", info.value.one_line()
    assert "latency" in info.value.message and info.value.fix
    assert calls(models) == 0 and store.list_runs() == [] and list_suite_runs(store) == []


# --- the cache and resuming -----------------------------------------------------------------
def test_a_second_run_makes_no_model_call(tmp_path, store, models):
    first = run_suite(suite_at(tmp_path), store=store, progress=False)
    before = calls(models)
    second = run_suite(suite_at(tmp_path), store=store, progress=False)
    assert calls(models) == before == 12
    outcomes = [o for cell in second.cells.values() for o in cell.outcomes]
    assert outcomes and all(o.cached for o in outcomes)
    assert {k: c.pass_rate().mean for k, c in second.cells.items()} == \
        {k: c.pass_rate().mean for k, c in first.cells.items()}
    assert second.suite_run_id != first.suite_run_id


def test_without_the_cache_every_case_is_asked_again(tmp_path, store, models):
    run_suite(suite_at(tmp_path), store=store, progress=False)
    run_suite(suite_at(tmp_path), store=store, progress=False, cache=False)
    assert calls(models) == 24


class StopsAfter(Model):
    """Answers every country right, until it is interrupted after ``limit`` calls."""

    identity = "stops-after"

    def __init__(self, limit: int | None):
        self.limit, self.calls = limit, 0

    def generate(self, request, params):
        if self.limit is not None and self.calls >= self.limit:
            raise KeyboardInterrupt
        self.calls += 1
        return Generation(text=ALL.get(last_user_text(request), "?"))


def test_a_rerun_after_an_interrupted_run_finishes_it(tmp_path, store, monkeypatch):
    text = MATRIX.replace("""  - name: polite
    instruction: Answer politely.
    template: "Please, the capital of {{ country }}?"
""", "").replace("  - spec: fake\n    label: knows-france\n", "")
    first = StopsAfter(limit=2)
    monkeypatch.setattr(runner, "_load", lambda entry: first)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite_at(tmp_path, text), store=store, progress=False)
    (stopped,) = list_suite_runs(store)
    assert stopped["status"] == "interrupted"
    (partial,) = store.list_runs()
    assert partial["status"] == "interrupted" and partial["n_done"] == 2
    second = StopsAfter(limit=None)
    monkeypatch.setattr(runner, "_load", lambda entry: second)
    result = run_suite(suite_at(tmp_path, text), store=store, progress=False)
    assert second.calls == 1  # only the case the interruption left
    assert result.cell("terse@1", "knows-all").run_ids == [partial["id"]]
    assert result.cell("terse@1", "knows-all").pass_rate().mean == 1.0
    assert store.get_run(partial["id"])["status"] == "finished"


# --- repeats --------------------------------------------------------------------------------
class SeededCoin(Model):
    """A stand-in for sampling: right or wrong by the seed and the input, reproducibly."""

    identity = "seeded-coin"

    def __init__(self):
        self.calls = 0
        self.seeds: set[int] = set()

    def generate(self, request, params):
        self.calls += 1
        self.seeds.add(params.seed)
        text = last_user_text(request)
        return Generation(text=ALL[text] if heads(params.seed, text) else "Lyon")


def heads(seed: int, text: str) -> bool:
    return zlib.crc32(f"{seed}:{text}".encode()) % 2 == 0


REPEATED = MATRIX.replace("""  - name: polite
    instruction: Answer politely.
    template: "Please, the capital of {{ country }}?"
""", "").replace("  - spec: fake\n    label: knows-france\n", "") + """\
generation: {temperature: 0.8, seed: 7}
repeat: 6
"""


def test_repeats_sample_each_case_with_its_own_seed(tmp_path, store, monkeypatch):
    coin = SeededCoin()
    monkeypatch.setattr(runner, "_load", lambda entry: coin)
    result = run_suite(suite_at(tmp_path, REPEATED), store=store, progress=False)
    assert result.repeat == 6 and coin.calls == 18 and coin.seeds == set(range(7, 13))
    cell = result.cell("terse@1", "knows-all")
    expected = {case: sum(heads(7 + s, country) for s in range(6)) / 6
                for case, country in (("fr", "France"), ("jp", "Japan"), ("pe", "Peru"))}
    assert cell.case_pass_rates() == expected
    assert cell.flaky_cases() == sorted(c for c, rate in expected.items() if 0 < rate < 1)
    assert cell.flaky_cases()  # the seeds above make at least one case flaky
    assert sorted({o.sample for o in cell.outcomes}) == list(range(6)) and len(cell.run_ids) == 6
    assert cell.pass_at_k(6) >= cell.pass_at_k(1) == pytest.approx(sum(expected.values()) / 3)


def test_repeated_samples_come_back_from_the_cache(tmp_path, store, monkeypatch):
    coin = SeededCoin()
    monkeypatch.setattr(runner, "_load", lambda entry: coin)
    first = run_suite(suite_at(tmp_path, REPEATED), store=store, progress=False)
    again = run_suite(suite_at(tmp_path, REPEATED), store=store, progress=False)
    assert coin.calls == 18
    key = ("terse@1", "knows-all")
    assert [(o.case_id, o.sample, o.output) for o in again.cells[key].outcomes] == \
        [(o.case_id, o.sample, o.output) for o in first.cells[key].outcomes]


def test_repeat_given_overrides_the_suites(tmp_path, store, monkeypatch):
    coin = SeededCoin()
    monkeypatch.setattr(runner, "_load", lambda entry: coin)
    result = run_suite(suite_at(tmp_path, REPEATED), store=store, progress=False, repeat=2)
    assert result.repeat == 2 and coin.calls == 6
    with pytest.raises(ConfigError) as info:
        run_suite(suite_at(tmp_path, REPEATED), store=store, progress=False, repeat=0)
    assert info.value.where == "--repeat"


# --- the baseline ---------------------------------------------------------------------------
def test_a_stored_baseline_runs_on_the_same_cases_and_models(tmp_path, store, models):
    base = Prompt(instruction="Old.", template="Capital of {{ country }}?")
    row = store.save_prompt("capital", base.content(), base.hash)
    store.tag_prompt("capital", row["version"], "production")
    result = run_suite(suite_at(tmp_path), store=store, progress=False,
                       baseline="capital@production")
    assert result.prompts == ["terse@1", "polite@1"]  # the baseline is not a candidate
    assert set(result.baseline) == {("capital@1", "knows-all"), ("capital@1", "knows-france")}
    baseline = result.baseline[("capital@1", "knows-france")]
    assert baseline.case_pass_rates() == {"fr": 1.0, "jp": 0.0, "pe": 0.0}
    assert calls(models) == 18  # 2 prompts and the baseline, 2 models, 3 cases


def test_a_baseline_among_the_suites_prompts_is_not_run_twice(tmp_path, store, models):
    run_suite(suite_at(tmp_path), store=store, progress=False)
    result = run_suite(suite_at(tmp_path), store=store, progress=False, baseline="terse@1")
    assert result.baseline is not None
    assert result.baseline[("terse@1", "knows-all")] is result.cell("terse@1", "knows-all")


def test_a_recorded_suite_run_serves_as_the_baseline(tmp_path, store, models):
    recorded = run_suite(suite_at(tmp_path), store=store, progress=False)
    before = calls(models)
    text = MATRIX.replace('template: "{{ country }}"', 'template: "{{ country }}!"')
    result = run_suite(suite_at(tmp_path, text), store=store, progress=False,
                       baseline=str(recorded.suite_run_id))
    assert calls(models) == before + 6  # only the changed prompt is asked anything
    assert result.baseline is not None
    assert set(result.baseline) == {("terse@1", "knows-all"), ("terse@1", "knows-france")}
    assert result.baseline[("terse@1", "knows-france")].outcomes == \
        recorded.cell("terse@1", "knows-france").outcomes


@pytest.mark.parametrize("baseline", ["nosuch@production", "999"])
def test_a_baseline_that_does_not_exist_is_bad_input_before_any_call(tmp_path, store,
                                                                     monkeypatch, baseline):
    loaded = []
    monkeypatch.setattr(runner, "_load", loaded.append)
    with pytest.raises(ConfigError) as info:
        run_suite(suite_at(tmp_path), store=store, progress=False, baseline=baseline)
    assert info.value.where == "--baseline" and baseline.split("@")[0] in info.value.message
    assert loaded == [] and store.list_runs() == [] and list_suite_runs(store) == []


# --- the real model -------------------------------------------------------------------------
@pytest.mark.real_model
def test_a_three_case_suite_on_the_embedded_model(tmp_path, store):
    text = """\
name: echo
prompts:
  - instruction: Repeat the word the user gives, and nothing else.
    template: "{{ word }}"
models:
  - spec: embedded
    params: {n_ctx: 1024}
generation: {max_tokens: 8}
defaultTest:
  assert:
    - {type: not-contains, value: "zqxjv"}
    - {type: latency, threshold: 60000}
    - {type: cost, threshold: 400}
tests:
  - {id: apple, vars: {word: apple}}
  - {id: river, vars: {word: river}}
  - {id: green, vars: {word: green}}
"""
    result = run_suite(suite_at(tmp_path, text), store=store, progress=False)
    cell = result.cell("echo-1@1", "embedded")
    assert [o.case_id for o in cell.outcomes] == ["apple", "river", "green"]
    for outcome in cell.outcomes:
        assert outcome.error is None and outcome.output, outcome
        assert [c.type for c in outcome.checks] == ["not-contains", "latency", "cost"]
        assert outcome.passed and outcome.tokens_out > 0 and outcome.seconds > 0
    again = run_suite(suite_at(tmp_path, text), store=store, progress=False)
    assert all(o.cached for o in again.cell("echo-1@1", "embedded").outcomes)
