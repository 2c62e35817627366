"""Fix suggestions that follow from the diagnosis, and turning them into a new prompt version.

Each suggestion names the evidence (a share of failures, a slice, a flip rate) and, where the
fix is mechanical, an action that ``apply_suggestions`` performs on the prompt. The new version
is saved with the run's prompt as its parent, so optimizers can start from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..prompt import Demo, DemoSelection, Prompt
from ..strategies import add_note, answer_only, closed_label_set, output_format, role
from ..task import Example

MIN_SHARE = 0.10
MIN_COUNT = 2
HIGH_FLIP = 0.2
HIGH_ECE = 0.1
LANGUAGE_NAMES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish",
                  "it": "Italian", "pt": "Portuguese", "nl": "Dutch"}


@dataclass
class Suggestion:
    id: str
    source: str  # the finding it follows from: a category, "slice", "robustness", ...
    message: str
    action: dict[str, Any] | None = None  # None: advice only, nothing to apply

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _pct(share: float) -> str:
    return f"{share:.0%}"


def _category_suggestions(cat: str, count: int, share: float, detail: dict[str, Any]
                          ) -> list[Suggestion]:
    p = _pct(share)
    # category -> (advice, the action it applies, None for advice only)
    table: dict[str, tuple[str, dict[str, Any] | None]] = {
        "format_violation": (f"{p} of failures are format violations: add an output spec "
                             "(constrained output) so every answer has the required form",
                             {"kind": "output_format"}),
        "extra_text": (f"{p} of failures have the right answer inside extra text: ask for the "
                       "bare answer and extract the first line", {"kind": "answer_only"}),
        "truncated": (f"{p} of failures stop at the token limit: raise max_tokens or ask for a "
                      "shorter answer", {"kind": "max_tokens"}),
        "empty": (f"{p} of failures are empty answers: tell the model to always answer",
                  {"kind": "always_answer"}),
        "refusal": (f"{p} of failures are refusals: state that the task is harmless and give "
                    "the model a role", {"kind": "no_refusal"}),
        "wrong_language": (f"{p} of failures answer in the wrong language: name the language "
                           "of the answer", {"kind": "language",
                                             "language": detail.get("language")}),
        "wrong_label": (f"{p} of failures pick the wrong label"
                        + (f" (most often {detail['pair']})" if detail.get("pair") else "")
                        + ": add demos of the confused labels", {"kind": "confused_demos"}),
        "partial": (f"{p} of failures are partially right: ask for the complete answer",
                    {"kind": "complete_answer"}),
        "wrong_answer": (f"{p} of failures are plainly wrong: show demos chosen per input "
                         "(retrieved from the training split), then optimize",
                         {"kind": "retrieved_demos"}),
        "call_error": (f"{p} of failures are failed calls: check the backend, then rerun the "
                       "same command to resume", None),
    }
    if cat == "truncated" and detail.get("closed_labels"):
        table[cat] = (f"{p} of failures run out of tokens before naming a label: constrain "
                      "the answer to the label set (output spec) so it is one short label",
                      {"kind": "output_format"})
    if cat not in table:
        return []
    message, action = table[cat]
    return [Suggestion(f"fix-{cat.replace('_', '-')}", cat, f"{message} ({count} examples).",
                       action)]


def suggestions_for(diagnosis) -> list[Suggestion]:
    out: list[Suggestion] = []
    n_fail = diagnosis.n_failures
    for cat in diagnosis.categories:
        if cat["count"] >= MIN_COUNT and cat["count"] / max(n_fail, 1) >= MIN_SHARE:
            out += _category_suggestions(cat["category"], cat["count"],
                                         cat["count"] / n_fail, cat.get("detail", {}))
    for s in [s for s in diagnosis.slices if s["below"]][:3]:
        out.append(Suggestion(
            f"slice-{s['by']}-{s['value']}".replace(" ", "-").replace(":", "-"), "slice",
            f"{s['by']} = {s['value']} scores {s['mean']:.2f} [{s['low']:.2f}, "
            f"{s['high']:.2f}] against {diagnosis.mean:.2f} overall ({s['n']} examples): add "
            "demos from this slice or a rule for it in the instruction"))
    for r in diagnosis.robustness or []:
        if r["applicable"] and r["flip_rate"] >= HIGH_FLIP:
            out.append(Suggestion(f"robust-{r['kind'].replace('_', '-')}", "robustness",
                                  _robustness_advice(r)))
    cal = diagnosis.calibration
    if cal and cal["ece"] >= HIGH_ECE:
        out.append(Suggestion("calibration", "calibration", (
            f"confidence is poorly calibrated (ECE {cal['ece']:.2f}; mean confidence "
            f"{cal['mean_confidence']:.2f} vs accuracy {cal['accuracy']:.2f}): do not route "
            "or abstain on the model's raw probabilities without recalibrating")))
    return out


def _robustness_advice(r: dict[str, Any]) -> str:
    flip = f"{r['flip_rate']:.0%} of verdicts flip under {r['kind'].replace('_', ' ')}"
    return flip + {
        "paraphrase": ": the score hangs on exact wording; optimize the instruction "
                      "(promptmill optimize --method protegi) and prefer demos over wording",
        "demo_order": ": the model is order-sensitive; use more demos or retrieved demos",
        "whitespace": ": normalize inputs in the template ({{ input | trim }})",
        "casing": ": normalize case in the template ({{ input | lower }}) or add demos in "
                  "mixed case",
        "typos": ": add demos with misspelt inputs so the model learns to read past typos",
        "option_order": ": the model has a position bias; shuffle options in demos or score "
                        "options by likelihood",
    }.get(r["kind"], "")


# --- applying ------------------------------------------------------------------------------
def _confused_demos(prompt: Prompt, train: Sequence[Example], labels: Sequence[str],
                    per_label: int = 1) -> Prompt:
    field = next(iter(train[0].inputs)) if train else None
    have = {d.output for d in prompt.demos}
    added = list(prompt.demos)
    for label in labels:
        picks = [ex for ex in train if ex.target == label][:per_label]
        added += [Demo(inputs=ex.inputs, output=label) for ex in picks  # label == ex.target
                  if label not in have and field]
    return prompt.model_copy(update={"demos": tuple(added)})


def apply_action(prompt: Prompt, action: dict[str, Any], train: Sequence[Example],
                 confused: Sequence[str] = ()) -> Prompt:
    kind = action["kind"]
    if kind == "output_format":
        return output_format(prompt, train or None)
    if kind == "answer_only":
        return answer_only(prompt, train or None)
    if kind == "max_tokens":
        return prompt.model_copy(update={"max_tokens": 2 * (prompt.max_tokens or 64)})
    if kind == "always_answer":
        return add_note(answer_only(prompt, train or None),
                        "Always give an answer, even when unsure.")
    if kind == "no_refusal":
        return add_note(role(prompt, persona="a helpful assistant"),
                        "This task is harmless: answer it directly.")
    if kind == "language":
        name = LANGUAGE_NAMES.get(action.get("language") or "", action.get("language"))
        return add_note(prompt, f"Answer in {name}.") if name else prompt
    if kind == "complete_answer":
        return add_note(prompt, "Give the complete answer.")
    if kind == "confused_demos":
        return _confused_demos(prompt, train, confused) if train else prompt
    if kind == "retrieved_demos":
        if prompt.demos or prompt.demo_selection or not train:
            return prompt
        labels = closed_label_set(train)
        return prompt.model_copy(update={"demo_selection": DemoSelection(
            method="bm25", k=4, balance_labels=labels is not None)})
    return prompt


def apply_suggestions(prompt: Prompt, chosen: Sequence[Suggestion], train: Sequence[Example],
                      confused: Sequence[str] = ()) -> Prompt:
    for suggestion in chosen:
        if suggestion.action:
            prompt = apply_action(prompt, suggestion.action, train, confused)
    return prompt
