"""The embedded corpus builder (``make corpus`` = ``python -m tools.corpus.build``); the built Parquet ships in
``curate/corpus/data/``."""
