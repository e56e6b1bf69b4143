"""Every flag explains itself: what it does, and its default; the job's flags say what the
config fields' own documentation says."""

from __future__ import annotations

import dataclasses

import click
from click.testing import CliRunner

from parallelrun import ParallelRunConfig
from parallelrun.cli import main
from parallelrun.cli.run import config_flag, field_help


def commands(command: click.Command, path: tuple[str, ...] = ("parallelrun",)):
    """Every leaf command under ``command`` with its path (the job command behind ``run``)."""
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from commands(sub, (*path, name))
    else:
        yield path, getattr(command, "job_command", command)


def states_its_default(option: click.Option) -> bool:
    if option.is_flag or option.required:
        return True                      # a flag is off unless given; a required one has none
    if isinstance(option.show_default, str) and option.show_default:
        return True                      # the default in words, e.g. "1 file for file inputs"
    if option.show_default and option.default not in (None, ()):
        return True
    return "default" in (option.help or "").lower()


def test_every_flag_of_every_command_says_what_it_does_and_its_default():
    unexplained = []
    for path, command in commands(main):
        for option in command.params:
            if not isinstance(option, click.Option) or option.hidden or option.name == "help":
                continue
            if not (option.help or "").strip() or not states_its_default(option):
                unexplained.append(f"{' '.join(path)} {'/'.join(option.opts)}")
    assert unexplained == []
    assert len(list(commands(main))) >= 20


def test_the_job_flags_are_the_config_fields_own_documentation():
    job = main.commands["run"].job_command
    options = {o.name: o for o in job.params if isinstance(o, click.Option)}
    for field in dataclasses.fields(ParallelRunConfig):
        assert field.metadata["help"] in ParallelRunConfig.__doc__
        if field.name in options and field.name != "input_format":  # --input-format: the CLI's
            assert options[field.name].help.startswith(field_help(field.name))
            assert "ParallelRunConfig." not in options[field.name].help
    # other fields are named by their flags on the terminal
    assert "--source-directory" in field_help("entry_script")


def test_run_help_gives_the_mini_batch_size_default_for_files_and_for_tables():
    result = CliRunner().invoke(main, ["run", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--mini-batch-size TEXT How much one run() call gets" in text
    assert "[default: (1 file for file inputs, 1MB for tables)]" in text
    assert "--entry-script TEXT The entry script" in text and "[required]" in text
    assert config_flag("run_max_try") in text and "[default: 3]" in text
