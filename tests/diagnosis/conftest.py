"""Runs with crafted outputs: each failure category appears on purpose."""

from __future__ import annotations

import pytest
from crafted import FREE_TEXT, LABELLED, evaluate_crafted


@pytest.fixture
def labelled_run(store) -> int:
    return evaluate_crafted(store, LABELLED, "Classify the sentiment.").run_id


@pytest.fixture
def free_text_run(store) -> int:
    return evaluate_crafted(store, FREE_TEXT, "Answer in English.").run_id
