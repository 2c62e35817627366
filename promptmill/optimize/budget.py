"""Budgets in calls, tokens or seconds, and what an optimization has spent against them.

Calls and tokens count *logical* calls: a cache hit counts as the call it replaces. A killed
optimization that is run again therefore replays the same trajectory from the cache, spends
the same budget, and stops at the same point; only the ledger shows that nothing was recomputed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..ledger import Ledger


class BudgetExhausted(Exception):
    """Raised inside a search when the next step would exceed the budget."""


@dataclass(frozen=True)
class Budget:
    calls: int | None = None
    tokens: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.calls is None and self.tokens is None and self.seconds is None:
            raise ConfigError("an optimization needs a budget", where="budget",
                              fix="pass --budget-calls N (or --budget-tokens / --budget-seconds)")
        for name in ("calls", "tokens", "seconds"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"budget {name} must be positive, got {value}",
                                  where=f"--budget-{name}", fix="give a number above 0")

    def to_dict(self) -> dict:
        return {"calls": self.calls, "tokens": self.tokens, "seconds": self.seconds}


@dataclass
class Spend:
    """Logical spend against a budget, plus the real cost of fresh calls in a :class:`Ledger`."""

    budget: Budget
    calls: int = 0
    tokens: int = 0
    fresh: Ledger = field(default_factory=Ledger)  # what the store records for the run
    started: float = field(default_factory=time.perf_counter)

    @property
    def fresh_calls(self) -> int:
        return self.fresh.calls

    @property
    def cache_hits(self) -> int:
        return self.fresh.cache_hits

    @property
    def fresh_tokens(self) -> int:
        return self.fresh.tokens_in + self.fresh.tokens_out

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def can_afford(self, calls: int) -> bool:
        b = self.budget
        if b.calls is not None and self.calls + calls > b.calls:
            return False
        if b.tokens is not None and self.tokens >= b.tokens:
            return False
        return b.seconds is None or self.seconds < b.seconds

    def require(self, calls: int, what: str) -> None:
        if not self.can_afford(calls):
            raise BudgetExhausted(f"no budget left for {what} ({calls} calls)")

    def charge(self, tokens_in: int, tokens_out: int, cached: bool,
               seconds: float = 0.0) -> None:
        """One logical call: it counts against the budget even when the cache answered it."""
        self.calls += 1
        self.tokens += tokens_in + tokens_out
        self.fresh.add_call(tokens_in, tokens_out, seconds, cached)

    def fraction_used(self) -> float:
        b, used = self.budget, []
        if b.calls:
            used.append(self.calls / b.calls)
        if b.tokens:
            used.append(self.tokens / b.tokens)
        if b.seconds:
            used.append(self.seconds / b.seconds)
        return max(used) if used else 0.0

    def to_dict(self) -> dict:
        return {"calls": self.calls, "tokens": self.tokens, "seconds": round(self.seconds, 3),
                "fresh_calls": self.fresh_calls, "cache_hits": self.cache_hits,
                "fresh_tokens": self.fresh_tokens}
