"""The ``nnlab`` command: thin Click commands over the library (nnlab.experiment, nnlab.sweeps,
nnlab.reports.results, nnlab.reports.report).

Exit codes (docs/design.md, 'Exit codes'): 0 success; 1 a run failed or diverged; 2 bad usage,
bad config or missing data (one line on stderr, ``nnlab: error: ...``); 130 interrupted.

Only Click and nnlab's light modules are imported at start-up, so ``nnlab --help`` answers at
once;
NumPy, scikit-learn and matplotlib load when a command needs them, torch only for the DCN.
"""

from __future__ import annotations

import signal
import sys
import warnings
from pathlib import Path

import click

from nnlab import __version__
from nnlab.common.metrics import is_result, metric_field
from nnlab.common.status import RunStatus, texts
from nnlab.errors import FigureNote, NnlabError, raise_interrupt
from nnlab.reports.results import FORMATS
from nnlab.runfolder.runs import RUNS_DIR

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

overrides_option = click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key, e.g. -s model.activation=relu -s model.layers=[2,5,2].",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nnlab")
def cli() -> None:
    """Run neural-network lab experiments from YAML configs.

    Each run writes config, metrics, model and plots into its own timestamped folder.
    """


class _Progress:
    """A tqdm bar on stderr with rate and ETA (a new bar per epoch for the DCN); logged metric
    rows are printed above it. When stderr is not a terminal (a file, a pipe, a log) there is
    no bar, whose redrawn frames would land among the rows: the rows are plain lines."""

    def __init__(self, desc: str, quiet: bool):
        self.desc, self.quiet, self.bar = desc, quiet, None
        self.drawn = not quiet and sys.stderr.isatty()

    def __call__(
        self,
        done: int,
        total: int,
        desc: str | None = None,
        unit: str = "it",
        postfix: str | None = None,
    ) -> None:
        if not self.drawn:
            return
        label = f"{self.desc} {desc}" if desc else self.desc
        if self.bar is None or self.bar.desc != label:
            from tqdm import tqdm

            self.close()
            self.bar = tqdm(
                total=total, desc=label, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False
            )
        if postfix is not None:
            self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(done - self.bar.n)

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is None:
            click.echo(text, err=True)
        else:
            self.bar.write(text, file=sys.stderr)

    def row(self, row: dict[str, float]) -> None:
        self.line("  ".join(metric_field(k, v) for k, v in row.items()))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


folders_argument = click.argument(
    "folders",
    metavar="RUN_OR_SWEEP_DIR...",
    nargs=-1,
    required=True,
    type=click.Path(path_type=Path),
)


def runs_dir_option(what: str):
    return click.option(
        "--runs-dir",
        type=click.Path(path_type=Path),
        default=RUNS_DIR,
        show_default=True,
        help=f"Folder that receives the {what} folder.",
    )


@cli.command()
@click.argument("config", type=click.Path(path_type=Path), required=False)
@overrides_option
@runs_dir_option("run")
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    metavar="RUN_DIR",
    help="Continue an interrupted DCN run in its folder, from its last epoch end.",
)
@click.option(
    "--repeat",
    type=click.Path(path_type=Path),
    metavar="RUN_DIR",
    help="Train RUN_DIR's config again (same seed, threads, every key) into a new folder, "
    "and say whether every metric row came out the same.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or metric rows.")
