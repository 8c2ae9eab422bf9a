"""One rule for every figure's ticks (nnlab.figures.axes.tick_values) and one way to write
them (plain_number), used by the curves' log axes, the search history's log axis and the
parallel-coordinates axes: read back from the figures they draw."""

from __future__ import annotations

import pytest

from nnlab.figures import plots
from nnlab.figures.axes import plain_number, tick_values
from nnlab.figures.parallel import parallel_coordinates
from nnlab.figures.search import optimisation_history
from nnlab.figures.trials import TrialRecord
from tests.figures.test_search_plots import _axis_ticks, figures  # noqa: F401


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [(10000.0, 6, "10000"), (1e-5, 6, "0.00001"), (0.6, 6, "0.6"), (2.0, 6, "2"),
     (0.30000000000000004, 6, "0.3"), (0.0123456, 3, "0.0123"), (123456.0, 3, "123000")],
)  # fmt: skip
def test_plain_number_never_writes_an_exponent(value, digits, text):
    assert plain_number(value, digits) == text


def test_the_tick_rule():
    # up to four decades (by default): 1, 2 and 5 times the powers of ten
    assert tick_values(1e-4, 0.3, log=True) == pytest.approx(
        [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2]
    )
    # past them, the powers alone; past a dozen decades, every other one or fewer
    assert tick_values(100, 1e7, log=True) == pytest.approx([1e2, 1e3, 1e4, 1e5, 1e6, 1e7])
    assert tick_values(100, 1e7, log=True, decades=6) == pytest.approx(
        [1e2, 2e2, 5e2, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7]
    )
    assert len(tick_values(1e-20, 1.0, log=True)) <= 13
    # within a decade, every whole multiple; narrower still, linear steps
    assert tick_values(0.3, 0.6, log=True) == pytest.approx([0.3, 0.4, 0.5, 0.6])
    assert tick_values(0.51, 0.53, log=True) == pytest.approx([0.51, 0.515, 0.52, 0.525, 0.53])
    # linear: matplotlib's nice steps, whole numbers for an integer param
    assert tick_values(0, 0.95) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8])
    assert tick_values(1, 4, integer=True) == [1, 2, 3, 4]
    # ends: lo and hi join when fewer than three ticks fall inside
    assert tick_values(0.011, 0.03, log=True) == pytest.approx([0.02, 0.03])
    assert tick_values(0.011, 0.03, log=True, ends=True) == pytest.approx([0.011, 0.02, 0.03])
    assert tick_values(1.0, 0.5) == [] and tick_values(0.0, float("inf")) == []
    # one value: itself; a span whose ratio overflows a float still gets its powers
    assert tick_values(1.0, 1.0) == [1.0] and tick_values(0.0, 0.0, log=True) == [0.0]
    huge = tick_values(1e-300, 1e300, log=True)
    assert huge[0] == 1e-300 and huge[-1] == 1e300 and len(huge) <= 13


def test_the_parallel_axes_write_ticks_plainly(tmp_path, figures):  # noqa: F811
    """A param searched over 100..10^7 (five decades: the powers alone) is labelled 10000,
    not 1e+04 as the '.3g' format it used to have wrote."""
    trials = [
        TrialRecord(i, {"train.batch": b}, "completed", v)
        for i, (b, v) in enumerate([(100, 0.3), (3000, 0.2), (10_000_000, 0.1)])
    ]
    parallel_coordinates(trials, "val_loss", "minimize", tmp_path / "p.png", "t")
    ax = next(iter(figures.values())).axes[0]
    assert _axis_ticks(ax, 0) == ["100", "1000", "10000", "100000", "1000000", "10000000"]
    assert not any("e+" in t or "e-" in t for x in (0, 1) for t in _axis_ticks(ax, x))


def test_the_history_and_the_curves_tick_their_log_axes_by_the_rule(tmp_path, figures):  # noqa: F811
    """The history's log axis (up to four decades at 1, 2, 5 × 10ⁿ) and a curve's (up to
    two) carry exactly the ticks of tick_values over their view, written plainly."""
    values = [0.012, 0.011, 5.0, 0.03, 0.0105]
    trials = [TrialRecord(i, {"lr": 0.1}, "completed", v) for i, v in enumerate(values)]
    optimisation_history(trials, "val_loss", "minimize", tmp_path / "h.png", "t")
    ax = next(iter(figures.values())).axes[0]
    lo, hi = ax.get_ylim()
    expected = tick_values(lo, hi, log=True, decades=4)
    assert list(ax.yaxis.get_majorticklocs()) == pytest.approx(expected)
    assert [t.get_text() for t in ax.get_yticklabels()] == [plain_number(v) for v in expected]
    assert {"0.01", "0.02", "0.05", "5"} <= {t.get_text() for t in ax.get_yticklabels()}

    rows = [[{"step": s, "train_loss": 2.0 * 0.97**s} for s in range(0, 200, 10)]]
    fig = plots.grouped_figure([("one", rows)], ["train_loss"], "curves")
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert hi / lo > 100  # beyond two decades: the powers alone
    expected = tick_values(lo, hi, log=True, decades=2)
    assert list(ax.yaxis.get_majorticklocs()) == pytest.approx(expected)
    assert all(plain_number(v) in ("0.01", "0.1", "1") for v in expected)
    labels = {t.get_text() for t in ax.get_yticklabels() if t.get_text()}
    assert labels == {plain_number(v) for v in expected}
    assert not {t.get_text() for t in ax.get_yticklabels(minor=True) if t.get_text()}
    plots._pyplot().close(fig)
