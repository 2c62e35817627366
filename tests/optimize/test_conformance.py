"""Every optimizer passes the same suite: protocol, budget, records, determinism, robustness.

The suite is the one plugin authors run: promptmill.testing.optimizers.
"""

import pytest

from promptmill.optimize import available_optimizers
from promptmill.testing import OptimizerConformance

BUILTINS = ["ape", "auto", "evolve", "fewshot", "mipro", "opro", "protegi"]


def test_every_builtin_is_registered():
    assert set(BUILTINS) <= set(available_optimizers())


class TestBuiltinOptimizers(OptimizerConformance):
    """Each built-in by its registered name, as the CLI's --method finds it."""

    @pytest.fixture(params=BUILTINS)
    def optimizer(self, request):
        return request.param


class TestBuiltinOptimizersAsInstances(OptimizerConformance):
    """The same suite given an instance, the way a plugin author may pass theirs."""

    @pytest.fixture(params=["fewshot", "opro"])
    def optimizer(self, request):
        from promptmill.optimize import get_optimizer

        return get_optimizer(request.param)
