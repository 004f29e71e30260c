"""Benchmarks: ``python -m bench <name> [options]``; each prints a table and writes JSON.

A benchmark is a module ``bench/<name>.py`` with ``main(argv: list[str]) -> dict`` that
returns its results; :func:`bench.report.emit` prints and saves them.
"""
