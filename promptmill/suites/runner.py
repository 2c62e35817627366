"""Running a suite: each prompt x model x sample is one ordinary evaluation run.

The Evaluator does the work it does for ``eval`` (the cache, resuming, the ledger, progress),
so ``runs``, ``show``, ``compare``, ``diagnose`` and the workbench see a suite's runs like any
other. Its metric is the suite's :class:`~promptmill.suites.checks.CaseChecks`: a case scores
1.0 when it passes, so a run's mean is its pass rate. The outcomes are then read back from the
store with each assertion's check recomputed from the stored answer (deterministic checks take
microseconds; a judge's calls come from the cache), and the invocation is recorded in the
store's ``suite_runs`` with the whole matrix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, PromptmillError
from ..models.base import Generation, GenerationParams, Model
from ..prompt import Prompt
from ..task import Example
from .load import (
    assertion_path,
    check_suite,
    locate,
    resolve_prompts,
    resolve_ref,
    template_variables,
)
from .model import ModelEntry, Suite, SuiteGeneration
from .results import Cell, Outcome, SuiteResult

if TYPE_CHECKING:
    from ..store.db import Store
    from .checks import CaseChecks

__all__ = ["SuiteProgress", "run_suite"]

SPLIT = "suite"


@dataclass(frozen=True)
class SuiteProgress:
    """Told to ``on_progress`` after each evaluation (one prompt x model x sample) finishes."""

    done: int
    total: int
    prompt: str  # NAME@VERSION
    model: str
    sample: int
    run_id: int


ProgressHook = Callable[[SuiteProgress], None]


@dataclass(frozen=True)
class _Baseline:
    """What ``--baseline`` compares with: a prompt to run, or cells already there."""

    label: str
    prompt: Prompt | None = None  # run it on the suite's cases and models
    cells: dict[tuple[str, str], Cell] | None = None  # read from a recorded suite run


def run_suite(suite: Suite, *, store: Store, repeat: int | None = None, cache: bool = True,
              progress: bool = True, models: Sequence[str | ModelEntry] | None = None,
              baseline: str | int | None = None,
              on_progress: ProgressHook | None = None) -> SuiteResult:
    """Run every prompt against every model on every case, ``repeat`` times each.

    ``models`` replaces the suite's models; ``baseline`` (a prompt ``NAME@TAG``, a prompt
    file, or a recorded suite run's id) fills ``SuiteResult.baseline`` for the gates. The
    input is checked before any model is loaded, the assertions before any model is called.
    """
    if models:
        suite = suite.model_copy(update={"models": [_model_entry(m) for m in models]})
    samples = _samples(suite, repeat)
    prompts = resolve_prompts(suite, store)
    check_suite(suite, prompts, models_where="--model" if models else None)
    chosen = _baseline(suite, store, prompts, baseline)
    from ..store.suites import create_suite_run, finish_suite_run

    with contextlib.ExitStack() as stack:
        loaded = [(entry, stack.enter_context(contextlib.closing(_load(entry))))
                  for entry in suite.models]
        # llm-rubric without its own provider is judged by the suite's first model
        checks = build_checks(suite, judge=loaded[0][1], store=store)
        suite_run_id = create_suite_run(store, suite.name, suite.source)
        try:
            result = _SuiteRun(suite, store, prompts, chosen, samples, cache, progress,
                               on_progress, suite_run_id).run(loaded, checks)
        except BaseException as exc:
            _record_stop(store, suite_run_id, exc)
            raise
    finish_suite_run(store, suite_run_id, "finished", result.to_dict())
    return result


def build_checks(suite: Suite, *, judge: Model | str | None, store: Store | None) -> CaseChecks:
    """The suite's case metric; an assertion its type cannot use is a ConfigError at its line."""
    from .checks import CaseChecks

    cases = {suite.case_id(i): suite.merged(i) for i in range(len(suite.cases))}
    try:
        return CaseChecks(cases, base_dir=suite.base_dir, judge=judge, store=store)
    except ConfigError as exc:
        raise _at_its_line(suite, exc) from None


def _at_its_line(suite: Suite, error: ConfigError) -> ConfigError:
    """The same error, placed at the line of the first assertion that alone raises it.

    Only on an error: each assertion is built again on its own (no judge is loaded for it).
    """
    from .checks import CaseChecks

    for index in range(len(suite.cases)):
        case = suite.merged(index)
        for position, assertion in enumerate(case.assertions):
            alone = {suite.case_id(index): case.model_copy(update={"assertions": [assertion]})}
            try:
                CaseChecks(alone, base_dir=suite.base_dir, judge=None, store=None)
            except ConfigError as exc:
                where = locate(suite, assertion_path(suite, index, position))
                return ConfigError(exc.message, where=where, fix=exc.fix)
    return error


