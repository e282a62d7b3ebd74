"""What the report tests build: studies written straight into the store (no training),
the page's plot data read back, and what the browser tests need."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from results.store.result_store import ResultStore
from sweeps.config import RunConfig

CHROMIUM = "/usr/bin/chromium"
HOSTILE = "<script>alert(1)</script>"
SWEEP_TEXT = '''name = "{study}"
description = "λ × α </script><b>bold?</b> & more"

[train]
dataset = "digits"
depth = 11

[space]
weight_decay = [0.05, 0.2]
learning_rate = [8e-4, 2e-3]
'''


#: The measurements the trainer may store per epoch, beyond the post's.
MEASURED = ("val_loss_ema", "val_acc_ema", "test_loss", "test_acc", "weight_norm", "weight_norm_stage1",
            "weight_norm_stage2", "weight_norm_stage3", "effective_lr", "angular_update")


def _history(run: int, epochs: int, *, diverged: bool = False, ema: bool = False) -> list[dict[str, Any]]:
    """Epoch records; odd runs reach 0.92, even ones stop below it; a diverged run's
    metrics turn NaN and infinite half-way. Run 2 has every measurement (`MEASURED`),
    the others none; with `ema` every run has a val_acc_ema 0.005 above its val_acc."""
    peak = 0.935 if run % 2 else 0.915
    records = []
    for epoch in range(1, epochs + 1):
        val_acc = 0.5 + (peak - 0.5) * min(1.0, epoch / max(1, epochs - 1))
        record = {
            "epoch": epoch, "loss": 2.0 * math.exp(-epoch / 5) + 0.01, "acc": min(1.0, val_acc + 0.05),
            "val_loss": 0.3 + math.exp(-epoch / 4) + 0.01 * run, "val_acc": val_acc, "lr": 8e-4,
            "seconds": 1.0, "images_per_second": 1000.0,
        }
        if run == 2:
            record.update({name: 0.1 * epoch + i for i, name in enumerate(MEASURED)})
        if ema:
            record["val_acc_ema"] = val_acc + 0.005
        if diverged and epoch > epochs // 2:
            record.update(loss=math.inf, acc=math.nan, val_loss=math.nan, val_acc=math.nan)
        records.append(record)
    return records


def _record_epochs(store: ResultStore, run_id: int, records: list[dict[str, Any]]) -> None:
    """A run's epochs in one transaction (`record_epoch` commits, and fsyncs, each one:
    seconds for a 30 × 60 study). NaN is stored as NULL, as `record_epoch` stores it."""
    from sqlalchemy import insert

    from results.store.models import EPOCHS

    rows = [
        {"run_id": run_id, **{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}}
        for r in records
    ]
    with store.engine.begin() as connection:
        connection.execute(insert(EPOCHS), rows)


def make_study(
    url: str,
    study: str,
    *,
    lambdas: tuple[float, ...] = (0.05, 0.2),
    alphas: tuple[float, ...] = (8e-4, 2e-3),
    copies: int = 1,
    epochs: int = 6,
    hostile: bool = True,
    diverged: bool = True,
    waiting: int = 0,
    ema: bool = False,
) -> list[dict[str, Any]]:
    """A finished λ × α study in the store, with its sweep file in the Optuna study.

    The first run is labelled `HOSTILE` (when `hostile`), the second diverges (when
    `diverged`); `waiting` more runs have no epochs; `ema`: every run stored its EMA
    model's val_acc. Returns the runs: `label`, `run_id`, `epochs`, `weight_decay`,
    `learning_rate`, `seed` and `val_acc_best`.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs = []
    with ResultStore(url) as store:  # first: the store refuses a database of plain Optuna
        created = optuna.create_study(study_name=study, storage=url, direction="maximize")
        created.set_user_attr("sweep_file", SWEEP_TEXT.format(study=study))
        created.set_user_attr("sweep_path", f"sweeps/{study}.toml")
        points = [(lam, alpha, seed) for seed in range(copies) for lam in lambdas for alpha in alphas]
        for number, (lam, alpha, seed) in enumerate(points):
            config = RunConfig(dataset="digits", depth=11, weight_decay=lam, learning_rate=alpha, seed=seed,
                               epochs=epochs)
            label = HOSTILE if hostile and number == 0 else f"{number}"
            run_id = store.register_run(study, config.run_key, label=label, comment=f"comment of {label}",
                                        config=config.model_dump(mode="json"), trial_number=number)
            store.claim_run(run_id, worker="w", host="node-1", stale_after=60, max_attempts=3)
            records = _history(number, epochs, diverged=diverged and number == 1, ema=ema)
            _record_epochs(store, run_id, records)
            store.finish_run(run_id, "diverged" if diverged and number == 1 else "complete", device="cpu",
                             versions={"keras": "3.15.1", "backend": "tensorflow", "backend_version": "2.21.0"})
            runs.append({"label": label, "run_id": run_id, "epochs": epochs, "weight_decay": lam,
                         "learning_rate": alpha, "seed": seed,
                         "val_acc_best": max(r["val_acc"] for r in records if not math.isnan(r["val_acc"]))})
        for extra in range(waiting):
            config = RunConfig(dataset="digits", depth=11, weight_decay=0.4, learning_rate=1e-3, seed=100 + extra)
            run_id = store.register_run(study, config.run_key, label=f"w{extra}", comment=None,
                                        config=config.model_dump(mode="json"))
            runs.append({"label": f"w{extra}", "run_id": run_id, "epochs": 0})
    return runs


