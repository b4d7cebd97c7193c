"""The umbrella command: lists every command, and every command's --help works."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

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


def test_commands_skip_construction_type_checks_and_freeze_start_up_objects():
    """parse_flags turns Beam's construction type check off (it sees only Any) and freezes once."""
    import gc

    from apache_beam.options.pipeline_options import StandardOptions, TypeOptions

    from datathon_etl.framework.flags import parse_flags

    assert PipelineOptions([]).view_as(TypeOptions).pipeline_type_check  # Beam's default
    options = parse_flags("prog", "test", [], [])
    assert options.view_as(TypeOptions).pipeline_type_check is False
    runner = options.view_as(StandardOptions).runner
    encoded = runner._provision_info.provision_info.pipeline_options
    assert encoded["beam:option:pipeline_type_check:v1"] is False  # what the workers see
    assert gc.get_freeze_count() > 0


def _command(*argv: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    args = ["-c", code] if code else ["-m", "datathon_etl.framework.cli", *argv]
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False)


def test_command_process_exit_code_and_output():
    """The command's process keeps main's exit code and flushes what it printed into a pipe."""
    usage = _command("--help")
    assert usage.returncode == 0
    assert "mimic_cxr ingest:" in usage.stdout
    wrong = _command("mimic_cxr", "train")
    assert wrong.returncode == 2
    assert "mimic_cxr: unknown subcommand train" in wrong.stderr


def test_installed_console_script():
    """`datathon-etl`, as installed beside this interpreter, runs the entry point."""
    script = Path(sys.executable).parent / "datathon-etl"
    done = subprocess.run([str(script), "nonsense"], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "unknown command 'nonsense'" in done.stderr


def test_exit_process_waits_for_other_threads(tmp_path):
    """With another non-daemon thread still running, the process waits for it (nothing lost)."""
    marker = tmp_path / "written"
    code = f"""
import atexit, threading, time
from pathlib import Path
from datathon_etl.framework.cli import exit_process
atexit.register(print, "exit handler ran")
threading.Thread(target=lambda: (time.sleep(0.5), Path({str(marker)!r}).write_text("x"))).start()
print("partial line, no newline", end="")
exit_process(3)
"""
    done = _command(code=code)
    assert done.returncode == 3
    assert marker.read_text() == "x"
    assert done.stdout == "partial line, no newlineexit handler ran\n"


def test_exit_process_runs_exit_handlers_and_flushes():
    """Alone, the process still runs exit handlers and flushes its output before it ends."""
    code = """
import atexit
from datathon_etl.framework.cli import exit_process
atexit.register(print, "exit handler ran")
print("partial line, no newline", end="")
exit_process(4)
"""
    done = _command(code=code)
    assert done.returncode == 4
    assert done.stdout == "partial line, no newlineexit handler ran\n"


def test_dry_run_needs_dataflow():
    """--dry_run is the DataflowRunner's: elsewhere the run would write its outputs."""
    from apache_beam.options.pipeline_options import StandardOptions

    from datathon_etl.framework.errors import UsageError
    from datathon_etl.framework.flags import parse_flags

    with pytest.raises(UsageError, match="--dry_run needs --runner DataflowRunner"):
        parse_flags("prog", "test", [], ["--dry_run=True"])
    dataflow = parse_flags("prog", "test", [], ["--runner", "DataflowRunner", "--dry_run=True"])
    assert dataflow.view_as(StandardOptions).runner == "DataflowRunner"


@pytest.mark.parametrize(
    ("command", "shown", "hidden"),
    [
        (["mimic_cxr", "ingest"], ["--output_table"], ["--labels_query", "--labels_table"]),
        (["mimic_cxr", "infer"], ["--output_table"], ["--labels_query", "--labels_db"]),
        (["images-to-tfrecord"], ["--labels_query", "--labels_table", "--output_table"], []),
        (["mimic_cxr", "evaluate"], ["--labels_table", "--output_table"], []),
    ],
)
def test_help_shows_only_the_table_flags_a_command_uses(command, shown, hidden, capsys):
    """A command that reads no labels does not offer label flags, and the other way round."""
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    out = capsys.readouterr().out
    for flag in shown:
        assert flag in out
    for flag in hidden:
        assert flag not in out
