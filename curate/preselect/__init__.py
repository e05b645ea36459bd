"""PreSelect (Predictive Data Selection): documents whose losses predict model ability are the ones to train on.

Python users::

    import curate.preselect as preselect
    card = preselect.train("store")           # family -> ranking -> strength -> selector, in models/preselect/
    preselect.score("store")                  # preselect_score for every document
    preselect.top_share("store", share=0.1)   # the top 10% by characters, threshold over the whole pool

- :mod:`curate.preselect.family`: train / collect the reference LMs and rank them by measurement;
- :mod:`curate.preselect.strength`: bits per character and predictive strength (numpy);
- :mod:`curate.preselect.selector`: positives / negatives, the fastText selector, AUC;
- :mod:`curate.preselect.report`: Markdown + PNG report.

Torch, transformers and fastText load only when these are called.
"""

from __future__ import annotations

from curate.preselect.apply import score, selector_settings
from curate.preselect.card import PreSelectCard
from curate.preselect.pipeline import train
from curate.selection import top_share, top_share_doc_ids

__all__ = ["PreSelectCard", "score", "selector_settings", "top_share", "top_share_doc_ids", "train"]
