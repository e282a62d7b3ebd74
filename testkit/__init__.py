"""What the tests and the benchmarks share, as a package both import (the repository
root is on the path: pytest's `pythonpath`, and each benchmark's own start-up):

- `testkit.tiny_sweeps`: tiny sweep files (ResNet11 on scikit-learn's digits);
- `testkit.sweeping`: `sweep` started as a user starts it, its JSON lines read;
- `testkit.postgres`: a throw-away PostgreSQL cluster.

Not part of the installed product.
"""
