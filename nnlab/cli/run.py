"""The commands that train: ``nnlab train``, ``nnlab gradcheck`` and ``nnlab sweep``."""

from __future__ import annotations

from pathlib import Path

import click

from nnlab.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    Progress,
    overrides_option,
    runs_dir_option,
)
from nnlab.common.metrics import is_result, metric_field
from nnlab.common.status import JobStatus, RunStatus


@click.command()
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
@click.option(
    "--reuse",
    is_flag=True,
    help="Take a completed run under --runs-dir with the same fingerprint (config, code, "
    "data, versions, environment) instead of training; print its folder.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or metric rows.")
def train(
    config: Path | None,
    overrides: tuple[str, ...],
    runs_dir: Path,
    resume: Path | None,
    repeat: Path | None,
    reuse: bool,
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
    if reuse and config is None:
        raise click.UsageError("--reuse goes with CONFIG (not --resume or --repeat)")
    if repeat is not None and overrides:
        raise click.UsageError(
            "--repeat takes no -s overrides: it repeats the run as it ran (to change a key, "
            "train RUN_DIR/config.yaml with -s)"
        )
    from nnlab import experiment
    from nnlab.experiment import RunInterrupted

    progress = Progress((config or resume or repeat).stem, quiet)
    try:
        if repeat is not None:
            original, run = experiment.repeat(
                repeat, runs_dir, progress=progress, on_row=progress.row
            )
        else:
            run = experiment.train(
                config, overrides, runs_dir, progress=progress, on_row=progress.row,
                resume=resume, reuse=reuse,
            )  # fmt: skip
    except RunInterrupted as exc:
        progress.close()
        click.echo(_interrupted_text(exc.run), err=True)
        click.echo(str(exc.run.path))
        return EXIT_INTERRUPTED
    progress.close()
    if run.reused_from is not None:
        click.echo(
            f"nnlab: reused {run.reused_from}: a completed run with the same fingerprint; "
            "nothing trained (--reuse)",
            err=True,
        )
        click.echo(str(run.path))
        return EXIT_OK
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


@click.command()
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

    from nnlab.experiment import gradcheck
    from nnlab.models.mlp.gradcheck import TOLERANCE

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


@click.command()
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
@click.option(
    "--no-reuse",
    is_flag=True,
    help="Train every job, even where a completed run with its fingerprint exists under "
    "--runs-dir (by default that run is copied instead).",
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
    no_reuse: bool,
    quiet: bool,
) -> int:
    """Run every variant that the sweep file SWEEP describes, in parallel, and tabulate them.

    Prints the tables at the end and the sweep folder's path as the last line of stdout.
    """
    from nnlab.sweeps import SweepInterrupted, run_sweep, sweep_summary_text

    if sweep_file is None and resume is None:
        raise click.UsageError("Missing argument 'SWEEP' (or --resume SWEEP_DIR).")
    progress = Progress("sweep", quiet)

    def on_job(job_id: str, entry: dict) -> None:
        final = entry.get("final") or {}
        shown = "  ".join(metric_field(k, v) for k, v in final.items() if is_result(k))
        detail = shown if entry["status"] != JobStatus.FAILED else entry.get("error")
        if entry.get("reused"):
            detail += f"  (reused {entry['reused']})"
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
            reuse=not no_reuse,
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
