"""The MLP as a full trainer: update rules, mini-batches, schedules, early stopping, dtypes."""

import json
import math

import numpy as np
import pytest
import torch

import nnlab
from nnlab.config.resolve import load_config
from nnlab.data.tabular import load_data
from nnlab.models.mlp import optim as optim_module
from nnlab.models.mlp.engine import Engine
from nnlab.models.mlp.math import MLP, backprop, one_hot
from nnlab.models.mlp.optim import make_update
from nnlab.models.mlp.trainer import _Loop
from nnlab.models.training.callbacks import Hooks, StopRun
from nnlab.models.training.early_stopping import EarlyStopping
from nnlab.models.training.schedule import lr_at
from nnlab.runfolder.runs import read_metrics
from tests.conftest import CONFIGS

STEPS = 6


def _train_cfg(optimizer, **keys):
    cfg = load_config({"train": {"optimizer": optimizer, "epsilon": 0.01, **keys}})["train"]
    return cfg


class Plain:
    """The update rules exactly as docs/math.md writes them, one step at a time."""

    def __init__(self, optimizer, cfg, theta):
        self.optimizer, self.cfg, self.theta = optimizer, cfg, theta.copy()
        self.v = np.zeros_like(theta)
        self.m = np.zeros_like(theta)
        self.t = 0

    def step(self, g, lr):
        cfg, mu = self.cfg, self.cfg["momentum"]
        self.t += 1
        if self.optimizer == "adam":
            b1, b2, eps = cfg["beta1"], cfg["beta2"], cfg["adam_eps"]
            self.m = b1 * self.m + (1 - b1) * g
            self.v = b2 * self.v + (1 - b2) * g * g
            m_hat = self.m / (1 - b1**self.t)
            v_hat = self.v / (1 - b2**self.t)
            self.theta = self.theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        elif self.optimizer == "sgd" and mu > 0:
            self.v = mu * self.v + g
            self.theta = self.theta - lr * ((g + mu * self.v) if cfg["nesterov"] else self.v)
        else:
            self.theta = self.theta - lr * g
        return self.theta


def _plain(optimizer, cfg, theta, grads, lrs):
    rule = Plain(optimizer, cfg, theta)
    for g, lr in zip(grads, lrs, strict=True):
        rule.step(g, lr)
    return rule.theta


def _torch(optimizer, cfg, theta, grads, lrs):
    """torch.optim given the same gradients, in float64."""
    p = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float64))
    if optimizer == "adam":
        opt = torch.optim.Adam(
            [p], lr=lrs[0], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["adam_eps"]
        )
    else:
        opt = torch.optim.SGD([p], lr=lrs[0], momentum=cfg["momentum"], nesterov=cfg["nesterov"])
    for g, lr in zip(grads, lrs, strict=True):
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return p.detach().numpy()


OPTIMIZERS = [
    ("gd", {}),
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.8, "nesterov": True}),
    ("adam", {}),
    ("adam", {"beta1": 0.5, "beta2": 0.9, "adam_eps": 1e-3}),
]


@pytest.mark.parametrize(("optimizer", "keys"), OPTIMIZERS)
def test_each_update_rule_matches_its_equations_and_torch_optim(optimizer, keys):
    cfg = _train_cfg(optimizer, **keys)
    rng = np.random.RandomState(1)
    theta0 = rng.randn(50)
    grads = [rng.randn(50) * 10.0 ** rng.randint(-3, 3) for _ in range(STEPS)]
    lrs = [0.01 * 0.7**t for t in range(STEPS)]  # a schedule changes lr between steps
    theta, grad = theta0.copy(), np.empty(50)
    update = make_update(cfg, theta, grad)
    ops = update.ops()
    for g, lr in zip(grads, lrs, strict=True):
        grad[...] = g
        update.lr[...] = lr
        update.before_step()
        for op, *args in ops:
            op(*args)
    plain = _plain(optimizer, cfg, theta0, grads, lrs)
    np.testing.assert_allclose(theta, plain, rtol=1e-12, atol=1e-15)
    if optimizer != "gd":
        np.testing.assert_allclose(
            theta, _torch(optimizer, cfg, theta0, grads, lrs), rtol=1e-12, atol=1e-15
        )
    assert not np.allclose(theta, theta0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("keys", [keys for optimizer, keys in OPTIMIZERS if optimizer == "adam"])
def test_adam_compiled_as_one_pass_gives_numpys_bits(keys, dtype):
    """fused.py's Adam against optim.py's NumPy passes: θ, m and v the same to the bit
    after steps whose gradients span six orders of magnitude, with lr changing between
    steps, in float64 and float32 — and after a last gradient holding inf and nan, which
    must spread as NumPy spreads them (numba's own error model would raise on 0 / 0)."""
    cfg = _train_cfg("adam", **keys)
    rng = np.random.RandomState(2)
    theta0 = rng.randn(1000).astype(dtype)
    grads = [(rng.randn(1000) * 10.0 ** rng.randint(-3, 3)).astype(dtype) for _ in range(STEPS)]
    grads.append(np.zeros(1000, dtype=dtype))
    grads[-1][:3] = [np.inf, -np.inf, np.nan]
    ends = [_run_update(cfg, theta0, grads, fused) for fused in (False, True)]
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(*ends, strict=True))
    theta = ends[1][0]
    assert theta.dtype == dtype and np.isnan(theta[:3]).sum() >= 1 and np.isfinite(theta[3:]).all()