def _model_entry(model: str | ModelEntry) -> ModelEntry:
    return model if isinstance(model, ModelEntry) else ModelEntry(spec=model)


def _samples(suite: Suite, repeat: int | None) -> int:
    if repeat is None:
        return suite.repeat
    if repeat < 1:
        raise ConfigError(f"repeat {repeat} is below 1", where="--repeat",
                          fix="give the number of samples per case, 1 or more")
    return repeat


def _record_stop(store: Store, suite_run_id: int, exc: BaseException) -> None:
    """Say why the suite run stopped, as far as the store still allows (it may be full)."""
    from ..store.suites import finish_suite_run

    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    message = exc.one_line() if isinstance(exc, PromptmillError) else (
        f"{type(exc).__name__}: {exc}")
    with contextlib.suppress(PromptmillError):
        finish_suite_run(store, suite_run_id, status, error=message)


# --- the baseline ---------------------------------------------------------------------------
def _baseline(suite: Suite, store: Store, prompts: Sequence[tuple[str, Prompt]],
              baseline: str | int | None) -> _Baseline | None:
    if baseline is None:
        return None
    if isinstance(baseline, int) or baseline.strip().isdigit():
        return _recorded_baseline(store, int(baseline))
    label, prompt = resolve_ref(baseline, store, suite.base_dir, where="--baseline")
    if label in {known for known, _ in prompts}:
        return _Baseline(label)  # one of the suite's own prompts: its cells serve as they are
    _check_baseline_vars(suite, label, prompt)
    return _Baseline(label, prompt=prompt)


def _recorded_baseline(store: Store, suite_run_id: int) -> _Baseline:
    """The first prompt's cells of a recorded suite run (the prompt that run was testing)."""
    from ..store.suites import get_suite_run, suite_run_result

    row = get_suite_run(store, suite_run_id)
    if row is None:
        raise ConfigError(f"suite run {suite_run_id} does not exist", where="--baseline",
                          fix="give the id of a recorded suite run (the workbench lists them) "
                              "or a stored prompt as NAME@TAG")
    data = suite_run_result(row)
    if not data or not data.get("prompts"):
        raise ConfigError(f"suite run {suite_run_id} has no results (it is {row['status']})",
                          where="--baseline", fix="give a suite run that finished, or a "
                                                  "stored prompt as NAME@TAG")
    recorded = SuiteResult.from_dict(data)
    first = recorded.prompts[0]
    return _Baseline(first, cells={key: cell for key, cell in recorded.cells.items()
                                   if key[0] == first})


def _check_baseline_vars(suite: Suite, label: str, prompt: Prompt) -> None:
    needed = template_variables(prompt, label)
    for index in range(len(suite.cases)):
        missing = sorted(needed - set(suite.merged(index).vars))
        if missing:
            raise ConfigError(f"the baseline {label} uses '{missing[0]}', which case "
                              f"'{suite.case_id(index)}' does not give", where="--baseline",
                              fix="give a baseline whose template takes the suite's vars")


