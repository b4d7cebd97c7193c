"""FIFOs, devices and links to them: refused unopened, never a hang or an endless read.

Each FIFO here is a tripwire: a thread keeps opening it for writing, which
returns only when someone opens it for reading. Code that opens it gets an
empty file (so the test fails on what it then reports, instead of hanging),
and the tripwire records that it was opened.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from apache_beam.io.filesystems import FileSystems

from datathon_etl.framework.ingest.files import KeyImageFileFn
from datathon_etl.framework.pipelines import decompress, images_to_tfrecord, untar
from datathon_etl.framework.quarantine import QUARANTINE_TAG, Quarantined, Reason
from datathon_etl.framework.sources.regular_files import irregular_kind
from datathon_etl.generated.mimic_cxr import ingest
from datathon_etl.generated.mimic_cxr_jpg.ingest import SPEC

DATA = Path(__file__).parent / "data"
CSV = DATA / "labels" / "nih_sample_rows.csv"
QUERY = f"SELECT \"Image Index\" AS path FROM read_csv('{CSV}')"


@contextmanager
def tripwire(path: Path) -> Iterator[threading.Event]:
    """Makes ``path`` a FIFO; the event is set if anyone opens it for reading."""
    os.mkfifo(path)
    opened = threading.Event()
    done = threading.Event()

    def serve_readers() -> None:
        while not done.is_set():
            with open(path, "wb"):  # blocks until a reader opens the FIFO
                if not done.is_set():
                    opened.set()

    thread = threading.Thread(target=serve_readers, daemon=True)
    thread.start()
    try:
        yield opened
    finally:
        done.set()
        while thread.is_alive():  # release the writer waiting for a reader
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
            thread.join(timeout=0.1)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: os.mkfifo(p), "a FIFO (named pipe), not a regular file"),
        (lambda p: p.symlink_to("/dev/zero"), "a symbolic link to a character device"),
        (lambda p: p.mkdir(), "a folder, not a regular file"),
        (lambda p: p.write_bytes(b"x"), None),
        (lambda p: p.symlink_to(CSV), None),
        (lambda p: None, None),  # missing: its reader says so
    ],
    ids=["fifo", "link_to_dev_zero", "folder", "file", "link_to_file", "missing"],
)
def test_irregular_kind(tmp_path: Path, make: Callable[[Path], object], expected: str) -> None:
    """What a path is, found without opening it; remote objects are always regular."""
    path = tmp_path / "x.jpg"
    make(path)
    kind = irregular_kind(str(path))
    assert kind == expected if expected is None else kind is not None and expected in kind
    assert irregular_kind(f"file://{path}") == kind
    assert irregular_kind("gs://bucket/x.jpg") is None


def test_folder_members_that_are_not_files_are_quarantined_unopened(tmp_path: Path) -> None:
    """images-to-tfrecord: a FIFO and a link to a device become records with their label rows."""
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(DATA / "images" / "00000001_000.png", images)
    (images / "00000001_002.png").symlink_to("/dev/null")
    out = tmp_path / "out"
    with tripwire(images / "00000001_001.png") as opened:
        code = images_to_tfrecord.main(
            [
                *("--input_prefix", f"{images}/", "--query", QUERY),
                *("--output_image_shape", "32", "32", "--max_bad_fraction", "1"),
                *("--output_tfrecord_dir", str(out / "tfrecords"), "--output_dir", str(out)),
            ]
        )
        assert not opened.is_set()
    assert code == 0
    records = [
        Quarantined.from_json(line)
        for f in (out / "_quarantine").glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    refused = {(r.path, r.reason) for r in records if r.reason is Reason.NOT_A_REGULAR_FILE}
    assert {path for path, _ in refused} == {"00000001_001.png", "00000001_002.png"}
    # Both the image and its label row are accounted for.
    assert len([r for r in records if r.path == "00000001_001.png"]) == 2


def test_listed_files_that_are_not_files_are_quarantined(tmp_path: Path) -> None:
    """Ingest's --input_prefix listing: refused at listing, before any read."""
    folder = tmp_path / "files" / "p10" / "p10000032" / "s50414267"
    folder.mkdir(parents=True)
    (folder / "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg").symlink_to("/dev/zero")
    with tripwire(folder / "174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962.jpg") as opened:
        (matched,) = FileSystems.match([f"{tmp_path}/files/**"])
        fn = KeyImageFileFn(SPEC, [f"{tmp_path}/files/"], None, max_bytes=1 << 30)
        outputs = [out for metadata in matched.metadata_list for out in fn.process(metadata)]
        assert not opened.is_set()
    assert len(outputs) == 2
    assert all(out.tag == QUARANTINE_TAG for out in outputs)
    assert {out.value.reason for out in outputs} == {Reason.NOT_A_REGULAR_FILE}
    assert any("symbolic link to a character device" in out.value.detail for out in outputs)


