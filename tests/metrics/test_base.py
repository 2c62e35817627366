"""What every metric shares: text normalization."""

from __future__ import annotations

from promptmill.metrics import normalize


def test_normalize_is_squad_style():
    assert normalize("  The Eiffel-Tower! ") == "eiffeltower"
