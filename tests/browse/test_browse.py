"""``curate browse`` in a real headless Chromium: every page loads, a score-range filter shows exactly the rows
DuckDB gives, documents open with their text, features and near-duplicate cluster, a planted ``<script>``
shows as text and never runs, and SQL that is not a query is refused on the page. Screenshots of each
page go to the test's tmp_path."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from curate.browse.artifacts import mixture_docs
from curate.browse.plots import histogram_counts
from curate.query import connect
from curate.store import Store
from tests.browse.conftest import PLANTED

# a real server and a real browser: about 30 s with the store they share on a loaded 2-core machine
pytestmark = pytest.mark.slow


def load(driver, url: str, shot: Path | None = None) -> None:
    driver.get(url)
    assert "Internal Server Error" not in driver.page_source
    if shot is not None:
        driver.save_screenshot(str(shot))


def follow(driver, element) -> None:
    """Click a link or submit button and wait for the new page to finish (a click does not wait for it)."""
    element.click()
    wait = WebDriverWait(driver, 60, ignored_exceptions=(WebDriverException,))
    wait.until(EC.staleness_of(element))
    wait.until(EC.presence_of_element_located((By.ID, "timing")))  # the last element of every page
    assert "Internal Server Error" not in driver.page_source


def drawn_width(driver, img) -> int:
    """The decoded width of an <img> once loaded: 0 for a broken image."""
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return arguments[0].complete", img))
    return driver.execute_script("return arguments[0].naturalWidth", img)


def show_histogram(driver, select_id: str, option: str, shot: Path):
    """Pick ``option`` in the histograms form's ``select_id``, submit, screenshot; returns the <img>."""
    Select(driver.find_element(By.ID, select_id)).select_by_visible_text(option)
    follow(driver, driver.find_element(By.ID, "show"))
    img = driver.find_element(By.ID, "histogram")
    drawn_width(driver, img)
    driver.save_screenshot(str(shot))
    return img