def _tar(path: Path) -> str:
    with tarfile.open(path, "w"):
        pass
    return str(path)


Main = Callable[[Sequence[str] | None], int]

NAMED_INPUTS: list[tuple[str, Main, Callable[[Path, Path], list[str]], str]] = [
    ("untar", untar.main, lambda tmp, bad: ["--input_tars", str(bad)], "--input_tars"),
    (
        "decompress",
        decompress.main,
        lambda tmp, bad: ["--input_pattern", str(bad)],
        "--input_pattern",
    ),
    (
        "ingest_csv",
        ingest.main,
        lambda tmp, bad: ["--input_tars", _tar(tmp / "a.tar"), "--input_csv", str(bad)],
        "--input_csv",
    ),
    (
        "ingest_tars",
        ingest.main,
        lambda tmp, bad: ["--input_tars", str(bad), "--input_csv", str(CSV)],
        "--input_tars",
    ),
]


@pytest.mark.parametrize(
    ("main", "args", "flag"),
    [row[1:] for row in NAMED_INPUTS],
    ids=[row[0] for row in NAMED_INPUTS],
)
@pytest.mark.parametrize("kind", ["fifo", "link_to_device"])
def test_named_inputs_that_are_not_files_exit_2_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    main: Main,
    args: Callable[[Path, Path], list[str]],
    flag: str,
    kind: str,
) -> None:
    """A command's named input that is a FIFO or a link to a device stops it at start-up.

    The device is /dev/null: the old code read a link to /dev/zero until it ran
    out of memory.
    """
    bad = tmp_path / "input.gz"
    argv = [*args(tmp_path, bad), "--output_dir", str(tmp_path / "out")]
    if kind == "fifo":
        with tripwire(bad) as opened:
            code = main(argv)
            assert not opened.is_set()
    else:
        bad.symlink_to("/dev/null")
        code = main(argv)
    assert code == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1
    assert f"{flag}: {bad} is a" in stderr
    assert "not a regular file" in stderr


def test_a_file_swapped_for_a_fifo_after_listing_is_refused_not_waited_on(tmp_path: Path) -> None:
    """The transform checks what it opened: a FIFO in a listed file's place is refused at once."""
    from apache_beam.pvalue import TaggedOutput

    from datathon_etl.framework.images import ImageSpec
    from datathon_etl.framework.ingest.join import ImageItem, LabelRecord
    from datathon_etl.framework.ingest.transforms import Progress, TransformFn

    path = tmp_path / "x.png"
    os.mkfifo(path)  # listed as a regular file a moment ago; nobody will ever write
    fn = TransformFn(ImageSpec(8, 8), Progress("swap", "test"))
    item = ImageItem(str(path), "x.png", str(path))
    record: LabelRecord[str, dict[str, object]] = LabelRecord(
        "x.png", {}, (("label_rows", "labels.csv:line 2"),)
    )
    element = ("x.png", (item, record))
    outputs: list[object] = []

    def transform() -> None:
        fn.setup()
        fn.start_bundle()
        outputs.extend(fn.process(element))
        outputs.extend(fn.finish_bundle() or [])

    worker = threading.Thread(target=transform, daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # the old code waits for a writer: give it one and fail
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the read of a FIFO blocked")
    refused = [o.value for o in outputs if isinstance(o, TaggedOutput) and o.tag == QUARANTINE_TAG]
    assert [r.reason for r in refused] == [Reason.NOT_A_REGULAR_FILE]
    assert "FIFO" in refused[0].detail
