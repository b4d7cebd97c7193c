"""The command line as a user types it: `--flag=value` anywhere, globs, help, version, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.archives.options import TarOptions
from datathon_etl.framework.cli import main, version
from datathon_etl.framework.errors import UsageError
from datathon_etl.framework.flags import parse_flags, split_spaced_values
from datathon_etl.framework.images import ImageFormat
from datathon_etl.framework.images.options import ImageOptions, image_spec_from_options
from datathon_etl.framework.inference.options import tfrecord_glob
from datathon_etl.framework.run_layout import OutputOptions
from datathon_etl.framework.sources.options import InputFilesOptions, glob_flag, match_inputs
from datathon_etl.framework.tables import LabelsSourceOptions

QUERY = "SELECT path, label_1 FROM `project.dataset.table`"


@pytest.mark.parametrize(
    "argv",
    [
        ["--input_prefix", "gs://b/jpgs/", f"--query={QUERY}"],
        ["--input_prefix", "gs://b/jpgs/", "--query", QUERY],
        [f"--query={QUERY}", "--input_prefix", "gs://b/jpgs/"],
        ["--input_prefix=gs://b/jpgs/", f"--labels_query={QUERY}"],
    ],
)
def test_flag_equals_value_is_never_swallowed_by_a_many_valued_flag(argv):
    """`--query='SELECT ...'` after `--input_prefix a/` is the query, not one more prefix.

    Beam reads each options class with a parser of its own, to which
    `--query=...` with spaces looks like a value of --input_prefix.
    """
    options = parse_flags("prog", "test", [InputFilesOptions, LabelsSourceOptions], argv)
    assert options.view_as(InputFilesOptions).input_prefix == ["gs://b/jpgs/"]
    assert options.view_as(LabelsSourceOptions).labels_query == QUERY


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--query=SELECT 1"], ["--query", "SELECT 1"]),
        (["--query=SELECT"], ["--query=SELECT"]),  # no space: every parser reads it
        (["--path_sub_repl=-a b"], ["--path_sub_repl=-a b"]),  # split, '-a b' reads as a flag
        (["--query", "a=b c"], ["--query", "a=b c"]),  # a plain value
        (["--a b=c d"], ["--a b=c d"]),  # not a flag name
    ],
)
def test_split_spaced_values(argv, expected):
    """Only `--flag=value` pairs whose value holds a space are split."""
    assert split_spaced_values(argv) == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("part0*.tar", "./part0*.tar"),
        ("**.tar", "./**.tar"),
        ("p?/x.tar", "./p?/x.tar"),
        ("part01.tar", "part01.tar"),  # no wildcard: Beam finds it
        ("in/part0*.tar", "in/part0*.tar"),
        ("./part0*.tar", "./part0*.tar"),
        ("/data/part0*.tar", "/data/part0*.tar"),
        ("gs://bucket*/x", "gs://bucket*/x"),
    ],
)
def test_glob_flag(pattern, expected):
    """A glob in the current folder gets its folder spelt out; others are left alone."""
    assert glob_flag(pattern) == expected


def test_a_glob_in_the_current_folder_matches_like_a_shell(tmp_path, monkeypatch):
    """`--input_tars 'part0*.tar'` matches what `./part0*.tar` does (Beam alone: nothing)."""
    for name in ("part01.tar", "part02.tar", "other.tar"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    options = PipelineOptions(["--input_tars", "part0*.tar"]).view_as(TarOptions)
    found = match_inputs(options.input_tars, "--input_tars")
    assert [Path(p).name for paths in found.values() for p in paths] == [
        "part01.tar",
        "part02.tar",
    ]
    assert all(os.path.samefile(p, tmp_path / Path(p).name) for p in found["./part0*.tar"])


@pytest.mark.parametrize(
    ("argv", "height", "width", "channels", "image_format"),
    [
        (["--output_image_shape", "320", "320"], 320, 320, 1, None),
        (["--output_image_shape", "320", "256", "1"], 320, 256, 1, None),
        (["--output_image_shape", "64", "48", "3"], 64, 48, 3, None),
        (["--output_image_shape", "64", "48", "--output_channels", "3"], 64, 48, 3, None),
        (["--output_image_shape", "64", "48", "3", "--output_channels", "3"], 64, 48, 3, None),
        ([], 320, 320, 1, ImageFormat.PNG),
    ],
)
def test_output_image_shape_takes_height_width_and_channels(
    argv, height, width, channels, image_format
):
    """HW or HWC, as the original took it; the output format follows --image_format."""
    spec = image_spec_from_options(PipelineOptions(argv), image_format)
    assert (spec.height, spec.width, spec.channels) == (height, width, channels)
    assert spec.source_format is image_format
    assert spec.format is (image_format or ImageFormat.JPEG)


def test_dicom_and_bit_depth_flags() -> None:
    argv = ["--output_image_format", "png", "--output_bit_depth", "16", "--dicom_window", "fixed"]
    argv += ["--dicom_window_center", "40", "--dicom_window_width", "400"]
    spec = image_spec_from_options(PipelineOptions([*argv, "--dicom_multi_frame", "first"]))
    assert spec.bit_depth == 16
    assert (spec.dicom.window, spec.dicom.window_center, spec.dicom.window_width) == (
        "fixed",
        40.0,
        400.0,
    )
    assert spec.dicom.multi_frame == "first"


@pytest.mark.parametrize(
    ("argv", "image_format", "message"),
    [
        (["--output_image_shape", "320"], None, "got 1 values"),
        (["--output_image_shape", "3", "3", "3", "3"], None, "got 4 values"),
        (["--output_image_shape", "3", "3", "2"], None, "channels must be 1 or 3"),
        (["--output_image_shape", "3", "3", "3", "--output_channels", "1"], None, "give one"),
        (["--output_image_format", "jpeg"], ImageFormat.PNG, "contradicts"),
        (["--output_bit_depth", "16"], None, "grayscale PNG only"),
        (["--dicom_window", "fixed", "--dicom_window_center", "40"], None, "fixed window"),
        (["--dicom_window_width", "400"], None, "fixed window"),
    ],
)
def test_contradictory_image_flags_are_refused(argv, image_format, message):
    """A shape of the wrong length, a bad channel count or two formats are refused."""
    with pytest.raises(ValueError, match=message):
        image_spec_from_options(PipelineOptions(argv), image_format)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--output_channels", "2"], "argument --output_channels: invalid choice: 2"),
        (["--output_image_shape", "320", "x"], "argument --output_image_shape: invalid int"),
        (["--direct_num_workers", "x"], "argument --direct_num_workers: invalid int value"),
    ],
)
def test_malformed_values_are_one_usage_error(argv, message):
    """Argparse's complaints are a `UsageError` (one line, exit 2), ours or Beam's flags."""
    with pytest.raises(UsageError, match=message):
        parse_flags("prog", "test", [ImageOptions], argv)


def test_usage_marks_required_flags_and_help_says_the_output_default(capsys):
    """Required flags are outside brackets; --output_dir's default is in its help."""
    with pytest.raises(SystemExit) as exit_:
        parse_flags(
            "prog",
            "test",
            [TarOptions, OutputOptions],
            ["--help"],
            required=["input_tars"],
            output_dir_default="beside the tars",
        )
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    usage = out.split("\n\n", 1)[0]
    assert " --input_tars INPUT_TARS [INPUT_TARS ...]" in usage
    assert "[--input_tars" not in usage
    assert "[--output_dir OUTPUT_DIR]" in usage
    assert "Default: beside the tars." in " ".join(out.split())


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["untar"],
        ["images-to-tfrecord"],
        ["mimic_cxr"],
        ["mimic_cxr", "ingest"],
        ["mimic_cxr", "infer"],
        ["mimic_cxr", "evaluate"],
    ],
)
def test_version_at_every_level(command, capsys):
    """`--version` prints the installed version, for the umbrella and each command."""
    try:
        code = main([*command, "--version"])
    except SystemExit as e:
        code = int(e.code or 0)
    assert code == 0
    assert capsys.readouterr().out == f"datathon-etl {version()}\n"


