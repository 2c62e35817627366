"""Answer extraction: take the answer out of a free-form reply before it is scored.

A rule is a short string kept on the prompt, so it is versioned and hashed with it:
- ``first_line`` / ``last_line``: the first or last non-empty line;
- ``after:MARKER``: the first line after the last MARKER (case-insensitive), e.g.
  ``after:Answer:`` for step-by-step reasoning that ends with "Answer: ...";
- ``regex:PATTERN``: the first group of the first match (or the whole match);
- ``json``: the first JSON object or array in the text;
- ``label:A|B|C``: the label mentioned first (whole words, case-insensitive).
When a rule finds nothing the reply is kept as it is, so the metric and the failure analysis
still see what the model wrote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache

from .errors import ConfigError

RULES = ("first_line", "last_line", "after:MARKER", "regex:PATTERN", "json", "label:A|B")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _first_line(text: str) -> str | None:
    lines = _lines(text)
    return lines[0] if lines else None


def _last_line(text: str) -> str | None:
    lines = _lines(text)
    return lines[-1] if lines else None


def _after(marker: str) -> Callable[[str], str | None]:
    found = re.compile(re.escape(marker), re.IGNORECASE)

    def extract(text: str) -> str | None:
        hits = list(found.finditer(text))
        if not hits:
            return None
        rest = text[hits[-1].end():].strip()
        return _first_line(rest)
    return extract


def _regex(pattern: str) -> Callable[[str], str | None]:
    try:
        compiled = re.compile(pattern, re.IGNORECASE | re.DOTALL)
    except (re.error, OverflowError, RecursionError) as exc:  # a{99999999999}, ((((...
        problem = "it nests groups too deeply" if isinstance(exc, RecursionError) else exc
        shown = pattern if len(pattern) <= 60 else pattern[:57] + "..."
        raise ConfigError(f"bad extraction pattern ({problem})", where=f"extract 'regex:{shown}'",
                          fix="fix the regular expression") from None

    def extract(text: str) -> str | None:
        match = compiled.search(text)
        if match is None:
            return None
        return (match.group(1) if compiled.groups else match.group(0)).strip()
    return extract


def _json(text: str) -> str | None:
    decoder = json.JSONDecoder()
    for start, ch in enumerate(text):
        if ch in "{[":
            try:
                value, _ = decoder.raw_decode(text[start:])
            except ValueError:
                continue
            return json.dumps(value, ensure_ascii=False)
    return None


def _label(labels: list[str]) -> Callable[[str], str | None]:
    # longest first, so "not spam" wins over "spam" when both could match
    options = sorted(labels, key=len, reverse=True)
    found = re.compile(r"(?<!\w)(" + "|".join(re.escape(x) for x in options) + r")(?!\w)",
                       re.IGNORECASE)
    canonical = {x.lower(): x for x in labels}

    def extract(text: str) -> str | None:
        match = found.search(text)
        return canonical[match.group(1).lower()] if match else None
    return extract


@lru_cache(maxsize=256)
def extractor(rule: str) -> Callable[[str], str | None]:
    """The extraction function for ``rule``; a ConfigError names the rules that exist."""
    name, _, arg = rule.partition(":")
    if name == "first_line" and not arg:
        return _first_line
    if name == "last_line" and not arg:
        return _last_line
    if name == "json" and not arg:
        return _json
    if name == "after" and arg:
        return _after(arg)
    if name == "regex" and arg:
        return _regex(arg)
    if name == "label" and arg:
        return _label([x for x in arg.split("|") if x])
    raise ConfigError(f"unknown answer extraction rule '{rule}'", where="extract",
                      fix="use one of " + ", ".join(RULES))


def extract_answer(rule: str | None, text: str) -> str:
    """Apply ``rule`` to ``text``; the text itself when there is no rule or nothing matched."""
    if not rule:
        return text
    found = extractor(rule)(text)
    return text if found is None else found
