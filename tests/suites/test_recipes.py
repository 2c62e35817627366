"""The CI recipes cannot drift: every `promptmill test` command in docs/testing.md's workflow
and hooks, in .pre-commit-hooks.yaml and in the README's "Test suites" section is parsed with
the command's own options, and every option it uses is one `promptmill test --help` lists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import typer
import yaml
from typer.testing import CliRunner

from promptmill.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
TESTING = ROOT / "docs" / "testing.md"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def fenced(text: str, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang == language]


def yaml_blocks(path: Path) -> list:
    return [yaml.safe_load(block) for block in fenced(path.read_text(), "yaml")]


def suite_click_command() -> click.Command:
    return typer.main.get_command(app).commands["test"]  # type: ignore[attr-defined]


def help_options() -> set[str]:
    """Every option `promptmill test --help` prints."""
    result = CliRunner().invoke(app, ["test", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b", result.output))


def check_accepted(args: list[str], where: str) -> click.Context:
    """``args`` (after ``promptmill test``) parse, and use only options the help lists."""
    listed = help_options()
    used = {a.split("=")[0] for a in args if a.startswith("-")}
    assert used <= listed, f"{where}: {sorted(used - listed)} not in `promptmill test --help`"
    try:
        return suite_click_command().make_context("test", list(args))
    except click.UsageError as exc:  # pragma: no cover - the message is the point
        pytest.fail(f"{where}: `promptmill test {' '.join(args)}` is refused: {exc}")


def after_test(command: str) -> list[str]:
    words = shlex.split(command)
    assert words[:2] == ["promptmill", "test"], command
    return words[2:]


# --- the GitHub Actions workflow -----------------------------------------------------------

def workflow() -> dict:
    found = [b for b in yaml_blocks(TESTING) if isinstance(b, dict) and "jobs" in b]
    assert len(found) == 1, "docs/testing.md should hold one GitHub Actions workflow"
    return found[0]


def workflow_runs() -> list[str]:
    return [" ".join(step["run"].split()) for job in workflow()["jobs"].values()
            for step in job["steps"] if "run" in step]


def test_the_workflow_is_a_valid_github_actions_job_that_runs_the_gate():
    flow = workflow()
    assert {"name", "jobs"} <= set(flow) and (True in flow or "on" in flow)  # YAML 1.1: on
    for job in flow["jobs"].values():
        assert job["runs-on"] and all("uses" in s or "run" in s for s in job["steps"])
    tests = [run for run in workflow_runs() if run.startswith("promptmill test")]
    assert len(tests) == 1
    ctx = check_accepted(after_test(tests[0]), "the workflow")
    assert ctx.params["baseline"].endswith("@production")
    assert ctx.params["gate"] == "non-inferior"
    assert {p.suffix for p in ctx.params["output"]} == {".xml", ".html"}


def test_the_workflows_other_promptmill_commands_exist():
    group = typer.main.get_command(app)
    for run in workflow_runs():
        words = shlex.split(run)
        if words[0] != "promptmill" or words[1] == "test":
            continue
        command = group
        rest = words[1:]
        while isinstance(command, click.Group):
            command = command.commands[rest[0]]
            rest = rest[1:]
        command.make_context(words[1], rest)  # raises on an option the command lacks


# --- the pre-commit hooks ------------------------------------------------------------------

def hook_file() -> dict:
    hooks = yaml.safe_load(HOOKS.read_text())
    assert isinstance(hooks, list) and [h["id"] for h in hooks] == ["promptmill-test"]
    return hooks[0]


def test_the_repositorys_hook_runs_promptmill_test_with_accepted_arguments():
    hook = hook_file()
    assert {"id", "name", "entry", "language"} <= set(hook)
    assert hook["pass_filenames"] is False  # the suite names its own files
    check_accepted([*after_test(hook["entry"]), *hook["args"]], ".pre-commit-hooks.yaml")
    files = re.compile(hook["files"])
    for changed in ("prompts/plain.yaml", "suite.yaml", "ci/sentiment-suite.yml",
                    "promptfooconfig.yaml"):
        assert files.search(changed), changed
    for unrelated in ("src/app.py", "README.md", "data/reviews.jsonl"):
        assert not files.search(unrelated), unrelated


def documented_hooks() -> list[dict]:
    configs = [b for b in yaml_blocks(TESTING) if isinstance(b, dict) and "repos" in b]
    assert len(configs) == 2, "docs/testing.md shows a remote and a local hook config"
    return [hook for config in configs for repo in config["repos"] for hook in repo["hooks"]]


def test_the_documented_hook_configs_gate_on_production():
    hooks = documented_hooks()
    assert [h["id"] for h in hooks] == ["promptmill-test", "promptmill-test"]
    default_entry = hook_file()["entry"]
    for hook in hooks:
        entry = hook.get("entry", default_entry)
        ctx = check_accepted([*after_test(entry), *hook["args"]], f"hook {hook}")
        assert ctx.params["baseline"].endswith("@production")
        assert ctx.params["gate"] == "non-inferior"


# --- the README and the prose -------------------------------------------------------------

def readme_section() -> str:
    text = README.read_text()
    return text.split("## Test suites\n")[1].split("\n## ")[0]


def test_every_promptmill_test_command_in_the_readme_and_testing_doc_is_accepted():
    commands = []
    for path, text in ((README, readme_section()), (TESTING, TESTING.read_text())):
        for block in fenced(text, "bash") + fenced(text, ""):
            for line in block.splitlines():
                line = line.split("#")[0].strip().split("&&")[-1].strip()
                if line.startswith("promptmill test"):
                    commands.append((path.name, line))
    assert len(commands) >= 9
    for where, command in commands:
        check_accepted(after_test(command), f"{where}: {command}")


def test_the_readme_states_the_exit_codes_as_the_help_does():
    section = " ".join(readme_section().split())
    assert "Exit status: 0 every gate passed, 1 a gate failed, 2 bad input." in section
    result = CliRunner().invoke(app, ["test", "--help"], env={"COLUMNS": "200"})
    shown = " ".join(result.output.replace("│", " ").split())
    assert "0 when every gate passed (or none was set), 1 when a gate failed, 2 on bad input" \
        in shown


def test_the_bundled_suite_is_package_data():
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["promptmill"]
    suite = Path("examples/sentiment/suite.yaml")
    assert any(suite.match(p) or Path(p).parts[0] == "examples" and "**" in p
               for p in patterns)
    assert (ROOT / "promptmill" / suite).is_file()
