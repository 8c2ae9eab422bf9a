"""report.html as an explorer, driven in Chromium: the legend hides and isolates lines, a
dragged box zooms, the buttons switch an axis to log, the slider smooths, the filter hides runs,
the layer statistics of a DCN sweep are drawn, a search's parallel coordinates use its
space's scales and the PNG's colour direction — with no request leaving the page and no
console error."""

import json
import re
import shutil

import pytest

import nnlab
from nnlab.reports.explore import html_block, parallel_data, sweep_data
from nnlab.reports.report import write_report
from tests.conftest import CONFIGS, small_mnist
from tests.reports.browser import CHROMIUM, SKIP_REASON, launch, needs_chromium

QUICK = {"train.iterations": 300, "train.log_every": 20}


def test_a_search_param_sampled_uniformly_gets_a_linear_axis_and_a_missing_one_is_unset():
    jobs = [
        ("trial-0000", {"train.epsilon": 0.001, "train.momentum": 0.001}, {"val_loss": 0.5}),
        ("trial-0001", {"train.epsilon": 0.1, "train.momentum": 0.9}, {"val_loss": 0.2}),
        ("trial-0002", {"train.epsilon": 0.01}, {"val_loss": 0.3}),
    ]
    guessed = parallel_data(jobs, "val_loss")  # a grid's: log where two decades or more
    assert [a["log"] for a in guessed["axes"]] == [True, True, True]  # a loss: log, as the PNG
    space = {"train.epsilon": "log", "train.momentum": "linear"}
    data = parallel_data(jobs, "val_loss", space, "low")
    assert [a["key"] for a in data["axes"]][:2] == ["train.epsilon", "train.momentum"]
    assert [a["log"] for a in data["axes"]] == [True, False, True]
    assert [a["unset"] for a in data["axes"]] == [False, True, False]
    assert data["lines"][2]["values"][1] is None and data["better"] == "low"
    assert parallel_data(jobs, "val_acc") is None  # no job has it
    assert parallel_data([(j, o, {"val_acc": 0.9}) for j, o, _ in jobs], "val_acc")["better"] == (
        "high"
    )


def test_the_metric_axis_is_log_for_a_positive_loss_only_and_a_choice_is_categorical():
    finals = [(8, 0.02, 0.9), (16, 0.5, 0.7), (32, 2.0, 0.4)]
    jobs = [(f"trial-{i}", {"model.width": w}, {"val_loss": loss, "val_acc": acc})
            for i, (w, loss, acc) in enumerate(finals)]  # fmt: skip
    metric = lambda data: data["axes"][-1]  # noqa: E731
    assert metric(parallel_data(jobs, "val_loss"))["log"] is True
    assert metric(parallel_data(jobs, "val_acc"))["log"] is False  # an accuracy: linear, percent
    zero = [(j, o, {"val_loss": 0.0 if j == "trial-0" else f["val_loss"]}) for j, o, f in jobs]
    assert metric(parallel_data(zero, "val_loss"))["log"] is False  # log needs positive values
    # a search's space in SearchSpec.info()'s words: numbers searched as choices, categorical
    axis = parallel_data(jobs, "val_loss", {"model.width": "categorical"})["axes"][0]
    assert axis["kind"] == "category" and axis["values"] == [8, 16, 32]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """A grid sweep of the MLP (three activations, two seeds), a DCN sweep of two
    initialisations that writes layer statistics, and a search of four trials."""
    root = tmp_path_factory.mktemp("explore")
    runs = root / "runs"
    grid = root / "grid.yaml"
    grid.write_text(
        f"sweep:\n  name: grid\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.activation: [tanh, relu, sigmoid]\n  seeds: [0, 1]\n"
        "  table: {rows: model.layers, cols: model.activation, value: train_acc}\n"
    )
    idx = small_mnist(root / "mnist")
    base = root / "dcn.yaml"
    base.write_text(
        "model: {kind: dcn, conv_channels: [4], fc_units: 16}\n"
        f"data: {{name: mnist, root: {idx}, val_size: 20}}\n"
        "train: {epochs: 1, stats_every: 2, log_every: 2, eval_every: 2}\n"
    )
    dcn = root / "dcn_sweep.yaml"
    dcn.write_text(
        f"sweep:\n  name: dcn\n  base: {base}\n  grid:\n    model.init: [default, xavier]\n"
        "  table: {rows: model.init, cols: model.init, value: test_acc}\n"
    )
    search = root / "search.yaml"
    search.write_text(
        f"sweep:\n  name: search\n  base: {CONFIGS / 'breast_cancer_val.yaml'}\n"
        "  search: {method: random, trials: 4, metric: val_loss, direction: minimize, seed: 0}\n"
        "  params:\n    train.epsilon: {low: 1.0e-3, high: 0.5, log: true}\n"
        "    train.momentum: {low: 0.0, high: 0.9}\n"
    )
    out = {
        "grid": nnlab.sweep(grid, overrides=QUICK, runs_dir=runs, jobs=2).path,
        "dcn": nnlab.sweep(dcn, runs_dir=runs, jobs=2).path,
        "search": nnlab.sweep(
            search, overrides={**QUICK, "train.optimizer": "sgd"}, runs_dir=runs, jobs=2
        ).path,
    }
    for path in out.values():
        write_report(path)
    return out


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip(SKIP_REASON)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    """Opens a report in a fresh page; on leaving, asserts that the page requested nothing
    but itself and logged no error."""
    opened = []

    def open_(path):
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        requests, errors = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        opened.append((page, path, requests, errors))
        return page

    yield open_
    for page, path, requests, errors in opened:
        page.close()
        assert errors == []
        assert requests == [path.as_uri()]  # the page itself; nothing leaves it


