import subprocess
import sys

import promptmill

EXPECTED = {
    "Demo", "EvalResult", "Evaluator", "Example", "FakeModel", "FieldMap", "Generation",
    "GenerationParams", "Ledger", "Metric", "Model", "Prompt", "PromptmillError", "Score",
    "Store", "Task", "TaskConfig", "compare", "evaluate", "export", "get_metric", "load_examples",
    "load_model", "load_task", "load_task_config", "mean_ci", "paired_test", "register_metric",
    "runs", "show", "OutputSpec", "Chain", "DemoSelector", "KnowledgeBase", "KnowledgeContext",
    "IntentRouter", "Situation", "ContextBudget", "diagnose", "Diagnosis", "compare_runs",
    "HumanRating", "load_served_prompt", "export_prompt", "import_prompt", "run_injection",
    "Executor", "LocalExecutor", "RayExecutor", "TuneSettings", "TuneResult",
    "TransformersModel",
}


def test_public_names_are_exactly_the_intended_ones():
    assert set(promptmill.__all__) == EXPECTED


def test_every_public_name_resolves():
    for name in promptmill.__all__:
        assert getattr(promptmill, name) is not None


def test_import_is_light():
    code = ("import sys, promptmill; heavy = ('llama_cpp', 'sqlalchemy', 'openai', 'scipy', "
            "'jinja2', 'pydantic'); print([m for m in sys.modules if m.split('.')[0] in heavy])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
