"""imgpipe.presets: the presets file, what it makes, and what a stored upload lacks after it changes."""

from __future__ import annotations

import pytest

from imgpipe.presets import BUILT_IN, Preset, PresetsError, load_presets, parse_presets, reprocessing
from imgpipe.settings import Settings
from doc_examples import doc_example

EXAMPLE = """\
# the built-in three with a smaller thumbnail, a square crop and a WebP-only preview
[presets.resized]
box = [1024, 1024]

[presets.compressed]

[presets.thumbnail]
box = [200, 200]

[presets.square]
box = [400, 400]
mode = "cover"
crop = "entropy"

[presets.preview]
box = [640, 480]
formats = ["webp"]
quality = { webp = 70 }
"""


def refusal(text: str) -> str:
    with pytest.raises(PresetsError) as caught:
        parse_presets(text, "presets.toml")
    return str(caught.value)


def test_the_example_file_parses_into_its_presets_in_order():
    presets = parse_presets(EXAMPLE)
    assert presets.names == ("resized", "compressed", "thumbnail", "square", "preview")
    assert presets.get("square") == Preset("square", box=(400, 400), mode="cover", crop="entropy")
    assert presets.get("preview").formats == ("webp",)
    assert presets.get("preview").quality_for("webp") == 70
    assert presets.get("thumbnail").box == (200, 200)


def test_default_qualities_are_the_built_in_ones():
    presets = parse_presets(EXAMPLE)
    assert [presets.get("resized").quality_for(fmt) for fmt in ("jpeg", "webp", "avif", "png")] == [85, 85, 70, None]
    assert [presets.get("compressed").quality_for(fmt) for fmt in ("jpeg", "webp", "avif", "png")] == [60, 50, 50, None]


def test_without_a_file_the_presets_are_the_built_in_three():
    assert load_presets("") is BUILT_IN
    assert BUILT_IN.names == ("resized", "compressed", "thumbnail")
    assert Settings().derivative_presets is BUILT_IN


def test_a_preset_written_like_a_built_in_one_has_its_versions():
    """Stored objects of the built-in presets stay current under a file that spells them out."""
    presets = parse_presets(EXAMPLE)
    assert presets.get("resized").version("jpeg") == BUILT_IN.get("resized").version("jpeg")
    assert presets.get("compressed").version("webp") == BUILT_IN.get("compressed").version("webp")
    assert presets.get("thumbnail").version("jpeg") != BUILT_IN.get("thumbnail").version("jpeg")


def test_the_plan_follows_the_uploads_formats_unless_a_preset_fixes_its_own():
    presets = parse_presets(EXAMPLE)
    assert presets.plan(None, ("jpeg", "avif")) == {
        "resized": ("jpeg", "avif"), "compressed": ("jpeg", "avif"), "thumbnail": ("jpeg", "avif"),
        "square": ("jpeg", "avif"), "preview": ("webp",)}
    assert presets.plan(("preview", "gone"), ("jpeg",)) == {"preview": ("webp",)}


@pytest.mark.parametrize("text, line, words", [
    ("[presets.a]\nbox = [1, 2]]\n", 2, "presets.toml: Expected newline"),
    ("[presets.a]\nbox = [1, 2\n", 2, "presets.toml: Unclosed array"),
    ("[presets.a]\nbox = [100, 100]\nmdoe = \"fit\"\n", 3, "unknown key 'mdoe'"),
    ("[presets.a]\nbox = [100, 100]\nmode = \"fill\"\n", 3, "mode must be one of 'fit', 'cover'"),
    ("[presets.a]\nmode = \"cover\"\n", 2, "cover preset without a box"),
    ("[presets.a]\nbox = [100, 100]\ncrop = \"entropy\"\n", 3, "crop applies to cover presets only"),
    ("[presets.a]\nbox = [100, 100]\nmode = \"cover\"\ncrop = \"faces\"\n", 4, "crop must be one of"),
    ("[presets.a]\nbox = [100, 0]\n", 2, "box must be [width, height]"),
    ("[presets.a]\nbox = 100\n", 2, "box must be [width, height]"),
    ("[presets.a]\n\n[presets.b]\nformats = [\"webp\", \"gif\"]\n", 4, "unknown format 'gif'"),
    ("[presets.a]\nformats = []\n", 2, "formats must be a non-empty list"),
    ("[presets.a]\nformats = [\"webp\", \"webp\"]\n", 2, "formats lists a format twice"),
    ("[presets.a]\nquality = { jpeg = 80, png = 9 }\n", 2, "png is lossless"),
    ("[presets.a]\n[presets.a.quality]\njpeg = 80\nwebp = 101\n", 4, "quality of webp must be a whole number"),
    ("[presets.thumbnails]\nbox = [10, 10]\n", 1, "'thumbnails' cannot name a preset"),
    ("[presets.a]\n\n[presets.status]\nbox = [10, 10]\n", 3, "'status' cannot name a preset"),
    ("[presets.results]\n", 1, "'results' cannot name a preset"),
    ("[presets.multipart]\n", 1, "its objects or its address would be another's"),
    ("[presets.Big]\nbox = [10, 10]\n", 1, "preset name 'Big' must be"),
    ("title = \"mine\"\n[presets.a]\n", 1, "unknown top-level key 'title'"),
    ("# nothing yet\n", 1, "no presets"),
    ("[presets]\na.box = [10, 10]\na.mode = \"squash\"\n", 3, "mode must be one of"),
])
def test_a_bad_file_is_refused_naming_the_line(text, line, words):
    message = refusal(text)
    assert f"line {line}" in message, message
    assert words in message, message
    assert message.startswith("presets.toml")


