"""Meta-prompts that ask a proposer model for instructions, and cleaning of what it writes."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..models.base import Messages
from ..task import Example

MAX_SHOWN_CHARS = 300


def show_example(ex: Example) -> str:
    text = ex.inputs["input"] if list(ex.inputs) == ["input"] else \
        "; ".join(f"{k}: {v}" for k, v in ex.inputs.items())
    return f"Input: {str(text)[:MAX_SHOWN_CHARS]}\nOutput: {(ex.target or '')[:MAX_SHOWN_CHARS]}"


def induction_request(demos: Sequence[Example]) -> Messages:
    """APE's forward template: infer the instruction that produced these pairs."""
    pairs = "\n\n".join(show_example(ex) for ex in demos)
    return [{"role": "user", "content":
             "I gave a friend an instruction. Based on the instruction they produced the "
             f"following input-output pairs:\n\n{pairs}\n\nWhat was the instruction? Reply "
             "with the instruction only, in one sentence."}]


def clean_instruction(text: str) -> str:
    """Keep the first meaningful sentence or line of a proposal, without quotes or labels."""
    text = text.strip()
    text = re.sub(r"^(the )?(new |improved )?instruction( was| is)?\s*[:\-]\s*", "", text,
                  flags=re.IGNORECASE)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0].strip(" \"'`*")
    if first.lower().startswith(("input:", "output:")):
        return ""
    return first[:400]
