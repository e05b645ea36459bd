"""Prefect flows over the curate library; Ray execution lives behind them.

Flows: ``ingest``, ``score``, ``train-domain``, ``train-lm``, ``train-preselect``, ``mates-stage``,
``build-mixture``, ``demo``, and ``pipeline`` (one scheduled tick: ingest -> score -> build-mixture).
Deployments with schedules are declared in ``flows.deployments`` (``curate flows serve`` / ``deploy``) and
in ``prefect.yaml`` (``prefect deploy --all`` to a work pool).
"""
