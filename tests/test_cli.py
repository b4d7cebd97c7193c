"""The umbrella command: lists every command, and every command's --help works."""

from __future__ import annotations

import importlib

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.cli import COMMANDS, DATASET_COMMANDS, main


def test_usage_lists_generic_and_dataset_commands(capsys):
    """`datathon-etl` alone lists the generic commands and each dataset's subcommands."""
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in out
    assert "mimic_cxr ingest:" in out


def test_all_pipelines_together_define_each_flag_once():
    """Beam parses every options class at once: no flag may be defined twice."""
    for module, _ in COMMANDS.values():
        importlib.import_module(module)
    for sub in DATASET_COMMANDS:
        importlib.import_module(f"datathon_etl.generated.mimic_cxr.{sub}")
    options = PipelineOptions(["--output_dir", "x", "--path_match_regex", ".*"]).get_all_options()
    assert options["path_match_regex"] == ".*"


@pytest.mark.parametrize(
    "command",
    [[name] for name in COMMANDS] + [["mimic_cxr", sub] for sub in DATASET_COMMANDS],
)
def test_every_command_has_help(command, capsys):
    """`--help` prints a usage line naming the command and exits 0."""
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage: datathon-etl" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nonsense"], "unknown command 'nonsense'"),
        (["mimic_cxr"], "mimic_cxr: unknown subcommand (none)"),
        (["mimic_cxr", "train"], "mimic_cxr: unknown subcommand train"),
    ],
)
def test_unknown_commands_exit_2(argv, message, capsys):
    """A wrong command names itself and the choices."""
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_local_runs_default_to_the_fn_api_runner():
    """Without --runner: Beam's FnApiRunner, never the DirectRunner's run-time Prism download."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from datathon_etl.framework.flags import parse_flags

    argv = ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"]
    options = parse_flags("prog", "test", [], argv)
    runner = options.view_as(StandardOptions).runner
    assert isinstance(runner, FnApiRunner)
    # The workers get the options (multi_processing workers are other processes).
    encoded = runner._provision_info.provision_info.pipeline_options
    assert encoded["beam:option:direct_running_mode:v1"] == "multi_processing"
    assert options.view_as(DirectOptions).direct_num_workers == 2

    given = parse_flags("prog", "test", [], ["--runner", "DataflowRunner"])
    assert given.view_as(StandardOptions).runner == "DataflowRunner"
