"""`sweep run --report PATH`: the page kept current while the study runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from report_studies import figures_of, make_study
from results.report.live_page import LiveReport
from results.store.result_store import ResultStore
from sweeps.config import RunConfig
from sweep_runner.cli import main


def _epoch(epoch: int) -> dict[str, float]:
    return {"epoch": epoch, "loss": 1.0, "acc": 0.5, "val_loss": 1.1, "val_acc": 0.4 + 0.1 * epoch, "lr": 1e-3,
            "seconds": 1.0, "images_per_second": 100.0}


def _points(page: str, run_id: int) -> int:
    figure = figures_of(page).get(f"run-{run_id}")
    return 0 if figure is None else next(len(t["x"]) for t in figure["data"] if t["name"] == "val_acc")


@pytest.mark.timeout(120)
def test_live_page_is_rewritten_when_epochs_arrive_and_stops_reloading_at_the_end(
    study_url: str, tmp_path: Path
) -> None:
    make_study(study_url, "live", epochs=3)
    path = tmp_path / "live.html"
    with ResultStore(study_url) as store:
        config = RunConfig(dataset="digits", depth=11, epochs=5)
        run_id = store.register_run("live", config.run_key, label="running", comment=None,
                                    config=config.model_dump(mode="json"))
        store.claim_run(run_id, worker="w", host="h", stale_after=60, max_attempts=3)
        live = LiveReport(store, "live", path, min_interval=0, busy_factor=0)
        assert live.poll()
        page = path.read_text(encoding="utf-8")
        assert 'data-reload="15"' in page and 'id="pause-reload"' in page and _points(page, run_id) == 0
        stamp = path.stat().st_mtime_ns
        assert not live.poll() and path.stat().st_mtime_ns == stamp  # nothing new: not rewritten
        store.record_epoch(run_id, _epoch(1))
        store.record_epoch(run_id, _epoch(2))
        paced = LiveReport(store, "live", tmp_path / "paced.html", min_interval=3600, busy_factor=0)
        assert paced.poll()
        live.busy_factor = 1e9  # after this write, wait a billion times as long as it took
        assert live.poll()
        assert _points(path.read_text(encoding="utf-8"), run_id) == 2
        # A fast study: a change waits for min_interval, or for the last build's time
        # times busy_factor (a page of hundreds of runs), whichever is longer.
        store.record_epoch(run_id, _epoch(3))
        assert not live.poll() and _points(path.read_text(encoding="utf-8"), run_id) == 2
        assert not paced.poll()
        store.finish_run(run_id, "complete")
        assert live.finish()
    page = path.read_text(encoding="utf-8")
    assert "data-reload" not in page and 'id="pause-reload"' not in page and _points(page, run_id) == 3
    assert live.writes == 3 and paced.writes == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


@pytest.mark.timeout(120)
def test_a_page_that_cannot_be_written_does_not_stop_the_sweep(
    study_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_study(study_url, "gone", epochs=2)
    folder = tmp_path / "pages"
    folder.mkdir()
    with ResultStore(study_url) as store:
        live = LiveReport(store, "gone", folder / "page.html", min_interval=0, busy_factor=0)
        folder.rmdir()  # the folder went away mid-sweep
        with caplog.at_level(logging.WARNING, logger="results.report.live_page"):
            assert not live.poll()
            assert not live.poll()
            assert not live.finish()
        assert len(caplog.records) == 1
        assert caplog.records[0].getMessage().startswith(f"--report {folder / 'page.html'}: not written (")
        folder.mkdir()
        assert live.finish() and (folder / "page.html").exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("report", "message"),
    [
        ("page.txt", "--report {p}: must be an .html file (the page is written over it)"),
        ("missing/page.html", "--report {p}: folder {d}/missing does not exist"),
    ],
)
def test_run_refuses_a_bad_report_path_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture, report: str, message: str
) -> None:
    sweep = tmp_path / "s.toml"
    sweep.write_text('[train]\ndataset = "digits"\ndepth = 11\nepochs = 1\n', encoding="utf-8")
    target = str(tmp_path / report)
    code = main(["run", str(sweep), "--storage", f"sqlite:///{tmp_path / 'sweeps.db'}", "--report", target])
    assert code == 2
    assert capsys.readouterr().err == message.format(p=target, d=tmp_path.resolve()) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


@pytest.mark.long
@pytest.mark.timeout(300)
def test_sweep_run_report_is_live_while_training_and_final_after(trained_study: dict[str, Any]) -> None:
    assert trained_study["returncode"] == 0, trained_study["stderr"]
    assert f"report: {trained_study['report']}" in trained_study["stderr"]
    snapshots = trained_study["snapshots"]
    # Written at once (no epochs yet), rewritten after an epoch arrived while the run
    # went on, and last without the reload.
    assert snapshots[0] == (True, 0)
    assert any(reloads and 1 <= points for reloads, points in snapshots[:-1]), snapshots
    assert all(reloads for reloads, _ in snapshots[:-1])
    assert snapshots[-1] == (False, 2)
