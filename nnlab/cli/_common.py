"""What the commands share: the options they have in common, the progress display, the
exit codes and how a folder-by-folder command reports a bad folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nnlab.common.metrics import metric_field
from nnlab.errors import NnlabError
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


class Progress:
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


def each(paths: tuple[Path, ...], action) -> int:
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
