"""Prefect flows over the curate library; Ray execution lives behind them.

Flows: ``ingest``, ``score``, ``train-domain``. Deployments with cron schedules
are declared in ``flows.deployments`` (``curate flows serve``) and in
``prefect.yaml`` (``prefect deploy`` to a work pool).
"""
