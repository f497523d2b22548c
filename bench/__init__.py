"""Benchmarks (``python -m bench``, ``make bench``): scripts that print and publish measured figures.

Also home of :mod:`bench.harness`, the set-up the reliability suite shares.
"""
