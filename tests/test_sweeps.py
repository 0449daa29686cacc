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
