"""Fixtures for serving tests."""

from __future__ import annotations

import pytest
from serve_helpers import save

from promptmill.prompt import Prompt


@pytest.fixture
def capital_prompt(store) -> Prompt:
    prompt = Prompt(name="capital", instruction="Name the capital city of the country.",
                    template="Country: {{ country }}")
    save(store, prompt, "production")
    return prompt
