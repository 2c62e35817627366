"""Meta-prompts that ask a proposer model for instructions, and cleaning of what it writes."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..evaluation import ScoredExample
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
    words = first.split()
    # A usable instruction is a sentence: not a fragment like "2", not a wall of text.
    if not 3 <= len(words) <= 80 or len(first) > 600 or not re.search("[A-Za-z]{3}", first):
        return ""
    return first


def resample_request(instruction: str) -> Messages:
    """APE's resampling template: a variation of a good instruction, same meaning."""
    return [{"role": "user", "content":
             "Generate a variation of the following instruction while keeping the semantic "
             f"meaning.\n\nInstruction: {instruction}\n\nReply with the new instruction only, "
             "in one sentence."}]


def opro_request(history: Sequence[tuple[str, int]], exemplars: Sequence[Example]) -> Messages:
    """OPRO's meta-prompt: scored instructions in the order given (ascending), then exemplars.

    Scores are integers from 0 to 100; the best instruction comes last, right before the ask,
    where the paper found the proposer pays it the most attention.
    """
    scored = "\n\n".join(f"text:\n{text}\nscore:\n{score}" for text, score in history)
    shown = "\n\n".join(show_example(ex) for ex in exemplars)
    return [{"role": "user", "content":
             "Your task is to write an instruction for a language model. Below are previous "
             "instructions with their scores, from 0 to 100; higher is better, and they are "
             f"sorted from worst to best.\n\n{scored}\n\nBelow are examples of the task: the "
             "model gets the instruction and the input, and should give the output.\n\n"
             f"{shown}\n\nWrite a new instruction that is different from all the instructions "
             "above and scores higher than all of them. Reply with the instruction only, in "
             "one sentence."}]


# --- failure-driven requests: ProTeGi's textual gradient and edit, GEPA's reflection ----------
MAX_GRADIENT_CHARS = 400


def show_failure(scored: ScoredExample) -> str:
    """One failed example: its input, what the model said, what was expected, and why it lost."""
    ex = scored.example
    text = ex.inputs["input"] if list(ex.inputs) == ["input"] else \
        "; ".join(f"{k}: {v}" for k, v in ex.inputs.items())
    lines = [f"Input: {str(text)[:MAX_SHOWN_CHARS]}",
             f"Model output: {(scored.output or '')[:MAX_SHOWN_CHARS]}",
             f"Expected: {(ex.target or '')[:MAX_SHOWN_CHARS]}"]
    if scored.feedback:
        lines.append(f"Feedback: {scored.feedback[:MAX_SHOWN_CHARS]}")
    return "\n".join(lines)


def _shown_instruction(instruction: str) -> str:
    # An empty instruction (a demos-only prompt) would read as a broken meta-prompt.
    return instruction.strip() or "(no instruction)"


def _failing_preamble(instruction: str, failures: Sequence[ScoredExample]) -> str:
    """The part ProTeGi's gradient and edit requests share: the instruction and its failures."""
    cases = "\n\n".join(show_failure(f) for f in failures)
    return ("I'm trying to write an instruction for a language model. My current instruction "
            f"is:\n\"{_shown_instruction(instruction)}\"\n\nBut it gets the following examples "
            f"wrong:\n\n{cases}")


def gradient_request(instruction: str, failures: Sequence[ScoredExample]) -> Messages:
    """ProTeGi's gradient template: why does the instruction get these examples wrong?"""
    return [{"role": "user", "content":
             f"{_failing_preamble(instruction, failures)}\n\nIn one or two sentences, say what "
             "is wrong with the instruction that could explain these mistakes."}]


def edit_request(instruction: str, failures: Sequence[ScoredExample], gradient: str) -> Messages:
    """ProTeGi's edit template: rewrite the instruction to fix the problem the gradient names."""
    return [{"role": "user", "content":
             f"{_failing_preamble(instruction, failures)}\n\nBased on these examples, the "
             f"problem with this instruction is: {gradient}\n\nWrite an improved instruction "
             "that fixes this problem. Reply with the instruction only, in one sentence."}]


def reflection_request(instruction: str, failures: Sequence[ScoredExample]) -> Messages:
    """GEPA's reflective mutation: the instruction, failing inputs, outputs and feedback."""
    cases = "\n\n".join(show_failure(f) for f in failures)
    return [{"role": "user", "content":
             "I gave an assistant the following instruction to perform a task:\n"
             f"\"{_shown_instruction(instruction)}\"\n\nHere are task inputs it got wrong, with "
             f"its output, the expected output and feedback on each:\n\n{cases}\n\nRead them "
             "carefully and infer what the task needs and which mistakes to avoid. Then write "
             "a new, improved instruction for the assistant. Reply with the new instruction "
             "only, in one sentence."}]


def clean_gradient(text: str) -> str:
    """The proposer's diagnosis on one line: its first few lines, without a leading label."""
    text = re.sub(r"^(the )?(problem|issue|reason)s?( is)?\s*[:\-]\s*", "", text.strip(),
                  flags=re.IGNORECASE)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:3])[:MAX_GRADIENT_CHARS]


# A lead-in before the instruction itself: "Here is the revised instruction:", "The improved
# instruction would be: ...". Small proposers write these often; the instruction follows.
_LEAD_IN = re.compile(r"^[^\n:]{0,80}\binstruction\b[^\n:]{0,40}:\s*", re.IGNORECASE)


def clean_rewrite(text: str) -> str:
    """An instruction from a rewrite reply, past the lead-in a small model puts first.

    A first line ending in ':' is dropped when more follows; then ``clean_instruction``.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]
    return clean_instruction(_LEAD_IN.sub("", "\n".join(lines), count=1))