def shown_ids(driver) -> list[str]:
    return [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#docs td.doc_id")]


def test_parallel_requests_each_get_a_whole_answer(server, browse_store):
    """The server's threads each use their own DuckDB connection: concurrent pages neither fail nor mix."""
    con = connect(browse_store)
    ids = [r[0] for r in con.sql("SELECT doc_id FROM docs ORDER BY doc_id LIMIT 12").fetchall()]

    def fetch(doc_id: str) -> tuple[str, int, str]:
        with urllib.request.urlopen(f"{server}/doc/{doc_id}", timeout=120) as r:
            return doc_id, r.status, r.read().decode()

    pages = ["/", "/documents?sort=n_chars", "/documents?where=n_lines%20%3E%205", "/plot/histogram.png?column=n_chars"]
    with ThreadPoolExecutor(8) as pool:
        docs = list(pool.map(fetch, ids))
        others = list(pool.map(lambda p: urllib.request.urlopen(server + p, timeout=120).status, pages * 3))
    assert all(status == 200 and f'<code id="doc-id">{doc_id}</code>' in body for doc_id, status, body in docs)
    assert others == [200] * len(others)


def test_overview_shows_domains_and_quarantine_with_its_records(server, driver, browse_store, tmp_path):
    load(driver, server + "/", tmp_path / "overview.png")
    con = connect(browse_store)
    want = dict(con.sql("SELECT domain, count(*) FROM docs GROUP BY 1").fetchall())
    rows = driver.find_elements(By.CSS_SELECTOR, "#domains tr")[1:]
    got = {r.find_elements(By.TAG_NAME, "td")[1].text: int(r.find_elements(By.TAG_NAME, "td")[2].text.replace(",", ""))
           for r in rows}
    assert got == want
    header = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#domains th")]
    tokens = header.index("tokens (token_count)")  # the tokens table's counts, not an estimate
    want_tokens = dict(con.sql("SELECT domain, sum(token_count) FROM doc_features GROUP BY 1").fetchall())
    assert {r.find_elements(By.TAG_NAME, "td")[1].text: int(r.find_elements(By.TAG_NAME, "td")[tokens].text
            .replace(",", "")) for r in rows} == want_tokens
    reasons = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#quarantine a")]
    assert sorted(reasons) == sorted(r for (r,) in con.sql("SELECT DISTINCT reason FROM quarantine").fetchall())
    follow(driver, driver.find_element(By.LINK_TEXT, "malformed_json"))
    driver.save_screenshot(str(tmp_path / "quarantine.png"))
    records = driver.find_elements(By.CSS_SELECTOR, "#records tr")[1:]
    assert len(records) == 1 and "{broken" in records[0].text and "malformed_json" in records[0].text


def test_score_range_filter_and_paging_match_duckdb(server, driver, browse_store, tmp_path):
    con = connect(browse_store)
    lo, hi = con.sql("SELECT quantile_cont(n_chars, 0.1), quantile_cont(n_chars, 0.9) FROM doc_features").fetchall()[0]
    load(driver, server + "/documents", tmp_path / "documents.png")
    Select(driver.find_element(By.ID, "range_col")).select_by_visible_text("n_chars")
    driver.find_element(By.ID, "range_min").send_keys(str(lo))
    driver.find_element(By.ID, "range_max").send_keys(str(hi))
    Select(driver.find_element(By.ID, "sort")).select_by_visible_text("alpha_ratio")
    follow(driver, driver.find_element(By.ID, "apply"))
    driver.save_screenshot(str(tmp_path / "documents-filtered.png"))
    query = ("SELECT doc_id FROM doc_features WHERE n_chars BETWEEN $lo AND $hi "
             "ORDER BY alpha_ratio DESC NULLS LAST, doc_id LIMIT 50 OFFSET $o")
    first = [r[0] for r in con.sql(query, params={"lo": lo, "hi": hi, "o": 0}).fetchall()]
    assert len(first) == 50 and shown_ids(driver) == first
    values = [float(td.get_attribute("data-value")) for td in driver.find_elements(By.CSS_SELECTOR, "td.col-n_chars")]
    assert values and all(lo <= v <= hi for v in values)
    follow(driver, driver.find_element(By.ID, "next"))  # the next page keeps the filter and the sort
    assert shown_ids(driver) == [r[0] for r in con.sql(query, params={"lo": lo, "hi": hi, "o": 50}).fetchall()]


def test_where_filter_runs_read_only_sql_and_refuses_other_statements(server, driver, browse_store, tmp_path):
    con = connect(browse_store)
    load(driver, server + "/documents?where=domain%20%3D%20%27code%27%20AND%20n_lines%20%3E%2020&sort=n_lines")
    want = [r[0] for r in con.sql("SELECT doc_id FROM doc_features WHERE domain = 'code' AND n_lines > 20 "
                                  "ORDER BY n_lines DESC, doc_id LIMIT 50").fetchall()]
    assert want and shown_ids(driver) == want
    docs_before = con.sql("SELECT count(*) FROM docs").fetchall()
    files_before = sorted(p.relative_to(browse_store) for p in browse_store.rglob("*"))
    for i, where in enumerate(["1=1; DROP VIEW docs", "DELETE FROM docs", "1=1; COPY docs TO 'x.csv'"]):
        load(driver, server + "/documents")
        box = driver.find_element(By.ID, "where")
        box.clear()
        box.send_keys(where)
        follow(driver, driver.find_element(By.ID, "apply"))
        driver.save_screenshot(str(tmp_path / f"refused-{i}.png"))
        error = driver.find_element(By.ID, "error").text
        assert "read-only" in error and "nothing was run" in error, error
        assert not driver.find_elements(By.ID, "docs")
        assert driver.find_element(By.ID, "where").get_attribute("value") == where  # kept to be corrected
    assert connect(browse_store).sql("SELECT count(*) FROM docs").fetchall() == docs_before
    assert sorted(p.relative_to(browse_store) for p in browse_store.rglob("*")) == files_before
    load(driver, server + "/documents?where=1%3D1%20--%20a%20comment")  # cannot comment the page's LIMIT away
    assert len(shown_ids(driver)) == 50 and driver.find_elements(By.ID, "next")
    load(driver, server + "/documents?where=no_such_column%20%3E%201")
    assert "DuckDB refused the filter" in driver.find_element(By.ID, "error").text
    load(driver, server + "/documents?where=%27unclosed")
    assert "could not read the WHERE filter" in driver.find_element(By.ID, "error").text


def test_a_document_opens_with_its_text_features_and_cluster(server, driver, browse_store, tmp_path):
    con = connect(browse_store)
    doc_id, text, n_chars, cluster = con.sql(
        "SELECT doc_id, text, n_chars, dup_cluster_id FROM doc_features WHERE orig_id = 'near-copy'").fetchall()[0]
    load(driver, server + "/documents?where=orig_id%20%3D%20%27near-copy%27")
    follow(driver, driver.find_element(By.LINK_TEXT, doc_id))
    driver.save_screenshot(str(tmp_path / "document.png"))
    assert driver.find_element(By.ID, "text").text == text.strip()  # innerText trims the pre's ends
    values = {td.get_attribute("data-col"): td.text for td in driver.find_elements(By.CSS_SELECTOR, "#features td")}
    assert values["n_chars"] == str(n_chars) and values["dup_cluster_id"] == str(cluster)
    assert set(values) >= {"corpus", "domain", "n_bytes", "alpha_ratio", "dup_keep", "bands"}
    members = {r[0] for r in con.sql("SELECT doc_id FROM near_dup WHERE dup_cluster_id = $c",
                                     params={"c": cluster}).fetchall()}
    shown = {tr.find_element(By.TAG_NAME, "td").text for tr in driver.find_elements(By.CSS_SELECTOR, "#cluster tr")[1:]}
    assert len(members) >= 2 and shown == members
    load(driver, server + "/doc/no-such-id")
    assert "No document no-such-id" in driver.page_source


def test_planted_script_shows_as_text_and_never_runs(server, driver, browse_store, tmp_path):
    (doc_id,) = connect(browse_store).sql("SELECT doc_id FROM docs WHERE orig_id = 'planted-script'").fetchall()[0]
    load(driver, server + "/documents?where=text%20LIKE%20%27%25%3Cscript%3E%25%27", tmp_path / "planted-list.png")
    assert shown_ids(driver) == [doc_id]
    assert "<script>" in driver.find_element(By.CSS_SELECTOR, "#docs td.snippet").text
    assert driver.execute_script("return typeof window.__planted") == "undefined"
    load(driver, server + f"/doc/{doc_id}", tmp_path / "planted-document.png")
    assert driver.find_element(By.ID, "text").text == PLANTED
    assert not driver.find_elements(By.CSS_SELECTOR, "#text script, #text img")
    assert driver.execute_script("return typeof window.__planted") == "undefined"


def test_models_page_shows_each_card(server, driver, browse_store, tmp_path):
    load(driver, server + "/models", tmp_path / "models.png")
    card = json.loads((browse_store / "models" / "domain" / "card.json").read_text())
    shown = json.loads(driver.find_element(By.CSS_SELECTOR, "pre.card").text)
    assert shown == card and "accuracy" in shown


def test_mixtures_page_shows_phase_domain_tokens_and_plots(server, driver, browse_store, tmp_path):
    load(driver, server + "/mixtures", tmp_path / "mixtures.png")
    manifest = json.loads((browse_store / "mixtures" / "browse-mix" / "manifest.json").read_text())
    want = {(p["name"], d): c["tokens"] for p in manifest["phases"] for d, c in p["domains"].items()}
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in driver.find_elements(By.CSS_SELECTOR, "table.phases tr")[1:]]
    header = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "table.phases th")]
    tokens = header.index("tokens")
    assert {(r[0], r[1]): int(r[tokens].replace(",", "")) for r in rows} == want
    pictures = driver.find_elements(By.CSS_SELECTOR, "img.picture")
    assert {"domain_share.png", "tokens.png"} <= {p.get_attribute("alt").rsplit("/", 1)[1] for p in pictures}
    assert all(drawn_width(driver, p) > 100 for p in pictures)
    # only PNGs under models/, mixtures/ and mates/ are served
    for path in ("/picture/models/domain/card.json", "/picture/mixtures/browse-mix/..%2F..%2Fstore.json",
                 "/picture/shards/c/x.png"):
        load(driver, server + path)
        assert "no picture" in driver.page_source


