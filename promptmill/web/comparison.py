"""What the compare page computes: output diffs, prompt changes and paired verdicts."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..stats import PairedComparison, paired_test
from ..store.db import Store

_TOKENS = re.compile(r"\s+|[^\s]+")


@dataclass(frozen=True)
class Segment:
    """A piece of a diff: ``op`` is equal, insert or delete; ``text`` is plain (unescaped)."""

    op: str
    text: str


def diff_segments(old: str | None, new: str | None) -> list[Segment]:
    """A word-level diff from ``old`` to ``new``, whitespace kept."""
    a, b = _TOKENS.findall(old or ""), _TOKENS.findall(new or "")
    segments: list[Segment] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            segments.append(Segment("equal", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            segments.append(Segment("delete", "".join(a[i1:i2])))
        if j2 > j1:
            segments.append(Segment("insert", "".join(b[j1:j2])))
    return segments


def prompt_body(run: Mapping[str, Any]) -> dict[str, Any]:
    """The prompt a run used: its saved version, or an optimization's seed prompt."""
    if run.get("prompt_body"):
        return json.loads(run["prompt_body"])
    try:
        return dict(json.loads(run.get("config") or "{}").get("seed_prompt") or {})
    except (ValueError, AttributeError):
        return {}


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def prompt_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Field by field, what changed from one prompt to another, in words a reader can scan."""
    from ..diagnosis.compare import changed_fields

    changes: list[dict[str, Any]] = []
    for field, a, b in changed_fields(old, new):
        if field == "demos":
            changes.append({"field": "demos", "summary": f"{len(a or [])} → {len(b or [])} demos"
                            + ("" if len(a or []) != len(b or []) else " (contents changed)"),
                            "diff": []})
        elif field in ("instruction", "template", "output_format") and (a or b):
            lines = difflib.unified_diff((a or "").splitlines(), (b or "").splitlines(),
                                         lineterm="", n=1)
            changes.append({"field": field, "summary": f"{field} rewritten",
                            "diff": list(lines)[2:]})
        else:
            before = _short(a) if a is not None else "(unset)"
            after = _short(b) if b is not None else "(unset)"
            changes.append({"field": field, "summary": f"{before} → {after}", "diff": []})
    return changes


def paired_verdict(store: Store, base_id: int, other_id: int,
                   alpha: float = 0.05) -> PairedComparison:
    scores_a, scores_b = store.scores_by_example(base_id), store.scores_by_example(other_id)
    shared = sorted(set(scores_a) & set(scores_b))
    return paired_test([scores_a[k] for k in shared], [scores_b[k] for k in shared], alpha=alpha,
                       label_a=f"run {base_id}", label_b=f"run {other_id}")


def parse_run_ids(values: list[str]) -> tuple[list[int], str | None]:
    """Run ids from the form (commas or spaces), or an error message naming the bad part."""
    ids: list[int] = []
    for part in re.split(r"[,\s]+", " ".join(values).strip()):
        if not part:
            continue
        if not part.isdigit():
            return ids, f"'{part}' is not a run id: give run numbers such as 3, 7"
        if int(part) not in ids:
            ids.append(int(part))
    if len(ids) < 2:
        return ids, "choose at least two runs to compare"
    return ids, None
