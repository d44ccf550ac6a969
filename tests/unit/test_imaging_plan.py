"""The derivation plan, as data: which picture is made from which source, in what order and on
which thread, read from the plan without threads or pixels; and the image code changing nothing
in a process until a worker asks it to."""

import io
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import imagegen
from imgpipe.presets import BUILT_IN, Preset, parse_presets
from imgpipe.settings import Settings
from processor.imaging import make_derivatives, plan
from processor.imaging.plan import (BANDS, CALLER, COLUMNS, COVER, DECODE, ENCODE, ENCODING, FIT, ORIGINAL, PLACEHOLDER,
                                    RESIZING, RGB, RGBA, SCALED_DECODE, Header, plan_derivatives)

ROOT = Path(__file__).resolve().parents[2]
MAX_PIXELS = Settings().max_pixels
CUSTOM = parse_presets("""
[presets.hero]
box = [1600, 900]
mode = "cover"
crop = "entropy"
[presets.square]
box = [200, 200]
mode = "cover"
[presets.card]
box = [640, 640]
formats = ["webp"]
[presets.full]
formats = ["png", "jpeg"]
""").presets


def steps_of(made: plan.Plan, action: str) -> list[plan.Step]:
    return [step for step in made.steps if step.action == action]


def by_picture(made: plan.Plan) -> dict[str, plan.Step]:
    return {step.makes: step for step in made.steps if step.makes}


def test_a_1mp_jpeg_is_made_on_the_caller_and_encoded_beside_it():
    made = plan_derivatives(Header((1224, 816), "JPEG"), BUILT_IN.presets, ("jpeg",))
    pictures = by_picture(made)
    assert [step.action for step in made.steps] == [DECODE, RGB, FIT, ENCODE, ENCODE, FIT, ENCODE, PLACEHOLDER]
    assert pictures["resized"].source == "rgb" and pictures["resized"].split == COLUMNS
    assert pictures["thumbnail"].source == "resized" and pictures["thumbnail"].size == (300, 200)
    # The full-size encode waits for the first boxed picture, so its halves have both cores.
    assert [step.source for step in steps_of(made, ENCODE)] == ["resized", "rgb", "thumbnail"]
    assert all(step.thread == ENCODING for step in steps_of(made, ENCODE))
    assert steps_of(made, PLACEHOLDER)[0].source == "thumbnail"


def test_a_big_picture_has_its_full_size_encode_first_and_its_resize_in_bands():
    made = plan_derivatives(Header((2000, 1300), "PNG"), BUILT_IN.presets, ("jpeg", "webp"))
    assert steps_of(made, ENCODE)[0].source == "rgb"
    assert steps_of(made, ENCODE)[0].encodes == (("compressed", "jpeg", 60), ("compressed", "webp", 50))
    assert by_picture(made)["resized"].split == BANDS


def test_every_format_of_a_big_jpeg_comes_from_one_scaled_picture():
    """JPEG and WebP of each boxed preset are encoded in one step from one resize of the scaled
    decode, on the RESIZING thread; the caller decodes the full picture for the full-size ones."""
    made = plan_derivatives(Header((4000, 3000), "JPEG", orientation=6), BUILT_IN.presets, ("jpeg", "webp"))
    pictures = by_picture(made)
    assert pictures["scaled"].action == SCALED_DECODE and pictures["scaled"].size == (1024, 768)
    assert made.steps[0] == pictures["scaled"]  # first, so both decodes run at once
    assert pictures["resized"].source == "scaled" and pictures["resized"].size == (768, 1024)
    assert pictures["thumbnail"].source == "resized"
    boxed = [step for step in steps_of(made, ENCODE) if step.source in ("resized", "thumbnail")]
    assert [step.encodes for step in boxed] == [(("resized", "jpeg", 85), ("resized", "webp", 85)),
                                                (("thumbnail", "jpeg", 85), ("thumbnail", "webp", 85))]
    assert {step.thread for step in boxed} == {RESIZING} and all(step.shortcut for step in boxed)
    assert [step.source for step in steps_of(made, ENCODE) if step.thread == CALLER] == ["rgb"]
    assert not any(step.split for step in made.steps)
    assert not plan_derivatives(Header((4000, 3000), "JPEG", orientation=6), BUILT_IN.presets, ("jpeg",),
                                scaled_decode=False).shortcut


def test_transparency_keeps_a_line_of_its_own_for_the_formats_that_keep_it():
    made = plan_derivatives(Header((1200, 800), "PNG", transparent=True), BUILT_IN.presets, ("jpeg", "webp"))
    pictures = by_picture(made)
    assert [step.action for step in made.steps[:3]] == [DECODE, RGBA, RGB]  # RGB may convert in place
    assert pictures["resized"].source == "rgb" and pictures["resized rgba"].source == "rgba"
    assert pictures["thumbnail rgba"].source == "resized rgba"
    formats_by_picture = {step.source: {fmt for _, fmt, _ in step.encodes} for step in steps_of(made, ENCODE)}
    assert formats_by_picture == {"rgb": {"jpeg"}, "resized": {"jpeg"}, "thumbnail": {"jpeg"},
                                  "rgba": {"webp"}, "resized rgba": {"webp"}, "thumbnail rgba": {"webp"}}
    assert steps_of(made, PLACEHOLDER)[0].source == "thumbnail"
    only_alpha = plan_derivatives(Header((1200, 800), "PNG", transparent=True), BUILT_IN.presets, ("webp",))
    assert RGB not in [step.action for step in only_alpha.steps]
    assert steps_of(only_alpha, PLACEHOLDER)[0].source == "thumbnail rgba"


