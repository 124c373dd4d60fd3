"""Benchmarks of the reference session service, each against a baseline measured in the same run.

Run them all with ``python -m benchmarks`` (``--quick`` for a smoke run); see
``benchmarks/README.md`` for what each figure means.  Every figure is reported
as a ratio to a baseline taken in the same process, minutes apart at most, so
a noisy shared machine moves both sides together.
"""
