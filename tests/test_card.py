"""The data card of the demo's ingestion, read in headless Chromium, and its command and flags.

The ingestion runs as `make demo` runs it (`demo.ingest_args`), on the same
kind of synthetic sample with one of each bad record added, so the quarantine
has something to show. The browser test opens the card as a file in
Debian's Chromium (driven by Playwright, which never downloads a browser
here), and checks what a person would: nothing fetched, no console error,
every thumbnail decoded, every chart drawn with its marks, and every number
equal to the manifest's, the quarantine's or the labels table's, counted
here from those files with plain Python.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import tarfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from PIL import Image

from datathon_etl.datasets.mimic_cxr.demo import ingest_args
from datathon_etl.datasets.mimic_cxr.schema import Finding, Split, View
from datathon_etl.datasets.mimic_cxr.synthetic import Sample, write_sample
from datathon_etl.framework.card import CARD_NAME
from datathon_etl.framework.card.command import LEADERBOARD_NAME
from datathon_etl.framework.card.content import THUMBNAILS_PER_GROUP
from datathon_etl.framework.cli import main as cli
from datathon_etl.framework.cli import version
from datathon_etl.generated.mimic_cxr.ingest import main as ingest
from tests.emulators.install import in_ci
from tests.pipeline_outputs import duckdb_table

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Flags for Chromium on a machine without a network (see the README's tests section)."""


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return write_sample(tmp_path_factory.mktemp("sample"), images=40, full_size=1, defects=True)


def _ingest(sample: Sample, out: Path, *extra: str) -> int:
    # The sample's planted defects are quarantined: let the run pass with them.
    args = ingest_args(sample.tars[0].parent, out, workers=2)
    return ingest([*args, "--max_bad_fraction", "1", *extra])


@pytest.fixture(scope="module")
def demo(sample: Sample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "ingest"
    assert _ingest(sample, out) == 0
    return out


def _manifest(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "_manifest.json").read_text())
    return data


