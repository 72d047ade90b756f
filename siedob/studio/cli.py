"""``siedob-studio``: load the four networks once, then serve the editing page and its API until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from siedob.checkpoints import RELEASED, CheckpointError
from siedob.device import resolve_device
from siedob.errors import SiedobError, run_cli
from siedob.profiles import DEFAULT_PROFILE

#: Checkpoint folders tried, in order, when ``--checkpoints`` is not given (relative to the working directory).
DEFAULT_CHECKPOINTS = ("fusion/submodels", "quickstart_out/checkpoints")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(
        prog="siedob-studio",
        description="Serve SIEDOB's editing page and API on this machine. "
        "Relative paths resolve against the working directory.",
    )
    p.add_argument(
        "--checkpoints",
        type=Path,
        help=f"folder with the four released .pth files (default: the first of {', '.join(DEFAULT_CHECKPOINTS)} "
        "holding them)",
    )
    p.add_argument(
        "--data",
        type=Path,
        help="a prepared dataset (its train and test scenes are listed, its object crops are the style bank)",
    )
    p.add_argument(
        "--styles", type=Path, help="style references in the authors' object_style/<class>/{images,inst_mask} layout"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--max-upload-mb", type=float, default=32.0, help="largest request body in MiB (413 above)")
    p.add_argument("--max-pixels", type=int, default=2048 * 2048, help="largest image in pixels (413 above)")
    p.add_argument("--queue", type=int, default=16, help="edits that may wait at once (429 above)")
    return p


def find_checkpoints(given: Optional[Path]) -> Path:
    """The checkpoint folder: ``given``, else the first default folder holding all four files."""
    names = [f.filename for f in RELEASED.values()]
    if given is not None:
        return given
    for candidate in DEFAULT_CHECKPOINTS:
        if all((Path(candidate) / n).is_file() for n in names):
            return Path(candidate)
    raise CheckpointError(
        f"no checkpoints in {' or '.join(DEFAULT_CHECKPOINTS)}: run siedob-quickstart (trains small ones into "
        "quickstart_out/checkpoints) or download the authors' released files into fusion/submodels, "
        "or pass --checkpoints DIR"
    )


def make_studio(args: argparse.Namespace):
    """Load the editor and list the scenes and styles the server may read, all of the checkpoints' dataset profile.

    The bundled example is a Cityscapes scene: it is listed (and its style folder used) for Cityscapes
    checkpoints only. A ``--data`` root prepared for another profile than the checkpoints' is an error.
    """
    from siedob.checkpoints import folder_profile
    from siedob.data.io import prepared_profile
    from siedob.edit.chain import Editor
    from siedob.edit.cli import bundled_example
    from siedob.studio.catalog import SceneCatalog, StyleCatalog
    from siedob.studio.server import Studio
    from siedob.studio.uploads import Limits
    from siedob.studio.worker import EditWorker

    checkpoints = find_checkpoints(args.checkpoints)
    for flag, folder in (("--data", args.data), ("--styles", args.styles)):
        if folder is not None and not folder.is_dir():
            raise SiedobError(f"{folder}: folder not found ({flag})")
    if args.queue < 1 or args.max_pixels < 256 or args.max_upload_mb <= 0:
        raise SiedobError("--queue must be at least 1, --max-pixels at least 256 and --max-upload-mb positive")
    if args.data is not None and checkpoints.is_dir():
        data_profile, ckpt_profile = prepared_profile(args.data), folder_profile(checkpoints)
        if data_profile != ckpt_profile:
            raise SiedobError(
                f"{args.data}: a {data_profile} dataset (--data), but the checkpoints in {checkpoints} "
                f"are of the {ckpt_profile} profile"
            )
    editor = Editor.from_checkpoints(checkpoints, resolve_device(args.device))
    profile = editor.profile
    example = bundled_example() if profile.name == DEFAULT_PROFILE else None  # package data: a Cityscapes scene
    if args.styles is not None:
        styles = StyleCatalog.from_folder(args.styles, profile)
    elif args.data is not None and (args.data / "object_datasets").is_dir():
        styles = StyleCatalog.from_data(args.data, profile=profile)
    elif example is not None and (example / "object_style").is_dir():
        styles = StyleCatalog.from_folder(example / "object_style", profile)
    else:
        styles = StyleCatalog("no style references", {}, profile=profile)
    limits = Limits(int(args.max_upload_mb * 1024 * 1024), args.max_pixels)
    scenes = SceneCatalog(example, args.data, profile)
    return Studio(editor, checkpoints, scenes, styles, limits, EditWorker(args.queue))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse arguments, load everything, serve until interrupted."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    if args.host not in LOCAL_HOSTS:
        print(
            f"warning: binding {args.host}: anyone who can reach this address can use the studio and read its scenes",
            file=sys.stderr,
        )
    studio = make_studio(args)
    if studio.scenes.skipped:
        print(
            f"note: {len(studio.scenes.skipped)} scenes not listed: their sides are not multiples of 16 "
            f"(e.g. {studio.scenes.skipped[0]}; the edit chain needs them)",
            file=sys.stderr,
        )
    serve(studio, args.host, args.port)
    return 0


def serve(studio, host: str, port: int, ready: Optional[List] = None) -> None:
    """Run the server in this thread until Ctrl-C (or ``should_exit``); prints the URL once listening.

    ``ready`` (a list) receives the running :class:`uvicorn.Server` and its URL, for callers that stop it.
    """
    import uvicorn

    from siedob.studio.server import create_app

    class _Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname()
                shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
                url = f"http://{shown}:{bound[1]}/"
                print(
                    f"siedob-studio ready on {url} (checkpoints {studio.checkpoints}, "
                    f"device {studio.editor.device}; Ctrl-C stops)",
                    flush=True,
                )
                if ready is not None:
                    ready.extend([self, url])

    config = uvicorn.Config(
        create_app(studio), host=host, port=port, access_log=False, log_level="warning", lifespan="on"
    )
    try:
        _Server(config).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down gracefully
        pass
    finally:
        studio.worker.stop()
    print("siedob-studio stopped", flush=True)


def console() -> int:
    """Console-script entry point: a bad argument or input is one ``error:`` line and exit code 2."""
    return run_cli(main)
