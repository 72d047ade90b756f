"""A real ``siedob-studio`` server on a free loopback port, in a thread, over narrow released-format checkpoints."""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

from siedob.studio.cli import build_parser, make_studio, serve
from tests.support.edit import small_networks, write_checkpoints


class LiveStudio:
    """A running server: ``url``, its :class:`~siedob.studio.server.Studio`, and ``stop()``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.studio = make_studio(args)
        self._ready: list = []
        self._thread = threading.Thread(target=serve, args=(self.studio, "127.0.0.1", 0, self._ready), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while len(self._ready) < 2:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the studio server did not start")
            time.sleep(0.02)
        self.server, self.url = self._ready
        self.checkpoints: Path = self.studio.checkpoints

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)


def start_studio(checkpoints: Path, *extra: str) -> LiveStudio:
    """Start a studio on ``checkpoints`` with extra command-line flags."""
    return LiveStudio(build_parser().parse_args(["--checkpoints", str(checkpoints), "--device", "cpu", *extra]))


@pytest.fixture(scope="session")
def studio_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four released files of narrow (ngf 8) generators."""
    return write_checkpoints(tmp_path_factory.mktemp("studio_ckpt"), small_networks(seed=3, ngf=8))


@pytest.fixture(scope="module")
def live_studio(studio_checkpoints: Path) -> Iterator[LiveStudio]:
    """A studio over the bundled example with default limits, stopped after the module."""
    live: Optional[LiveStudio] = start_studio(studio_checkpoints)
    yield live
    live.stop()
