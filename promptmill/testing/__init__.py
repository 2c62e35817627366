"""The conformance suites and fakes, for plugin authors, as Optuna ships ``optuna.testing``.

Run the suite promptmill runs on its own optimizers and model backends against yours::

    from promptmill.testing import ModelConformance, OptimizerConformance

    class TestMyOptimizer(OptimizerConformance):
        @pytest.fixture
        def optimizer(self):
            return MyOptimizer        # a class, a factory, an instance or a registered name

    class TestMyBackend(ModelConformance):
        @pytest.fixture
        def model(self):
            return MyBackend()

or, without pytest, ``check_optimizer(MyOptimizer, folder)`` and ``check_model(MyBackend())``.

- :mod:`promptmill.testing.optimizers`: the optimizer checks, one rule each;
- :mod:`promptmill.testing.models`: the model-backend checks;
- :mod:`promptmill.testing.fakes`: the antonym task, a prompt-sensitive task model and a
  scripted proposer, to unit-test an optimizer the way promptmill does.

Nothing here imports pytest, and ``import promptmill`` does not import this package. Names are
imported on first use, so the model checks do not load the optimizer machinery.
"""

from .._lazy import lazy_exports as _lazy_exports

_EXPORTS = {
    "ConformanceFailure": ".assertions",
    "OptimizerConformance": ".optimizers", "OptimizerSpec": ".optimizers",
    "check_optimizer": ".optimizers", "run_on_antonyms": ".optimizers",
    "ModelConformance": ".models", "check_model": ".models",
    "GOOD_PROPOSALS": ".fakes", "SEED": ".fakes", "PromptSensitiveModel": ".fakes",
    "ScriptedProposer": ".fakes", "antonym_task": ".fakes", "fresh_context": ".fakes",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = _lazy_exports(__name__, globals(), _EXPORTS)