def test_a_used_document_shows_its_mixture_uses(server, driver, browse_store):
    con = connect(browse_store)
    plan = str(browse_store / "mixtures" / "browse-mix" / "plan.parquet")
    doc_id, phase, epoch = con.sql(f"SELECT doc_id, phase, epoch FROM read_parquet('{plan}') ORDER BY position "
                                   "LIMIT 1").fetchall()[0]
    load(driver, server + f"/doc/{doc_id}")
    uses = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in driver.find_elements(By.CSS_SELECTOR, "#uses tr")[1:]]
    assert uses and uses[0][:3] == ["browse-mix", phase, str(epoch)]


@pytest.mark.parametrize("page", ["/quarantine", "/histograms", "/mates", "/documents?sort=n_bytes&order=asc&page=2"])
def test_every_other_page_loads(server, driver, page, tmp_path):
    load(driver, server + page, tmp_path / "page.png")
    assert driver.find_element(By.ID, "timing").text.startswith("rendered in")


def test_histogram_of_a_score_per_domain_renders(server, driver, browse_store, tmp_path):
    load(driver, server + "/histograms")
    img = show_histogram(driver, "column", "n_chars", tmp_path / "histogram.png")
    assert drawn_width(driver, img) > 300  # a drawn PNG, not a broken image
    con = connect(browse_store)
    data = histogram_counts(con, Store.open(browse_store), "n_chars")
    assert data is not None and len(data["edges"]) == 41
    want = dict(con.sql("SELECT domain, count(*) FROM doc_features WHERE n_chars IS NOT NULL GROUP BY 1").fetchall())
    assert {d: sum(c) for d, c in data["counts"].items()} == want
    load(driver, server + "/histograms?column=%3Cb%3Enope")
    assert "Unknown score column <b>nope" in driver.find_element(By.ID, "error").text


