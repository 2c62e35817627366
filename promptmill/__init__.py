"""promptmill: design, evaluate, optimize and tune prompts for language models.

The public API is the names in ``__all__``. They are imported on first use, so
``import promptmill`` stays fast and pulls in neither llama.cpp nor SQLAlchemy.
"""

# No ``from x import y`` at module level: every public-looking name here must be in __all__
# (tests/test_public_api.py checks it), so helpers are imported under private names.
import typing as _typing

from ._lazy import lazy_exports as _lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Example": "promptmill.task", "FieldMap": "promptmill.task", "Task": "promptmill.task",
    "load_examples": "promptmill.task",
    "Prompt": "promptmill.prompt", "Demo": "promptmill.prompt",
    "TaskConfig": "promptmill.config", "load_task_config": "promptmill.config",
    "Model": "promptmill.models.base", "Generation": "promptmill.models.base",
    "GenerationParams": "promptmill.models.base", "load_model": "promptmill.models.registry",
    "FakeModel": "promptmill.models.fake",
    "Metric": "promptmill.metrics", "Score": "promptmill.metrics",
    "get_metric": "promptmill.metrics", "register_metric": "promptmill.metrics",
    "Evaluator": "promptmill.evaluation", "EvalResult": "promptmill.evaluation",
    "Renderer": "promptmill.rendering", "build_request": "promptmill.rendering",
    "Ledger": "promptmill.ledger",
    "Store": "promptmill.store.db",
    "mean_ci": "promptmill.stats", "paired_test": "promptmill.stats",
    "PromptmillError": "promptmill.errors",
    "OutputSpec": "promptmill.constrain", "Chain": "promptmill.context",
    "DemoSelector": "promptmill.context", "KnowledgeBase": "promptmill.context",
    "KnowledgeContext": "promptmill.context", "IntentRouter": "promptmill.context",
    "Situation": "promptmill.context", "ContextBudget": "promptmill.context",
    "load_task": "promptmill.api", "evaluate": "promptmill.api", "setup": "promptmill.api",
    "Setup": "promptmill.assembly", "compare": "promptmill.api",
    "runs": "promptmill.api", "show": "promptmill.api", "export": "promptmill.api",
    "diagnose": "promptmill.diagnosis", "Diagnosis": "promptmill.diagnosis",
    "compare_runs": "promptmill.diagnosis.compare", "HumanRating": "promptmill.metrics.human",
    "load_served_prompt": "promptmill.serve", "export_prompt": "promptmill.portable",
    "import_prompt": "promptmill.portable", "run_injection": "promptmill.injection",
    "Executor": "promptmill.distributed", "LocalExecutor": "promptmill.distributed",
    "RayExecutor": "promptmill.distributed",
    "TuneSettings": "promptmill.tune.settings", "TuneResult": "promptmill.tune.train",
    "TransformersModel": "promptmill.models.transformers_model",
}

__all__ = [
    "Chain",
    "ContextBudget",
    "Demo",
    "DemoSelector",
    "Diagnosis",
    "EvalResult",
    "Evaluator",
    "Example",
    "Executor",
    "FakeModel",
    "FieldMap",
    "Generation",
    "GenerationParams",
    "HumanRating",
    "IntentRouter",
    "KnowledgeBase",
    "KnowledgeContext",
    "Ledger",
    "LocalExecutor",
    "Metric",
    "Model",
    "OutputSpec",
    "Prompt",
    "PromptmillError",
    "RayExecutor",
    "Renderer",
    "Score",
    "Setup",
    "Situation",
    "Store",
    "Task",
    "TaskConfig",
    "TransformersModel",
    "TuneResult",
    "TuneSettings",
    "build_request",
    "compare",
    "compare_runs",
    "diagnose",
    "evaluate",
    "export",
    "export_prompt",
    "get_metric",
    "import_prompt",
    "load_examples",
    "load_model",
    "load_served_prompt",
    "load_task",
    "load_task_config",
    "mean_ci",
    "paired_test",
    "register_metric",
    "run_injection",
    "runs",
    "setup",
    "show",
]


__getattr__, __dir__ = _lazy_exports("promptmill", globals(), _EXPORTS)


if _typing.TYPE_CHECKING:  # for type checkers and IDEs; never run
    from .api import compare, evaluate, export, load_task, runs, setup, show
    from .assembly import Setup
    from .config import TaskConfig, load_task_config
    from .constrain import OutputSpec
    from .context import (
        Chain,
        ContextBudget,
        DemoSelector,
        IntentRouter,
        KnowledgeBase,
        KnowledgeContext,
        Situation,
    )
    from .diagnosis import Diagnosis, diagnose
    from .diagnosis.compare import compare_runs
    from .distributed import Executor, LocalExecutor, RayExecutor
    from .errors import PromptmillError
    from .evaluation import EvalResult, Evaluator
    from .injection import run_injection
    from .ledger import Ledger
    from .metrics import Metric, Score, get_metric, register_metric
    from .metrics.human import HumanRating
    from .models.base import Generation, GenerationParams, Model
    from .models.fake import FakeModel
    from .models.registry import load_model
    from .models.transformers_model import TransformersModel
    from .portable import export_prompt, import_prompt
    from .prompt import Demo, Prompt
    from .rendering import Renderer, build_request
    from .serve import load_served_prompt
    from .stats import mean_ci, paired_test
    from .store.db import Store
    from .task import Example, FieldMap, Task, load_examples
    from .tune.settings import TuneSettings
    from .tune.train import TuneResult