def test_dataset_help_lists_its_commands(capsys):
    """`datathon-etl mimic_cxr --help` lists the data set's commands."""
    assert main(["mimic_cxr", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: datathon-etl mimic_cxr COMMAND")
    for sub in ("ingest", "infer", "evaluate"):
        assert f"\n  {sub} " in out


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("gs://b/resized_tfrecord/valid/*", "gs://b/resized_tfrecord/valid/**.tfrecord"),
        ("out/valid/*", "out/valid/**.tfrecord"),
        ("out/valid/*.tfrecord", "out/valid/*.tfrecord"),
        ("out/**.tfrecord", "out/**.tfrecord"),
        ("data-*", "./data-*"),
    ],
)
def test_tfrecord_glob_reads_the_originals_folder_pattern(pattern, expected):
    """`dir/*` (the original's) reads every shard below dir; other globs are left alone."""
    assert tfrecord_glob(pattern) == expected


def test_dataflow_without_region_gets_gclouds_or_us_central1(monkeypatch):
    """The original's command lines give no --region; Beam alone would stop with a traceback."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    dataflow = ["--runner", "DataflowRunner"]
    monkeypatch.setenv("CLOUDSDK_COMPUTE_REGION", "europe-west4")
    assert parse_flags("p", "t", [], dataflow).view_as(GoogleCloudOptions).region == "europe-west4"
    given = parse_flags("p", "t", [], [*dataflow, "--region", "asia-east1"])
    assert given.view_as(GoogleCloudOptions).region == "asia-east1"
    monkeypatch.delenv("CLOUDSDK_COMPUTE_REGION")
    monkeypatch.setenv("PATH", "")  # no gcloud to ask
    assert parse_flags("p", "t", [], dataflow).view_as(GoogleCloudOptions).region == "us-central1"
    assert parse_flags("p", "t", [], []).view_as(GoogleCloudOptions).region is None