# --- the run --------------------------------------------------------------------------------
class _SuiteRun:
    """One invocation: the models loaded once each, the matrix, then the baseline."""

    def __init__(self, suite: Suite, store: Store, prompts: Sequence[tuple[str, Prompt]],
                 baseline: _Baseline | None, samples: int, cache: bool, progress: bool,
                 on_progress: ProgressHook | None, suite_run_id: int):
        self.suite, self.store, self.prompts = suite, store, list(prompts)
        self.baseline, self.samples = baseline, samples
        self.cache, self.progress, self.on_progress = cache, progress, on_progress
        self.suite_run_id = suite_run_id
        self.params = generation_params(suite.generation)
        self.examples = [Example(id=suite.case_id(i), inputs=dict(suite.merged(i).vars))
                         for i in range(len(suite.cases))]
        self.to_run = [*self.prompts]  # the candidates, then a baseline prompt to run
        if baseline is not None and baseline.prompt is not None:
            self.to_run.append((baseline.label, baseline.prompt))
        self.total = len(self.to_run) * len(suite.models) * samples
        self.done = 0

    def run(self, loaded: Sequence[tuple[ModelEntry, Model]],
            checks: CaseChecks) -> SuiteResult:
        cells: dict[tuple[str, str], Cell] = {}
        # model by model, each prompt's cases back to back: llama.cpp reuses the prefix
        for entry, model in loaded:
            for label, prompt in self.to_run:
                cells[(label, entry.name)] = self._cell(model, entry, label, prompt, checks)
        return self._result(cells)

    def _cell(self, model: Model, entry: ModelEntry, label: str, prompt: Prompt,
              checks: CaseChecks) -> Cell:
        from ..evaluation import Evaluator

        cell = Cell(label, entry.name)
        for sample in range(self.samples):
            evaluator = Evaluator(model, checks, self.store, params=self.params,
                                  mode=self.suite.mode, cache=self.cache,
                                  progress=self.progress, sample=sample)
            run = evaluator.evaluate(self.examples, prompt, task=f"suite:{self.suite.name}",
                                     split=SPLIT, prompt_name=prompt.name,
                                     config=self._config(label, entry, sample))
            cell.run_ids.append(run.run_id)
            cell.outcomes.extend(self._outcomes(run.run_id, checks, label, entry, sample))
            self._tick(label, entry, sample, run.run_id)
        return cell

    def _config(self, label: str, entry: ModelEntry, sample: int) -> dict[str, Any]:
        """What each run keeps of the suite, so it can be found from the run and back."""
        return {"suite": self.suite.name, "suite_run": self.suite_run_id,
                "source": self.suite.source, "prompt_label": label, "model": entry.name,
                "sample": sample}

    def _outcomes(self, run_id: int, checks: CaseChecks, label: str, entry: ModelEntry,
                  sample: int) -> list[Outcome]:
        return [outcome_from_row(row, checks, label, entry.name, sample, run_id)
                for row in self.store.iter_results(run_id)]

    def _tick(self, label: str, entry: ModelEntry, sample: int, run_id: int) -> None:
        self.done += 1
        if self.on_progress is not None:
            self.on_progress(SuiteProgress(self.done, self.total, label, entry.name, sample,
                                           run_id))

    def _result(self, cells: dict[tuple[str, str], Cell]) -> SuiteResult:
        labels = [label for label, _ in self.prompts]
        ordered = {(label, entry.name): cells[(label, entry.name)]
                   for label in labels for entry in self.suite.models}
        return SuiteResult(suite=self.suite.name, prompts=labels,
                           models=[entry.name for entry in self.suite.models],
                           repeat=self.samples, cells=ordered, source=self.suite.source,
                           baseline=self._baseline_cells(cells),
                           suite_run_id=self.suite_run_id)

    def _baseline_cells(self, cells: dict[tuple[str, str], Cell]
                        ) -> dict[tuple[str, str], Cell] | None:
        if self.baseline is None:
            return None
        if self.baseline.cells is not None:
            return self.baseline.cells
        return {(self.baseline.label, entry.name): cells[(self.baseline.label, entry.name)]
                for entry in self.suite.models}


def _load(entry: ModelEntry) -> Model:
    from ..models.registry import load_model

    return load_model(entry.spec, **entry.params)


def generation_params(generation: SuiteGeneration) -> GenerationParams:
    # no seed in the suite still means a fixed one: each sample's seed is seed + sample, and
    # a rerun must find the same samples in the cache
    return GenerationParams(max_tokens=generation.max_tokens,
                            temperature=generation.temperature, top_p=generation.top_p,
                            seed=generation.seed if generation.seed is not None else 0,
                            stop=tuple(generation.stop))


def outcome_from_row(row: dict[str, Any], checks: CaseChecks, prompt: str, model: str,
                     sample: int, run_id: int) -> Outcome:
    """One stored result as an Outcome, its checks recomputed from the stored answer."""
    case_id = row["example_id"]
    common: dict[str, Any] = {
        "case_id": case_id, "prompt": prompt, "model": model, "sample": sample,
        "seconds": float(row["seconds"] or 0.0), "tokens_in": int(row["tokens_in"] or 0),
        "tokens_out": int(row["tokens_out"] or 0), "cached": bool(row["cached"]),
        "run_id": run_id}
    if row["error"] is not None or row["output"] is None:
        return Outcome(output=None, passed=False, score=0.0, checks=(),
                       error=row["error"] or "the model gave no answer", **common)
    generation = Generation(text=row["raw_output"] or row["output"],
                            input_tokens=common["tokens_in"], output_tokens=common["tokens_out"],
                            seconds=common["seconds"], cached=common["cached"])
    found = checks.checks(case_id, row["output"], generation)
    passed, score = checks.passed(case_id, found)
    return Outcome(output=row["output"], passed=passed, score=score, checks=tuple(found),
                   **common)
