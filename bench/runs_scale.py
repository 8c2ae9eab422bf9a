"""`nnlab runs --where … --sort …` over 100, 1,000 and 10,000 run folders, cold and warm.

    python bench/runs_scale.py [--sizes 100,1000,10000] [--repeat 5]

One real run (moons, 200 iterations) is trained, then copied into a runs folder as many times
as each size asks — meta.json, summary.json, config.yaml and metrics.csv, not the model or the
figures, which `nnlab runs` never reads — each copy with its own name, start time,
activation (sigmoid / tanh / relu), learning rate, seed and accuracies. The query, through the
real command line in a fresh process each time:

    nnlab runs --runs-dir DIR --where model.activation=tanh --where 'train_acc>=0.9'
               --sort -train_acc --limit 20

cold: with no index (the first query after the folders were written; it reads every folder
and builds .nnlab-index.sqlite); warm: the same query again, the index checked against every
folder (the median of --repeat). "no index" is the warm query with the index unusable (its
name taken by a folder), which reads every folder every time: what the index saves. Every
time includes starting Python and importing nnlab, measured alone as `nnlab runs --help`.
Goal: warm at 10,000 runs within 3x of warm at 100.

The dashboard's first paint (`nnlab serve`, with the index warm): "first JSON" is the time
from asking for the listing (/api/runs) to having it; "first paint" the time from opening the
page in headless Chromium to its run list being drawn (the page's own request for the
listing included; the browser started beforehand). Both are the median of --repeat, each
against a fresh server (its start-up not counted). Without Playwright or Chromium, first paint
is left out; --no-dashboard leaves out both.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
QUERY = ["--where", "model.activation=tanh", "--where", "train_acc>=0.9", "--sort",
         "-train_acc", "--limit", "20"]  # fmt: skip
COPIED = ("meta.json", "summary.json", "config.yaml", "metrics.csv")


def real_run(tmp: Path) -> Path:
    import nnlab

    config = ROOT / "configs" / "moons_tanh.yaml"
    return nnlab.train(config, {"train.iterations": 200}, runs_dir=tmp / "real").path


def fill(runs: Path, source: Path, n: int, rng: random.Random) -> None:
    """``n`` copies of ``source`` in ``runs``, each with its own values."""
    meta = json.loads((source / "meta.json").read_text())
    summary = json.loads((source / "summary.json").read_text())
    config = yaml.safe_load((source / "config.yaml").read_text())
    metrics = (source / "metrics.csv").read_text()
    runs.mkdir()
    for i in range(n):
        folder = runs / f"20261201-{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}-moons-{i}"
        folder.mkdir()
        activation = ("sigmoid", "tanh", "relu")[i % 3]
        acc = round(rng.uniform(0.5, 1.0), 4)
        stamp = f"2026-12-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00"
        (folder / "meta.json").write_text(json.dumps(meta | {"name": f"moons_{i}",
                                                             "start_time": stamp}))  # fmt: skip
        final = summary["final"] | {"train_acc": acc, "train_loss": round(1 - acc, 4)}
        (folder / "summary.json").write_text(json.dumps(summary | {"final": final}))
        train = config["train"] | {"epsilon": rng.choice([0.001, 0.01, 0.1])}
        cfg = config | {"seed": i, "model": config["model"] | {"activation": activation},
                        "train": train}  # fmt: skip
        (folder / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        (folder / "metrics.csv").write_text(metrics)


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "nnlab", *args], capture_output=True,
                            text=True, check=False)  # fmt: skip
    took = time.perf_counter() - t0
    if result.returncode != 0:
        sys.exit(f"nnlab {' '.join(args)} failed:\n{result.stderr}")
    return took


@contextlib.contextmanager
def server(runs: Path) -> Iterator[str]:
    """`nnlab serve RUNS --port 0` in a process group of its own, its URL once it listens;
    the group ended on the way out."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nnlab", "serve", str(runs), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        line = proc.stdout.readline()
        if " at http://" not in line:
            sys.exit(f"nnlab serve {runs} did not start:\n{line}{proc.stderr.read()}")
        yield line.split(" at ")[1].split()[0]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def first_json(runs: Path, n: int) -> float:
    """Seconds from asking a fresh server for the listing to having it (``n`` rows)."""
    with server(runs) as url:
        t0 = time.perf_counter()
        with urllib.request.urlopen(url + "api/runs", timeout=600) as r:
            listed = json.loads(r.read())["runs"]
        took = time.perf_counter() - t0
    if len(listed) != n:
        sys.exit(f"nnlab serve listed {len(listed)} runs, not {n}")
    return took


def first_paint(runs: Path, browser) -> float:
    """Seconds from opening a fresh server's page to its run list being drawn."""
    with server(runs) as url:
        page = browser.new_page()
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("#runs tbody tr", timeout=600_000)
        took = time.perf_counter() - t0
        page.close()
    return took


@contextlib.contextmanager
def chromium() -> Iterator[object | None]:
    """Headless Chromium through Playwright (None without either)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        exe = None
    if exe is None:
        yield None
        return
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-dashboard", dest="dashboard", action="store_false",
                        help="leave out nnlab serve's first JSON and first paint")  # fmt: skip
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        chromium() if args.dashboard else contextlib.nullcontext() as browser,
    ):
        tmp = Path(tmp_name)
        source = real_run(tmp)
        startup = statistics.median(timed(["runs", "--help"]) for _ in range(args.repeat))
        rows = []
        for n in sizes:
            runs = tmp / f"runs-{n}"
            fill(runs, source, n, random.Random(n))
            query = ["runs", "--runs-dir", str(runs), *QUERY]
            cold = timed(query)
            warm = statistics.median(timed(query) for _ in range(args.repeat))
            served: tuple[float | None, float | None] = (None, None)
            if args.dashboard:  # the index warm, as the query left it
                served = (
                    statistics.median(first_json(runs, n) for _ in range(args.repeat)),
                    None if browser is None else
                    statistics.median(first_paint(runs, browser) for _ in range(args.repeat)),
                )  # fmt: skip
            (runs / ".nnlab-index.sqlite").unlink()
            (runs / ".nnlab-index.sqlite").mkdir()  # the index unusable: every folder read
            bare = statistics.median(timed(query) for _ in range(max(1, args.repeat // 2)))
            rows.append((n, cold, warm, bare, *served))
            shutil.rmtree(runs)
            print(f"{n} runs: cold {cold:.2f} s, warm {warm:.2f} s, no index {bare:.2f} s, "
                  f"first JSON {seconds(served[0])}, first paint {seconds(served[1])}",
                  file=sys.stderr, flush=True)  # fmt: skip
    base = rows[0][2]
    print(f"start-up (`nnlab runs --help`): {startup:.2f} s; query: nnlab runs {' '.join(QUERY)}")
    print()
    print("| runs | cold (s) | warm (s) | no index (s) | warm ÷ warm at "
          f"{rows[0][0]:,} | serve: first JSON (s) | serve: first paint (s) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, cold, warm, bare, json_s, paint_s in rows:
        print(f"| {n:,} | {cold:.2f} | {warm:.2f} | {bare:.2f} | {warm / base:.2f}× "
              f"| {seconds(json_s, '')} | {seconds(paint_s, '')} |")  # fmt: skip


def seconds(v: float | None, unit: str = " s") -> str:
    return "—" if v is None else f"{v:.2f}{unit}"


if __name__ == "__main__":
    main()
