"""One loader for every YAML file the tools read: design files, sensor files, training and compare
configs. A file is named by a path or by the name of a bundled one (``phone``, ``adc4_in12``,
``compare``); every error is one line that names the file and the problem.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import AdcforgeError, ConfigError


def resolve_path(name_or_path: str | os.PathLike, bundled: Mapping[str, Any] | None = None):
    """Return the path of ``name_or_path``: the file itself, or the bundled file of that name."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        return name_or_path  # a Traversable of a package's data
    text = os.fspath(name_or_path)
    if bundled and text in bundled and not Path(text).is_file():
        return bundled[text]
    return Path(text)


def load_yaml(name_or_path: str | os.PathLike, what: str, *,
              bundled: Mapping[str, Any] | None = None,
              error: type[AdcforgeError] = ConfigError) -> tuple[Any, str]:
    """Read the YAML document of a path or of a bundled file's name; return ``(data, source)``.

    ``what`` names the kind of file in messages (``"design file"``); ``bundled`` maps names to
    paths (or importlib Traversables); ``error`` is the exception raised, one line that names the
    file: no such file (listing the bundled names), unreadable, or not valid YAML (with line and
    column). An empty file reads as ``None``.
    """
    path = resolve_path(name_or_path, bundled)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        names = f" (bundled: {', '.join(sorted(bundled))})" if bundled else ""
        raise error(f"{source}: no such {what}{names}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise error(f"{source}: cannot read {what}: {reason}") from None
    try:
        return yaml.safe_load(text), source
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{source}: not valid YAML{where}: {problem}") from None
