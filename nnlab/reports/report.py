"""`nnlab report`: a run or sweep folder as report.md and a self-contained report.html.

The report is built once as a list of blocks (headings, paragraphs, code, tables, figures,
lists) and rendered twice: Markdown beside the folder's files, and HTML with the figures
embedded as data URIs so that it opens anywhere without a network. Every string that came
from a config or a run is escaped in the HTML.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlab.common.files import atomic_write_text
from nnlab.common.metrics import is_result, metric_text, status_text
from nnlab.config.resolve import dump_config
from nnlab.errors import NnlabError
from nnlab.models import kind_of
from nnlab.reports.explore import html_block, run_data, sweep_explore
from nnlab.reports.results import folder_kind, load_run_with_metrics, replot
from nnlab.runfolder.records import read_record_bytes
from nnlab.runfolder.runs import load_run
from nnlab.runfolder.types import Meta, stayed_at_chance
from nnlab.sweeps.folder import load_sweep_folder
from nnlab.sweeps.search.results import (
    absent_note,
    confirm_table,
    front_note,
    search_table,
    trial_records,
)
from nnlab.sweeps.state import DONE
from nnlab.sweeps.summary import pivot_table

CAPTIONS = {
    "loss": "Loss against training step (cross-entropy, plus the L2 penalty for the MLP).",
    "accuracy": "Accuracy against training step, as fractions shown in percent.",
    "decision_boundary": "Decision boundary: the predicted class over the input plane, with the "
                         "training points (circles) and test points (triangles).",
    "decision_boundaries": "Decision boundaries of the jobs (first seed), laid out like the "
                           "first table or three to a row, each titled with its network and "
                           "final loss.",
    "confusion_matrix": "Confusion matrix on the test split: true class against prediction.",
    "layer_stats": "Statistics of every layer over training: minimum, maximum, mean and "
                   "standard deviation of weights, biases, net inputs, activations and "
                   "pool outputs.",
    "layer_stats_groups": "Layer statistics by group of jobs: the spread (standard deviation) "
                          "of each layer's weights and net inputs over training, the median "
                          "over seeds with their interquartile band.",
    "weight_histograms": "Distribution of each layer's weights in the saved models, a density "
                         "histogram per group of jobs (their seeds pooled).",
    "history": "Optimisation history: the search metric of every trial, and the best so far.",
    "importances": "Parameter importances: the share of the metric's variance each searched "
                   "key explains (Optuna's fANOVA, seeded), over all completed trials, and "
                   "for a conditional key over the trials where it applied.",
    "parallel": "Parallel coordinates: each completed trial's parameters and metric.",
    "front": "Pareto front of a multi-objective search: every completed trial on the first "
             "two objectives, the front in colour (a step line with two objectives; labels "
             "name its front/front-NN.yaml files), dominated trials grey, best.yaml's starred.",
}  # fmt: skip
FIGURE_ORDER = ["loss", "accuracy", "decision_boundary", "decision_boundaries",
                "confusion_matrix", "layer_stats", "layer_stats_groups",
                "weight_histograms"]  # fmt: skip


ERROR_CHARS = 90  # a job's error in the jobs table: one line, cut (the full text: state.json)
LONGEST_ERROR = 300  # in the list of jobs that did not finish


def one_line(text: str, widest: int = LONGEST_ERROR) -> str:
    """An error as one line of at most ``widest`` characters: its whitespace (a traceback's
    line breaks) collapsed, and cut with '…' at a word where one is near."""
    text = " ".join(text.split())
    if len(text) <= widest:
        return text
    cut = text[: widest - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > widest * 2 // 3 else cut).rstrip(" ,;:") + "…"


@dataclass
class Doc:
    """A report as blocks: ("h1"|"h2"|"p"|"code"|"list"|"table"|"figure", payload)."""

    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, kind: str, payload: Any) -> None:
        self.blocks.append((kind, payload))


def _figures(doc: Doc, plots_dir: Path) -> None:
    pngs = sorted(
        plots_dir.glob("*.png"),
        key=lambda p: (
            FIGURE_ORDER.index(p.stem) if p.stem in FIGURE_ORDER else len(FIGURE_ORDER),
            p.name,
        ),
    )
    doc.add("h2", "Figures")
    for i, png in enumerate(pngs, start=1):
        data = read_record_bytes(png)  # a FIFO or a device named *.png is one line
        doc.add("figure", (png, f"Figure {i}. {CAPTIONS.get(png.stem, png.stem)}", data))


def _environment(doc: Doc, meta: Meta | None, extra: list[str]) -> None:
    doc.add("h2", "Environment")
    versions = ", ".join(f"{k} {v}" for k, v in ((meta and meta.versions) or {}).items() if v)
    lines = [f"Versions: {versions}", f"Host: {(meta and meta.host) or '?'}"]
    env = meta.environment if meta else None
    if isinstance(env, dict):
        blas = ", ".join(f"{b.get('library')} ({b.get('kernel')})" for b in env.get("blas") or [])
        lines.append(
            f"Ran on: {env.get('device')}, {env.get('precision')}, {env.get('threads')} "
            f"thread(s) (train.threads), CPU {env.get('cpu')}" + (f"; BLAS {blas}" if blas else "")
        )
    doc.add("list", [*lines, *extra])


def run_report(path: Path) -> Doc:
    run = load_run_with_metrics(path)
    cfg, meta, summary = run.config, run.meta, run.summary
    final = (summary and summary.final) or run.metrics[-1]
    net = kind_of(cfg).describe(cfg)
    doc = Doc()
    doc.add("h1", f"Report: {cfg['name']}")
    doc.add(
        "p",
        f"This run trained {net} on the {cfg['data']['name']} data set (seed "
        f"{cfg['seed']}). Its status is {run.status}.",
    )
    chance = summary.chance_acc if summary else None
    if stayed_at_chance(summary) and isinstance(chance, int | float):
        doc.add(
            "p",
            f"It did not learn: its accuracy stayed at chance, {chance:.2%} (what always "
            "answering the training split's most frequent class scores).",
        )
    if run.error:
        doc.add("p", f"Error: {run.error}")
    doc.add("h2", "What was run")
    doc.add("p", "The fully resolved config (`nnlab train` on this file repeats the run):")
    doc.add("code", dump_config(cfg))
    doc.add("h2", "Results")
    steps = f"step {final.get('step')}" + (f", epoch {final['epoch']}" if "epoch" in final else "")
    parts = [f"{k.replace('_', ' ')} {metric_text(k, v)}" for k, v in final.items() if is_result(k)]
    doc.add("p", f"At the last logged {steps}: " + ", ".join(parts) + ".")
    stopped, kept = meta.stopped, summary.early_stopping if summary else None
    if stopped:
        doc.add("p", f"The run stopped at step {stopped.step}: {stopped.reason}.")
    if kept and kept.row:
        row = kept.row
        shown = [
            f"{k.replace('_', ' ')} {metric_text(k, v)}" for k, v in row.items() if is_result(k)
        ]
        doc.add(
            "p",
            f"Early stopping on {kept.metric} kept the weights of step "
            f"{kept.weights_from_step}, the best evaluation: " + ", ".join(shown) + ". "
            "The saved model and the confusion matrix are those weights'.",
        )
    best = (summary and summary.best) or {}
    doc.add(
        "table",
        (
            ["metric", "final", "best"],
            [
                [k, metric_text(k, final[k]), metric_text(k, best.get(k, final[k]))]
                for k in final
                if is_result(k)
            ],
        ),
    )
    doc.add("explore", run_data(run.metrics, path / "stats.csv"))
    _figures(doc, path / "plots")
    _environment(
        doc,
        meta,
        [
            f"Command: {' '.join(meta.command or [])}",
            f"Started {meta.start_time}, ended {meta.end_time}, "
            f"{meta.duration_seconds} s in all, "
            f"{summary.train_seconds if summary else '?'} s training",
        ],
    )
    return doc


def sweep_report(path: Path) -> Doc:
    sweep, state = load_sweep_folder(path)
    jobs, counts = state.jobs, state.counts()
    doc = Doc()
    doc.add("h1", f"Report: sweep {sweep.name}")
    doc.add(
        "p",
        f"{len(sweep.jobs)} runs of the base config {sweep.base_path.name}, varying "
        + ", ".join(sweep.varying)
        + ". Outcome: "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        + ".",
    )
    doc.add("h2", "What was run")
    varying = [f"{k}: {', '.join(json.dumps(v) for v in vals)}" for k, vals in sweep.grid.items()]
    varying += [f"variant: {json.dumps(v)}" for v in sweep.variants]
    if sweep.search is not None:  # the space the trials were sampled from
        varying += [f"{k}: {p.describe()}" for k, p in sweep.search.params.items()]
    if sweep.seeds:
        varying.append(f"seed: {', '.join(map(str, sweep.seeds))}")
    if sweep.search is not None:
        spec = sweep.search
        doc.add(
            "p",
            f"Keys that vary between the runs: the search space, sampled by {spec.method} "
            f"({spec.trials} trials, seed {spec.seed}); a param with a condition is sampled "
            "only for the trials where it holds, and the others keep the base config's value:",
        )
    else:
        doc.add("p", "Keys that vary between the runs (a grid is a cartesian product):")
    doc.add("list", varying)
    doc.add("p", "The base config every run starts from:")
    doc.add("code", dump_config(sweep.base_config))
    doc.add("h2", "Results")
    if sweep.search is not None:
        title, header, rows = search_table(sweep, trial_records(sweep, state))
        confirmed = confirm_table(sweep, state)
        holds = "the winner's" if confirmed else "the best's"
        if sweep.search.objectives:
            doc.add("p", f"{title}; the front first, marked with its files.")
        else:
            doc.add("p", f"{title}; trials ranked best first (`best.yaml` holds {holds} config).")
        doc.add("table", (header, rows))
        if sweep.search.objectives:
            doc.add("p", front_note(sweep, trial_records(sweep, state)))
        if absent_note(sweep):
            doc.add("p", absent_note(sweep))
        if confirmed is not None:
            title, header, rows, note = confirmed
            doc.add("p", f"{title}; the winner in bold.")
            doc.add("table", (header, rows))
            doc.add("p", note)
    for spec in sweep.tables:
        table = pivot_table(state, sweep, spec)
        doc.add("p", f"Table: {table.title}.")
        doc.add("table", (table.header, table.rows))
        doc.add("p", table.note[:1].upper() + table.note[1:])
    runs = {  # each job's last attempt, read once: the Explore section and the environment
        job_id: load_run(path / e.run)
        for job_id, e in jobs.items()
        if e.run and (path / e.run / "meta.json").exists()
    }
    doc.add("explore", sweep_explore(sweep, state, runs))
    _figures(doc, path / "plots")
    doc.add("h2", "Jobs")
    keys: list[str] = []
    for e in jobs.values():
        keys += [k for k in e.final if is_result(k) and k not in keys]
    errors = any(e.error for e in jobs.values())  # a diverged job's says where it diverged
    doc.add(
        "table",
        (
            ["job", "status", "attempts", *keys, *(["error"] if errors else [])],
            [
                [
                    k,
                    status_text(
                        e.status, k in runs and stayed_at_chance(runs[k].summary), e.reused
                    ),
                    str(e.attempts),
                    *(metric_text(m, e.final[m]) if m in e.final else "—" for m in keys),
                    *([one_line(e.error, ERROR_CHARS) if e.error else ""] if errors else []),
                ]
                for k, e in jobs.items()
            ],
        ),
    )
    failed = {k: e for k, e in jobs.items() if e.status not in DONE}
    if failed:
        doc.add("h2", "Jobs that did not finish")
        doc.add(
            "list",
            [
                f"{k} ({e.status}, {e.attempts} attempts): {one_line(e.error or 'no error')}"
                for k, e in failed.items()
            ],
        )
    meta = next(iter(runs.values())).meta if runs else None
    seconds = sum(r.meta.duration_seconds or 0.0 for r in runs.values())
    _environment(
        doc,
        meta,
        [
            f"Sweep started {state.created}, last updated "
            f"{state.updated}; the runs took {seconds:.1f} s in "
            "all (summed over jobs, which ran in parallel)"
        ],
    )
    return doc


# -- rendering -------------------------------------------------------------------------------


def to_markdown(doc: Doc, base: Path) -> str:
    def cell(value: Any) -> str:
        text, best = value if isinstance(value, tuple) else (value, False)
        text = html.escape(str(text), quote=False).replace("|", "\\|")
        return f"**{text}**" if best else text

    out = []
    for kind, payload in doc.blocks:
        if kind == "h1":
            out.append(f"# {html.escape(payload, quote=False)}")
        elif kind == "h2":
            out.append(f"## {html.escape(payload, quote=False)}")
        elif kind == "p":
            out.append(html.escape(payload, quote=False))
        elif kind == "code":
            out.append(f"```yaml\n{payload.rstrip()}\n```")
        elif kind == "list":
            out.append("\n".join(f"- {html.escape(item, quote=False)}" for item in payload))
        elif kind == "table":
            header, rows = payload
            out.append(
                "\n".join(
                    [
                        f"| {' | '.join(cell(h) for h in header)} |",
                        "|---" * len(header) + "|",
                        *(f"| {' | '.join(cell(c) for c in row)} |" for row in rows),
                    ]
                )
            )
        elif kind == "figure":
            png, caption, _ = payload
            out.append(f"![{caption}]({png.relative_to(base).as_posix()})\n\n*{caption}*")
        # "explore" (hover, parallel coordinates) is for the HTML page; Markdown stays static
    return "\n\n".join(out) + "\n"


STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222;line-height:1.45}table{border-collapse:collapse;margin:.8rem 0;display:block;
max-width:100%;overflow-x:auto}th,td{border:1px solid #bbb;padding:.3rem .6rem;text-align:right;
white-space:nowrap}th:first-child,td:first-child{text-align:left}th{background:#f0f0f0}
pre{background:#f6f6f6;padding:.8rem;overflow:auto}figure{margin:1.2rem 0}
img{max-width:100%}figcaption{font-style:italic;color:#444}svg{max-width:100%;height:auto}
svg text{font-size:11px;fill:#333}.title{font-size:13px;font-weight:600}.grid{stroke:#e6e6e6}
.line{fill:none;stroke-width:1.8}.band{fill-opacity:.18;stroke:none}.marker{stroke:#fff}
.legend{list-style:none;padding:0;margin:.2rem 0;display:flex;flex-wrap:wrap;gap:.2rem 1rem;
font-size:.85rem}.swatch{display:inline-block;width:1rem;height:.3rem;margin-right:.35rem;
vertical-align:middle}#tip{position:fixed;background:#fff;border:1px solid #888;padding:.3rem
.5rem;font-size:.8rem;pointer-events:none;box-shadow:0 1px 4px #0003}.tip-head{font-weight:600}
.axis line{stroke:#555}.job{fill:none;stroke-width:1.6;stroke-opacity:.8}.jobs.focus .job{
stroke-opacity:.12}.jobs.focus .job.on{stroke-opacity:1;stroke-width:3}.hint{color:#555}
.note{fill:#666}"""
# The page may load nothing: its figures are data URIs, its style and script inline.
POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
          "script-src 'unsafe-inline'")  # fmt: skip