def test_an_unreadable_file_is_refused(tmp_path):
    with pytest.raises(PresetsError, match="cannot read the presets file"):
        load_presets(str(tmp_path / "missing.toml"))
    (tmp_path / "latin1.toml").write_bytes(b"# caf\xe9\n")
    with pytest.raises(PresetsError, match="not UTF-8"):
        load_presets(str(tmp_path / "latin1.toml"))


def test_settings_refuse_a_bad_presets_file_when_they_are_read(tmp_path):
    path = tmp_path / "presets.toml"
    path.write_text("[presets.a]\nbox = [10, 10]\nmode = \"stretch\"\n")
    with pytest.raises(ValueError, match=r"presets.toml, line 3: mode must be one of"):
        Settings.from_env({"IMGPIPE_PRESETS": str(path)})
    path.write_text(EXAMPLE)
    assert Settings.from_env({"IMGPIPE_PRESETS": str(path)}).derivative_presets.names[-1] == "preview"


def test_reprocessing_makes_what_is_missing_or_out_of_date():
    presets = parse_presets(EXAMPLE)
    stored = BUILT_IN.versions(None, ("jpeg",))
    work = reprocessing(presets, stored=stored, wanted=None, upload_formats=("jpeg",))
    assert work.make == {"thumbnail": ("jpeg",), "square": ("jpeg",), "preview": ("webp",)}
    assert work.delete == ()
    assert work.after == presets.versions(None, ("jpeg",))
    again = reprocessing(presets, stored=work.after, wanted=None, upload_formats=("jpeg",))
    assert not again.needed


def test_reprocessing_one_preset_leaves_the_others_as_they_are():
    presets = parse_presets(EXAMPLE)
    stored = BUILT_IN.versions(None, ("jpeg",))
    work = reprocessing(presets, stored=stored, wanted=None, upload_formats=("jpeg",), only=("square",))
    assert work.make == {"square": ("jpeg",)}
    assert work.after["thumbnail"] == stored["thumbnail"]


def test_pruning_deletes_what_no_preset_makes_any_more():
    presets = parse_presets("[presets.thumbnail]\nbox = [300, 300]\nformats = [\"webp\"]\n")
    stored = {**BUILT_IN.versions(None, ("jpeg",)), "old": {"avif": "0123456789ab"}}
    kept = reprocessing(presets, stored=stored, wanted=None, upload_formats=("jpeg",))
    assert kept.delete == () and "old" in kept.after and kept.make == {"thumbnail": ("webp",)}
    pruned = reprocessing(presets, stored=stored, wanted=None, upload_formats=("jpeg",), prune=True)
    assert set(pruned.delete) == {("resized", "jpeg"), ("compressed", "jpeg"), ("thumbnail", "jpeg"), ("old", "avif")}
    assert pruned.after == {"thumbnail": {"webp": presets.get("thumbnail").version("webp")}}


def test_the_presets_version_changes_with_any_preset_and_only_then():
    same = parse_presets(EXAMPLE)
    assert same.version == parse_presets("# reformatted\n" + EXAMPLE.replace(" = ", "=")).version
    assert same.version != parse_presets(EXAMPLE.replace("quality = { webp = 70 }", "")).version
    assert same.version != parse_presets(EXAMPLE.replace('crop = "entropy"', "")).version
    assert BUILT_IN.version != same.version


def test_the_readme_example_is_a_valid_file_with_what_it_says():
    presets = parse_presets(doc_example("presets.toml"))
    assert presets.names == ("resized", "compressed", "thumbnail", "square", "preview")
    assert (presets.get("square").mode, presets.get("square").crop) == ("cover", "entropy")
    assert presets.get("preview").formats == ("webp",) and presets.get("thumbnail").box == (200, 200)
