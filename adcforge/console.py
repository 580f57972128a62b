"""The console that progress bars and reports print to."""

from __future__ import annotations


def console(stderr: bool = True):
    """Return a rich Console; where the stream is not a terminal (a log file, CI) it is 200
    columns wide, so that progress lines come out whole instead of cut to 80 columns."""
    from rich.console import Console

    out = Console(stderr=stderr)
    return out if out.is_terminal else Console(stderr=stderr, width=200)