def train(
    config: Path | None,
    overrides: tuple[str, ...],
    runs_dir: Path,
    resume: Path | None,
    repeat: Path | None,
    quiet: bool,
) -> int:
    """Train the experiment described by CONFIG (a YAML file), --resume a DCN run, or
    --repeat a finished one.

    Prints progress on stderr and the run folder's path as the last line of stdout.
    """
    given = [name for name, v in (("CONFIG", config), ("--resume", resume),
                                  ("--repeat", repeat)) if v is not None]  # fmt: skip
    if not given:
        raise click.UsageError("Missing argument 'CONFIG' (or --resume / --repeat RUN_DIR).")
    if len(given) > 1:
        raise click.UsageError(
            f"give one of CONFIG, --resume and --repeat, not {' and '.join(given)}"
        )
    if repeat is not None and overrides:
        raise click.UsageError(
            "--repeat takes no -s overrides: it repeats the run as it ran (to change a key, "
            "train RUN_DIR/config.yaml with -s)"
        )
    from nnlab import experiment
    from nnlab.experiment import RunInterrupted

    progress = _Progress((config or resume or repeat).stem, quiet)
    try:
        if repeat is not None:
            original, run = experiment.repeat(
                repeat, runs_dir, progress=progress, on_row=progress.row
            )
        else:
            run = experiment.train(
                config, overrides, runs_dir, progress=progress, on_row=progress.row, resume=resume
            )
    except RunInterrupted as exc:
        progress.close()
        click.echo(_interrupted_text(exc.run), err=True)
        click.echo(str(exc.run.path))
        return EXIT_INTERRUPTED
    progress.close()
    summary = run.summary
    final = summary.final if summary else {}
    metrics = "  ".join(metric_field(k, v) for k, v in final.items() if k != "step")
    for warning in run.meta.warnings or []:
        click.echo(f"nnlab: warning: {warning}", err=True)
    if run.status == RunStatus.COMPLETED and summary:
        took = f"{summary.train_seconds:.2f} s"
        if summary.eval_seconds is not None:  # training and evaluation apart
            speed = summary.images_per_second
            took = (f"{took} training" + (f" ({speed:,.0f} images/s)" if speed else "")
                    + f" + {summary.eval_seconds:.2f} s evaluation")  # fmt: skip
        click.echo(f"completed in {took}: {metrics}")
        stopped, kept = run.meta.stopped, summary.early_stopping
        if stopped:
            click.echo(f"stopped at step {stopped.step}: {stopped.reason}")
        if kept and kept.row:
            fields = "  ".join(metric_field(k, v) for k, v in kept.row.items() if k != "step")
            click.echo(f"kept the weights of step {kept.weights_from_step}: {fields}")
    elif run.status == RunStatus.DIVERGED:
        click.echo(f"nnlab: run diverged: {run.error}", err=True)
    else:
        click.echo(
            f"nnlab: error: run failed: {run.error} (traceback in {run.path / 'error.log'})",
            err=True,
        )
    if repeat is not None:
        same, lines = experiment.sameness(original, run)
        verdict = "the same numbers as" if same else "nnlab: warning: other numbers than"
        click.echo(f"{verdict} {original.path}" + (":" if lines else ""), err=not same)
        for line in lines:
            click.echo(f"  {line}", err=not same)
    click.echo(str(run.path))
    return EXIT_OK if run.status == RunStatus.COMPLETED else EXIT_RUN_FAILED


def _interrupted_text(run) -> str:
    """What a signal that stopped a run left: the metrics so far, or, when it came while a
    finished run was saving, that run whole under its status."""
    if run.status == RunStatus.INTERRUPTED:
        return f"nnlab: interrupted; metrics so far are in {run.path}"
    return (
        f"nnlab: interrupted while saving; the run had ended {run.status} and its files "
        f"were saved whole first: {run.path}"
    )


@cli.command()
@click.argument("config", type=click.Path(path_type=Path))
@overrides_option
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Number of training examples in the checked batch.",
)
def gradcheck(config: Path, overrides: tuple[str, ...], batch: int) -> int:
    """Compare backprop gradients with central finite differences, per parameter array.

    Exits 1 if any relative error exceeds 1e-6.
    """
    import numpy as np

    from nnlab.models.mlp.gradcheck import TOLERANCE, gradcheck

    results = gradcheck(config, overrides, batch=batch)
    click.echo(f"{'param':<6} {'shape':<12} {'rel. error':>11}")
    for r in results:
        verdict = "ok" if r.rel_error <= TOLERANCE else "FAIL"
        size = int(np.prod(r.shape))
        sampled = f"  ({r.checked} of {size} entries, sampled)" if r.checked < size else ""
        click.echo(f"{r.name:<6} {str(r.shape):<12} {r.rel_error:11.3e}  {verdict}{sampled}")
    worst = max(r.rel_error for r in results)
    ok = worst <= TOLERANCE
    click.echo(f"max relative error {worst:.3e} ({'ok' if ok else 'above'} {TOLERANCE:g})")
    return EXIT_OK if ok else EXIT_RUN_FAILED


