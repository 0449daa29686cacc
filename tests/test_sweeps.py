from dataclasses import asdict, replace

import pytest

from helpers.plots import plot_sweep
from helpers.profiles import get_profile
from helpers.sweeps import SweepRun, base_config, conclude, load, save, sweeps


def _differences(a, b) -> set[str]:
    return {k for k, v in asdict(a).items() if asdict(b)[k] != v}


@pytest.mark.parametrize("name", ["smoke", "default", "gpu"])
def test_each_sweep_changes_only_its_own_setting(name):
    profile = get_profile(name)
    base = base_config(profile)
    allowed = {"rank (alpha = 2r)": {"r", "alpha"}, "rank (alpha = 32)": {"r"}, "learning rate": {"learning_rate"},
               "target modules": {"target_modules"}, "dropout": {"dropout"},
               "batch x accumulation": {"batch_size", "grad_accum"}, "epochs": {"epochs", "n_train", "eval_steps", "save_steps",
                                                                           "learning_rate"}}
    plan = sweeps(profile)
    assert set(plan) == set(allowed)
    for sweep, runs in plan.items():
        assert len(runs) >= (1 if sweep == "epochs" else 2)
        for _, config in runs:
            assert _differences(config, base) <= allowed[sweep], (sweep, _differences(config, base))
            assert config.batch_size * config.grad_accum == base.batch_size  # effective batch held fixed
    epochs = plan["epochs"][0][1]
    assert epochs.eval_steps == max(1, epochs.n_train // epochs.batch_size // 2)  # every half epoch (or step)
    assert epochs.n_train <= base.n_train and epochs.epochs > base.epochs  # few examples, many passes


def _run(sweep, label, curve, **kw):
    return SweepRun(sweep=sweep, label=label, config={}, val_curve=curve, final_val_loss=curve[-1][1],
                     best_val_loss=min(v for _, v in curve[1:]),
                     best_epoch=min(curve[1:], key=lambda p: p[1])[0], seconds=10.0, train_tokens=100,
                     tokens_per_s=10.0, trainable=kw.pop("trainable", 1_000_000), **kw)


def test_conclusions_come_from_the_numbers(tmp_path):
    overfit = _run("epochs", "4 epochs", [(0, 3.0), (0.5, 2.0), (1.0, 1.5), (1.5, 1.6), (2.0, 1.9)])
    text = conclude([overfit], "epochs")
    assert "1.5000, at epoch 1" in text and "rose to 1.9000" in text and "keep the best checkpoint" in text
    still = replace(overfit, val_curve=[(0, 3.0), (1, 2.0), (2, 1.0)], best_val_loss=1.0, best_epoch=2)
    assert "last checkpoint is the best" in conclude([still], "epochs")
    ranks = [_run("rank (alpha = 2r)", "r=4", [(0, 3), (1, 1.2)], trainable=460_800),
             _run("rank (alpha = 2r)", "r=64", [(0, 3), (1, 1.1)], trainable=7_372_800)]
    text = conclude(ranks, "rank (alpha = 2r)")
    assert text.startswith("rank (alpha = 2r): best r=64 (validation loss 1.1000), worst r=4 (1.2000)")
    assert "0.46-7.37 M" in text and conclude(ranks, "dropout") == "dropout: not run."
    assert [r.label for r in load(save(ranks + [overfit], "smoke", tmp_path / "s.json"))] == ["r=4", "r=64", "4 epochs"]


def test_plots_draw_every_run():
    import matplotlib

    matplotlib.use("Agg")
    runs = [_run("dropout", f"{d}", [(0, 3), (1, 1 + d)]) for d in (0.0, 0.1, 0.3)]
    ax = plot_sweep(runs, "dropout")
    assert len(ax.patches) == 3
    ax = plot_sweep([_run("epochs", "2 epochs", [(0, 3), (1, 2), (2, 2.5)],
                          extra={"train_curve": [(0.5, 2.9), (1, 2.1), (1.5, 1.4), (2, 0.9)]})], "epochs")
    assert len(ax.lines[0].get_xdata()) == 3 and list(ax.lines[1].get_ydata()) == [2.9, 2.1, 1.4, 0.9]
    with pytest.raises(ValueError, match="no results"):
        plot_sweep(runs, "learning rate")


def _gpu(sweep, label, mae, **kw):
    return {"sweep": sweep, "label": label, "val_mae": mae, "val_mae_ci95": [mae - 10, mae + 10], **kw}


GPU_ROWS = [_gpu("noise (seed)", "seed 42", 168.0), _gpu("noise (seed)", "seed 43", 170.0),
            _gpu("rank (alpha = 2r)", "r=4", 185.0), _gpu("rank (alpha = 2r)", "r=16", 168.0),
            _gpu("rank (alpha = 2r)", "r=64", 161.0),
            _gpu("rank (alpha = 32)", "r=4", 167.5), _gpu("rank (alpha = 32)", "r=64", 168.5),
            _gpu("epochs", "3 epochs", 158.0, by_epoch=[{"epoch": 1.0, "val_mae": 164.0},
                                                        {"epoch": 2.0, "val_mae": 158.0},
                                                        {"epoch": 3.0, "val_mae": 159.0}])]


def test_gpu_sweeps_are_read_against_the_seed_noise(tmp_path):
    import json

    from helpers.sweeps import compare_cpu_gpu, conclude_gpu, load_gpu_sweep, seed_noise

    assert seed_noise(GPU_ROWS) == 2.0 and seed_noise(GPU_ROWS[2:]) is None
    text = conclude_gpu(GPU_ROWS, "rank (alpha = 2r)")
    assert text.startswith("rank (alpha = 2r): best r=64 (validation MAE $161.00), worst r=4 ($185.00)")
    assert "a spread of $24.00, 12.0x the seed noise ($2.00)" in text
    assert "epoch 2: $158.00" in conclude_gpu(GPU_ROWS, "epochs") and "the best is epoch 2, $1.00 below" in \
        conclude_gpu(GPU_ROWS, "epochs")
    assert conclude_gpu(GPU_ROWS, "dropout") == "dropout: not in this results file."
    # CPU: the largest rank wins under both alphas, and the last epoch is the best
    cpu = [_run("rank (alpha = 2r)", "r=4", [(0, 3), (1, 1.2)]), _run("rank (alpha = 2r)", "r=64", [(0, 3), (1, 1.1)]),
           _run("rank (alpha = 32)", "r=4", [(0, 3), (1, 1.2)]), _run("rank (alpha = 32)", "r=64", [(0, 3), (1, 1.1)]),
           _run("epochs", "8 epochs", [(0, 3), (1, 2), (2, 1)])]
    assert compare_cpu_gpu(cpu, GPU_ROWS, "rank (alpha = 2r)").endswith(
        "CPU best r=64 (the largest); GPU best r=64 (the largest): agree.")
    within = compare_cpu_gpu(cpu, GPU_ROWS, "rank (alpha = 32)")
    assert "within the seed noise ($2.00): no winner there" in within  # a $1.00 spread is not a winner
    assert "DISAGREE" in compare_cpu_gpu(cpu, GPU_ROWS, "epochs")  # CPU: last point; GPU: epoch 2
    assert compare_cpu_gpu(cpu, GPU_ROWS, "learning rate") == "learning rate: not run on both."
    close = GPU_ROWS + [_gpu("learning rate", "4e-4", 180.0), _gpu("learning rate", "1.6e-3", 168.0),
                        _gpu("learning rate", "3.2e-3", 169.0)]
    cpu_lr = [_run("learning rate", "1e-4", [(0, 3), (1, 2.0)]), _run("learning rate", "3e-3", [(0, 3), (1, 1.0)])]
    assert compare_cpu_gpu(cpu_lr, close, "learning rate").endswith(
        "GPU best 1.6e-3 (a middle value, with 3.2e-3 within the seed noise of it): DISAGREE.")
    path = tmp_path / "sweep_mae.json"
    path.write_text(json.dumps(GPU_ROWS))
    assert load_gpu_sweep(path) == GPU_ROWS
    path.write_text(json.dumps([{"label": "r=4", "val_loss": 1.0}]))
    with pytest.raises(ValueError, match="not a benchmarks/sweep_mae.py results file"):
        load_gpu_sweep(path)


def test_the_committed_gpu_sweep_has_every_sweep_the_notebook_reads():
    from helpers.sweeps import GPU_SWEEP_ORDER, GPU_SWEEP_RESULTS, load_gpu_sweep

    rows = load_gpu_sweep(GPU_SWEEP_RESULTS)
    assert set(GPU_SWEEP_ORDER) | {"noise (seed)", "constant"} <= {r["sweep"] for r in rows}
    assert all(r["val_items"] == 500 for r in rows)  # every run scored on the same validation items


def test_gpu_sweep_plot_draws_bars_and_the_epoch_curve():
    import matplotlib

    matplotlib.use("Agg")
    from helpers.plots import plot_gpu_sweep

    ax = plot_gpu_sweep(GPU_ROWS, "rank (alpha = 2r)")
    assert len(ax.patches) >= 3 and "seed noise $2.00" in [t.get_text() for t in ax.get_legend().get_texts()]
    ax = plot_gpu_sweep(GPU_ROWS, "epochs")
    assert list(ax.lines[0].get_ydata()) == [164.0, 158.0, 159.0]
    with pytest.raises(ValueError, match="no GPU results"):
        plot_gpu_sweep(GPU_ROWS, "dropout")


def test_run_sweeps_trains_a_shared_configuration_once_and_counts_trainings(monkeypatch, capsys):
    """The progress line counts trainings (a shared configuration is one), and every sweep still gets its row."""
    import helpers.sweeps as sweeps_module

    profile = get_profile("smoke")
    trained = []

    def fake_run_one(profile, sweep, label, config, data, workdir):
        trained.append((sweep, label))
        return replace(_run(sweep, label, [(0.0, 3.0), (1.0, 2.0 + len(trained))]), config=asdict(config))

    monkeypatch.setattr(sweeps_module, "lab_data", lambda profile: None)
    monkeypatch.setattr(sweeps_module, "run_one", fake_run_one)
    results = sweeps_module.run_sweeps(profile, ["rank (alpha = 2r)", "target modules"])
    plan = sweeps(profile)
    rows = len(plan["rank (alpha = 2r)"]) + len(plan["target modules"])
    assert len(results) == rows
    assert len(trained) < rows  # the base configuration sits in both sweeps and trains once
    assert sweeps_module.distinct_runs(results) == len(trained)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[run ")]
    assert len(lines) == len(trained)
    assert lines[0].startswith(f"[run 1/{len(trained)}]") and lines[-1].startswith(f"[run {len(trained)}/{len(trained)}]")
    assert {r.sweep for r in results} == {"rank (alpha = 2r)", "target modules"}


def test_a_sweep_run_shows_no_progress_bar_in_a_notebook():
    """The Trainer adds an HTML progress table per run in Jupyter (42 of them once filled notebook 09's outputs)."""
    from transformers.trainer_callback import CallbackHandler, PrinterCallback, ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    from helpers.sweeps import quiet_progress

    class FakeTrainer:
        def __init__(self):
            self.callback_handler = CallbackHandler([NotebookProgressCallback(), ProgressCallback(), PrinterCallback()],
                                                    None, None, None, None)

        def remove_callback(self, callback):
            self.callback_handler.remove_callback(callback)

    trainer = quiet_progress(FakeTrainer())
    assert [type(c).__name__ for c in trainer.callback_handler.callbacks] == ["PrinterCallback"]
