"""Which language a short text is in: script first, then stopwords for Latin-script languages.

Good enough to flag "the answer came back in French" on short outputs without a model; it
returns None rather than guess when the evidence is thin.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

STOPWORDS = {
    "en": "the and is are of to in that it for with on this was be not you what which".split(),
    "fr": "le la les des est et une un du que qui dans pour pas sur au avec ce sont".split(),
    "de": "der die das und ist nicht ein eine zu mit von den sich auf für dem ich".split(),
    "es": "el la los las es y un una que de en por con para del se no son".split(),
    "it": "il lo la gli le è e un una che di per con non sono del della".split(),
    "pt": "o a os as é e um uma que de em por com para não do da são".split(),
    "nl": "de het een en is van dat niet op te zijn met voor die".split(),
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
MIN_STOPWORDS = 2


def script_of(text: str) -> str | None:
    """The dominant writing system of the letters in ``text``."""
    counts: Counter[str] = Counter()
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            counts[name.split(" ")[0] if name else "UNKNOWN"] += 1
    if not counts:
        return None
    script, _ = counts.most_common(1)[0]
    return {"CJK": "Han", "HIRAGANA": "Japanese", "KATAKANA": "Japanese",
            "HANGUL": "Hangul"}.get(script, script.title())


def detect(text: str) -> str | None:
    """A language code for Latin-script text with enough stopwords, else the script name."""
    script = script_of(text)
    if script != "Latin":
        return script
    words = [w.lower() for w in _WORD.findall(text)]
    hits = {lang: sum(w in set(stops) for w in words) for lang, stops in STOPWORDS.items()}
    lang, best = max(hits.items(), key=lambda kv: kv[1])
    runner_up = sorted(hits.values())[-2]
    if best >= MIN_STOPWORDS and best > runner_up:
        return lang
    return None


def mismatch(output: str, reference: str) -> tuple[str, str] | None:
    """(expected, got) when output and reference are confidently in different languages.

    Scripts decide first (a Cyrillic answer to a Latin-script target); within Latin script both
    texts need enough stopwords to be named, so one-word answers are never flagged.
    """
    got_script, want_script = script_of(output), script_of(reference)
    if got_script is None or want_script is None:
        return None
    if got_script != want_script:
        return want_script, got_script
    if got_script != "Latin":
        return None
    got, want = detect(output), detect(reference)
    if got is None or want is None or got == want:
        return None
    return want, got