def _names(page, chart="svg.curves[data-chart='0']"):
    return page.eval_on_selector_all(f"{chart} polyline.line", "a => a.map(n => n.dataset.name)")


def _domain(page, axis, chart="svg.curves[data-chart='0']"):
    return [float(v) for v in page.get_attribute(chart, f"data-{axis}-domain").split()]


def _plot_point(page, fx, fy, chart="svg.curves[data-chart='0']"):
    """The screen point at fractions (fx, fy) of the chart's plot area."""
    return page.evaluate(
        """([sel, fx, fy]) => {
            const svg = document.querySelector(sel);
            svg.scrollIntoView();
            const r = svg.querySelector("rect.frame").getBoundingClientRect();
            return [r.left + fx * r.width, r.top + fy * r.height];
        }""",
        [chart, fx, fy],
    )


GROUPS = ["activation=tanh", "activation=relu", "activation=sigmoid"]


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_the_legend_hides_a_line_and_isolates_one(sweeps, open_page):
    page = open_page(sweeps["grid"] / "report.html")
    legend = "figure.chart:nth-of-type(1) .legend li"
    assert _names(page) == GROUPS
    page.click(f"{legend}[data-name='activation=relu']")
    assert _names(page) == ["activation=tanh", "activation=sigmoid"]
    assert "off" in page.get_attribute(f"{legend}[data-name='activation=relu']", "class")
    page.click(f"{legend}[data-name='activation=relu']")
    assert _names(page) == GROUPS
    page.dblclick(f"{legend}[data-name='activation=sigmoid']")
    assert _names(page) == ["activation=sigmoid"]
    page.dblclick(f"{legend}[data-name='activation=sigmoid']")  # again: every line back
    assert _names(page) == GROUPS
    page.click(f"{legend}[data-name='activation=tanh']", modifiers=["Alt"])
    assert _names(page) == ["activation=tanh"]
    assert _names(page, "svg.curves[data-chart='1']") == GROUPS  # each chart its own legend


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_a_dragged_box_zooms_shift_drag_pans_and_double_click_resets(sweeps, open_page):
    page = open_page(sweeps["grid"] / "report.html")
    x0, y0 = _domain(page, "x"), _domain(page, "y")
    assert x0[0] == 0 and x0[1] == QUICK["train.iterations"] - 1  # the last step
    a, b = _plot_point(page, 0.25, 0.2), _plot_point(page, 0.5, 0.8)
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move(*b, steps=5)
    page.mouse.up()
    x1, y1 = _domain(page, "x"), _domain(page, "y")
    assert x1[0] == pytest.approx(75, abs=3) and x1[1] == pytest.approx(150, abs=3)
    assert y0[0] < y1[0] < y1[1] < y0[1]
    page.mouse.move(*_plot_point(page, 0.5, 0.5))  # pan: drag the plot a quarter leftwards
    page.keyboard.down("Shift")
    page.mouse.down()
    page.mouse.move(*_plot_point(page, 0.25, 0.5), steps=5)
    page.mouse.up()
    page.keyboard.up("Shift")
    x2 = _domain(page, "x")
    assert x2[0] == pytest.approx(x1[0] + 0.25 * (x1[1] - x1[0]), rel=0.05)
    assert x2[1] - x2[0] == pytest.approx(x1[1] - x1[0])
    page.mouse.dblclick(*_plot_point(page, 0.5, 0.5))
    assert _domain(page, "x") == x0 and _domain(page, "y") == y0


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_the_log_switch_changes_the_scale_and_ticks_are_readable(sweeps, open_page):
    page = open_page(sweeps["grid"] / "report.html")
    loss = "svg.curves[data-chart='0']"

    def ticks(axis):
        return page.eval_on_selector_all(f"{loss} .{axis}tick", "a => a.map(n => n.textContent)")

    assert page.get_attribute(loss, "data-y-scale") == "log"  # a loss starts on a log axis
    assert page.text_content(f"{loss} .ylabel") == "Train loss"
    assert page.text_content(f"{loss} .xlabel") == "step"
    log_ticks = ticks("y")
    page.click("figure.chart:nth-of-type(1) button.ylog")
    assert page.get_attribute(loss, "data-y-scale") == "linear"
    assert ticks("y") != log_ticks
    page.click("figure.chart:nth-of-type(1) button.xlog")
    assert page.get_attribute(loss, "data-x-scale") == "log"
    assert _domain(page, "x")[0] > 0  # step 0 left out
    x_ticks = ticks("x")
    assert x_ticks and all(re.fullmatch(r"\d+(\.\d+)?(k)?", t) for t in x_ticks), x_ticks
    acc = "svg.curves[data-chart='1']"
    acc_ticks = page.eval_on_selector_all(f"{acc} .ytick", "a => a.map(n => n.textContent)")
    assert all(re.fullmatch(r"\d+(\.\d+)?%", t) for t in acc_ticks), acc_ticks


