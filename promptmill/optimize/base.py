"""The optimizer interface: an optimizer ``optimize``s, searching through a context."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from .context import OptimizationContext


class Optimizer(ABC):
    """A search method.

    ``optimize`` starts with ``ctx.incumbent`` (the seed prompt, already scored on the whole
    validation split) and proposes candidates with ``ctx.add``, scores them with
    ``ctx.evaluate`` (minibatches) and offers the promising ones to ``ctx.consider``, which
    replaces the incumbent only when the paired test on validation says the gain is real. It
    returns when it is done; ``BudgetExhausted`` may propagate and ends the search cleanly.
    Methods see the train and validation splits only.
    """

    name: str = "optimizer"

    def __init__(self, **options: Any):
        self.options = options

    @abstractmethod
    def optimize(self, ctx: OptimizationContext) -> None:
        """Search for a better prompt than ``ctx.incumbent``."""

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, **self.options}