def _quarantine(out: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted((out / "_quarantine").glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def _labels(out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = duckdb_table(out / "tables.duckdb", "mimic_cxr_labels").to_pylist()
    return rows


def _name(code: int, enum: type[Split] | type[View] | type[Finding]) -> str:
    return enum(code).name.lower()


def test_the_ingestion_records_its_command_versions_timing_and_inputs(demo, sample):
    parameters = _manifest(demo)["parameters"]
    run = parameters["run"]
    assert run["command"] == [
        "datathon-etl",
        "mimic_cxr",
        "ingest",
        *ingest_args(sample.tars[0].parent, demo, workers=2),
        "--max_bad_fraction",
        "1",
    ]
    assert run["versions"]["datathon-etl"] == version()
    assert run["seconds"] > 0
    assert run["started"].endswith("+00:00")
    inputs = {Path(f["uri"]): f["bytes"] for f in parameters["inputs"]}
    assert inputs == {path: path.stat().st_size for path in (*sample.tars, *sample.csvs)}
    assert parameters["declaration"] == "datathon_etl.datasets.mimic_cxr"


def test_no_card_writes_none_and_an_earlier_card_goes(sample, tmp_path, capsys):
    out = tmp_path / "ingest"
    assert _ingest(sample, out) == 0
    assert (out / CARD_NAME).is_file()
    assert f"data card {out / CARD_NAME}" in capsys.readouterr().out
    assert _ingest(sample, out, "--no_card") == 0
    assert not (out / CARD_NAME).exists()
    assert "data card" not in capsys.readouterr().out


def test_card_without_images_holds_no_image(sample, demo, tmp_path, capsys):
    written = tmp_path / "card.html"
    assert cli(["card", str(demo), "--without_images", "--output", str(written)]) == 0
    assert capsys.readouterr().out == f"datathon-etl card: {written}\n"
    page = written.read_text()
    assert "data:image" not in page
    assert "<img" not in page
    assert "Left out" in page
    with_images = (demo / CARD_NAME).read_text()
    assert with_images.count("<img") > 0


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: tmp / "nothing", "does not exist: no run finished"),
        (lambda tmp: _infer_like(tmp), "names no data set declaration"),
    ],
    ids=["no-run", "not-an-ingestion"],
)
def test_card_of_something_else_is_one_line_and_exit_2(make, expected, tmp_path, capsys):
    folder = make(tmp_path)
    assert cli(["card", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("datathon-etl card: ")
    assert expected in err
    assert err.count("\n") == 1


def _infer_like(tmp: Path) -> Path:
    """A finished run of another command: a manifest without a declaration."""
    folder = tmp / "infer"
    folder.mkdir()
    manifest = {"pipeline": "mimic_cxr infer", "parameters": {}, "stages": {}}
    (folder / "_manifest.json").write_text(json.dumps(manifest))
    return folder


def test_card_flags_are_checked(capsys):
    assert cli(["card", "out", "--with_images"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--with_images" in err


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium; the test fails without it under CI (CI installs it), else skips."""
    path = shutil.which("chromium")
    if path is None:
        message = "chromium is not installed (apt-get install chromium)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclasses.dataclass
class Opened:
    """The card in a browser tab, with what the tab logged and requested."""

    tab: Any
    errors: list[str] = dataclasses.field(default_factory=list)
    requested: list[str] = dataclasses.field(default_factory=list)

    def on_console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    """Chromium, launched once for the module (one Playwright session at a time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def _open(browser: Any, page: Path, screenshot: Path) -> Opened:
    """``page`` in a new tab, with what it logs and requests; a full-page screenshot kept."""
    found = Opened(browser.new_page(viewport={"width": 1200, "height": 900}))
    found.tab.on("console", found.on_console)
    found.tab.on("pageerror", lambda error: found.errors.append(str(error)))
    found.tab.on("request", lambda request: found.requested.append(request.url))
    found.tab.goto(page.as_uri(), wait_until="load")
    found.tab.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    return found


@pytest.fixture(scope="module")
def opened(browser: Any, demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Opened:
    """The demo's card, loaded in Chromium; a full-page screenshot kept as a test artefact."""
    return _open(browser, demo / CARD_NAME, tmp_path_factory.mktemp("artefacts") / "card.png")


@pytest.fixture
def page(opened: Opened) -> Any:
    """The tab showing the card."""
    return opened.tab


def test_the_card_opens_with_no_error_and_fetches_nothing(opened, demo):
    assert opened.errors == []
    assert opened.requested == [(demo / CARD_NAME).as_uri()]


def test_every_thumbnail_decodes(page, demo):
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
    )
    per_group = Counter((_name(r["dataset"], Split), _name(r["view"], View)) for r in _labels(demo))
    assert len(images) == sum(min(n, THUMBNAILS_PER_GROUP) for n in per_group.values())
    assert all(complete and width > 0 and height > 0 for complete, width, height in images)


def test_every_chart_has_its_marks(page):
    charts = page.eval_on_selector_all(
        "figure.chart",
        """figures => figures.map(f => [
            f.id,
            Number(f.dataset.marks),
            Array.from(f.querySelectorAll(`[id^="${f.id}-mark-"]`)).map(m => {
                const box = m.getBBox();
                return box.width * box.height;
            }),
        ])""",
    )
    names = [name for name, _, _ in charts]
    assert {
        "counts",
        "prevalence-train",
        "prevalence-valid",
        "distribution-image",
        "pixel-sizes",
    } <= set(names)
    for name, marks, areas in charts:
        assert marks > 0, name
        assert len(areas) == marks, name
        assert all(area > 0 for area in areas), name


def _cells(page: Any, rows: str) -> list[list[str]]:
    found: list[list[str]] = page.eval_on_selector_all(
        rows, "rows => rows.map(r => Array.from(r.children).map(c => c.textContent.trim()))"
    )
    return found


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_counts_per_split_and_view_match_the_labels_table(page, demo):
    rows = _labels(demo)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        split, view = _name(row["dataset"], Split), _name(row["view"], View)
        groups[(split, view)] += [row]
        groups[(split, "all views")] += [row]
        groups[("all splits", "all views")] += [row]
    expected = {
        key: [
            len(members),
            len({r["patient"] for r in members}),
            len({(r["patient"], r["study"]) for r in members}),
        ]
        for key, members in groups.items()
    }
    shown = {
        (split, view): [_number(n) for n in numbers]
        for split, view, *numbers in _cells(page, "#counts-table tr[data-split]")
    }
    assert shown == expected
    manifest = _manifest(demo)
    assert shown[("all splits", "all views")][0] == manifest["stages"]["images"]["written"]


def test_label_values_per_split_match_the_labels_table(page, demo):
    rows = _labels(demo)
    tables = page.eval_on_selector_all(
        "table.prevalence",
        """tables => tables.map(t => [
            t.dataset.split,
            Array.from(t.querySelectorAll('td[data-code]'))
                .map(td => [td.closest('tr').dataset.label, td.dataset.code, td.textContent]),
        ])""",
    )
    labels = [
        c for c in rows[0] if c not in ("patient", "study", "image", "view", "dataset", "path")
    ]
    assert [split for split, _ in tables] == ["train", "valid"]
    for split, cells in tables:
        counts = Counter(
            (label, _name(r[label], Finding))
            for r in rows
            if _name(r["dataset"], Split) == split
            for label in labels
        )
        assert {(label, code): _number(n) for label, code, n in cells} == {
            (label, code.name.lower()): counts[(label, code.name.lower())]
            for label in labels
            for code in Finding
        }


def test_stages_and_quarantine_match_the_manifest_and_the_records(page, demo):
    manifest = _manifest(demo)
    stages = {
        name: [_number(n) for n in numbers]
        for name, *numbers in _cells(page, "#stages tr[data-stage]")
    }
    assert stages == {
        name: [c["input"], c["written"], c["skipped"], sum(c["quarantined"].values())]
        for name, c in manifest["stages"].items()
    }
    reasons = {
        (stage, reason): _number(n)
        for stage, reason, n in _cells(page, "#quarantine-counts tr[data-stage]")
    }
    assert reasons == {
        (stage, reason): n
        for stage, c in manifest["stages"].items()
        for reason, n in c["quarantined"].items()
    }
    assert reasons, "the sample's defects should be quarantined"
    records = page.eval_on_selector_all(
        "#quarantine h4[data-reason]",
        "hs => hs.map(h => [h.dataset.stage, h.dataset.reason, Number(h.dataset.records),"
        " h.nextElementSibling.querySelectorAll('tr').length - 1])",
    )
    expected = Counter((r["stage"], r["reason"]) for r in _quarantine(demo))
    assert {(stage, reason): n for stage, reason, n, _ in records} == dict(expected)
    assert all(shown == min(n, 3) for _, _, n, shown in records)


def test_leakage_inputs_and_run_match_the_outputs(page, demo, sample):
    rows = _labels(demo)
    splits: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        splits[row["patient"]].add(row["dataset"])
    leaking = sum(1 for s in splits.values() if len(s) > 1)
    assert int(page.get_attribute("#leakage-result", "data-patients")) == leaking
    assert ("PASS" in page.inner_text("#leakage-result")) == (leaking == 0)
    inputs = {
        Path(uri).name: _number(size)
        for uri, files, size, _ in _cells(page, "#inputs tr[data-uri]")
        if files == "1"
    }
    assert inputs == {p.name: p.stat().st_size for p in (*sample.tars, *sample.csvs)}
    run = _manifest(demo)["parameters"]["run"]
    assert page.inner_text("#command") == " ".join(run["command"])
    assert page.inner_text("#started") == run["started"]
    assert float(page.get_attribute("#seconds", "data-seconds")) == run["seconds"]
    assert f"datathon-etl {version()}" in page.inner_text("#versions")


def _source_sizes(sample: Sample, paths: set[str]) -> Counter[tuple[int, int]]:
    """The pixel size of each source whose path is in ``paths``, read here from its tar member."""
    sizes: Counter[tuple[int, int]] = Counter()
    for tar in sample.tars:
        with tarfile.open(tar) as archive:
            for member in archive.getmembers():
                if member.name in paths:
                    with Image.open(archive.extractfile(member)) as image:  # type: ignore[arg-type]
                        sizes[image.size] += 1
    return sizes


def test_source_pixel_sizes_match_the_sources_of_the_images_written(page, demo, sample):
    expected = _source_sizes(sample, {row["path"] for row in _labels(demo)})
    shown = page.eval_on_selector_all(
        "#pixel-sizes-table tr[data-width]",
        "rs => rs.map(r => [r.dataset.width, r.dataset.height, r.lastElementChild.textContent])",
    )
    assert {(int(w), int(h)): _number(n) for w, h, n in shown} == expected
    manifest = _manifest(demo)
    recorded = manifest["parameters"]["source_pixel_sizes"]
    assert recorded["grid"] == 1
    assert {(w, h): n for w, h, n in recorded["sizes"]} == expected
    written = manifest["stages"]["images"]["written"]
    assert sum(expected.values()) == written
    assert int(page.get_attribute("#pixel-sizes", "data-images")) == written
    assert len(expected) > 1, "the sample's sources should differ in size"


def test_the_dictionary_lists_every_column_of_the_table(page, demo):
    columns = [row[1] for row in _cells(page, "#dictionary-table tr[data-column]")]
    assert columns == list(_labels(demo)[0])
    assert "3 = positive" in page.inner_text("#dictionary-table tr[data-column='edema']")


@pytest.fixture(scope="module")
def leaderboard(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two teams' random predictions of the demo's valid split, scored by `evaluate`, as a page."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from datathon_etl.generated.mimic_cxr.arrow_schema import PREDICTIONS
    from datathon_etl.generated.mimic_cxr.evaluate import main as evaluate

    teams = tmp_path_factory.mktemp("teams")
    valid = [r for r in _labels(demo) if r["dataset"] == Split.VALID]
    for seed, team in enumerate(("alpha", "beta")):
        rng = random.Random(seed)
        rows = [
            {name: row[name] if name in _IDS else rng.gauss(0, 1) for name in PREDICTIONS.names}
            for row in valid
        ]
        pq.write_table(pa.Table.from_pylist(rows, schema=PREDICTIONS), teams / f"{team}.parquet")
    database = demo / "tables.duckdb"
    args = ["--submissions", str(teams), "--labels_db", str(database), "--split", "valid"]
    assert evaluate([*args, "--min_positives", "1", "--bootstrap_samples", "50"]) == 0
    assert cli(["card", "--leaderboard", f"{database}:mimic_cxr_leaderboard"]) == 0
    return demo / LEADERBOARD_NAME


_IDS = ("patient", "study", "image", "view", "dataset", "path")


def test_the_leaderboard_page_shows_the_table_in_chromium(leaderboard, demo, browser, tmp_path):
    with duckdb.connect(str(demo / "tables.duckdb"), read_only=True) as con:
        table = con.sql("SELECT * FROM mimic_cxr_leaderboard").to_arrow_table().to_pylist()
    opened = _open(browser, leaderboard, tmp_path / "leaderboard.png")
    ranking = _cells(opened.tab, "#ranking tr[data-team]")
    scores = opened.tab.eval_on_selector_all(
        "table.team td[data-measure='auroc']",
        "tds => tds.map(td => [td.closest('table').dataset.team,"
        " td.closest('tr').dataset.label, td.textContent])",
    )
    (marks,) = opened.tab.eval_on_selector_all(
        "figure.chart",
        "fs => fs.map(f => [Number(f.dataset.marks),"
        " f.querySelectorAll(`[id^='${f.id}-mark-']`).length])",
    )
    assert opened.errors == []
    assert opened.requested == [leaderboard.as_uri()]
    means = sorted((r for r in table if r["label"] is None), key=lambda r: r["rank"])
    assert [(int(rank), team, score) for rank, team, score, *_ in ranking] == [
        (r["rank"], r["team"], f"{r['auroc']:.3f}") for r in means
    ]
    labelled = [r for r in table if r["label"] is not None]
    assert sorted(map(tuple, scores)) == sorted(
        (r["team"], r["label"], "n/a" if r["auroc"] is None else f"{r['auroc']:.3f}")
        for r in labelled
    )
    shown, drawn = marks
    assert shown == drawn == sum(1 for r in labelled if r["auroc"] is not None)


# images-to-tfrecord: no declaration; the card describes the query's columns.

NIH = Path(__file__).parent / "data"
NIH_QUERY = (
    'SELECT "Image Index" AS path, "Finding Labels" AS findings, "Patient Age" AS age, '
    "\"Patient Gender\" = 'M' AS male "
    f"FROM read_csv('{NIH / 'labels' / 'nih_sample_rows.csv'}')"
)


@pytest.fixture(scope="module")
def nih_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real NIH chest X-rays, one of them also truncated, and a file the regex skips."""
    root = tmp_path_factory.mktemp("nih")
    for png in (NIH / "images").glob("*.png"):
        shutil.copy(png, root / png.name)
    real = (NIH / "images" / "00000001_000.png").read_bytes()
    (root / "00000001_001.png").write_bytes(real[: len(real) // 2])  # labelled, refused
    (root / "notes.txt").write_text("skipped by --path_match_regex")
    return root


def _images_to_tfrecord(images: Path, out: Path, *extra: str) -> int:
    return cli(
        [
            "images-to-tfrecord",
            "--input_prefix",
            f"{images}/",
            "--path_match_regex",
            r".*\.png",
            "--query",
            NIH_QUERY,
            "--output_image_shape",
            "64",
            "48",
            "--output_tfrecord_dir",
            str(out / "tfrecords"),
            "--output_dir",
            str(out),
            "--max_bad_fraction",
            "1",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def i2t(nih_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("i2t")
    assert _images_to_tfrecord(nih_images, out, "--output_table", "labels") == 0
    return out


def _header_sizes(paths: list[Path]) -> Counter[tuple[int, int]]:
    sizes: Counter[tuple[int, int]] = Counter()
    for path in paths:
        with Image.open(path) as image:
            sizes[image.size] += 1
    return sizes


def test_the_images_to_tfrecord_card_matches_its_outputs_in_chromium(
    i2t, nih_images, browser, tmp_path
):
    opened = _open(browser, i2t / CARD_NAME, tmp_path / "images_to_tfrecord.png")
    page = opened.tab
    assert opened.errors == []
    assert opened.requested == [(i2t / CARD_NAME).as_uri()]
    rows = duckdb_table(i2t / "tables.duckdb", "labels").to_pylist()
    manifest = _manifest(i2t)
    written = manifest["stages"]["images"]["written"]
    assert len(rows) == written == 2
    # Counts: one group, the images written; no patients or studies declared.
    assert _cells(page, "#counts-table tr[data-split='(all)']") == [
        ["all splits", "all views", str(written), "n/a", "n/a"]
    ]
    # The boolean column's values, the others' distributions, from the table.
    (prevalence,) = page.eval_on_selector_all(
        "table.prevalence",
        "ts => ts.map(t => Array.from(t.querySelectorAll('td[data-code]'))"
        ".map(td => [td.closest('tr').dataset.label, td.dataset.code, td.textContent]))",
    )
    male = Counter("true" if r["male"] else "false" for r in rows)
    assert {(label, code): _number(n) for label, code, n in prevalence} == {
        ("male", code): male[code] for code in ("false", "true")
    }
    for column in ("findings", "age"):
        shown = _cells(page, f"table.distribution[data-column='{column}'] tr[data-value]")
        assert {value: _number(n) for value, n in shown} == Counter(str(r[column]) for r in rows)
    # The sources' pixel sizes, read here from the written images' files.
    sizes = page.eval_on_selector_all(
        "#pixel-sizes-table tr[data-width]",
        "rs => rs.map(r => [r.dataset.width, r.dataset.height, r.lastElementChild.textContent])",
    )
    expected = _header_sizes([nih_images / r["path"] for r in rows])
    assert {(int(w), int(h)): _number(n) for w, h, n in sizes} == expected
    # The input folder, as listed: every file under it, the skipped one too.
    files = sorted(p for p in nih_images.iterdir() if p.is_file())
    assert _cells(page, "#inputs tr[data-uri]") == [
        [
            f"{nih_images}/",
            str(len(files)),
            f"{sum(p.stat().st_size for p in files):,}",
            manifest["parameters"]["inputs"][0]["modified"],
        ]
    ]
    # Thumbnails from the TFRecords (no JPG tree), each decoded.
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])"
    )
    assert sorted(alt for alt, _, _ in images) == sorted(r["path"] for r in rows)
    assert all(complete and width > 0 for _, complete, width in images)
    columns = [row[1] for row in _cells(page, "#dictionary-table tr[data-column]")]
    assert columns == list(rows[0])


def test_images_to_tfrecord_without_a_table_has_a_card_from_its_manifest(nih_images, tmp_path):
    assert _images_to_tfrecord(nih_images, tmp_path / "plain") == 0
    page = (tmp_path / "plain" / CARD_NAME).read_text()
    assert "no labels table" in page
    assert 'class="prevalence"' not in page
    assert page.count("<img") == _manifest(tmp_path / "plain")["stages"]["images"]["written"]
    assert _images_to_tfrecord(nih_images, tmp_path / "none", "--no_card") == 0
    assert not (tmp_path / "none" / CARD_NAME).exists()