@pytest.mark.browser
@needs_chromium
def test_ticks_of_large_and_small_numbers_are_short_and_plain(tmp_path, open_page):
    rows = [{"step": s, "train_loss": 10 ** (-s / 10_000)} for s in range(0, 50_001, 5_000)]
    page_path = tmp_path / "page.html"
    policy = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
    data = sweep_data([("one", [rows])], [], "")
    page_path.write_text(
        f'<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="{policy}">'
        + html_block(data)
    )
    page = open_page(page_path)
    chart = "svg.curves[data-chart='0']"
    x = page.eval_on_selector_all(f"{chart} .xtick", "a => a.map(n => n.textContent)")
    y = page.eval_on_selector_all(f"{chart} .ytick", "a => a.map(n => n.textContent)")
    assert x == ["0", "10k", "20k", "30k", "40k", "50k"]
    assert y == ["1e-5", "1e-4", "0.001", "0.01", "0.1", "1"]


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_smoothing_changes_the_drawn_path_and_zero_is_raw(sweeps, open_page):
    page = open_page(sweeps["grid"] / "report.html")
    first = "svg.curves[data-chart='0'] polyline.line"

    def set_smoothing(value):
        page.eval_on_selector(
            "#smoothing",
            "(s, v) => { s.value = v; s.dispatchEvent(new Event('input')); }",
            str(value),
        )

    raw = page.get_attribute(first, "points")
    set_smoothing(0.9)
    smooth = page.get_attribute(first, "points")
    assert smooth != raw and page.inner_text("#controls output") == "0.9"
    assert page.eval_on_selector_all("svg.curves[data-chart='0'] polyline.raw", "a => a.length")
    set_smoothing(0)
    assert page.get_attribute(first, "points") == raw


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_the_filter_hides_runs_in_every_chart_and_names_an_unknown_key(sweeps, open_page):
    page = open_page(sweeps["grid"] / "report.html")

    def parallel():
        return page.eval_on_selector_all(
            "svg.parallel polyline.job",
            "a => a.filter(n => n.style.display !== 'none').map(n => n.dataset.name)",
        )

    assert len(parallel()) == 6
    page.fill("#filter", "model.activation=relu")
    assert _names(page) == ["activation=relu"]
    assert _names(page, "svg.curves[data-chart='1']") == ["activation=relu"]
    assert sorted(parallel()) == ["activation=relu,seed=0", "activation=relu,seed=1"]
    page.fill("#filter", "activation != relu; seed=1")  # a suffix of the key; terms ANDed
    assert _names(page) == ["activation=tanh", "activation=sigmoid"]  # lines: groups of seeds
    assert sorted(parallel()) == ["activation=sigmoid,seed=1", "activation=tanh,seed=1"]
    page.fill("#filter", "model.width=3")
    assert "bad" in page.get_attribute("#filter", "class")
    assert "no key model.width" in page.inner_text(".filter-note")
    assert _names(page) == GROUPS  # an unknown key filters nothing
    page.fill("#filter", "")
    assert _names(page) == GROUPS and len(parallel()) == 6


