"""Output folders: writable, apart from the inputs, one run at a time; a full disk, no manifest.

Each command that writes an output folder is run on real inputs against real
refusals: a file where the folder goes, a read-only file system and a full
disk (small tmpfs mounts: root only, skipped otherwise), a folder without
write permission (not root only: root ignores permissions), a folder that
overlaps an input, and a folder another process holds.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from apache_beam.io.filesystems import FileSystems

from datathon_etl.datasets.chexpert.synthetic import write_sample as write_chexpert_sample
from datathon_etl.datasets.mimic_cxr.synthetic import write_sample
from datathon_etl.datasets.mimic_cxr_dicom.synthetic import write_sample as write_dicom_sample
from datathon_etl.datasets.mimic_cxr_jpg.synthetic import write_sample as write_jpg_sample
from datathon_etl.datasets.nih_cxr14.synthetic import write_sample as write_nih_sample
from datathon_etl.framework.command import finish_run
from datathon_etl.framework.errors import EXIT_FAILED, UsageError
from datathon_etl.framework.manifest import Manifest, Outcome, Tally
from datathon_etl.framework.output_folders import check_apart, storage_failure
from datathon_etl.framework.run_layout import LOCK_NAME, MANIFEST_NAME, RunLayout
from tests.emulators import GcsHandle
from tests.entry_points import ENTRY_POINTS, argv_for
from tests.pipeline_outputs import read_tree, upload

DATA = Path(__file__).parent / "data"
INGESTS = [
    "mimic_cxr ingest",
    "mimic_cxr_jpg ingest",
    "mimic_cxr_dicom ingest",
    "nih_cxr14 ingest",
    "chexpert ingest",
]
COMMANDS = ["decompress", "images-to-tfrecord", *INGESTS, "untar"]
"""The commands that write output folders (inference is covered by issue 18's work)."""


def _write_inputs(root: Path) -> Path:
    """Small real inputs of each kind `argv_for` names, directly under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    sample = write_sample(root / "sample", images=2, full_size=0)
    jpg = write_jpg_sample(root / "jpg-sample", images=2, defects=False)
    (root / "jpg").mkdir()
    for path in (*sample.tars, *sample.csvs):
        shutil.copy(path, root / path.name)
    for path in (*jpg.tars, *jpg.csvs.values()):
        shutil.copy(path, root / "jpg" / path.name)
    shutil.rmtree(root / "sample")
    shutil.rmtree(root / "jpg-sample")
    write_dicom_sample(root / "dicom", images=2)
    write_nih_sample(root / "nih", images=2, side=32)
    write_chexpert_sample(root / "chexpert", images=2, side=32)
    shutil.copy(DATA / "images" / "00000001_000.png", root)
    with tarfile.open(root / "a.tar", "w") as archive:
        info = tarfile.TarInfo("x/1.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"one"))
    (root / "notes.txt.gz").write_bytes(gzip.compress(b"some notes\n"))
    return root


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Inputs no test here writes near (each output folder lies elsewhere)."""
    return _write_inputs(tmp_path_factory.mktemp("inputs") / "in")


def _one_line(command: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Runs ``command``; asserts exit 2, one stderr line and nothing started; returns the line."""
    code = ENTRY_POINTS[command](argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert captured.out == ""  # each pipeline prints a line when it starts
    assert lines[0].startswith((f"{command}: ", f"datathon-etl {command}: "))
    return lines[0]


def _has_manifest(root: Path) -> bool:
    return any(path.name == MANIFEST_NAME for path in root.rglob("*")) if root.is_dir() else False


@contextmanager
def _tmpfs(path: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` for the block; skips the test where none can be."""
    path.mkdir(parents=True)
    options = f"size={size}" + (",ro" if read_only else "")
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


# What stands in the way, by case: (commands, the folder whose flag is named,
# how to block it). Each blocker gets the output folder and returns the flag.
def _file_as_output_dir(out: Path) -> str:
    out.write_text("a file")
    return "--output_dir"


def _file_as_parent(out: Path) -> str:
    out.parent.write_text("a file")
    return "--output_dir"


def _file_as_tfrecord_dir(out: Path) -> str:
    out.mkdir()
    (out / "tfrecords").write_text("a file")
    return "--output_tfrecord_dir"


def _file_as_jpg_dir(out: Path) -> str:
    out.mkdir()
    (out / "jpg").write_text("a file")
    return "--output_jpg_dir"


def _no_write_permission(out: Path) -> str:
    if os.geteuid() == 0:
        pytest.skip("root writes whatever the permissions say")
    out.mkdir()
    out.chmod(0o555)
    return "--output_dir"


BLOCKED = [
    *[(c, _file_as_output_dir, "is a file, not a folder; remove it") for c in COMMANDS],
    *[(c, _file_as_parent, "is a file; remove it or choose another folder") for c in COMMANDS],
    *[
        (c, _file_as_tfrecord_dir, "is a file, not a folder")
        for c in [*INGESTS, "images-to-tfrecord"]
    ],
    *[(c, _file_as_jpg_dir, "is a file, not a folder") for c in INGESTS],
    *[(c, _no_write_permission, "permission denied; choose a folder you can") for c in COMMANDS],
]


@pytest.mark.parametrize(("command", "block", "message"), BLOCKED)
def test_an_output_folder_that_cannot_be_written_is_one_line_before_anything_runs(
    command: str,
    block: Callable[[Path], str],
    message: str,
    inputs: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A file where an output folder goes, or no permission: one line, what to do, exit 2."""
    out = tmp_path / "out" if block is not _file_as_parent else tmp_path / "parent" / "out"
    flag = block(out)
    try:
        line = _one_line(command, argv_for(command, str(inputs), str(out)), capsys)
    finally:
        if out.is_dir():
            out.chmod(0o755)
    assert f"{flag} " in line
    assert message in line
    assert not _has_manifest(tmp_path)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_file_system_is_one_line_before_anything_runs(
    command: str, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An output folder on a read-only mount (EROFS): one line, exit 2."""
    with _tmpfs(tmp_path / "ro", "64k", read_only=True) as mount:
        out = mount / "out"
        line = _one_line(command, argv_for(command, str(inputs), str(out)), capsys)
    assert f"--output_dir {out} is on a read-only file system; choose a writable folder" in line


def test_permission_denied_as_another_user(tmp_path_factory: pytest.TempPathFactory) -> None:
    """As root, the EACCES case runs the real command as ``nobody`` (root writes anywhere)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (the in-process cases cover other users)")
    shared = Path(tempfile.mkdtemp(prefix="outputs-eacces-", dir="/tmp"))
    try:
        shared.chmod(0o755)
        inputs = _big_inputs(shared / "in")
        out = shared / "out"
        out.mkdir(mode=0o555)
        out.chmod(0o555)
        for path in (inputs, *inputs.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        command = [sys.executable, "-m", "datathon_etl.framework.pipelines.decompress"]
        done = subprocess.run(
            [
                *("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"),
                *command,
                *argv_for("decompress", str(inputs), str(out)),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "HOME": str(shared)},
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"datathon-etl decompress: --output_dir {out}: permission denied; choose a "
            "folder you can write to or change its permissions"
        ]
        assert list(out.iterdir()) == []
    finally:
        shutil.rmtree(shared)


def _overlap_cases() -> list[tuple[str, list[str], str]]:
    """(command, argv over inputs in IN, the start of the overlap named); OUT = IN/out."""
    return [
        ("untar", ["--input_tars", "IN/a.tar", "--output_dir", "IN"], "--output_dir IN overlaps"),
        (
            "decompress",
            ["--input_pattern", "IN/", "--output_dir", "IN/out"],
            "--output_dir IN/out overlaps --input_pattern 'IN/**'",
        ),
        (
            "images-to-tfrecord",
            [
                *argv_for("images-to-tfrecord", "IN", "IN/out")[:-4],
                *("--output_tfrecord_dir", "IN/out/tfrecords", "--output_dir", "/elsewhere"),
            ],
            "--output_tfrecord_dir IN/out/tfrecords overlaps --input_prefix 'IN/**'",
        ),
        (
            "mimic_cxr ingest",
            argv_for("mimic_cxr ingest", "IN", "IN"),
            "--output_dir IN overlaps --input_tars 'IN/*.tar'",
        ),
        (
            "mimic_cxr ingest",
            [
                *("--input_prefix", "IN/", "--input_csv", "IN/*.csv.gz"),
                *("--output_dir", "IN/out"),
            ],
            "--output_dir IN/out overlaps --input_prefix 'IN/**'",
        ),
        (
            "mimic_cxr_jpg ingest",
            [*argv_for("mimic_cxr_jpg ingest", "IN", "/elsewhere"), "--output_jpg_dir", "IN/jpg"],
            "--output_jpg_dir IN/jpg overlaps --input_tars 'IN/jpg/*.tar'",
        ),
        (
            "mimic_cxr ingest",
            [
                *("--input_prefix", "IN/", "--input_csv", "IN/*.csv.gz"),
                *("--output_dir", "/elsewhere", "--output_table", "IN/t.duckdb:labels"),
            ],
            "--output_table IN/t.duckdb overlaps --input_prefix 'IN/**'",
        ),
    ]


@pytest.mark.parametrize(("command", "argv", "named"), _overlap_cases())
def test_an_output_folder_that_overlaps_an_input_is_refused_naming_both(
    command: str, argv: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outputs under an input glob's reach, or inputs inside an output folder: refused at start."""
    inputs = _write_inputs(tmp_path / "in")
    elsewhere = tmp_path / "elsewhere"
    filled = [a.replace("IN", str(inputs)).replace("/elsewhere", str(elsewhere)) for a in argv]
    before = sorted(str(p) for p in inputs.rglob("*"))

    line = _one_line(command, filled, capsys)

    assert named.replace("IN", str(inputs)) in line
    assert "a run must not read its own outputs or write over its inputs" in line
    assert sorted(str(p) for p in inputs.rglob("*")) == before  # nothing written or removed
    assert not elsewhere.exists()


@pytest.mark.parametrize(
    ("output", "pattern", "overlaps"),
    [
        ("in", "in/*.tar", True),  # an input inside the output folder
        ("in", "in/sub/*.tar", True),
        ("in/out", "in/*.tar", False),  # * stays in its folder
        ("in/out", "in/**", True),  # ** reaches into the output folder
        ("in/out", "in/**.tar", True),
        ("in/out", "in/*/x.tar", True),
        ("in/out", "in/o*/x.tar", True),
        ("in/out", "in/p*/x.tar", False),
        ("in/out", "in/out", False),  # names the folder itself, not a file under it
        ("in/out/deep", "in/*/*/*.tar", True),
        ("in/out/deep", "in/*/*.tar", False),
        ("other", "in/**", False),
        ("in2", "in/**", False),  # a sibling that starts with the same name
        ("in", "in/a.tar", True),
        ("gs://b/in/out", "gs://b/in/**", True),
        ("gs://b/out", "gs://b/in/**", False),
        ("gs://b/in", "in/**", False),  # local and gs:// never meet
    ],
)
def test_which_outputs_overlap_which_inputs(
    output: str, pattern: str, overlaps: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An output overlaps an input glob when the glob can match a file under it."""
    monkeypatch.chdir(tmp_path)  # relative local paths are taken from here
    if overlaps:
        with pytest.raises(UsageError, match=f"--output_dir {output} overlaps --input_x"):
            check_apart({"--output_dir": output}, {"--input_x": pattern})
    else:
        check_apart({"--output_dir": output}, {"--input_x": pattern})


@pytest.mark.parametrize(
    ("output", "pattern", "overlaps"),
    [
        ("in/tables.duckdb", "in/**", True),
        ("in/labels.csv.gz", "in/*.csv.gz", True),  # the table would replace an input
        ("in/sub/t.duckdb", "in/*.duckdb", False),
        ("out/t.duckdb", "in/**", False),
        ("in", "in/**", False),
    ],
)
def test_which_output_files_overlap_which_inputs(
    output: str, pattern: str, overlaps: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An output file (a DuckDB database) overlaps an input glob that matches it."""
    monkeypatch.chdir(tmp_path)
    if overlaps:
        with pytest.raises(UsageError, match=f"--output_table {output} overlaps --input_x"):
            check_apart({}, {"--input_x": pattern}, files={"--output_table": output})
    else:
        check_apart({}, {"--input_x": pattern}, files={"--output_table": output})


def test_overlap_is_found_through_links_and_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link into an input folder, or a relative path to it, is the same folder."""
    (tmp_path / "in").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "in")
    monkeypatch.chdir(tmp_path / "in")
    with pytest.raises(UsageError, match="overlaps"):
        check_apart({"--output_dir": str(tmp_path / "link" / "out")}, {"--i": f"{tmp_path}/in/**"})
    with pytest.raises(UsageError, match="overlaps"):
        check_apart({"--output_dir": "out"}, {"--i": f"{tmp_path}/in/**"})
    with pytest.raises(UsageError, match="overlaps"):
        check_apart({"--output_dir": str(tmp_path / "in")}, {"--i": "*.tar"})


_HOLDER = """
import sys
from datathon_etl.framework.output_folders import claim_outputs
claim_outputs({"--output_dir": sys.argv[1]})
print("held", flush=True)
sys.stdin.read()
"""
"""Claims a folder as a run does, and holds it until killed."""


@contextmanager
def _held(folder: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``folder`` (through the runs' own claim) for the block."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize(
    ("command", "held", "flag"),
    [
        *[(c, "out", "--output_dir") for c in COMMANDS],
        *[(c, "out/tfrecords", "--output_tfrecord_dir") for c in INGESTS],
        ("mimic_cxr ingest", "out/jpg", "--output_jpg_dir"),
    ],
)
def test_a_folder_another_run_holds_is_refused_and_left_alone(
    command: str,
    held: str,
    flag: str,
    inputs: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A second run into a held folder: one line naming the holder, exit 2, nothing touched."""
    out = tmp_path / "out"
    (out / "_quarantine").mkdir(parents=True)
    (out / MANIFEST_NAME).write_text("{}")  # as the other run will leave it: untouched
    with _held(tmp_path / held) as holder:
        line = _one_line(command, argv_for(command, str(inputs), str(out)), capsys)
    assert f"{flag} {tmp_path / held} is in use by another run (pid {holder.pid} on " in line
    assert "wait for it to finish or choose another folder" in line
    assert (out / MANIFEST_NAME).read_text() == "{}"
    assert (out / "_quarantine").is_dir()


def test_a_killed_run_leaves_no_lock_behind(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once the holder is killed (SIGKILL: no clean-up), the next run goes ahead."""
    out = tmp_path / "out"
    with _held(out) as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert (out / LOCK_NAME).exists()  # the killed run's file stays; its lock went with it
        code = ENTRY_POINTS["untar"](argv_for("untar", str(inputs), str(out)))
    assert code == 0, capsys.readouterr().err
    assert (out / "x" / "1.txt").read_bytes() == b"one"
    assert Manifest.read(str(out / MANIFEST_NAME)).stages["members"].written == 1
    assert not (out / LOCK_NAME).exists()  # released with the run


def test_two_runs_started_together_do_not_mix(inputs: Path, tmp_path: Path) -> None:
    """Two real processes into one folder: each finishes or refuses; the manifest is true.

    They may overlap or not (the first may be done before the second
    starts); either way, no run fails part-way and the manifest describes
    the files there.
    """
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "datathon_etl.framework.pipelines.untar"]
    argv += argv_for("untar", str(inputs), str(out))
    runs = [subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(), run.stderr.read() if run.stderr else "") for run in runs]
    for code, err in results:
        assert code in (0, 2), err
        if code == 2:
            assert "is in use by another run" in err
            assert len(err.strip().splitlines()) == 1
    assert 0 in [code for code, _ in results]
    manifest = Manifest.read(str(out / MANIFEST_NAME))
    assert manifest.problems() == []
    assert manifest.stages["members"].written == 1
    assert (out / "x" / "1.txt").read_bytes() == b"one"
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json", "_quarantine", "x"]


def test_a_gcs_folder_is_marked_while_a_run_writes_there(
    gcs: GcsHandle, inputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On gs://, a lock object another run (or a killed one) left refuses the run, naming it."""
    bucket = gcs.bucket()
    upload(inputs / "a.tar", f"{bucket}/in/a.tar")
    out = f"{bucket}/out"
    left = b"pid 7 on elsewhere, started 2026-01-01T00:00:00Z\n"
    with FileSystems.create(f"{out}/{LOCK_NAME}") as f:
        f.write(left)
    argv = argv_for("untar", f"{bucket}/in", out)

    line = _one_line("untar", argv, capsys)

    assert f"--output_dir {out} is in use by another run (pid 7 on elsewhere, started " in line
    assert f"if no run is writing there (a killed run leaves it), delete {out}/{LOCK_NAME}" in line
    assert read_tree(out) == {LOCK_NAME: left}  # nothing else touched
    FileSystems.delete([f"{out}/{LOCK_NAME}"])
    assert ENTRY_POINTS["untar"](argv) == 0
    assert LOCK_NAME not in read_tree(out)  # removed when the run ended
    assert read_tree(out)["x/1.txt"] == b"one"


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs with about 64 KiB free: room to start a run, not to finish it."""
    with _tmpfs(tmp_path / "disk", "1m") as mount:
        filler = mount / "filler"
        filler.write_bytes(b"\0" * (1024 - 64) * 1024)
        yield mount


def _big_inputs(root: Path) -> Path:
    """A 4 MB .gz and a tar holding a 4 MB member, named as `argv_for` expects."""
    root.mkdir()
    big = b"0123456789abcdef" * (1 << 18)
    (root / "notes.txt.gz").write_bytes(gzip.compress(big))
    with tarfile.open(root / "a.tar", "w") as archive:
        info = tarfile.TarInfo("x/1.txt")
        info.size = len(big)
        archive.addfile(info, io.BytesIO(big))
    return root


@pytest.mark.parametrize("command", ["decompress", "untar", "mimic_cxr ingest"])
def test_a_full_disk_mid_run_leaves_no_manifest_and_says_so(
    command: str,
    full_disk: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ENOSPC while writing outputs: one line, exit 2, no manifest (not a quarantine per file)."""
    inputs = _big_inputs(tmp_path / "big")
    if command == "mimic_cxr ingest":
        sample = write_sample(tmp_path / "sample", images=20, full_size=1)
        for path in (*sample.tars, *sample.csvs):
            shutil.copy(path, inputs / path.name)
        inputs.joinpath("a.tar").unlink()
    out = full_disk / "out"
    code = ENTRY_POINTS[command](argv_for(command, str(inputs), str(out)))
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert "the disk is full" in lines[0]
    assert "no manifest was written" in lines[0]
    assert not _has_manifest(full_disk)


def test_a_full_disk_is_one_line_from_the_command_line(full_disk: Path, tmp_path: Path) -> None:
    """The real command: Beam's own log of the worker's error is not printed besides the line."""
    inputs = _big_inputs(tmp_path / "big")
    out = full_disk / "out"
    command = [sys.executable, "-m", "datathon_etl.framework.pipelines.decompress"]
    done = subprocess.run(
        [*command, *argv_for("decompress", str(inputs), str(out))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "datathon-etl decompress: the disk is full; the run stopped and its outputs are "
        "incomplete (no manifest was written): free space or choose another output folder, "
        "then run again"
    ]
    assert not _has_manifest(full_disk)


def test_counts_that_do_not_add_up_write_no_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records went missing: exit 1, the problem told, and no manifest to vouch for the output."""
    layout = RunLayout(str(tmp_path / "out"))
    layout.prepare()
    tallies = [Tally("files", Outcome.INPUT, count=3), Tally("files", Outcome.WRITTEN, count=2)]
    Path(f"{layout.tallies_prefix}-00000-of-00001.jsonl").write_text(
        "".join(t.to_json() + "\n" for t in tallies)
    )
    code = finish_run(layout, "demo", max_bad_fraction=0.0)
    assert code == EXIT_FAILED
    assert "counts do not add up, so no manifest was written: files: input 3 != written 2" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


def test_storage_failures_are_told_apart_from_other_errors() -> None:
    """A full or read-only disk, even wrapped or as a worker's text; not a missing file."""
    full = OSError(28, "No space left on device", "/out/x")
    wrapped = RuntimeError("bundle failed")
    wrapped.__cause__ = full
    assert storage_failure(full) == "the disk is full writing /out/x"
    assert storage_failure(wrapped) == "the disk is full writing /out/x"
    assert storage_failure(RuntimeError("OSError: [Errno 30] Read-only file system")) == (
        "the file system is read-only"
    )
    assert storage_failure(FileNotFoundError(2, "No such file or directory")) is None
    assert storage_failure(ValueError(json.dumps({"errno": 28}))) is None
