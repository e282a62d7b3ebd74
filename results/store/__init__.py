"""The results store: the tables every worker and child write through, the run lifecycle, migrations, the engine."""