def test_cover_presets_come_after_the_fits_from_the_smallest_picture_holding_their_window():
    made = plan_derivatives(Header((3000, 2000), "PNG"), CUSTOM, ("jpeg",))
    pictures = by_picture(made)
    assert [step.makes for step in made.steps if step.action in (FIT, COVER)] == ["card", "hero", "square"]
    assert pictures["card"].source == "rgb"
    assert pictures["hero"].source == "rgb" and pictures["hero"].focus == "card"
    assert pictures["square"].source == "card" and pictures["square"].focus == ""
    full = [step for step in steps_of(made, ENCODE) if step.source == "rgb"]
    assert full[0].encodes == (("full", "jpeg", 60), ("full", "png", None))


HEADERS = [Header(size, fmt, orientation, transparent)
           for size, fmt, orientation, transparent in itertools.product(
               [(1224, 816), (5000, 9), (300, 200), (6000, 4000), (2600, 1700), (100, 3000)],
               ["JPEG", "PNG"], [1, 6], [False, True]) if not (fmt == "JPEG" and transparent)]
FORMATS = [("jpeg",), ("webp",), ("jpeg", "png", "webp"), ("avif", "jpeg")]


@pytest.mark.parametrize("presets", [BUILT_IN.presets, CUSTOM], ids=["built-in", "custom"])
def test_every_plan_reads_only_what_earlier_steps_made_and_makes_every_object_once(presets):
    """What keeps any plan from deadlocking: each thread runs its steps in plan order, and each
    step reads only pictures made before it. A split resize is the caller's only."""
    for header, formats in itertools.product(HEADERS, FORMATS):
        made = plan_derivatives(header, presets, formats)
        seen = {ORIGINAL}
        for step in made.steps:
            assert step.source in seen and (not step.focus or step.focus in seen), (header, formats, str(made))
            assert step.split is None or (step.thread == CALLER and step.action == FIT)
            if step.makes:
                assert step.makes not in seen
                seen.add(step.makes)
        objects = [(name, fmt) for step in steps_of(made, ENCODE) for name, fmt, _ in step.encodes]
        assert sorted(objects) == sorted((preset.name, fmt) for preset in presets
                                         for fmt in preset.formats_for(formats)), str(made)
        assert len(steps_of(made, PLACEHOLDER)) == 1 and made.steps[-1].action == PLACEHOLDER
        assert len({step.source for step in steps_of(made, ENCODE)}) == len(steps_of(made, ENCODE))


def test_a_plan_reads_as_text():
    text = str(plan_derivatives(Header((4000, 3000), "JPEG"), BUILT_IN.presets, ("jpeg",)))
    assert text.splitlines()[0] == "JPEG 4000x3000, upright 4000x3000"
    assert " 1. resize  scaled decode scaled <- original" in text
    assert "caller  encode           of rgb" in text and "compressed/jpeg q60" in text


def test_the_plans_picture_sizes_are_what_is_made():
    """A plan's sizes come from the header; the derivatives have them, custom presets too."""
    data = imagegen.photo_like_jpeg(3000, 2000, seed=4)
    made = make_derivatives(data, max_pixels=MAX_PIXELS, formats=("jpeg", "webp"), presets=CUSTOM)
    sizes = {step.makes: step.size for step in plan_derivatives(Header((3000, 2000), "JPEG"), CUSTOM, ("jpeg", "webp"))
             .steps if step.action in (FIT, COVER)}
    for name, by_format in made.made.items():
        for fmt, blob in by_format.items():
            assert Image.open(io.BytesIO(blob)).size == sizes.get(name, (3000, 2000)), (name, fmt)


IMPORT_CHILD = """
import ctypes, os, sys, threading
hooks, libc_calls = [], []
register = os.register_at_fork
os.register_at_fork = lambda **hook: hooks.append(hook) or register(**hook)
class Recording(ctypes.CDLL):
    def __getattr__(self, name):
        libc_calls.append(name)
        return super().__getattr__(name)
ctypes.CDLL = Recording
import PIL.Image
initialized = PIL.Image._initialized
import processor.imaging
if sys.argv[1] == "prepare":
    processor.imaging.prepare_process()
    processor.imaging.prepare_process()
ours = [hook for hook in hooks for function in hook.values()
        if (getattr(function, "__module__", None) or "").startswith(("processor", "imgpipe"))]
print(len(ours), "mallopt" in libc_calls, initialized, PIL.Image._initialized, threading.active_count())
"""


def _in_fresh_interpreter(mode: str) -> list[str]:
    child = subprocess.run([sys.executable, "-c", IMPORT_CHILD, mode], capture_output=True, text=True, check=True,
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return child.stdout.split()


def test_importing_the_image_code_changes_nothing_in_the_process():
    """No fork hook of ours, no malloc tuning, Pillow's plugins not loaded, no thread: all of that
    is prepare_process's, which a worker calls at start (once, however often asked). (The
    standard library's own modules register fork hooks of theirs as they are imported.)"""
    hooks, tuned, before, after, threads = _in_fresh_interpreter("import")
    assert (hooks, tuned, after, threads) == ("0", "False", before, "1")
    hooks, tuned, before, after, threads = _in_fresh_interpreter("prepare")
    assert (hooks, tuned, after, threads) == ("1", "True", "2", "1")


def test_the_scaled_decode_line_serves_formats_a_preset_names_itself():
    """A preset asking WebP only, from a big JPEG, takes its picture from the scaled decode too."""
    card = Preset("card", box=(640, 640), formats=("webp",))
    made = plan_derivatives(Header((4000, 3000), "JPEG"), (card,), ("jpeg",))
    assert by_picture(made)["card"].source == "scaled"
