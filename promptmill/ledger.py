"""The cost ledger: what a run spent in calls, cache hits, tokens and seconds."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Ledger:
    calls: int = 0
    cache_hits: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    model_seconds: float = 0.0
    wall_seconds: float = 0.0

    def add_call(self, tokens_in: int, tokens_out: int, seconds: float, cached: bool) -> None:
        # A cache hit costs nothing: only real calls count towards tokens and seconds.
        if cached:
            self.cache_hits += 1
            return
        self.calls += 1
        self.model_seconds += seconds
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out

    def merge(self, other: Ledger) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_run(cls, run: dict) -> Ledger:
        return cls(calls=run["calls"], cache_hits=run["cache_hits"], errors=run["n_errors"],
                   tokens_in=run["tokens_in"], tokens_out=run["tokens_out"],
                   model_seconds=run["model_seconds"], wall_seconds=run["wall_seconds"])
