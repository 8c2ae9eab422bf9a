"""The DCN's figures read back: a run's layer statistics without the panels that are 0 by
design, and a sweep's layer statistics by group, weight distributions and train/test
curves — what the course asks about Xavier against PyTorch's default initialisation."""

import numpy as np
import pytest

import nnlab
from nnlab.figures import plots
from nnlab.models.dcn import figures as dcn_figures
from nnlab.runfolder.records import read_metrics
from tests.conftest import CONFIGS


@pytest.fixture
def kept(monkeypatch):
    """The figures nnlab saves, kept open by file name."""
    seen = {}

    def save(fig, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        seen[path.name] = fig
        return path

    monkeypatch.setattr(plots, "_save", save)
    monkeypatch.setattr(dcn_figures, "_save", save)
    yield seen
    plots._pyplot().close("all")


def _stats_csv(path, zero_min=True):
    rows = ["step,layer,quantity,min,max,mean,std"]
    for step in (0, 10, 20):
        for layer in ("conv1", "fc1"):
            rows.append(f"{step},{layer},weights,-0.1,0.1,0.001,{0.05 + step / 1000}")
            rows.append(f"{step},{layer},activation,{0.0 if zero_min else 0.01},1.5,0.2,0.3")
            if layer == "conv1":
                rows.append(f"{step},{layer},pool,0.0,1.5,0.3,0.3")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_panels_that_are_0_at_every_step_are_left_out_and_named(tmp_path, kept):
    dcn_figures.layer_stats(_stats_csv(tmp_path / "stats.csv"), tmp_path / "ls.png", "run")
    fig = kept["ls.png"]
    assert [ax.get_title() for ax in fig.axes] == [
        "weights: min", "weights: max", "weights: mean", "weights: std",
        "activation: max", "activation: mean", "activation: std",
        "pool: max", "pool: mean", "pool: std",
    ]  # fmt: skip
    assert fig._suptitle.get_text().endswith(
        "not drawn, 0 at every step for every layer: activation min, pool min"
    )
    # the row's three panels share its width: as wide as four and a third panels' worth
    widths = [ax.get_subplotspec().colspan for ax in fig.axes]
    assert len(widths[4]) == len(widths[0]) * 4 // 3
    # a minimum that is not 0 everywhere keeps its panel
    dcn_figures.layer_stats(_stats_csv(tmp_path / "s2.csv", zero_min=False),
                            tmp_path / "ls2.png", "run")  # fmt: skip
    titles = [ax.get_title() for ax in kept["ls2.png"].axes]
    assert "activation: min" in titles and "pool: min" not in titles


@pytest.mark.slow
def test_a_dcn_sweep_shows_train_loss_layer_statistics_and_weights_by_group(tmp_path, kept):
    path = tmp_path / "init.yaml"
    path.write_text(
        f"sweep:\n  name: init\n  base: {CONFIGS / 'digits_dcn.yaml'}\n"
        "  grid:\n    model.init: [default, xavier]\n  seeds: [0, 1]\n"
    )
    sets = {"model.conv_channels": [4, 8], "model.fc_units": 64, "train.epochs": 1,
            "train.log_every": 5, "train.eval_every": 10, "train.stats_every": 5,
            "train.tensorboard": False}  # fmt: skip
    done = nnlab.sweep(path, sets, runs_dir=tmp_path / "runs", jobs=2)
    made = sorted(p.name for p in (done.path / "plots").iterdir())
    assert made == ["accuracy.png", "layer_stats_groups.png", "loss.png",
                    "weight_histograms.png"]  # fmt: skip
    loss = kept["loss.png"]
    assert [ax.get_title() for ax in loss.axes] == ["train loss", "validation loss", "test loss"]
    labels = [ln.get_label() for ln in loss.axes[0].get_lines()]
    assert labels == ["init=default (n=2)", "init=xavier (n=2)"]

    stats = kept["layer_stats_groups.png"]
    titles = [ax.get_title() for ax in stats.axes]
    assert titles == [f"{layer}: {q} std" for q in ("weights", "net input")
                      for layer in ("conv1", "conv2", "fc1", "fc2")]  # fmt: skip
    fc1 = stats.axes[2]
    default, xavier = fc1.get_lines()
    assert (default.get_label(), xavier.get_label()) == ("init=default (n=2)", "init=xavier (n=2)")
    assert default.get_xdata()[0] == 0  # step 0: the initial weights
    # Xavier's fc1 weights start about 2.4 times as spread as PyTorch's default (models.md)
    assert 2.0 < xavier.get_ydata()[0] / default.get_ydata()[0] < 2.8
    assert stats.axes[3].get_legend().get_title().get_text() == plots.BAND_NOTE

    hist = kept["weight_histograms.png"]
    assert [ax.get_title() for ax in hist.axes] == [
        f"{layer}: weights (final)" for layer in ("conv1", "conv2", "fc1", "fc2")
    ]
    names = [p.get_label() for p in hist.axes[2].patches]
    assert names == ["init=default (2 seeds pooled)", "init=xavier (2 seeds pooled)"]

    nnlab_report(done.path)
    report = (done.path / "report.md").read_text()
    assert "(plots/layer_stats_groups.png)" in report and "(plots/weight_histograms.png)" in report
    rows = read_metrics(next(done.path.glob("jobs/*/attempt-1/metrics.csv")))
    train = [r["step"] for r in rows if "train_loss" in r]
    assert list(loss.axes[0].get_lines()[0].get_xdata()) == train  # every training row


def nnlab_report(folder):
    from nnlab.reports.report import write_report

    write_report(folder)


@pytest.mark.slow
def test_a_dcn_searchs_layer_statistics_show_its_best_trials_labelled_as_its_curves(tmp_path, kept):
    import json

    path = tmp_path / "search.yaml"
    path.write_text(
        f"sweep:\n  name: s\n  base: {CONFIGS / 'digits_dcn.yaml'}\n"
        "  search: {method: random, trials: 10, metric: val_loss, direction: minimize, seed: 0}\n"
        "  params:\n    train.epsilon: {low: 1.0e-4, high: 1.0e-2, log: true}\n"
    )
    sets = {"model.conv_channels": [2, 4], "model.fc_units": 16, "train.epochs": 1,
            "train.log_every": 10, "train.eval_every": 20, "train.stats_every": 10,
            "train.tensorboard": False}  # fmt: skip
    done = nnlab.sweep(path, sets, runs_dir=tmp_path / "runs", jobs=2)
    state = json.loads((done.path / "state.json").read_text())
    losses = {int(k.split("-")[1]): j["final"]["val_loss"] for k, j in state["jobs"].items()}
    best = sorted(losses, key=losses.get)[:8]
    stats = kept["layer_stats_groups.png"]
    assert stats._suptitle.get_text().endswith("— the 8 best of 10 trials")
    labels = [ln.get_label() for ln in stats.axes[0].get_lines()]
    assert [int(label.split(":")[0].removeprefix("trial ")) for label in labels] == sorted(best)
    curves = {ln.get_label() for ax in kept["loss.png"].axes for ln in ax.get_lines()}
    # the same names as the loss curves' (a panel per trial: 'trial 2: …: train loss')
    assert all(any(c.startswith(f"{label}: ") for c in curves) for label in labels)


def test_weight_histograms_of_a_layer_with_one_value_everywhere_draw_a_bin_around_it(
    tmp_path, kept
):
    import torch

    groups = []
    for label, scale in (("init=zeros", 0.0), ("init=default", 0.1)):
        folder = tmp_path / label
        folder.mkdir()
        state = {"conv1.weight": torch.zeros(4, 1, 3, 3),  # every weight 0 in both groups
                 "fc1.weight": torch.randn(16, 8) * scale + 1.0}  # fmt: skip
        torch.save(state, folder / "model.pt")
        groups.append((label, [folder]))
    dcn_figures.weight_histograms(groups, tmp_path / "wh.png", "sweep")
    fig = kept["wh.png"]
    conv, fc = fig.axes[:2]
    assert conv.get_title() == "conv1: weights (final)"
    # a bin around the one value: finite heights, not zero-width bins' 0/0 (NaN, nothing drawn)
    assert len(conv.patches) == 2 and fc.get_title() == "fc1: weights (final)"
    for patch in conv.patches:
        xy = patch.get_xy()
        assert np.isfinite(xy).all() and xy[:, 1].max() > 0
        assert xy[:, 0].min() < 0 < xy[:, 0].max()


def test_a_sweeps_layer_statistics_leave_out_a_cut_short_stats_csv_with_a_note(tmp_path, kept):
    from nnlab.errors import FigureNote

    good = _stats_csv(tmp_path / "good.csv")
    cut = _stats_csv(tmp_path / "cut.csv")
    cut.write_text(cut.read_text()[:-20])  # the last row cut short, as by a kill
    with pytest.warns(FigureNote, match="cut.csv"):
        made = dcn_figures.sweep_layer_stats(
            [("init=default", [good]), ("init=xavier", [cut])], tmp_path / "g.png", "s"
        )
    assert made is not None
    labels = {ln.get_label() for ax in kept["g.png"].axes for ln in ax.get_lines()}
    assert labels == {"init=default"}
