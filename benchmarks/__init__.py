"""pifed's measurements: ``suite/`` (what ``pifed bench`` runs) and ``experiments/`` (one-offs).

A package so that its modules import each other by name (``benchmarks.suite.contract``) and run
as ``python -m benchmarks.suite.runner`` from the project folder; it is not part of the wheel.
"""
