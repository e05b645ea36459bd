"""``curate report``: the browser's pages as a static site, opened from disk (``file://``) in headless Chromium.

Every link in every page leads to a file of the report (or to its not-in-report page), the pictures decode,
a sorted list holds exactly the rows DuckDB gives, the planted ``<script>`` shows as text and never runs, and a
report written into the store is left alone while the store is unchanged and rewritten (stale pages gone)
when it changes. Screenshots go to the test's tmp_path.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from selenium.webdriver.common.by import By
from typer.testing import CliRunner

from curate.browse.static import MISSING_PAGE, STATE_FILE, file_for, normalize, write_report_to_store
from curate.cli import app
from curate.execute import run_scorer
from curate.query import connect
from curate.scoring import BaseScorer
from curate.store import Store
from tests.browse.test_browse import drawn_width

pytestmark = pytest.mark.slow

LINK = re.compile(r'(?:href|src)="([^"#]*)(?:#[^"]*)?"')


@pytest.fixture(scope="module")
def report(browse_store: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "site"
    result = CliRunner().invoke(app, ["report", "--store", str(browse_store), "--out", str(out), "--max-docs", "40",
                                      "--docs-per-list", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"open {(out / 'index.html').resolve().as_uri()}" in result.output
    assert "wrote" in result.output and "40 documents" in result.output
    return out


def html_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.html"))


def test_every_link_leads_to_a_file_of_the_report(report: Path):
    pages = html_files(report)
    assert {"index.html", "documents.html", "histograms.html", "quarantine.html", "mixtures.html", "models.html",
            "mates.html", MISSING_PAGE} <= {p.name for p in pages}
    assert len(list((report / "doc").glob("*.html"))) == 40  # --max-docs
    left_out = 0
    for page in pages:
        for target in LINK.findall(page.read_text()):
            target = html.unescape(target)
            assert not target.startswith("/"), f"{page}: absolute link {target!r} (needs the live server)"
            if target.startswith(("http:", "https:")) or not target:
                continue
            assert (page.parent / target).resolve().is_file(), f"{page.relative_to(report)} links to missing {target}"
            left_out += target.endswith(MISSING_PAGE)
    assert left_out > 0  # later pages and documents past --max-docs go to the explaining page
    assert "curate browse --store" in (report / MISSING_PAGE).read_text()
    # the static pages carry no form: filters and SQL need the live browser, which the note names
    assert "<form" not in (report / "documents.html").read_text()
    assert 'id="static-note"' in (report / "index.html").read_text()


def test_a_sorted_list_holds_the_rows_duckdb_gives(report: Path, browse_store: Path):
    page = report / file_for(normalize("/documents?sort=n_bytes&order=asc")[0])
    text = page.read_text()
    shown = re.findall(r'<td class="doc_id"><a href="[^"]*">([^<]*)</a>', text)
    con = connect(browse_store, read_only=True)
    expected = [r[0] for r in con.sql("SELECT doc_id FROM doc_features ORDER BY n_bytes ASC NULLS LAST, doc_id "
                                      "LIMIT 50").fetchall()]
    assert [html.unescape(s) for s in shown] == expected
    # the top documents of this list have their own pages; the link of the first one leads to its text
    first = re.search(r'<td class="doc_id"><a href="([^"]*)">', text).group(1)
    assert (page.parent / first).resolve().name != MISSING_PAGE


def test_pages_open_from_disk_in_chromium_with_pictures_and_the_script_as_text(report: Path, driver, tmp_path):
    driver.get((report / "index.html").resolve().as_uri())
    assert driver.find_element(By.ID, "domains").text
    driver.save_screenshot(str(tmp_path / "report-overview.png"))
    # a click on a navigation link opens the report's own file
    driver.find_element(By.LINK_TEXT, "mixtures").click()
    assert driver.current_url.endswith("/mixtures.html")
    pictures = driver.find_elements(By.CSS_SELECTOR, "img.picture")
    assert pictures and all(drawn_width(driver, img) > 0 for img in pictures)
    driver.save_screenshot(str(tmp_path / "report-mixtures.png"))
    driver.get((report / file_for(normalize("/histograms?column=n_bytes")[0])).resolve().as_uri())
    assert drawn_width(driver, driver.find_element(By.ID, "histogram")) > 0
    driver.save_screenshot(str(tmp_path / "report-histogram.png"))
    # the planted document is a short one: its snippet is on the lists sorted by size, lowest first
    planted = [p for p in html_files(report) if "&lt;script&gt;window.__planted" in p.read_text()]
    assert planted, "the planted document's text is on no page"
    assert not any("<script>window.__planted" in p.read_text() for p in html_files(report))  # never raw markup
    for page in planted[:3]:
        driver.get(page.resolve().as_uri())
        assert driver.execute_script("return window.__planted === undefined")
    driver.save_screenshot(str(tmp_path / "report-planted.png"))


def test_report_in_the_store_is_kept_while_nothing_changes_and_rewritten_when_it_does(browse_store: Path, tmp_path):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(browse_store, store)
    first = write_report_to_store(store, max_docs=5, docs_per_list=1, only_if_changed=True)
    assert not first.unchanged and (store / "report" / "index.html").is_file()
    assert (store / "report" / STATE_FILE).is_file()
    stale = store / "report" / "doc" / "left-from-an-older-report.html"
    stale.write_text("old")
    again = write_report_to_store(store, max_docs=5, docs_per_list=1, only_if_changed=True)
    assert again.unchanged and stale.exists()  # nothing in the store changed: nothing rewritten
    # a new feature table (a new score) changes the store: the report is rewritten and shows it
    assert not run_scorer(Store.of(store), ByteLength(), workers=0).failed
    third = write_report_to_store(store, max_docs=5, docs_per_list=1, only_if_changed=True)
    assert not third.unchanged and not stale.exists()
    assert (store / "report" / file_for(normalize("/histograms?column=n_bytes_again")[0])).is_file()


class ByteLength(BaseScorer):
    """A real scorer with a column no other has (each document's UTF-8 length): a new score in the store."""

    name = "bytes_again"
    schema = pa.schema([("doc_id", pa.string()), ("n_bytes_again", pa.int64())])

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        lengths = pc.binary_length(pc.cast(batch.column("text"), pa.binary())).cast(pa.int64())
        return pa.record_batch([batch.column("doc_id"), lengths], schema=self.schema)
