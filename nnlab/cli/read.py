"""The commands that read folders back: ``nnlab plot``, ``report``, ``runs``, ``compare``
and ``schema``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nnlab.cli._common import (
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    each,
    folders_argument,
    runs_dir_option,
)
from nnlab.common.status import RunStatus, texts
from nnlab.errors import NnlabError
from nnlab.figures import FORMATS
from nnlab.runfolder.runs import RUNS_DIR


@click.command()
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
        return each(folders, lambda p: replot(p, out, fmt, list(metrics) or None))
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
    code = each(
        (tuple(runs),),
        lambda group: compare(list(group), out, list(metrics) or None, fmt, sources),
    )
    return EXIT_RUN_FAILED if code == EXIT_OK and read < len(folders) else code


@click.command()
@folders_argument
def report(folders: tuple[Path, ...]) -> int:
    """Write report.md and a self-contained report.html for each run or sweep folder."""
    from nnlab.reports.report import write_report

    return each(folders, write_report)


@click.command()
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
@click.option("--jobs", "jobs", is_flag=True, default=False,
              help="List every sweep's jobs (their last attempts) beside the plain runs, in "
              "place of the sweeps; a job is named 'SWEEP / JOB', with sweep and job "
              "columns to query.")  # fmt: skip
def runs(
    runs_dir: Path,
    where: tuple[str, ...],
    sort: tuple[str, ...],
    columns: tuple[str, ...],
    limit: int | None,
    fmt: str,
    status: str | None,
    pattern: str | None,
    jobs: bool,
) -> int:
    """List, filter and sort the runs and sweeps in a runs folder (newest first) — or a sweep
    folder's jobs, given as --runs-dir, or with --jobs every sweep's jobs beside the runs.
    Queries read an index kept in the folder (.nnlab-index.sqlite), checked against the
    folders each time."""
    from nnlab.runfolder.query import Query, run_query
    from nnlab.runfolder.render import render

    query = Query(list(where), list(sort), list(columns), limit, fmt, status, pattern, jobs)
    chosen, shown_columns, warnings = run_query(runs_dir, query)
    for line in warnings:
        click.echo(f"nnlab: warning: {line}", err=True)
    if not chosen and fmt == "table":
        what = "runs or jobs" if jobs else "runs"
        asked = query.asked()
        click.echo(f"no {what} " + (f"matching {asked} " if asked else "") + f"in {runs_dir}")
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


@click.command(name="compare", cls=_CompareCommand)
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
    from nnlab.reports.compare import compare_runs, render
    from nnlab.reports.groups import compare_groups, render_groups

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


@click.command()
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


@click.command()
@click.argument("runs_dir", metavar="[RUNS_DIR]", required=False, default=RUNS_DIR,
                type=click.Path(path_type=Path))  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8750, show_default=True,
              help="The port on 127.0.0.1 (0: a free one, printed).")  # fmt: skip
def serve(runs_dir: Path, port: int) -> int:
    """Serve a live dashboard of a runs folder on 127.0.0.1 (default: ./runs): the runs
    and sweeps as `nnlab runs` lists them, and for the one chosen the curves, layer
    statistics and parallel coordinates of its report.html, updated as runs and jobs
    write their rows. Ctrl-C stops it."""
    from nnlab.reports.serve import serve as serve_folder

    def ready(url: str) -> None:
        click.echo(f"nnlab: serving {runs_dir} at {url} (Ctrl-C to stop)")
        sys.stdout.flush()

    serve_folder(runs_dir, port, ready)
    return EXIT_OK
