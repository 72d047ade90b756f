"""The studio's Starlette app: the page, and the JSON/multipart API it uses (documented in docs/studio.md).

Every model call runs on the one :class:`~siedob.studio.worker.EditWorker` thread; the event loop only
parses requests and awaits results, so ``/api/health`` answers while an edit runs. Errors are HTTP 4xx
with ``{"error": "<one line>"}``, using the CLI's validation and messages.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import traceback
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from siedob import __version__
from siedob.data import masks as mask_presets
from siedob.data.io import EncodedImage, read_unchanged, tensor_to_image
from siedob.edit.chain import Editor, EditStages
from siedob.edit.inputs import (
    Scene,
    check_shapes,
    decode_scene,
    diff_mask,
    read_instance_map,
    read_label_map,
)
from siedob.edit.style_bank import StyleBank, class_names
from siedob.errors import SiedobError
from siedob.profiles import DatasetProfile
from siedob.studio.catalog import SceneCatalog, SceneEntry, StyleCatalog, StyleRef, draw_bank, shape_of
from siedob.studio.uploads import ApiError, Form, Limits, check_pixels, read_form
from siedob.studio.worker import EditWorker, WorkerBusy

log = logging.getLogger("siedob.studio")

SCENE_FIELDS = ("image", "labels", "instances", "mask", "orig_labels", "orig_instances")
EDIT_FIELDS = SCENE_FIELDS + ("seed", "styles", "stages")
#: Largest seed accepted (the style draws use ``random.Random(seed)``).
MAX_SEED = 2**31 - 1
PRESETS = ("free-form", "extension", "outpainting")


@dataclass
class Studio:
    """Everything a running studio holds: the one editor, what it may read, its limits and its worker."""

    editor: Editor
    checkpoints: Path
    scenes: SceneCatalog
    styles: StyleCatalog
    limits: Limits = field(default_factory=Limits)
    worker: EditWorker = field(default_factory=EditWorker)

    @property
    def profile(self) -> DatasetProfile:
        """The dataset profile of the loaded checkpoints: label table, object classes, style upload fields."""
        return self.editor.profile


def style_prefixes(profile: DatasetProfile) -> Tuple[str, ...]:
    """The ``style_<class>_`` field prefixes of a profile's object classes."""
    return tuple(f"style_{name}_" for name in profile.object_names)


def labels_json(profile: DatasetProfile) -> Dict[str, Any]:
    """``/api/labels``: the label table and palette, the object classes and the instance-id encoding.

    ``unlabeled`` is the id the page leaves out of its palette (read as another class on load), null
    when every id is a class of its own; ``brush_label`` the label the brush starts with.
    """
    table = [
        {"id": lab.id, "name": lab.name, "color": list(lab.color), "instances": lab.has_instances}
        for lab in profile.labels
    ]
    unlabeled = profile.unlabeled_id if profile.unlabeled_to is not None else None
    brush = profile.brush_label
    return {
        "labels": table,
        "objects": profile.object_names,
        "instance_factor": profile.instance_factor,
        "profile": profile.name,
        "unlabeled": unlabeled,
        "brush_label": brush,
    }


def png(img: np.ndarray) -> bytes:
    """PNG bytes exactly as :func:`siedob.data.io.write_atomic` writes a ``.png`` file."""
    ok, buf = cv2.imencode(".png", img, [])
    if not ok:
        raise ApiError(500, f"could not encode an image of shape {img.shape}")
    return buf.tobytes()


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


def _data_url(img: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png(img)).decode("ascii")


def edit_stages(editor: Editor, scene: Scene, bank: StyleBank) -> EditStages:
    """The editor's :class:`~siedob.edit.chain.EditStages` for a scene."""
    return editor.edit(scene.image, scene.labels, scene.instances, scene.mask, bank)


def _scene_uploads(form: Form, limits: Limits) -> Dict[str, bytes]:
    """The scene's files of a form: image, labels, instances, and mask or orig_labels (+ orig_instances)."""
    uploads = {key: form.file(key) for key in ("image", "labels", "instances")}
    mask = form.optional_file("mask")
    if mask is not None:
        uploads["mask"] = mask
    else:
        orig = form.optional_file("orig_labels")
        if orig is None:
            raise ApiError(400, "missing field 'mask' (or 'orig_labels' to derive the mask where the labels differ)")
        uploads["orig_labels"] = orig
        orig_inst = form.optional_file("orig_instances")
        if orig_inst is not None:
            uploads["orig_instances"] = orig_inst
    for key, data in uploads.items():
        check_pixels(key, data, limits)
    return uploads


