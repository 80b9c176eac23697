"""Answers built on evaluations and datasets: statistics, failures, A-vs-B comparison, leaderboard, label
quality, loss breakdown, gallery ordering, objects/boundaries/calibration (:mod:`~seglab.analysis.diagnostics`).

Import the modules themselves (``from seglab.analysis.failures import ...``): each pulls only what it needs.
"""
