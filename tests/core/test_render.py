"""Markdown for Prefect artifacts: curate's plots embedded so the Prefect UI can show them."""

from __future__ import annotations

import base64

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from curate.render import inline_pictures, png_bytes  # noqa: E402
from curate.store import Store  # noqa: E402


def test_inline_pictures_embeds_the_store_s_pngs_and_leaves_the_rest(tmp_path):
    st = Store.open(tmp_path / "st", create=True)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = png_bytes(fig)
    st.write_bytes("models/m/strength.png", png)
    text = ("# m\n\n![strength](strength.png)\n\n![gone](missing.png)\n\n![web](https://example.org/x.png)\n\n"
            "![up](../other/x.png)\n\n[a link](strength.png)\n")
    out = inline_pictures(text, st, "models/m")
    assert f"![strength](data:image/png;base64,{base64.b64encode(png).decode()})" in out
    # a picture the store lacks, one on the web, one outside the folder and a plain link are left as written
    for kept in ("![gone](missing.png)", "![web](https://example.org/x.png)", "![up](../other/x.png)",
                 "[a link](strength.png)"):
        assert kept in out
    assert inline_pictures(out, st, "models/m") == out  # an embedded picture is not embedded twice
