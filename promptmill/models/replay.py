"""A model that can only answer from the cache: replaying a run must not compute anything new."""

from __future__ import annotations

from ..errors import ModelError
from .base import Generation, GenerationParams, Model, Request


class CacheOnlyModel(Model):
    """Stands in for a recorded model identity; any call that reaches it is a cache miss."""

    def __init__(self, identity: str, concurrency: int = 1):
        self.identity = identity
        self.concurrency = concurrency
        self.misses = 0

    def generate(self, request: Request, params: GenerationParams) -> Generation:
        self.misses += 1
        raise ModelError("this call is not in the cache, so the run cannot be replayed exactly",
                         where=self.identity,
                         fix="replay against the store the run was recorded in")