@pytest.mark.browser
@needs_chromium
def test_more_than_twenty_lines_stay_distinguishable(tmp_path, open_page):
    rows = [{"step": s, "train_loss": 1.0 / (1 + s)} for s in range(5)]
    data = sweep_data([(f"job {i}", [rows]) for i in range(45)], [], "")
    page_path = tmp_path / "page.html"
    page_path.write_text("<!DOCTYPE html>" + html_block(data))
    page = open_page(page_path)
    styles = page.eval_on_selector_all(
        "svg.curves polyline.line",
        "a => a.map(n => n.getAttribute('stroke') + '|' + n.getAttribute('stroke-dasharray'))",
    )
    assert len(styles) == 45 and len(set(styles)) == 45
    assert len({s.split("|")[0] for s in styles[:40]}) == 10  # 10 colours × 4 dash patterns


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_a_dcn_sweep_shows_its_train_loss_and_layer_statistics_a_line_per_job(sweeps, open_page):
    page = open_page(sweeps["dcn"] / "report.html")
    loss = "svg.curves[data-chart='0']"
    metrics = page.eval_on_selector_all("select.metric >> nth=0 >> option", "a => a.length")
    assert metrics == 3  # test, validation and train loss: every job logged them
    test_loss = page.get_attribute(f"{loss} polyline.line", "points")
    page.select_option("select.metric >> nth=0", label="Train loss")
    assert page.text_content(f"{loss} .title") == "Train loss"
    assert page.get_attribute(f"{loss} polyline.line", "points") != test_loss
    chart = "svg.stats"
    assert page.input_value("select.stat-layer") == "fc1"
    assert page.input_value("select.stat-quantity") == "weights"
    assert page.input_value("select.stat-statistic") == "std"
    assert page.text_content(f"{chart} .ylabel") == "fc1 weights std"
    names = _names(page, chart)
    assert names == ["init=default", "init=xavier"]
    # Xavier's fc1 weights spread about 2.4× wider than PyTorch's default at step 0
    first_y = page.eval_on_selector_all(
        f"{chart} polyline.line", "a => a.map(n => n.points.getItem(0).y)"
    )
    assert first_y[1] < first_y[0]  # higher on the chart: a larger std
    page.select_option("select.stat-layer", "(all layers)")
    page.select_option("select.stat-quantity", "biases")
    every = _names(page, chart)
    assert "init=xavier · conv1" in every and "init=default · fc2" in every
    page.fill("#filter", "init=xavier")
    assert all(n.startswith("init=xavier") for n in _names(page, chart))
    # job ids stay on one line in the tables
    assert page.eval_on_selector("td", "td => getComputedStyle(td).whiteSpace") == "nowrap"


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_a_cut_short_stats_csv_leaves_out_that_jobs_layer_statistics_and_says_so(
    sweeps, open_page, tmp_path
):
    sweep = tmp_path / "dcn"
    shutil.copytree(sweeps["dcn"], sweep)  # the module's sweep stays whole for the others
    state = json.loads((sweep / "state.json").read_text())
    job = next(k for k, j in state["jobs"].items() if j["overrides"]["model.init"] == "xavier")
    stats = sweep / state["jobs"][job]["run"] / "stats.csv"
    text = stats.read_text()
    stats.write_text(text[: text.rindex(",")] + "\n")  # the last row cut short, as by a kill
    write_report(sweep)  # no error: the rest of the report stands
    page = open_page(sweep / "report.html")
    note = page.inner_text(".explore-note")
    assert note.startswith(f"Layer statistics of {job} left out: {stats}: line ")
    assert "fields, the header 7" in note
    data = json.loads(page.text_content("#nnlab-data"))
    other = next(k for k in state["jobs"] if k != job)
    assert [j["name"] for j in data["stats"]["jobs"]] == [other]  # the other job's drawn,
    assert _names(page, "svg.stats") == ["conv1", "fc1", "fc2"]  # one job: a line per layer
    assert len(_names(page)) == 2  # and both jobs' curves


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_a_searchs_parallel_view_uses_its_scales_and_the_pngs_colour_direction(sweeps, open_page):
    page = open_page(sweeps["search"] / "report.html")
    axes = page.eval_on_selector_all(
        "svg.parallel g.axis",
        "a => a.map(g => [g.querySelector('.axis-name').textContent, g.dataset.scale])",
    )
    # a loss's axis is log, as the PNG's
    assert axes == [["train.epsilon", "log"], ["train.momentum", "linear"],
                    ["Validation loss", "log"]]  # fmt: skip
    labelled = page.eval_on_selector_all(
        "svg.parallel g.axis", "a => a.map(g => g.querySelector('.axis-scale')?.textContent)"
    )
    assert labelled == ["(log)", None, "(log)"]  # said under the name, as the PNG's labels
    state = json.loads((sweeps["search"] / "state.json").read_text())
    losses = {k: j["final"]["val_loss"] for k, j in state["jobs"].items()
              if j["status"] == "completed"}  # fmt: skip
    best = page.eval_on_selector(
        "svg.parallel polyline.best", "n => [n.dataset.name, n.getAttribute('stroke')]"
    )
    assert best == [min(losses, key=losses.get), "#fde725"]  # the lowest loss: yellow
    worst = page.eval_on_selector(
        f"svg.parallel polyline.job[data-name='{max(losses, key=losses.get)}']",
        "n => n.getAttribute('stroke')",
    )
    assert worst == "#440154"  # viridis's dark end, as in the PNG
    assert "lowest (best) yellow" in page.text_content("svg.parallel .colour-note")
    # coloured by rank, not by value: evenly spaced from the worst to the best, however
    # unevenly the losses lie (one outlier cannot squeeze the others into one colour)
    ranks = page.eval_on_selector_all(
        "svg.parallel polyline.job", "a => a.map(n => [n.dataset.name, n.dataset.rank])"
    )
    by_loss = sorted(losses, key=losses.get, reverse=True)  # worst first
    assert sorted(ranks, key=lambda r: float(r[1])) == [
        [name, f"{k / (len(by_loss) - 1):.4f}"] for k, name in enumerate(by_loss)
    ]
    ticks = page.eval_on_selector_all("svg.parallel .colour-tick", "a => a.map(n => n.textContent)")
    assert len(ticks) == 3  # the values at the worst, the median and the best rank
