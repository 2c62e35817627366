"""Tuning code must not slow down `import promptmill` or `promptmill --help`."""

import subprocess
import sys


def test_tuning_modules_import_without_torch_or_peft():
    code = ("import sys, promptmill.tune, promptmill.cli.app, promptmill.tune.settings, "
            "promptmill.models.transformers_model; "
            "print(sorted(m for m in ('torch', 'peft', 'transformers', 'optuna') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_public_tuning_names_resolve():
    import promptmill.tune as tune

    assert tune.__all__ == sorted(tune.__all__)
    for name in tune.__all__:
        assert getattr(tune, name) is not None
