"""Cohort analysis: a folder or manifest of recordings analysed into sessions exactly as ``analyze``
makes them, on all local cores (a process pool, one engine with its loaded model per worker) or on a
Ray cluster, resumable and idempotent through the store's cohort ledger; and the cohort's tables and
group comparisons for statistics (docs/cohort.md).
"""