def _run_update(cfg, theta0, grads, fused):
    """[θ, m, v] after an Adam step on each gradient, lr changing between steps, by the
    compiled pass or NumPy's passes."""
    theta, grad = theta0.copy(), np.empty_like(theta0)
    update = make_update(cfg, theta, grad)
    ops = update.fused() if fused else update.passes()
    assert len(ops) == 1 if fused else len(ops) > 1
    with np.errstate(all="ignore"):  # the engine's own: non-finite numbers spread quietly
        for t, g in enumerate(grads):
            grad[...] = g
            update.lr[...] = 0.01 * 0.7**t
            update.before_step()
            for op, *args in ops:
                op(*args)
    return [theta, update.m, update.v]


def test_a_zero_denominator_in_the_compiled_adam_gives_nan_as_numpy_does():
    """float32 and an ε below its smallest number: ε_t is 0, so a parameter whose gradient
    was always 0 divides 0 by 0 — nan in both forms, not an exception."""
    cfg = _train_cfg("adam", adam_eps=1e-46)
    theta0 = np.ones(8, dtype=np.float32)
    grads = [np.array([0, 1, 0, 1, 0, 1, 0, 1], dtype=np.float32)] * 2
    passes, compiled = (_run_update(cfg, theta0, grads, fused)[0] for fused in (False, True))
    assert np.array_equal(passes, compiled, equal_nan=True)
    assert np.isnan(compiled[::2]).all() and np.isfinite(compiled[1::2]).all()


def test_adam_is_compiled_in_runs_of_fused_from_parameter_updates_on():
    theta, grad = np.zeros(1000), np.zeros(1000)
    update = make_update(_train_cfg("adam"), theta, grad)
    steps = optim_module.FUSED_FROM // 1000
    assert len(update.ops(steps - 1)) == 12 and len(update.ops(steps)) == 1
    momentum = make_update(_train_cfg("sgd", momentum=0.9), theta, grad)
    assert len(momentum.ops(10 * steps)) == 4  # a few passes: NumPy's


@pytest.mark.parametrize(("batch", "steps_per_epoch"), [(16, 8), (50, 3), (500, 1)])
def test_the_loop_plans_epochs_times_batches_steps_for_adams_form(
    batch, steps_per_epoch, monkeypatch
):
    """moons' 120 training examples: 3 epochs of ceil(120 / batch) steps (a batch over 120 is
    one step of everything). Adam is compiled from exactly FUSED_FROM parameter updates on."""
    cfg = _moons_cfg(optimizer="adam", epochs=3, batch_size=batch)
    data = load_data(cfg)
    assert len(data.y_train) == 120
    model = MLP.create([2, 5, 2], "tanh", "classic", 0)
    updates = model.n_params * 3 * steps_per_epoch
    forms = []
    for threshold in (updates, updates + 1):
        monkeypatch.setattr(optim_module, "FUSED_FROM", threshold)
        loop = _Loop(MLP.create([2, 5, 2], "tanh", "classic", 0), data, cfg["train"], Hooks())
        forms.append(len(loop.engine.update_ops))
    assert forms == [1, 12]


