"""The fakes of the conformance suite: a task, a task model that reacts to the whole prompt,
and a proposer whose every proposal the test chose.

They are public so that a plugin author can unit-test an optimizer the way promptmill tests its
own: ``antonym_task()`` splits 50 antonym pairs into train, validation and a test split whose
inputs are marked ``TEST``; ``PromptSensitiveModel`` records every request, so a test can prove
that a search never saw a test input; ``ScriptedProposer`` writes exactly what it is given.
"""

from __future__ import annotations

import hashlib
import threading

from ..metrics import get_metric
from ..models.base import Generation, GenerationParams, Model, Request
from ..optimize import Budget, OptimizationContext
from ..prompt import Prompt
from ..store.db import Store
from ..task import Example, Task

ANTONYMS = [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"),
            ("happy", "sad"), ("light", "dark"), ("wet", "dry"), ("early", "late"),
            ("hard", "soft"), ("loud", "quiet"), ("old", "new"), ("rich", "poor"),
            ("high", "low"), ("full", "empty"), ("open", "closed"), ("thick", "thin"),
            ("strong", "weak"), ("near", "far"), ("clean", "dirty"), ("sharp", "dull"),
            ("long", "short"), ("safe", "dangerous"), ("sweet", "sour"), ("true", "false"),
            ("win", "lose"), ("push", "pull"), ("give", "take"), ("buy", "sell"),
            ("enter", "exit"), ("accept", "refuse"), ("arrive", "leave"), ("begin", "end"),
            ("brave", "cowardly"), ("cheap", "expensive"), ("deep", "shallow"),
            ("first", "last"), ("friend", "enemy"), ("heavy", "light"), ("inside", "outside"),
            ("left", "right"), ("major", "minor"), ("noisy", "silent"), ("odd", "even"),
            ("polite", "rude"), ("rough", "smooth"), ("tight", "loose"), ("wide", "narrow"),
            ("young", "old"), ("always", "never"), ("above", "below")]


def antonym_task(n_test: int = 20) -> Task:
    """The last ``n_test`` pairs are the test split, their inputs marked "TEST word" so a model
    can tell when it was shown one; of the rest, 10 train and the others (20) validation."""
    examples = [Example(f"e{i}", {"input": (f"TEST {w}" if i >= len(ANTONYMS) - n_test
                                            else w)}, a)
                for i, (w, a) in enumerate(ANTONYMS)]
    test = examples[len(examples) - n_test:]
    rest = examples[: len(examples) - n_test]
    return Task("antonyms", train=rest[:10], validation=rest[10:], test=test)


class PromptSensitiveModel(Model):
    """Right when the prompt shows demos or says to answer with one word; chatty otherwise.

    Inputs marked TEST are answered the same way; the model records what it was asked so
    tests can check that a search never saw a test input.
    """

    def __init__(self, name: str = "sensitive"):
        self.identity = f"fake-sensitive:{name}"
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._answers = dict(ANTONYMS)

    def generate(self, request: Request, params: GenerationParams) -> Generation:
        with self._lock:
            self.requests.append(request)
        # a completion string is one user turn to this chat-minded fake
        messages = request if isinstance(request, list) else [{"role": "user", "content": request}]
        system = messages[0]["content"].lower() if messages[0]["role"] == "system" else ""
        has_demos = sum(1 for m in messages if m["role"] == "assistant") > 0
        word = messages[-1]["content"].replace("TEST ", "").strip()
        answer = self._answers.get(word, "unknown")
        terse = has_demos or "single word" in system or "answer only" in system
        # Half the words fail anyway without demos: a real, measurable but partial gain.
        salt = int(hashlib.sha256(word.encode()).hexdigest(), 16) % 2
        if not terse:
            text = f"The opposite of {word} is {answer}."
        elif has_demos or salt:
            text = answer
        else:
            text = f"{answer}, I think"
        return Generation(text, input_tokens=10, output_tokens=len(text.split()), seconds=0.0)

    def saw_test_input(self, upto: int | None = None) -> bool:
        reqs = self.requests if upto is None else self.requests[:upto]
        return any("TEST" in m["content"] for r in reqs if not isinstance(r, str) for m in r)


class ScriptedProposer(Model):
    """Returns canned proposals in turn: tests control exactly what a proposer writes."""

    def __init__(self, texts: list[str], name: str = "proposer"):
        self.texts = texts
        digest = hashlib.sha256(repr(texts).encode()).hexdigest()[:8]
        self.identity = f"fake-proposer:{name}:{digest}"
        self.calls = 0
        self.requests: list[Request] = []  # what it was asked, for tests of meta-prompts

    def generate(self, request: Request, params: GenerationParams) -> Generation:
        self.requests.append(request)
        text = self.texts[self.calls % len(self.texts)]
        self.calls += 1
        return Generation(text, input_tokens=50, output_tokens=len(text.split()), seconds=0.0)


GOOD_PROPOSALS = ["Write the opposite of the word. Answer with a single word.",
                  "Give the antonym of the input word.",
                  "Output one word: the antonym.",
                  "Answer only with the opposite word."]


SEED_NAME = "antonyms"
SEED = Prompt(instruction="What is the opposite?", template="{{ input }}", name=SEED_NAME)


def fresh_context(store: Store, proposer: Model | None = None,
                  calls: int = 1000) -> OptimizationContext:
    """A context on the antonym task whose incumbent is the seed, already scored."""
    task = antonym_task()
    ctx = OptimizationContext(train=task.train, validation=task.validation,
                              model=PromptSensitiveModel(), metric=get_metric("exact"),
                              store=store, budget=Budget(calls=calls), params=GenerationParams(),
                              proposer=proposer or ScriptedProposer(GOOD_PROPOSALS))
    seed = ctx.add(SEED, origin="seed")
    assert seed is not None  # a fresh context has no duplicate to reject
    ctx.consider(seed)
    return ctx
