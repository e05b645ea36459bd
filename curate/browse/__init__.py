"""``curate browse``: a local, read-only web app over a store (documents, their scores, quarantine, models).

``app`` holds the routes, ``queries`` the DuckDB queries, ``pages`` the HTML (Jinja2 templates in
``templates/``, escaped). Nothing here writes to the store.
"""
