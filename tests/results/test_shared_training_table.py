"""The runs of one shared training look the same in the summary; `sweep run` prints
what tells them apart (their averages' best val_acc)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from results.report import shared_training_table
from sweeps.config import RunConfig


def _run(label: str, val_acc_ema_best: float, **settings: float) -> dict:
    config = RunConfig(dataset="digits", depth=11, **settings).model_dump(mode="json")
    return {"label": label, "config_json": json.dumps(config), "ema_momentum": config["ema_momentum"],
            "epoch_best_ema": 3, "val_acc_ema_best": val_acc_ema_best, "val_acc_ema_bn_best": math.nan}


@pytest.mark.timeout(30)
def test_only_the_runs_that_shared_a_training_are_listed_by_their_averages() -> None:
    runs = pd.DataFrame([
        _run("m=0.9", 0.8812, ema_momentum=0.9),
        _run("λ=0.2", 0.9, ema_momentum=0.9, weight_decay=0.2),  # another training
        _run("m=0.99", 0.36111, ema_momentum=0.99),
        _run("m=0.99, bn", 0.5, ema_momentum=0.99, bn_subset_size=0),  # measures less: same training
        _run("m=0.99, rewritten", 0.7, ema_momentum=0.99, ema_overwrite_frequency=10),  # trains on its average
    ])
    table = shared_training_table(runs)
    assert table["label"].tolist() == ["m=0.9", "m=0.99", "m=0.99, bn"]
    assert table["val_acc_ema_best"].tolist() == ["0.88120", "0.36111", "0.50000"]
    assert table["val_acc_ema_bn_best"].tolist() == ["", "", ""]  # not measured: empty, not "nan"
    assert shared_training_table(runs.iloc[[0, 1, 4]]) is None
    assert shared_training_table(runs.assign(config_json=None)) is None  # search slots not yet sampled