def _uploaded_refs(form: Form, limits: Limits, profile: DatasetProfile) -> Dict[int, List[StyleRef]]:
    """Style references uploaded as ``style_<class>_image`` / ``style_<class>_mask`` pairs (the profile's classes).

    As the CLI lists a style folder: sorted by file name, each mask the one with its image's stem
    (when every upload has a file name that pairs up), else paired and ordered as sent.
    """
    refs: Dict[int, List[StyleRef]] = {}
    objects = profile.object_names
    for name, cls in objects.items():
        images = form.files.get(f"style_{name}_image", [])
        masks = form.files.get(f"style_{name}_mask", [])
        if len(images) != len(masks):
            raise ApiError(400, f"{len(images)} style_{name}_image but {len(masks)} style_{name}_mask uploads")
        image_names = form.filenames.get(f"style_{name}_image", [""] * len(images))
        mask_names = form.filenames.get(f"style_{name}_mask", [""] * len(masks))
        pairs = list(zip(image_names, images, masks))
        by_stem = {Path(n).stem: m for n, m in zip(mask_names, masks) if n}
        stems = [Path(n).stem for n in image_names]
        if all(image_names) and len(set(stems)) == len(stems) and set(stems) == set(by_stem):
            pairs = sorted(((n, img, by_stem[Path(n).stem]) for n, img in zip(image_names, images)), key=lambda t: t[0])
        for i, (filename, img, msk) in enumerate(pairs):
            label = f"style_{name}_image {filename or i}"
            mask_label = f"style_{name}_mask {Path(filename).stem + '.png' if filename else i}"
            check_pixels(label, img, limits)
            check_pixels(mask_label, msk, limits)
            ref_name = filename or f"upload-{name}-{i}"
            refs.setdefault(cls, []).append(
                StyleRef(ref_name, cls, EncodedImage(label, img), EncodedImage(mask_label, msk))
            )
    known = {f"style_{n}_{part}" for n in objects for part in ("image", "mask")}
    unknown = [k for k in list(form.files) + list(form.text) if k.startswith("style_") and k not in known]
    if unknown or any(k in form.text for k in known):
        key = unknown[0] if unknown else next(k for k in known if k in form.text)
        raise ApiError(
            400, f"field {key[:40]!r}: style uploads are files named style_<{'|'.join(objects)}>_image / _mask"
        )
    return refs


def _objects_json(stages, bank: StyleBank, profile: DatasetProfile) -> List[Dict[str, Any]]:
    """Each edited object: instance id, class, branch and (when generated) its style reference."""
    names = class_names(profile)
    out = []
    for obj in getattr(stages, "objects", None) or []:
        refs = bank.get(obj.cls)
        style = refs.names[obj.style_slot] if obj.generation and refs is not None and obj.style_slot >= 0 else None
        out.append(
            {
                "id": int(obj.id),
                "class": names.get(obj.cls, str(obj.cls)),
                "generated": bool(obj.generation),
                "style": style,
            }
        )
    return out


def run_edit(
    studio: Studio,
    uploads: Dict[str, bytes],
    refs: Dict[int, List[StyleRef]],
    seed: int,
    names: List[str],
    want_stages: bool,
):
    """Decode, draw the style bank, edit and encode, on the worker thread; returns (PNG, stages JSON or None, ms)."""
    profile = studio.profile
    scene = decode_scene(uploads, profile=profile)
    if refs:
        bank = draw_bank(refs, seed, names, "the uploaded style references", profile)
    else:
        bank = studio.styles.bank(seed, names)
    start = time.perf_counter()
    if not scene.mask.any():
        result, stages = scene.image, None
    else:
        stages = edit_stages(studio.editor, scene, bank)
        result = tensor_to_image(stages.result)
    ms = (time.perf_counter() - start) * 1000
    body = png(result)
    if not want_stages:
        return body, None, ms
    info: Dict[str, Any] = {
        "result": "data:image/png;base64," + base64.b64encode(body).decode("ascii"),
        "seed": seed,
        "edit_ms": round(ms, 1),
    }
    if stages is not None:
        info.update(
            objects=_data_url(tensor_to_image(stages.fg_output)),
            background=_data_url(tensor_to_image(stages.bg_output)),
            composite=_data_url(tensor_to_image(stages.masked_G)),
            edited_objects=_objects_json(stages, bank, profile),
        )
    folders = class_names(profile)
    info["styles"] = {folders[c]: list(b.names) for c, b in bank.banks.items()}
    return body, info, ms


