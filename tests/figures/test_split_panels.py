"""A sweep's curves show training beside held-out data — a panel per split, train first —
with plain-number ticks on their log axes; decision-boundary strips wrap to rows."""

import re

import numpy as np
import pytest

import nnlab
from nnlab.figures import plots
from tests.conftest import CONFIGS
from tests.figures.test_grouped_figures import _lines_and_bands, figures  # noqa: F401


def _seeds(offset: float, n: int = 3) -> list[list[dict]]:
    """n seeds of a DCN's rows: train every 10 steps, validation and test every 20."""
    runs = []
    for seed in range(n):
        rows = []
        for step in range(10, 110, 10):
            loss = (0.9 + offset) * np.exp(-step / 40) + 0.03 + 0.005 * seed
            row = {"step": step, "train_loss": loss, "train_acc": 1 - loss / 2}
            if step % 20 == 0:
                row |= {"val_loss": loss * 1.2, "val_acc": 1 - loss / 1.5}
                row |= {"test_loss": loss * 1.3, "test_acc": 1 - loss / 1.4}
            rows.append(row)
        runs.append(rows)
    return runs


GROUPS = [("init=default", _seeds(0.0)), ("init=xavier", _seeds(0.3))]


def _tick_texts(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels(which="both") if t.get_text()]


def test_a_panel_per_split_train_first_on_one_plain_log_scale():
    fig = plots.grouped_figure(GROUPS, ["test_loss", "val_loss", "train_loss"], "loss")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["train loss", "validation loss", "test loss"]
    for ax in axes:
        lines, bands = _lines_and_bands(ax)
        assert [ln.get_label() for ln in lines] == ["init=default (n=3)", "init=xavier (n=3)"]
        assert len(bands) == 2 and ax.get_yscale() == "log"
    assert axes[0].get_shared_y_axes().joined(axes[0], axes[2])  # one scale to compare on
    train = _lines_and_bands(axes[0])[0][0]
    assert list(train.get_xdata()) == list(range(10, 110, 10))
    assert list(_lines_and_bands(axes[2])[0][0].get_xdata()) == list(range(20, 110, 20))
    assert axes[-1].get_legend().get_title().get_text() == plots.BAND_NOTE
    fig.canvas.draw()
    labels = _tick_texts(axes[0].yaxis)
    assert labels and all(re.fullmatch(r"\d+(\.\d+)?", t) for t in labels), labels
    assert "0.1" in labels and "1" in labels
    plots._pyplot().close(fig)


def test_log_axes_label_ticks_in_plain_numbers_even_within_a_decade():
    runs = [[{"step": s, "train_loss": 0.6 - s / 1000} for s in range(0, 300, 10)]]
    fig = plots.grouped_figure([("one", runs)], ["train_loss"], "within a decade")
    fig.canvas.draw()
    labels = _tick_texts(fig.axes[0].yaxis)
    assert labels and not any("10" in t and "^" in t or "×" in t or "$" in t for t in labels)
    assert {"0.4", "0.6"} <= set(labels)  # was 4×10⁻¹, 6×10⁻¹
    plots._pyplot().close(fig)


def test_past_nine_groups_each_panel_draws_its_splits_in_line_styles():
    groups = [(f"units={u}", _seeds(u / 10, n=2)) for u in range(10)]
    fig = plots.grouped_figure(groups, ["test_loss", "train_loss"], "ten")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 10
    own, _ = _lines_and_bands(panels[3])
    assert [(ln.get_label(), ln.get_linestyle()) for ln in own] == [
        ("units=3: train loss (n=2)", "--"),
        ("units=3: test loss (n=2)", "-"),
    ]
    assert "train loss dashed, test loss solid" in fig._suptitle.get_text()
    plots._pyplot().close(fig)


@pytest.mark.slow
def test_a_five_panel_strip_of_decision_boundaries_wraps_three_to_a_row(tmp_path, figures):  # noqa: F811
    sets = {"train.iterations": 30, "train.log_every": 10}
    nnlab.sweep(CONFIGS / "sweeps" / "moons_hidden_units.yaml", sets,
                runs_dir=tmp_path, jobs=2)  # fmt: skip
    fig = figures["decision_boundaries.png"]
    shown = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title().splitlines()[0] for ax in shown] == [
        f"[2, {u}, 2] tanh" for u in (3, 5, 10, 20, 50)
    ]
    places = [(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start)
              for ax in shown]  # fmt: skip
    assert places == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    width, height = fig.get_size_inches()
    assert width / 3 >= 4.5 and height / 2 >= 3.8  # each panel as large as a small figure


@pytest.mark.slow
def test_a_key_every_job_shares_is_said_once_in_the_title_not_in_each_legend_entry(
    tmp_path,
    figures,  # noqa: F811
):
    path = tmp_path / "s.yaml"
    path.write_text(
        f"sweep:\n  name: shared\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.layers: [[2, 3, 2], [2, 5, 2]]\n    train.log_schedule: [log]\n"
        "  table: {rows: model.activation, cols: model.layers, value: train_acc}\n"
    )
    nnlab.sweep(path, {"train.iterations": 200, "train.log_every": 100}, runs_dir=tmp_path, jobs=2)
    ax = figures["loss.png"].axes[0]
    assert ax.get_title() == "loss — sweep shared (log_schedule=log)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["layers=2-3-2", "layers=2-5-2"]
    assert ax.get_xscale() == "symlog"  # every job logs at log-spaced steps
    steps = sorted({round(x) for line in ax.get_lines() for x in line.get_xdata()})
    assert steps[:6] == [0, 1, 2, 3, 5, 7]  # the learning phase's rows