def to_html(doc: Doc) -> str:
    esc = html.escape

    def cell(tag: str, value: Any) -> str:
        text, best = value if isinstance(value, tuple) else (value, False)
        inner = f"<strong>{esc(str(text))}</strong>" if best else esc(str(text))
        return f"<{tag}>{inner}</{tag}>"

    title = next((p for k, p in doc.blocks if k == "h1"), "nnlab report")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
    ]
    for kind, payload in doc.blocks:
        if kind in ("h1", "h2"):
            out.append(f"<{kind}>{esc(payload)}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{esc(payload)}</p>")
        elif kind == "code":
            out.append(f"<pre><code>{esc(payload)}</code></pre>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in payload) + "</ul>")
        elif kind == "table":
            header, rows = payload
            out.append(
                "<table><thead><tr>"
                + "".join(cell("th", h) for h in header)
                + "</tr></thead><tbody>"
                + "".join("<tr>" + "".join(cell("td", c) for c in row) + "</tr>" for row in rows)
                + "</tbody></table>"
            )
        elif kind == "explore":
            out.append(html_block(payload))
        elif kind == "figure":
            png, caption, raw = payload
            data = base64.b64encode(raw).decode("ascii")
            out.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
                f"<figcaption>{esc(caption)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(path: Path) -> tuple[Path, Path]:
    """report.md and report.html in the folder; figures are re-rendered if plots/ is empty."""
    kind = folder_kind(path)
    if not list((path / "plots").glob("*.png")):
        replot(path)
    doc = sweep_report(path) if kind == "sweep" else run_report(path)
    if not doc.blocks:
        raise NnlabError(f"{path}: nothing to report")
    md, page = path / "report.md", path / "report.html"
    texts = to_markdown(doc, path), to_html(doc)  # both made before either is written
    try:
        atomic_write_text(md, texts[0])
        atomic_write_text(page, texts[1])
    except OSError as exc:  # a read-only or full folder: what was there stays (atomic writes)
        raise NnlabError(f"{path}: cannot write the report there: {exc.strerror or exc}") from None
    return md, page
