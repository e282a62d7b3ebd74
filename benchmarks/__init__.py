"""The benchmarks: scripts (`python benchmarks/NAME.py`, all of them `benchmarks/run_all.py`)
that run the project beside a baseline and print the ratio. A package, so that the tests
import their helpers (`benchmarks.common`, `benchmarks.run_all`) without a path of their own."""
