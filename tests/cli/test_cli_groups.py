"""Issue 13's command groups: ``prompts export|import`` and ``tune run|search|...``, and the
flat names they replace, kept as hidden aliases for one release."""

from __future__ import annotations

import re

import pytest
import typer.main
from helpers import run_main_streams
from test_cli import OLD_NAMES
from typer.testing import CliRunner

from promptmill.cli.app import app
from promptmill.prompt import Prompt

runner = CliRunner()
PLAIN = Prompt(name="plain", instruction="Answer in one word.", template="{{ text }}")


def _listed(*args: str) -> set[str]:
    """The command names a --help screen lists (the first word of each row of its table)."""
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    names = [re.match(r"│ (\S+) ", line) for line in result.output.splitlines()]
    return {m.group(1) for m in names if m and not m.group(1).startswith("-")}


def _command(path: str):
    command = typer.main.get_command(app)
    for word in path.split():
        command = command.commands[word]
    return command


def _function(path: str):
    """The function registered with Typer for a command path (click's callback wraps it)."""
    typer_app, (*groups, name) = app, path.split()
    for group in groups:
        typer_app = next(info.typer_instance for info in typer_app.registered_groups
                         if info.name == group)
    return next(info.callback for info in typer_app.registered_commands if info.name == name)


def _shape(param) -> tuple:
    return param.name, param.opts, param.secondary_opts, param.default, param.required


def _saved(store) -> None:
    row = store.save_prompt(PLAIN.name, PLAIN.content(), PLAIN.hash, note="seed")
    store.tag_prompt(PLAIN.name, row["version"], "production")


def test_help_lists_the_groups_and_only_their_new_names():
    top = _listed()
    assert {"prompts", "tune"} <= top
    assert not top & set(OLD_NAMES)  # the aliases work but are hidden
    assert _listed("tune") == {"run", "search", "augment", "pipeline", "export", "list"}
    assert _listed("prompts") == {"list", "show", "diff", "tag", "export", "import"}


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
def test_an_old_name_is_a_hidden_copy_of_its_new_command(old):
    alias, new = _command(old), _command(OLD_NAMES[old])
    assert alias.hidden and not new.hidden
    assert _function(old).__wrapped__ is _function(OLD_NAMES[old])
    assert [_shape(p) for p in alias.params] == [_shape(p) for p in new.params]
    assert alias.help == new.help


def test_prompts_export_and_its_old_name_write_the_same_file(store, sqlite_url, capsys):
    _saved(store)
    args = ["plain@production", "--format", "yaml"]
    code, new_out, new_err = run_main_streams(["--db", sqlite_url, "prompts", "export", *args],
                                              capsys)
    assert code == 0 and "template: '{{ text }}'" in new_out and new_err == ""
    code, old_out, old_err = run_main_streams(["--db", sqlite_url, "prompts-export", *args],
                                              capsys)
    assert code == 0 and old_out == new_out
    assert old_err.splitlines() == ["note: 'promptmill prompts-export' is deprecated and goes "
                                    "in the next release; use 'promptmill prompts export'"]


def test_prompts_import_and_its_old_name_restore_the_same_version(store, sqlite_url, tmp_path,
                                                                   capsys):
    _saved(store)
    exported = tmp_path / "plain.json"
    run_main_streams(["--db", sqlite_url, "prompts", "export", "plain", "-o", exported], capsys)
    outputs = []
    for command in (["prompts", "import"], ["prompts-import"]):
        other = f"sqlite:///{tmp_path / ('-'.join(command) + '.db')}"
        code, out, err = run_main_streams(["--db", other, *command, exported], capsys)
        assert code == 0, err
        outputs.append(out)
    assert outputs[0] == outputs[1] == f"imported plain@1 (hash {PLAIN.hash})\n"


def test_a_bad_file_fails_the_same_way_under_both_names(tmp_path, sqlite_url, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    new = run_main_streams(["--db", sqlite_url, "prompts", "import", bad], capsys)
    old = run_main_streams(["--db", sqlite_url, "prompts-import", bad], capsys)
    assert new[0] == old[0] == 2
    assert old[2].splitlines()[1:] == new[2].splitlines()
    assert new[2].startswith("error: ") and len(new[2].splitlines()) == 1


def test_tune_list_and_its_old_name_show_the_same_table(sqlite_url, capsys):
    code, new_out, new_err = run_main_streams(["--db", sqlite_url, "tune", "list"], capsys)
    assert code == 0 and "Adapters" in new_out and new_err == ""
    code, old_out, old_err = run_main_streams(["--db", sqlite_url, "tune-list"], capsys)
    assert code == 0 and old_out == new_out
    assert "use 'promptmill tune list'" in old_err and len(old_err.splitlines()) == 1


def test_the_old_tune_form_runs_tune_run(tmp_path, capsys):
    missing = tmp_path / "missing.yaml"
    new = run_main_streams(["tune", "run", missing, "--method", "lora"], capsys)
    for old_form in (["tune", missing, "--method", "lora"], ["tune", "--method", "lora", missing]):
        code, out, err = run_main_streams(old_form, capsys)
        assert (code, out) == new[:2] and code == 2
        note, *rest = err.splitlines()
        assert note == ("note: 'promptmill tune CONFIG' is deprecated and goes in the next "
                        "release; use 'promptmill tune run CONFIG'")
        assert rest == new[2].splitlines() and "task config not found" in new[2]


def test_a_mistyped_tune_subcommand_is_not_taken_for_a_config(capsys):
    result = runner.invoke(app, ["tune", "serach", "task.yaml"])
    assert result.exit_code == 2
    assert "No such command 'serach'" in result.output and "note:" not in result.output


def test_tune_alone_and_tune_help_show_the_group_without_a_note():
    for args in (["tune"], ["tune", "--help"]):
        result = runner.invoke(app, args)
        assert "run" in result.output and "search" in result.output, args
        assert "note:" not in result.output, args
