"""Stable hashing of plain data: canonical JSON and its sha256.

A leaf module (it imports nothing from promptmill), so prompts, output specs, retrieval
indexes and caches can all hash the same way without importing one another.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value``: sorted keys, no spaces, unicode kept as is."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