@cli.command()
@click.argument("sweep_file", metavar="SWEEP", type=click.Path(path_type=Path), required=False)
@overrides_option
@runs_dir_option("sweep")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Jobs run at once, never more than the sweep's jobs [default: local, the CPU cores "
    "this process may use (and at most those); ray, the cluster's CPUs / --cpus-per-job].",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where jobs run: local worker processes, or Ray tasks.",
)
@click.option(
    "--address",
    default=None,
    metavar="ADDR",
    help="With --executor ray: the cluster (auto, host:port or ray://host:port) "
    "[default: a local Ray instance].",
)
@click.option(
    "--cpus-per-job",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With --executor ray: CPUs each job asks for.",
)
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    metavar="SWEEP_DIR",
    help="Finish a stopped sweep: run only its jobs not completed or diverged.",
)
@click.option("--force", is_flag=True, help="With --resume: go on although the sweep changed.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first job that fails.")
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Run a failed job again up to N times (a diverged job is a result).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or per-job lines.")
def sweep(
    sweep_file: Path | None,
    overrides: tuple[str, ...],
    runs_dir: Path,
    jobs: int | None,
    executor: str,
    address: str | None,
    cpus_per_job: int,
    resume: Path | None,
    force: bool,
    fail_fast: bool,
    retries: int,
    quiet: bool,
) -> int:
    """Run every variant that the sweep file SWEEP describes, in parallel, and tabulate them.

    Prints the tables at the end and the sweep folder's path as the last line of stdout.
    """
    from nnlab.sweeps import SweepInterrupted, run_sweep, sweep_summary_text

    if sweep_file is None and resume is None:
        raise click.UsageError("Missing argument 'SWEEP' (or --resume SWEEP_DIR).")
    progress = _Progress("sweep", quiet)

    def on_job(job_id: str, entry: dict) -> None:
        final = entry.get("final") or {}
        shown = "  ".join(metric_field(k, v) for k, v in final.items() if is_result(k))
        detail = shown if entry["status"] != "failed" else entry.get("error")
        progress.line(f"{entry['status']:>11}  {job_id}  {detail}")

    try:
        result = run_sweep(
            sweep_file,
            overrides,
            runs_dir,
            jobs=jobs,
            resume=resume,
            force=force,
            fail_fast=fail_fast,
            retries=retries,
            progress=progress,
            on_job=on_job,
            executor=executor,
            address=address,
            cpus_per_job=cpus_per_job,
            warn=lambda message: click.echo(f"nnlab: warning: {message}", err=True),
        )
    except SweepInterrupted as exc:
        progress.close()
        click.echo(
            f"nnlab: sweep interrupted; resume it with: nnlab sweep --resume {exc.sweep.path}",
            err=True,
        )
        click.echo(str(exc.sweep.path))
        return EXIT_INTERRUPTED
    progress.close()
    text = sweep_summary_text(result)
    if text:  # a resume with nothing to do has no tables to print
        click.echo(text)
    click.echo(str(result.path))
    if result.failed:
        click.echo(
            f"nnlab: {len(result.failed)} job(s) failed: " + ", ".join(result.failed), err=True
        )
        return EXIT_RUN_FAILED
    return EXIT_OK


def _each(paths: tuple[Path, ...], action) -> int:
    """Apply ``action`` to every folder, reporting a bad one in a line and going on."""
    failures = 0
    for path in paths:
        try:
            for made in action(path):
                click.echo(str(made))
        except NnlabError as exc:
            click.echo(f"nnlab: error: {exc}", err=True)
            failures += 1
    if not failures:
        return EXIT_OK
    return EXIT_USAGE if failures == len(paths) else EXIT_RUN_FAILED


@cli.command()
@folders_argument
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the figures go [default: each folder's plots/; for several runs "
    "overlaid: ./comparison].",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="NAME",
    help="Draw only this metric's curves, e.g. test_acc (repeatable; several runs or a "
    "sweep's jobs overlaid) [default: every figure; loss and accuracy overlaid].",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="png", show_default=True)