_FIGURES = re.compile(r'<script type="application/json" id="report-figures">(.*?)</script>', re.DOTALL)


def figures_of(page: str) -> dict[str, Any]:
    """The plot data of a page, read back as the page's script reads it."""
    match = _FIGURES.search(page)
    assert match, "no plot data in the page"
    return json.loads(match.group(1))


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])




TINY_SWEEP = '''name = "tiny"
description = "one tiny run, watched live"
[train]
dataset = "digits"
depth = 11
batch_size = 64
train_size = 128
validation_size = 64
epochs = 2
flip = false
[[runs]]
label = "1"
comment = "the only run"
weight_decay = 0.05
'''


def snapshot(page: str) -> tuple[bool, int]:
    """Whether a page reloads itself, and the most epochs any run's plot has."""
    figures = figures_of(page)
    runs = [figure for key, figure in figures.items() if key.startswith("run-")]
    points = max((len(t["x"]) for f in runs for t in f["data"] if t["name"] == "val_acc"), default=0)
    return ("data-reload=" in page, points)


class Opened:
    """A page opened from disk, with everything it asked the network for and every
    console error and dialog it raised."""

    def __init__(self, browser: Any, path: Path, *, init_script: str | None = None) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        if init_script:
            self.context.add_init_script(init_script)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: None if r.url.startswith("file://") else self.requests.append(r.url))
        # Nothing leaves the machine even if the page asked for it.
        self.page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://")
                        else route.abort())
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")

    def labels(self) -> list[str]:
        return self.page.locator("#runs-table tbody th a").all_inner_texts()

    def render(self, key: str, state: str = "done") -> Any:
        """Scrolls a plot into view and waits until the page's script has drawn it (or,
        `state="no-webgl"`, put its note there instead); returns its locator."""
        element = self.page.locator(f'[data-figure="{key}"]')
        element.scroll_into_view_if_needed()
        self.page.wait_for_function(
            f"document.querySelector('[data-figure=\"{key}\"]').dataset.rendered === '{state}'", timeout=60_000
        )
        return element

    def plot_points(self, key: str) -> dict[str, int]:
        """Scrolls a plot into view, waits for plotly, and counts each trace's points."""
        element = self.render(key)
        return element.evaluate("gd => Object.fromEntries(gd.data.map(t => [t.name, t.x.length]))")

    def close(self) -> None:
        self.context.close()
