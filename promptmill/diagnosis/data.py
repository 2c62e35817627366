"""A finished run as diagnose needs it: rows with parsed inputs, the prompt and each call's end."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import PromptmillError
from ..prompt import Prompt
from ..store.db import Store


class DiagnoseError(PromptmillError):
    """Diagnose was asked for something the run cannot give."""


@dataclass
class Row:
    """One scored example of the run."""

    example_id: str
    idx: int
    inputs: dict[str, Any]
    target: str | None
    answers: list[str]
    output: str
    raw_output: str
    score: float
    error: str | None
    tokens_out: int
    segment: str | None = None
    finish_reason: str | None = None
    logprobs: list[float] | None = None
    category: str = "correct"
    why: str = ""

    @property
    def input_text(self) -> str:
        return "\n".join(str(v) for v in self.inputs.values())

    @property
    def expected(self) -> list[str]:
        """Every accepted answer, the target first."""
        out = [self.target] if self.target else []
        return out + [a for a in self.answers if a and a not in out]


@dataclass
class RunData:
    run: dict[str, Any]
    prompt: Prompt | None
    prompt_name: str | None
    prompt_version: int | None
    params: dict[str, Any]
    rows: list[Row]
    threshold: float = 1.0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.score < self.threshold]

    @property
    def max_tokens(self) -> int:
        if self.prompt is not None and self.prompt.max_tokens:
            return int(self.prompt.max_tokens)
        return int(self.params.get("max_tokens") or 0)


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _row(raw: dict[str, Any]) -> Row:
    inputs = _json(raw["inputs"], {})
    output = raw["output"] or ""
    return Row(example_id=raw["example_id"], idx=raw["idx"],
               inputs=inputs if isinstance(inputs, dict) else {"input": inputs},
               target=raw["target"], answers=[str(a) for a in _json(raw["answers"], []) or []],
               output=output, raw_output=raw.get("raw_output") or output,
               score=float(raw["score"] or 0.0), error=raw["error"],
               tokens_out=int(raw["tokens_out"] or 0), segment=raw.get("segment"))


def _prompt(store: Store, run: dict[str, Any]) -> tuple[Prompt | None, str | None, int | None]:
    found = store.get_prompt_by_id(run["prompt_id"]) if run.get("prompt_id") else None
    if not found:
        return None, None, None
    prompt = Prompt.from_stored(found["body"], f"{found['name']}@{found['version']}",
                                name=found["name"])
    return prompt, found["name"], found["version"]


def _attach_calls(store: Store, rows: list[Row], keys: list[str | None]) -> None:
    calls = store.cached_calls(k for k in keys if k)
    for row, key in zip(rows, keys, strict=True):
        call = calls.get(key) if key else None
        if call:
            row.finish_reason = call["finish_reason"]
            row.logprobs = _json(call["logprobs"], None)


def load_run(store: Store, run_ref: int | str, threshold: float = 1.0) -> RunData:
    """Read a run and everything diagnose looks at; a clear error when it does not exist."""
    run = store.get_run(run_ref)  # already a clear error for unknown ids
    raw_rows = list(store.iter_results(run["id"]))
    if not raw_rows:
        raise DiagnoseError(f"run {run['id']} has no results yet", where=f"run {run['id']}",
                            fix="evaluate first, or resume it with the same command")
    rows = [_row(r) for r in raw_rows]
    _attach_calls(store, rows, [r["call_key"] for r in raw_rows])
    config = _json(run["config"], {})
    prompt, name, version = _prompt(store, run)
    return RunData(run=run, prompt=prompt, prompt_name=name, prompt_version=version,
                   params=config.get("params", {}),
                   rows=rows, threshold=threshold, config=config)