def plot(folders: tuple[Path, ...], out: Path | None, metrics: tuple[str, ...], fmt: str) -> int:
    """Re-render the figures of run or sweep folders from their files, without training.

    Given several run or sweep folders, draws the curves of all their runs (a sweep's
    finished jobs) together, labelled by the config keys in which they differ (and the
    sweep, where alike runs came from different sweeps): one line per run, or per group of
    runs that differ only in their seed (the median over the runs that logged each step, with
    a band from their 25th to their 75th percentile; n per step, its range in the legend);
    past nine lines, small multiples.
    """
    from nnlab.reports.results import (
        check_out,
        compare,
        folder_kind,
        load_run_with_metrics,
        replot,
        sweep_runs,
    )

    if len(folders) == 1:
        return _each(folders, lambda p: replot(p, out, fmt, list(metrics) or None))
    out = check_out(out or Path("comparison"))
    runs, sources, read = [], [], 0
    for path in folders:
        try:
            if folder_kind(path) == "sweep":
                name, found = sweep_runs(path)
                runs += found
                sources += [name] * len(found)
            else:
                runs.append(load_run_with_metrics(path))
                sources.append(None)
            read += 1
        except NnlabError as exc:
            click.echo(f"nnlab: error: {exc}", err=True)
    if len(runs) < 2:
        click.echo("nnlab: error: need at least two readable runs to overlay", err=True)
        return EXIT_USAGE
    code = _each(
        (tuple(runs),),
        lambda group: compare(list(group), out, list(metrics) or None, fmt, sources),
    )
    return EXIT_RUN_FAILED if code == EXIT_OK and read < len(folders) else code


@cli.command()
@folders_argument
def report(folders: tuple[Path, ...]) -> int:
    """Write report.md and a self-contained report.html for each run or sweep folder."""
    from nnlab.reports.report import write_report

    return _each(folders, write_report)


@cli.command()
@runs_dir_option("runs")
@click.option("--where", "where", metavar="EXPR", multiple=True,
              help="Only runs where KEY OP VALUE holds; OP: = != > >= < <= ~ (glob). KEY: a "
              "dotted config key, a metric (test_acc, best.val_loss) or name, kind, status, "
              "started, time, host, folder. Several are ANDed.")  # fmt: skip
@click.option("--sort", "sort", metavar="[-]KEY", multiple=True,
              help="Order by KEY (-KEY: descending); several: the first decides. Default: "
              "newest first.")  # fmt: skip
@click.option("--columns", "columns", metavar="KEY,...", multiple=True,
              help="The columns to show (default: started, name, kind, status, time, results, "
              "the --where and --sort keys, folder).")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Show the first N.")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(("table", "csv", "json")), default="table",
              show_default=True)  # fmt: skip
@click.option("--status", type=click.Choice(texts(RunStatus)), default=None,
              help="Only this status (the same as --where status=STATUS).")  # fmt: skip
@click.option("--name", "pattern", metavar="GLOB", default=None,
              help="Only names matching this pattern, e.g. 'moons_*'.")  # fmt: skip
def runs(
    runs_dir: Path,
    where: tuple[str, ...],
    sort: tuple[str, ...],
    columns: tuple[str, ...],
    limit: int | None,
    fmt: str,
    status: str | None,
    pattern: str | None,
) -> int:
    """List, filter and sort the runs and sweeps in a runs folder (newest first) — or a sweep
    folder's jobs, given as --runs-dir. Queries read an index kept in the folder
    (.nnlab-index.sqlite), checked against the folders each time."""
    from nnlab.runfolder.query import Query, run_query
    from nnlab.runfolder.render import render

    query = Query(list(where), list(sort), list(columns), limit, fmt, status, pattern)
    chosen, shown_columns, warnings = run_query(runs_dir, query)
    for line in warnings:
        click.echo(f"nnlab: warning: {line}", err=True)
    if not chosen and fmt == "table":
        click.echo(f"no runs in {runs_dir}" + (" matching" if where or status or pattern else ""))
        return EXIT_OK
    click.echo(render(chosen, shown_columns, fmt))
    return EXIT_OK


