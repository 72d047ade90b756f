"""The command-line vocabulary every ``siedob-*`` command shares: one option name per concept, one error style.

``--output DIR`` (output folder), ``--output-file FILE`` (one output file), ``--checkpoints DIR``,
``--data-root DIR``, ``--device auto|cpu|cuda|cuda:N``, ``--overwrite``, ``--seed N``, ``--config FILE``,
``--set key=value``. Relative paths resolve against the working directory only. Usage errors are
:class:`~siedob.errors.UsageError`\\ s, printed by :func:`siedob.errors.run_cli` as one line (exit code 2).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Optional, Tuple

from siedob.errors import SiedobError, UsageError

#: Appended to the description of every command.
PATHS_NOTE = "Relative paths resolve against the working directory."
DEVICE_PATTERN = r"auto|cpu|cuda(:[0-9]+)?"


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one-line :class:`UsageError`\\ s instead of usage dumps."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("description", "")
        kwargs.setdefault("allow_abbrev", False)  # an old option name must not silently match a new one
        kwargs["description"] = f"{kwargs['description']} {PATHS_NOTE}".strip()
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


def device_arg(text: str) -> str:
    """``--device`` value: auto, cpu, cuda or cuda:N."""
    if not re.fullmatch(DEVICE_PATTERN, text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def size_arg(text: str) -> Tuple[int, int]:
    """``WxH`` to (W, H)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 2048x1024, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_device(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument(
        "--device",
        type=device_arg,
        default=default,
        metavar="auto|cpu|cuda|cuda:N",
        help=f"where the networks run (default: {default}; auto picks CUDA when available)",
    )


def add_overwrite(p: argparse.ArgumentParser, what: str = "outputs that already exist") -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace {what}")


def add_config(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--config", default=None, metavar="FILE", help=f"config file (default: {what})")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.batch_size=8 (repeatable)",
    )


def existing_dir(path: Optional[str], what: str) -> Optional[Path]:
    """``path`` as a folder that must exist (None passes through)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.exists():
        raise SiedobError(f"{p}: {what} not found")
    if not p.is_dir():
        raise SiedobError(f"{p}: {what} is a file, expected a folder")
    if not os.access(p, os.R_OK | os.X_OK):
        raise SiedobError(f"{p}: {what} is not readable")
    return p


def existing_file(path: Optional[str], what: str) -> Optional[Path]:
    """``path`` as a readable file that must exist (None passes through)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.exists():
        raise SiedobError(f"{p}: {what} not found")
    if p.is_dir():
        raise SiedobError(f"{p}: {what} is a folder, expected a file")
    if not os.access(p, os.R_OK):
        raise SiedobError(f"{p}: {what} is not readable")
    return p


def check_output_dir(path: Path, what: str = "output folder") -> Path:
    """Prove ``path`` can be a folder we write into, creating nothing: the first existing part must be a
    writable folder (a probe file is created and removed there)."""
    path = Path(path).expanduser()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise SiedobError(f"{path}: {what} is not writable ({probe} is a file, not a folder)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".siedob-write-test.", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise SiedobError(f"{path}: {what} is not writable ({exc.strerror or exc})") from None
    return path


def check_output_file(path: Path, overwrite: bool, what: str = "output file") -> Path:
    """An output file: its folder must be writable; an existing file is replaced only with ``overwrite``."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise SiedobError(f"{path}: {what} is a folder")
    if path.exists() and not overwrite:
        raise SiedobError(f"{path}: already exists (pass --overwrite to replace it)")
    check_output_dir(path.parent, f"folder of {what} {path.name}")
    return path
