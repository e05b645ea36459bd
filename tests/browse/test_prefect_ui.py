"""The flows' artifacts in the real Prefect UI (``prefect server start``, opened in headless Chromium).

A markdown artifact that names a PNG by a relative path shows a broken image in the UI (the browser asks the
Prefect server for a file it does not have); curate embeds its plots instead. Here the build-mixture flow and
the pipeline's report step run against a real server, and the UI's artifact pages are loaded: every picture
of the mixture artifact decodes, and the report artifact links to the store's static report, which exists.
Screenshots go to the test's tmp_path.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.engine._procs import REPO, free_port, kill_group, prefect_env, start_prefect_server, tail
from tests.mixture._specs import spec_dict

pytestmark = pytest.mark.slow

FLOWS = """
import sys
from flows.mixture import build_mixture_flow
from flows.pipeline import pipeline_flow
store, spec = sys.argv[1:3]
build_mixture_flow(store, spec)
pipeline_flow(store)  # no inputs, no scorers: only the report step
"""


def artifact_ids(api_url: str) -> dict[str, str]:
    """Artifact key -> id of the latest artifact with that key, as the server has them."""
    req = urllib.request.Request(f"{api_url}/artifacts/filter", data=json.dumps({"sort": "CREATED_DESC"}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        rows = json.loads(resp.read())
    out: dict[str, str] = {}
    for row in rows:
        out.setdefault(row["key"], row["id"])
    return out


def open_artifact(driver, base: str, artifact_id: str, shot: Path) -> list:
    """Load the UI's page of one artifact, wait until its markdown has rendered; returns the page's <img>s."""
    driver.get(f"{base}/artifacts/artifact/{artifact_id}")
    WebDriverWait(driver, 90).until(lambda d: d.find_elements(By.CSS_SELECTOR, "h2"))
    images = driver.find_elements(By.CSS_SELECTOR, "img[alt]")
    WebDriverWait(driver, 60).until(lambda d: all(d.execute_script("return arguments[0].complete", i) for i in images))
    driver.save_screenshot(str(shot))
    return images


def test_artifact_pictures_render_and_the_report_link_leads_to_the_report(browse_store, driver, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(browse_store, store)
    spec = tmp_path / "ui-mix.yaml"
    spec.write_text(yaml.safe_dump(spec_dict(name="ui-mix", tokens=200_000)))
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    server = start_prefect_server(tmp_path / "prefect", port, tmp_path / "server.log", ui=True)
    try:
        log = tmp_path / "flows.log"
        with open(log, "wb") as out:
            done = subprocess.run([sys.executable, "-c", FLOWS, str(store), str(spec)], cwd=REPO, stdout=out,
                                  stderr=subprocess.STDOUT, env=prefect_env(tmp_path / "client", api_url), timeout=600)
        assert done.returncode == 0, tail(log)
        ids = artifact_ids(api_url)
        assert {"curate-mixture", "curate-report"} <= set(ids), ids

        base = f"http://127.0.0.1:{port}"
        images = open_artifact(driver, base, ids["curate-mixture"], tmp_path / "ui-mixture-artifact.png")
        widths = {img.get_attribute("alt"): driver.execute_script("return arguments[0].naturalWidth", img)
                  for img in images}
        assert {"domain share", "tokens"} <= set(widths), widths  # the mixture report's plots
        assert all(w > 0 for w in widths.values()), f"broken pictures in the Prefect UI: {widths}"

        open_artifact(driver, base, ids["curate-report"], tmp_path / "ui-report-artifact.png")
        link = driver.find_element(By.LINK_TEXT, "Open the report").get_attribute("href")
        index = (store / "report" / "index.html").resolve()
        assert link == index.as_uri() and index.is_file()
        driver.get(link)  # what a user does with the address the artifact gives
        assert driver.find_element(By.ID, "domains").text
        driver.save_screenshot(str(tmp_path / "ui-report-opened.png"))
    finally:
        kill_group(server)