def create_app(studio: Studio) -> Starlette:
    """The ASGI app of a studio."""

    async def on_worker(fn: Callable[[], Any]) -> Any:
        try:
            future = studio.worker.submit(fn)
        except WorkerBusy as exc:
            raise ApiError(429, f"server busy: {exc}; retry later") from None
        return await asyncio.wrap_future(future)

    def entry(request: Request) -> SceneEntry:
        scene_id = request.path_params["scene_id"]
        try:
            return studio.scenes.get(scene_id)
        except KeyError:
            raise ApiError(404, f"unknown scene id {scene_id[:60]!r}; GET /api/scenes lists the ids") from None

    def style_ref(request: Request) -> StyleRef:
        name, index = request.path_params["cls"], request.path_params["index"]
        try:
            return studio.styles.ref(name, int(index) if index.isdigit() else -1)
        except KeyError:
            raise ApiError(404, f"no {name[:20]!r} reference {index[:20]!r}; GET /api/styles lists them") from None

    async def page(request: Request) -> Response:
        return FileResponse(str(resources.files("siedob.studio") / "static" / "index.html"), media_type="text/html")

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "device": str(studio.editor.device),
                "checkpoints": str(studio.checkpoints),
                "pending": studio.worker.pending,
                "limits": {"max_bytes": studio.limits.max_bytes, "max_pixels": studio.limits.max_pixels},
            }
        )

    async def labels(request: Request) -> Response:
        return JSONResponse(labels_json(studio.profile))

    async def list_scenes(request: Request) -> Response:
        return JSONResponse({"scenes": studio.scenes.listing()})

    def scene_json(e: SceneEntry) -> Dict[str, Any]:
        scene = e.read()
        raw_labels = read_unchanged(e.files["labels"]).astype(np.uint8)  # id 0 as stored, for the page's palette
        h, w = scene.labels.shape
        mask = None if "mask" not in e.files else _b64(np.clip(np.round(scene.mask * 255), 0, 255).astype(np.uint8))
        return dict(
            e.summary(),
            width=w,
            height=h,
            labels=_b64(raw_labels),
            instances=_b64(scene.instances.astype("<u2")),
            mask=mask,
            image_url=f"/api/scenes/{e.id}/files/image",
        )

    async def get_scene(request: Request) -> Response:
        e = entry(request)
        return JSONResponse(await on_worker(lambda: scene_json(e)))

    async def upload_scene(request: Request) -> Response:
        form = await read_form(request, studio.limits, SCENE_FIELDS[:4])
        uploads = {key: form.file(key) for key in ("image", "labels", "instances")}
        mask = form.optional_file("mask")
        if mask is not None:
            uploads["mask"] = mask
        for key, data in uploads.items():
            check_pixels(key, data, studio.limits)
        e = await on_worker(lambda: studio.scenes.add_upload(uploads))
        return JSONResponse(await on_worker(lambda: scene_json(e)), status_code=201)

    async def scene_file(request: Request) -> Response:
        e = entry(request)
        part = request.path_params["part"]
        if part not in e.files:
            raise ApiError(404, f"scene {e.id!r} has no {part[:20]!r} file; parts: {', '.join(e.files)}")
        src = e.files[part]
        suffix = Path(str(src)).suffix.lower() if not isinstance(src, EncodedImage) else ""
        media = (
            "image/jpeg"
            if suffix in (".jpg", ".jpeg")
            else "image/png"
            if suffix == ".png"
            else "application/octet-stream"
        )
        return Response(e.raw(part), media_type=media)

    async def thumbnail(request: Request) -> Response:
        e = entry(request)
        return Response(await on_worker(lambda: studio.scenes.thumbnail(e)), media_type="image/jpeg")

    async def list_styles(request: Request) -> Response:
        return JSONResponse({"source": studio.styles.source, "styles": studio.styles.listing()})

    async def style_image(request: Request) -> Response:
        ref = style_ref(request)
        return Response(
            Path(str(ref.image)).read_bytes(),
            media_type="image/jpeg" if str(ref.image).lower().endswith((".jpg", ".jpeg")) else "image/png",
        )

    async def shape(request: Request) -> Response:
        ref = style_ref(request)
        sil = await on_worker(lambda: shape_of(ref))
        return JSONResponse(
            {
                "class": request.path_params["cls"],
                "name": ref.name,
                "width": int(sil.shape[1]),
                "height": int(sil.shape[0]),
                "data": _b64(sil),
            }
        )

    async def mask_preset(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in PRESETS:
            raise ApiError(404, f"unknown mask preset {kind[:30]!r}; presets: {', '.join(PRESETS)}")
        q = Form({}, dict(request.query_params))
        w = q.integer("width", 256, 16, 8192)
        h = q.integer("height", 256, 16, 8192)
        seed = q.integer("seed", 0, 0, MAX_SEED)
        if w * h > studio.limits.max_pixels:
            raise ApiError(413, f"a {w}×{h} mask exceeds the limit of {studio.limits.max_pixels} pixels")
        rng = np.random.default_rng(seed)
        if kind == "free-form":
            scale = min(h, w) / 256
            m = mask_presets.brush_stroke_mask(rng, h, w, 4, 8, max(1, int(50 * scale)), max(2, int(140 * scale)))
        elif kind == "extension":
            m = mask_presets.right_half_mask(h, w)
        else:
            m = mask_presets.outside_box_mask(rng, h, w, min(h, w) // 2)
        return Response(png((m > 0.5).astype(np.uint8) * 255), media_type="image/png")

    async def derive_mask(request: Request) -> Response:
        form = await read_form(request, studio.limits, ("labels", "instances", "orig_labels", "orig_instances"))
        fields = {k: form.file(k) for k in ("labels", "instances", "orig_labels", "orig_instances")}
        for key, data in fields.items():
            check_pixels(key, data, studio.limits)

        def job() -> bytes:
            lab, olab = (
                read_label_map(EncodedImage("labels", fields["labels"]), studio.profile),
                read_label_map(EncodedImage("orig_labels", fields["orig_labels"]), studio.profile),
            )
            inst = read_instance_map(EncodedImage("instances", fields["instances"]))
            oinst = read_instance_map(EncodedImage("orig_instances", fields["orig_instances"]))
            check_shapes(lab, {"instances": inst, "orig_labels": olab, "orig_instances": oinst}, "labels")
            return png((diff_mask(lab, olab, inst, oinst) * 255).astype(np.uint8))

        return Response(await on_worker(job), media_type="image/png")

    async def edit(request: Request) -> Response:
        form = await read_form(request, studio.limits, EDIT_FIELDS, style_prefixes(studio.profile))
        uploads = _scene_uploads(form, studio.limits)
        refs = _uploaded_refs(form, studio.limits, studio.profile)
        seed = form.integer("seed", 0, 0, MAX_SEED)
        want_stages = bool(form.integer("stages", 0, 0, 1))
        names = [n.strip() for n in form.text.get("styles", "").split(",") if n.strip()]
        body, info, ms = await on_worker(lambda: run_edit(studio, uploads, refs, seed, names, want_stages))
        if info is not None:
            return JSONResponse(info)
        return Response(
            body, media_type="image/png", headers={"X-Siedob-Edit-Ms": f"{ms:.1f}", "X-Siedob-Seed": str(seed)}
        )

    async def api_error(request: Request, exc: ApiError) -> Response:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    async def siedob_error(request: Request, exc: SiedobError) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = (
            exc.detail if exc.status_code != 404 else f"no such endpoint: {request.method} {request.url.path[:80]}"
        )
        return JSONResponse({"error": str(message)}, status_code=exc.status_code)

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error(
            "internal error on %s %s:\n%s",
            request.method,
            request.url.path,
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )
        line = str(exc).splitlines()[0] if str(exc) else ""
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {line}"}, status_code=500)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        studio.worker.stop()

    static = StaticFiles(packages=[("siedob.studio", "static")])
    routes = [
        Route("/", page),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Mount("/static", static, name="static"),
        Route("/api/health", health),
        Route("/api/labels", labels),
        Route("/api/scenes", list_scenes, methods=["GET"]),
        Route("/api/scenes", upload_scene, methods=["POST"]),
        Route("/api/scenes/{scene_id}", get_scene),
        Route("/api/scenes/{scene_id}/thumbnail", thumbnail),
        Route("/api/scenes/{scene_id}/files/{part}", scene_file),
        Route("/api/styles", list_styles),
        Route("/api/styles/{cls}/{index}", style_image),
        Route("/api/shapes/{cls}/{index}", shape),
        Route("/api/mask-presets/{kind}", mask_preset),
        Route("/api/mask", derive_mask, methods=["POST"]),
        Route("/api/edit", edit, methods=["POST"]),
    ]
    handlers = {ApiError: api_error, SiedobError: siedob_error, HTTPException: http_error, Exception: internal_error}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.add_middleware(RequestLog)
    return app


class RequestLog:
    """ASGI middleware: one log line per request (method, path, status, milliseconds)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            ms = (time.perf_counter() - start) * 1000
            log.info("%s %s %d %.1f ms", scope["method"], scope["path"], status["code"], ms)
