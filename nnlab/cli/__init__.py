"""The ``nnlab`` command: thin Click commands over the library (nnlab.experiment, nnlab.sweeps,
nnlab.reports.results, nnlab.reports.report).

Exit codes (docs/run-folder.md, 'Exit codes'): 0 success; 1 a run failed or diverged; 2 bad usage,
bad config or missing data (one line on stderr, ``nnlab: error: ...``); 130 interrupted.

Only Click and nnlab's light modules are imported at start-up, so ``nnlab --help`` answers at
once;
NumPy, scikit-learn and matplotlib load when a command needs them, torch only for the DCN.
"""

from __future__ import annotations

import signal
import sys
import warnings

import click

from nnlab import __version__
from nnlab.cli import read, run
from nnlab.cli._common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from nnlab.errors import FigureNote, NnlabError, raise_interrupt


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nnlab")
def cli() -> None:
    """Run neural-network lab experiments from YAML configs.

    Each run writes config, metrics, model and plots into its own timestamped folder.
    """


for _command in (run.train, run.gradcheck, run.sweep, read.plot, read.report, read.runs,
                 read.compare_command, read.schema, read.serve):  # fmt: skip
    cli.add_command(_command)


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