def test_histogram_of_a_mixture_against_the_pool(server, driver, browse_store, tmp_path):
    load(driver, server + "/histograms?column=alpha_ratio")
    img = show_histogram(driver, "mixture", "browse-mix", tmp_path / "histogram-mixture.png")
    assert "mixture=browse-mix" in img.get_attribute("src") and drawn_width(driver, img) > 300
    st = Store.open(browse_store)
    data = histogram_counts(connect(browse_store), st, "alpha_ratio", selected=mixture_docs(st, "browse-mix"))
    plan = str(browse_store / "mixtures" / "browse-mix" / "plan.parquet")
    want = dict(connect(browse_store).sql(
        f"SELECT domain, count(*) FROM doc_features WHERE doc_id IN (SELECT doc_id FROM read_parquet('{plan}')) "
        "AND isfinite(alpha_ratio) GROUP BY 1").fetchall())
    assert {d: sum(c) for d, c in data["selected"].items() if sum(c)} == want
    assert mixture_docs(st, "../store") is None and mixture_docs(st, "no-such-mix") is None


def test_experiment_report_shows_its_tables_and_plots_and_escapes_raw_html(server, driver, browse_store, tmp_path):
    """A selection experiment's report.md copied into the store (``experiments/<scale>/``, as ``curate
    experiment`` does) shows on /experiments: its Markdown table as a table, its plot decoded; raw HTML in
    the Markdown is shown as text, never run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from curate.experiment.report import publish
    from curate.render import png_bytes

    out = tmp_path / "experiment-out"
    out.mkdir()
    fig, ax = plt.subplots()
    ax.plot([1, 2, 4], [3.0, 2.5, 2.2])
    (out / "loss_vs_tokens-prose.png").write_bytes(png_bytes(fig))
    (out / "report.md").write_text("## Target `prose`\n\n| method | multiplier |\n|---|---|\n| preselect | 1.86x |\n\n"
                                   '![prose](loss_vs_tokens-prose.png)\n\n<script>window.__planted = "md ran";</script>\n')
    st = Store.open(browse_store)
    folder = publish(st, out, "browser-test")
    try:
        load(driver, server + "/experiments", tmp_path / "experiments.png")
        section = driver.find_element(By.ID, "browser-test")
        cells = [td.text for td in section.find_elements(By.CSS_SELECTOR, "table td")]
        assert cells == ["preselect", "1.86x"]
        assert drawn_width(driver, section.find_element(By.CSS_SELECTOR, "img.picture")) > 0
        assert "<script>window.__planted" in section.text  # shown as text ...
        assert driver.execute_script("return window.__planted === undefined")  # ... never run
    finally:
        for name in ("report.md", "loss_vs_tokens-prose.png"):
            st.delete(f"{folder}/{name}")