class _CompareCommand(click.Command):
    """``--vs B1 B2 ...``: every argument after --vs up to the next option is one of its
    folders (Click's options take a fixed number of values)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        after_vs = False
        for i, arg in enumerate(args):
            if arg == "--vs":
                if i + 1 == len(args) or args[i + 1].startswith("-"):
                    raise click.UsageError("--vs needs at least one run or sweep folder", ctx)
                after_vs = True
            elif after_vs and not arg.startswith("-"):
                out += ["--vs", arg]
            else:
                after_vs = False
                out.append(arg)
        return super().parse_args(ctx, out)


@cli.command(name="compare", cls=_CompareCommand)
@click.argument("folders", metavar="RUN_OR_SWEEP_DIR...", nargs=-1, required=True,
                type=click.Path(path_type=Path))  # fmt: skip
@click.option("--group-by", "group_by", metavar="KEY", default=None,
              help="Group the runs (a sweep's completed jobs) by this config key's value, e.g. "
              "model.activation, and compare each group with the first.")  # fmt: skip
@click.option("--vs", "vs", metavar="RUN_OR_SWEEP_DIR...", multiple=True,
              type=click.Path(path_type=Path),
              help="Compare the runs given first (A) with the runs after --vs (B, the "
              "reference).")  # fmt: skip
@click.option("--metric", metavar="NAME", default=None,
              help="With --group-by or --vs: the final metric compared, or best.NAME [default: "
              "test_acc, else val_acc, train_acc, then the losses in that order].")  # fmt: skip
@click.option("--reference", metavar="GROUP", default=None,
              help="With --group-by or --vs: the group the others are compared with, by its "
              "value, or 'best' [default: the first group; with --vs, B].")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(("table", "md", "csv", "json")),
              default="table", show_default=True)  # fmt: skip
def compare_command(
    folders: tuple[Path, ...],
    group_by: str | None,
    vs: tuple[Path, ...],
    metric: str | None,
    reference: str | None,
    fmt: str,
) -> int:
    """What differs between runs and what it changed — or, for groups of runs (seeds), whether
    a difference is real.

    Runs: the config keys, environment and code that differ, then each final and best metric
    side by side with the difference to the first run. A folder is a run folder or a sweep's
    job folder (its last attempt).

    Groups (--group-by KEY over runs or sweep folders, or A... --vs B...): per group n,
    mean ± std and the 95% Student-t CI of the mean; against the reference, the difference
    of means with its 95% Welch CI, the probability of improvement, Welch's t-test p and
    the seeds needed to resolve the difference."""
    from nnlab.reports.compare import compare_groups, compare_runs, render, render_groups

    if group_by is not None or vs:
        if group_by is not None and vs:
            raise click.UsageError("use --group-by KEY or --vs, not both")
        groups = compare_groups(list(folders), group_by, list(vs), metric, reference)
        click.echo(render_groups(groups, fmt))
        return EXIT_OK
    if metric is not None or reference is not None:
        raise click.UsageError("--metric and --reference compare groups: add --group-by or --vs")
    if len(folders) < 2:
        raise click.UsageError("compare needs at least two run or job folders")
    click.echo(render(compare_runs(list(folders)), fmt))
    return EXIT_OK


@cli.command()
@click.option("--kind", default=None, metavar="KIND", help="One model kind's schema (mlp, dcn).")
def schema(kind: str | None) -> int:
    """Print the config's JSON Schema (for an editor: the shipped configs' first line
    `# yaml-language-server: $schema=nnlab.schema.json` points at it)."""
    import json

    from nnlab.config.schema import json_schema
    from nnlab.models import kinds

    if kind is not None and kind not in kinds():
        raise click.BadParameter(
            f"{kind!r} is not a model kind; allowed: {', '.join(kinds())}", param_hint="--kind"
        )
    click.echo(json.dumps(json_schema(kind), indent=2))
    return EXIT_OK


def _show_figure_notes() -> None:
    """Print what a figure could not draw (nnlab.errors.FigureNote) as one warning line each;
    other warnings as Python shows them."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, FigureNote):
            click.echo(f"nnlab: warning: {' '.join(str(message).split())}", err=True)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.simplefilter("always", FigureNote)
    warnings.showwarning = show


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn every outcome into an exit code."""
    signal.signal(signal.SIGTERM, raise_interrupt)
    # past a file-size limit, get an OSError (reported, status kept honest), not a silent kill
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _show_figure_notes()
    try:
        code = cli.main(args=argv, prog_name="nnlab", standalone_mode=False)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        click.echo(f"nnlab: error: {exc.format_message()}{hint}", err=True)
        code = EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"nnlab: error: {exc.format_message()}", err=True)
        code = EXIT_USAGE
    except NnlabError as exc:
        click.echo(f"nnlab: error: {' '.join(str(exc).split())}", err=True)  # one line, always
        code = exc.exit_code
    except (KeyboardInterrupt, click.Abort):
        click.echo("nnlab: interrupted", err=True)
        code = EXIT_INTERRUPTED
    sys.exit(code if isinstance(code, int) else EXIT_OK)