def test_a_long_adam_run_trains_with_the_compiled_pass_and_the_same_bits(tmp_path, monkeypatch):
    """The same run twice, once with the threshold above it and once below: model and
    metrics equal byte for byte, and the second plan holds the compiled kernel."""
    from nnlab.models.mlp import fused

    overrides = ["train.optimizer=adam", "train.epochs=3", "train.batch_size=16"]
    cfg = _moons_cfg()
    kernels = []
    original = Engine._plan

    def plan(self, size):
        made = original(self, size)
        kernels.append(any(op is fused.adam for op, _, _ in made.ops))
        return made

    monkeypatch.setattr(Engine, "_plan", plan)
    runs, compiled = [], []
    for threshold in (10**18, 1):
        monkeypatch.setattr(optim_module, "FUSED_FROM", threshold)
        runs.append(nnlab.train(cfg, overrides, runs_dir=tmp_path / str(threshold)))
        compiled.append(set(kernels))
        kernels.clear()
    assert compiled == [{False}, {True}]
    a, b = (r.path for r in runs)
    assert (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()
    assert (a / "model.npz").read_bytes() == (b / "model.npz").read_bytes()


def _moons_cfg(**train):
    return load_config(
        {
            "data": {"name": "moons", "n_samples": 120},
            "model": {"layers": [2, 5, 2]},
            "train": train,
        }
    )


def _flat(arrays):
    return np.concatenate([a.ravel() for a in arrays])


@pytest.mark.parametrize(("optimizer", "keys"), OPTIMIZERS[1:])
def test_a_minibatch_step_is_backprop_on_the_batch_then_the_update(optimizer, keys):
    """The engine's mini-batch step against math.backprop on the gathered batch, with the L2
    term scaled by batch / N, then the plain update rule."""
    lam, layers = 0.05, [2, 5, 2]
    cfg = _moons_cfg(optimizer=optimizer, reg_lambda=lam, **keys)
    data = load_data(cfg)
    model = MLP.create(layers, "tanh", "classic", 0)
    plain = Plain(optimizer, cfg["train"], _flat(model.W + model.b))
    engine = Engine(model, data.X_train, data.y_train, lam, cfg["train"], track=True)
    rng = np.random.RandomState(3)
    n, batch = len(data.y_train), 32
    for _ in range(STEPS):
        idx = rng.permutation(n)[:batch]
        sizes = list(zip(layers[:-1], layers[1:], strict=True))
        W, b, start = [], [], 0
        for fan_in, fan_out in sizes:
            W.append(plain.theta[start : start + fan_in * fan_out].reshape(fan_in, fan_out))
            start += fan_in * fan_out
        for _, fan_out in sizes:
            b.append(plain.theta[start : start + fan_out])
            start += fan_out
        Y = one_hot(data.y_train[idx], 2)
        dW, db = backprop(W, b, data.X_train[idx], Y, "tanh", lam * batch / n)
        plain.step(_flat(dW + db), cfg["train"]["epsilon"])
        engine.step(idx)
        np.testing.assert_allclose(engine.theta, plain.theta, rtol=1e-12, atol=1e-14)
    loss, acc = engine.stats.take()
    assert loss > 0 and 0 <= acc <= 1 and engine.stats.count == 0


def test_sgd_with_one_batch_of_everything_equals_gd_step_for_step():
    steps = 50
    gd = _moons_cfg(optimizer="gd", iterations=steps, epsilon=0.01)
    sgd = _moons_cfg(optimizer="sgd", epochs=steps, batch_size=10_000, epsilon=0.01)
    data = load_data(gd)
    a, b = (MLP.create([2, 5, 2], "tanh", "classic", 0) for _ in range(2))
    ea = Engine(a, data.X_train, data.y_train, 0.01, gd["train"])
    eb = Engine(b, data.X_train, data.y_train, 0.01, sgd["train"], track=True)
    everything = np.arange(len(data.y_train))
    for _ in range(steps):
        ea.step()
        eb.step(everything)
        assert np.array_equal(ea.theta, eb.theta)
    assert eb.stats.count == steps * len(everything)


def test_sgd_run_with_batch_n_saves_the_gd_run_s_weights(tmp_path):
    base = {"data": {"name": "moons"}, "model": {"layers": [2, 4, 2]}}
    runs = {}
    for name, train in {
        "gd": {"optimizer": "gd", "iterations": 30},
        "sgd": {"optimizer": "sgd", "epochs": 30, "batch_size": 200},
    }.items():
        run = nnlab.train({**base, "name": name, "train": train}, runs_dir=tmp_path)
        with np.load(run.path / "model.npz") as z:
            runs[name] = {k: z[k] for k in z.files}
    assert runs["gd"].keys() == runs["sgd"].keys()
    for key in runs["gd"]:
        assert np.array_equal(runs["gd"][key], runs["sgd"][key]), key


@pytest.mark.parametrize(
    ("kind", "scheduler"),
    [
        ("step", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
        ("exponential", lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.8)),
        ("cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10)),
    ],
)
def test_each_decay_gives_torch_s_lr_every_epoch(kind, scheduler):
    decay = {"kind": kind, "gamma": 0.5 if kind == "step" else 0.8, "step_size": 3}
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = scheduler(opt)
    for epoch in range(10):
        assert lr_at(0.1, decay, epoch, 10) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        sched.step()


@pytest.mark.parametrize("kind", ["step", "exponential", "cosine"])
def test_an_mlp_run_logs_the_scheduled_lr_of_every_epoch(tmp_path, kind):
    decay = {"kind": kind, "gamma": 0.5, "step_size": 2}
    run = nnlab.train(
        {
            "data": {"name": "moons", "val_size": 0.2},
            "model": {"layers": [2, 4, 2]},
            "train": {"optimizer": "sgd", "epochs": 6, "batch_size": 40, "lr_decay": decay},
        },
        runs_dir=tmp_path,
    )
    rows = read_metrics(run.path / "metrics.csv")
    for row in rows:
        assert row["lr"] == pytest.approx(lr_at(0.01, decay, int(row["epoch"]) - 1, 6), rel=1e-12)
    assert len({r["lr"] for r in rows}) > 2
    ends = [r for r in rows if "val_loss" in r]
    assert [int(r["epoch"]) for r in ends] == [1, 2, 3, 4, 5, 6]


def test_gd_with_a_step_decay_changes_lr_every_step_size_iterations(tmp_path):
    run = nnlab.train(
        {
            "data": {"name": "moons"},
            "model": {"layers": [2, 4, 2]},
            "train": {
                "iterations": 100,
                "log_every": 10,
                "lr_decay": {"kind": "step", "gamma": 0.5, "step_size": 25},
            },
        },
        runs_dir=tmp_path,
    )
    rows = read_metrics(run.path / "metrics.csv")
    assert [r["lr"] for r in rows] == [0.01 * 0.5 ** (int(r["step"]) // 25) for r in rows]


def test_early_stopping_stops_at_the_expected_evaluation():
    weights, restored = [None], []  # the "weights": the step they were taken at
    stopper = EarlyStopping(
        {"metric": "val_loss", "patience": 3, "min_delta": 0.01, "mode": "auto"},
        weights=lambda: weights[0],
        restore=restored.append,
    )
    curve = [1.0, 0.8, 0.795, 0.85, 0.7, 0.75, 0.72, 0.705, 0.69]
    stopped_at = None
    for step, value in enumerate(curve):
        weights[0] = step
        try:
            stopper.on_row({"step": step, "val_loss": value})
        except StopRun as exc:
            stopped_at = step
            assert "best 0.7 at step 4" in exc.reason
            break
    # 0.795 is not 0.01 better than 0.8; 0.7 is; then 0.75, 0.72, 0.705: three without
    assert stopped_at == 7
    assert stopper.best == 0.7 and stopper.best_step == 4 and stopper.best_weights == 4
    stopper.on_train_end()
    assert restored == [4]


def test_early_stopping_on_an_accuracy_maximises():
    cfg = {"metric": "val_acc", "patience": 1, "min_delta": 0.0, "mode": "auto"}
    stopper = EarlyStopping(cfg, weights=lambda: None, restore=lambda weights: None)
    assert stopper.improved({"step": 1, "val_acc": 0.5})
    assert stopper.improved({"step": 2, "val_acc": 0.6})
    assert not stopper.improved({"step": 3, "val_acc": 0.6})
    assert not stopper.improved({"step": 4, "train_acc": 0.9})  # no metric: not counted
    with pytest.raises(StopRun):
        stopper.check(4)


def test_the_loop_stops_on_a_constructed_curve_and_restores_the_best_weights():
    cfg = load_config(
        {
            "data": {"name": "moons", "val_size": 0.2},
            "model": {"layers": [2, 5, 2]},
            "train": {"optimizer": "sgd", "early_stopping": {"metric": "val_loss", "patience": 2}},
        }
    )
    data = load_data(cfg)
    model = MLP.create([2, 5, 2], "tanh", "classic", 0)
    rows = []
    loop = _Loop(model, data, cfg["train"], Hooks(row=rows.append))
    curve = [0.9, 0.5, 0.6, 0.7, 0.4]
    with pytest.raises(StopRun):
        for step, value in enumerate(curve, start=1):
            loop.engine.theta[...] = step  # weights that say which step they belong to
            loop.log({"step": step, "val_loss": value}, step)
    assert len(rows) == 4  # the fourth row was written, then the run stopped
    loop.callbacks.on_train_end()
    assert np.all(loop.engine.theta == 2) and np.all(model.W[0] == 2)


def _digits_adam(patience: int) -> dict:
    """Adam on digits with early stopping on val_loss: it overfits within a few epochs."""
    return {
        "data": {"name": "digits", "val_size": 0.2, "standardize": True},
        "model": {"layers": [64, 32, 10], "activation": "relu", "init": "he"},
        "train": {
            "optimizer": "adam",
            "epsilon": 0.01,
            "epochs": 60,
            "batch_size": 16,
            "early_stopping": {"metric": "val_loss", "patience": patience},
        },
    }


def _val_loss_of_saved_weights(run_path) -> float:
    from nnlab.models.mlp.math import evaluate

    data = load_data(load_config(run_path / "config.yaml"))
    with np.load(run_path / "model.npz") as z:
        model = MLP.from_state(dict(z), "relu")
    return evaluate(model, data.X_val, data.y_val, 0.01)[0]


@pytest.mark.slow
def test_an_early_stopped_run_keeps_the_best_weights_and_says_so(tmp_path):
    run = nnlab.train(_digits_adam(patience=2), runs_dir=tmp_path)
    assert run.status == "completed"
    meta = json.loads((run.path / "meta.json").read_text())
    es = run.summary.early_stopping
    assert es.stopped_early and meta["stopped"]["reason"].startswith("early stopping")
    rows = read_metrics(run.path / "metrics.csv")
    assert meta["stopped"]["step"] == rows[-1]["step"] < 60 * math.ceil(1149 / 16)
    # through the callback protocol it stops where the inline calls stopped it (e9cbbe8)
    assert (meta["stopped"]["step"], es["best_step"]) == (288, 144)
    evals = [r for r in rows if "val_loss" in r]
    best = min(evals, key=lambda r: r["val_loss"])
    assert es.best_step == es.weights_from_step == best["step"]
    assert evals[-1]["step"] - best["step"] > 0
    # the saved weights are the best evaluation's: they give its validation loss again
    assert _val_loss_of_saved_weights(run.path) == pytest.approx(best["val_loss"], rel=1e-12)


def test_an_interrupted_early_stopping_run_saves_the_weights_its_summary_names(tmp_path):
    cfg = _digits_adam(patience=50)

    def interrupt(row):
        if row["step"] >= 600:
            raise KeyboardInterrupt

    with pytest.raises(nnlab.RunInterrupted) as exc:
        nnlab.train(cfg, runs_dir=tmp_path, on_row=interrupt)
    run = nnlab.load_run(exc.value.run.path)
    es = run.summary.early_stopping
    assert run.status == "interrupted" and not es.stopped_early
    assert _val_loss_of_saved_weights(run.path) == pytest.approx(es.best, rel=1e-12)
    assert es.row["val_loss"] == es.best and es.row["step"] == es.weights_from_step


@pytest.mark.slow
def test_float32_runs_train_in_float32(tmp_path):
    cfg = {
        "data": {"name": "digits", "val_size": 0.1},
        "model": {"layers": [64, 32, 10], "activation": "relu"},
        "train": {"optimizer": "adam", "epochs": 3, "dtype": "float32"},
    }
    cfg["train"]["lr_decay"] = {"kind": "exponential", "gamma": 0.9}
    run = nnlab.train(cfg, runs_dir=tmp_path)
    with np.load(run.path / "model.npz") as z:
        assert z["W1"].dtype == np.float32
        w32 = z["W1"].astype(np.float64)
    assert run.summary.final["test_acc"] > 0.8
    assert load_data(load_config(cfg)).X_train.dtype == np.float32
    # the lr column holds the schedule's numbers, not their float32 roundings
    rows = read_metrics(run.path / "metrics.csv")
    assert {r["lr"] for r in rows} == {0.01 * 0.9**e for e in range(3)}
    # and float32 follows float64's trajectory to float32 precision
    cfg["train"]["dtype"] = "float64"
    run64 = nnlab.train(cfg, runs_dir=tmp_path)
    with np.load(run64.path / "model.npz") as z:
        np.testing.assert_allclose(w32, z["W1"], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_an_early_stopped_run_s_kept_weights_are_what_reports_and_sweeps_show(tmp_path):
    from nnlab.reports.report import run_report
    from nnlab.runfolder.runs import result_row

    run = nnlab.train(CONFIGS / "digits_mlp.yaml", runs_dir=tmp_path)
    es = run.summary.early_stopping
    assert es.stopped_early and es.row != run.summary.final
    assert result_row(run.summary) == es.row
    text = " ".join(str(payload) for kind, payload in run_report(run.path).blocks if kind == "p")
    assert f"kept the weights of step {es.weights_from_step}" in text
    assert f"The run stopped at step {run.meta.stopped.step}" in text
    # a sweep's job carries the kept row as its result
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text(
        f"sweep:\n  base: {CONFIGS / 'digits_mlp.yaml'}\n  grid:\n    seed: [0]\n"
    )
    sweep = nnlab.sweep(sweep_file, runs_dir=tmp_path / "sweeps")
    (entry,) = sweep.state["jobs"].values()
    assert entry["final"] == es.row


def _run_files(run) -> tuple[list[str], dict]:
    lines = (run.path / "metrics.csv").read_text().splitlines()
    with np.load(run.path / "model.npz") as z:
        return lines, {k: z[k].copy() for k in z.files}


@pytest.mark.parametrize(
    "sets",
    [
        {"train.iterations": 2500},  # moons_tanh as shipped, shorter
        {  # gd with early stopping: the extra rows are no evaluations it counts
            "train.iterations": 3000,
            "train.log_every": 100,
            "data.val_size": 0.2,
            "train.early_stopping.metric": "val_loss",
            "train.early_stopping.patience": 3,
            "train.epsilon": 0.5,
        },
    ],
)
def test_log_spaced_rows_add_evaluations_and_change_nothing_else(tmp_path, sets):
    """train.log_schedule: log adds rows at steps 1, 2, 3, 5, 7, 10, 20, …; every row the
    linear schedule writes is there byte for byte, and the model is the same."""
    from nnlab.models.mlp.trainer import is_log_spaced

    linear = nnlab.train(CONFIGS / "moons_tanh.yaml", sets, runs_dir=tmp_path / "linear")
    log = nnlab.train(
        CONFIGS / "moons_tanh.yaml", {**sets, "train.log_schedule": "log"}, runs_dir=tmp_path
    )
    (lin_rows, lin_model), (log_rows, log_model) = _run_files(linear), _run_files(log)
    assert [r for r in log_rows if r in lin_rows] == lin_rows
    extra = [int(r.split(",")[0]) for r in log_rows if r not in lin_rows]
    last = int(lin_rows[-1].split(",")[0])
    assert extra == [s for s in range(last) if is_log_spaced(s) and s % sets.get(
        "train.log_every", 1000)]  # fmt: skip
    assert extra[:8] == [1, 2, 3, 5, 7, 10, 20, 30]
    assert lin_model.keys() == log_model.keys()
    assert all(np.array_equal(lin_model[k], log_model[k]) for k in lin_model)
    assert linear.summary.final == log.summary.final
    if "data.val_size" in sets:
        assert linear.summary.early_stopping == log.summary.early_stopping
        assert linear.summary.early_stopping["stopped_early"]


def test_the_shipped_moons_config_keeps_its_rows_and_a_log_run_draws_a_symlog_axis(
    tmp_path, monkeypatch
):
    from nnlab.figures import plots

    figures = {}

    def save(fig, path):
        figures[path.name] = fig
        return path

    monkeypatch.setattr(plots, "_save", save)
    sets = {"train.iterations": 300, "train.log_every": 100}
    run = nnlab.train(CONFIGS / "moons_tanh.yaml", sets, runs_dir=tmp_path)
    steps = [r["step"] for r in read_metrics(run.path / "metrics.csv")]
    assert steps == [0, 100, 200, 299]  # the default schedule: linear, as before
    assert figures["loss.png"].axes[0].get_xscale() == "linear"
    nnlab.train(CONFIGS / "moons_tanh.yaml", {**sets, "train.log_schedule": "log"},
                runs_dir=tmp_path)  # fmt: skip
    ax = figures["loss.png"].axes[0]
    assert ax.get_xscale() == "symlog" and ax.get_xlabel() == "step (log scale past 1)"
    figures["loss.png"].canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels == ["0", "1", "10", "100"]  # plain numbers, not 10^2
    plots._pyplot().close("all")


def test_a_log_schedule_with_mini_batches_is_a_one_line_error():
    from nnlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train.log_schedule log applies to optimizer gd; "
                       r"this config's optimizer is sgd"):  # fmt: skip
        load_config({"train": {"optimizer": "sgd", "log_schedule": "log"}})
