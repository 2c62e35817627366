"""``llm_judge``: a language model grades the response 1-5 against a rubric."""

from __future__ import annotations

import re
import threading
from typing import Any

from ..errors import ConfigError, ModelError, PromptmillError
from ..task import Example
from .base import Metric, Score, digest, quote

_JUDGE_SYSTEM = ("You are a strict, fair grader. You judge a response against a rubric. "
                 "Explain briefly, then give the score.")
_SCORE_AFTER_WORD = re.compile(r"\bscore\b[^0-9\n]{0,20}([1-5])(?![0-9]|\.[0-9])", re.IGNORECASE)
_LONE_DIGIT = re.compile(r"(?<![\w.])([1-5])(?![\w]|\.[0-9])")


def parse_judge_score(text: str) -> int | None:
    """The 1-5 score in a judge's answer: after the word 'score', else a lone digit."""
    after_word = _SCORE_AFTER_WORD.findall(text)
    if after_word:
        return int(after_word[-1])  # the prompt asks for the score last
    for line in reversed(text.splitlines()):
        match = _LONE_DIGIT.search(line)
        if match:
            return int(match.group(1))
    return None


def _judge_reasoning(text: str) -> str:
    lines = [line for line in text.strip().splitlines()
             if not re.fullmatch(r"\W*score\W*[1-5]\W*(/\s*5)?\W*", line, re.IGNORECASE)]
    reasoning = " ".join(" ".join(lines).split())
    return re.sub(r"^\W*reason(ing)?\W*:\W*", "", reasoning, flags=re.IGNORECASE)


def _format_inputs(inputs: dict[str, Any]) -> str:
    if len(inputs) == 1:
        return str(next(iter(inputs.values())))
    return "\n".join(f"{key}: {value}" for key, value in inputs.items())


class LLMJudge(Metric):
    """A language model grades the response 1-5 against a rubric; the score is (N - 1) / 4.

    The judge's reasoning becomes the feedback. The judge model loads on first use.
    """

    name = "llm_judge"

    def __init__(self, rubric: str, model: str = "embedded",
                 model_params: dict[str, Any] | None = None, max_tokens: int = 200,
                 judge_model: Any = None):
        if not isinstance(rubric, str) or not rubric.strip():
            raise ConfigError("the llm_judge metric needs a 'rubric'",
                              where="metric.params.rubric",
                              fix="describe what a good answer looks like, e.g. "
                                  "'Correct, complete and concise.'")
        if model_params is not None and not isinstance(model_params, dict):
            raise ConfigError(f"'model_params' must be a mapping, not {model_params!r}",
                              where="metric.params.model_params", fix="e.g. {n_ctx: 4096}")
        self.rubric = rubric.strip()
        self.model_spec = model
        self.model_params = model_params or {}
        self.max_tokens = max_tokens
        self._judge = judge_model
        self._lock = threading.Lock()

    def describe(self) -> str:
        judge = self._judge.identity if self._judge is not None else self.model_spec
        return f"llm_judge({judge}, rubric {digest(self.rubric, 8)})"

    def judge(self) -> Any:
        with self._lock:
            if self._judge is None:
                from ..models import load_model

                self._judge = load_model(self.model_spec, **self.model_params)
            return self._judge

    def messages(self, prediction: str, example: Example) -> list[dict[str, str]]:
        references = "\n".join(f"- {a}" for a in example.accepted) or "(none given)"
        user = (f"Rubric:\n{self.rubric}\n\n"
                f"Input:\n{_format_inputs(example.inputs)}\n\n"
                f"Reference answer(s):\n{references}\n\n"
                f"Response to grade:\n{prediction}\n\n"
                "Judge the response by the rubric. Answer in this format:\n"
                "Reason: <one or two sentences>\n"
                "Score: <1 to 5, where 1 is worst and 5 is best>")
        return [{"role": "system", "content": _JUDGE_SYSTEM}, {"role": "user", "content": user}]

    def score(self, prediction: str, example: Example) -> Score:
        from ..models import GenerationParams

        judge = self.judge()
        params = GenerationParams(max_tokens=self.max_tokens, temperature=0.0)
        try:
            text = judge.generate(self.messages(prediction, example), params).text
        except PromptmillError:
            raise
        except Exception as exc:  # a failed judge must not look like a 0 score
            raise ModelError(f"the judge model failed ({type(exc).__name__}: {exc})",
                             where=f"metric llm_judge: {judge.identity}",
                             fix="check that the judge model runs: promptmill models") from exc
        grade = parse_judge_score(text)
        if grade is None:
            return Score(0.0, f"judge gave no score: {quote(text, 200)}")
        reasoning = _judge_reasoning(text)
        return Score((grade - 1) / 4, f"judge {grade}/5: {reasoning}" if reasoning
                     else f"judge {grade}/5")
