"""Tests for skmm.io.images: every mode, orientation, resizing, huge and bad files."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from skmm.io import images as images_module
from skmm.io.images import decode as decode_module
from skmm.io.images import (
    DEFAULT_MAX_IMAGE_PIXELS,
    ImageFolderDataset,
    ImageLoadError,
    is_missing,
    load_image,
    load_images,
    load_images_parallel,
)
from skmm.io.images.sampling import ChunkSampler
from skmm.utils import validation

WHITE = [255, 255, 255]
RED = [255, 0, 0]
GREEN = [0, 255, 0]
BLUE = [0, 0, 255]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _save(img, path, **kwargs):
    img.save(path, **kwargs)
    return str(path)


def _rgb_at(pixels, y, x):
    return pixels[:, y, x].tolist()


# ---------------------------------------------------------------- modes


def _rgba(tmp_path):
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 255))
    img.putpixel((0, 0), (0, 0, 255, 0))  # fully transparent blue -> white
    img.putpixel((1, 0), (0, 0, 0, 128))  # half-transparent black -> mid grey
    return _save(img, tmp_path / "rgba.png"), {(0, 0): WHITE, (0, 1): [127] * 3, (4, 4): RED}


def _palette_transparency(tmp_path):
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 0, 255, 0] + [0] * (3 * 254))
    img.putpixel((0, 0), 0)
    # Index 1 (green) is transparent through a tRNS chunk / info['transparency'].
    return _save(img, tmp_path / "p.png", transparency=1), {(0, 0): [0, 0, 0], (4, 4): WHITE}


def _palette_opaque(tmp_path):
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 0, 255, 0] + [0] * (3 * 254))
    return _save(img, tmp_path / "p_opaque.png"), {(4, 4): GREEN}


def _gif_transparency(tmp_path):
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 255, 0, 255, 0] + [0] * (3 * 254))
    img.putpixel((0, 0), 0)
    return _save(img, tmp_path / "t.gif", transparency=1), {(0, 0): BLUE, (4, 4): WHITE}


def _la(tmp_path):
    img = Image.new("LA", (8, 8), (50, 255))
    img.putpixel((0, 0), (50, 0))
    return _save(img, tmp_path / "la.png"), {(0, 0): WHITE, (4, 4): [50] * 3}


def _l(tmp_path):
    return _save(Image.new("L", (8, 8), 100), tmp_path / "l.png"), {(4, 4): [100] * 3}


def _bilevel(tmp_path):
    img = Image.new("1", (8, 8), 1)
    img.putpixel((0, 0), 0)
    return _save(img, tmp_path / "one.png"), {(0, 0): [0, 0, 0], (4, 4): WHITE}


def _i16(tmp_path):
    img = Image.new("I;16", (8, 8), 65535)
    img.putpixel((0, 0), 257 * 100)
    return _save(img, tmp_path / "i16.png"), {(0, 0): [100] * 3, (4, 4): WHITE}


def _i32(tmp_path):
    img = Image.new("I", (8, 8), 40000)
    img.putpixel((0, 0), 0)
    return _save(img, tmp_path / "i.tiff"), {(0, 0): [0] * 3, (4, 4): [156] * 3}


def _i32_small_values(tmp_path):
    # 8-bit data in a 32-bit container keeps its values.
    return _save(Image.new("I", (8, 8), 200), tmp_path / "i8.tiff"), {(4, 4): [200] * 3}


def _float_unit(tmp_path):
    img = Image.new("F", (8, 8), 0.5)
    img.putpixel((0, 0), 1.0)
    return _save(img, tmp_path / "f.tiff"), {(0, 0): WHITE, (4, 4): [128] * 3}


def _float_signed(tmp_path):
    img = Image.new("F", (8, 8), -1.0)
    img.putpixel((0, 0), 1.0)
    return _save(img, tmp_path / "f_signed.tiff"), {(0, 0): WHITE, (4, 4): [0] * 3}


def _cmyk(tmp_path):
    img = Image.new("CMYK", (8, 8), (0, 255, 255, 0))
    return _save(img, tmp_path / "cmyk.tiff"), {(4, 4): RED}


def _ycbcr(tmp_path):
    img = Image.new("YCbCr", (8, 8), (100, 128, 128))
    return _save(img, tmp_path / "ycbcr.tiff"), {(4, 4): [100] * 3}


MODE_CASES = {
    "RGBA": _rgba,
    "P-transparency": _palette_transparency,
    "P": _palette_opaque,
    "GIF-transparency": _gif_transparency,
    "LA": _la,
    "L": _l,
    "1": _bilevel,
    "I;16": _i16,
    "I": _i32,
    "I-8bit-values": _i32_small_values,
    "F-unit": _float_unit,
    "F-signed": _float_signed,
    "CMYK": _cmyk,
    "YCbCr": _ycbcr,
}


@pytest.mark.parametrize("case", MODE_CASES)
def test_every_mode_becomes_rgb_on_white(tmp_path, case):
    path, expected = MODE_CASES[case](tmp_path)
    pixels = load_image(path, 8)
    assert pixels.shape == (3, 8, 8)
    assert pixels.dtype == np.uint8
    for (y, x), colour in expected.items():
        np.testing.assert_allclose(_rgb_at(pixels, y, x), colour, atol=1)


def test_output_is_rgb_for_rgb_input(tmp_path):
    path = _save(Image.new("RGB", (5, 5), (1, 2, 3)), tmp_path / "rgb.png")
    assert _rgb_at(load_image(path, 5), 2, 2) == [1, 2, 3]


# ---------------------------------------------------------------- geometry


def test_exif_orientation_is_applied(tmp_path):
    # Landscape, red left half; Orientation=6 means "rotate 90 degrees
    # clockwise to display", which puts the red half on top of a portrait.
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(img, tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)

    pixels = load_image(path, 20, resize="pad").astype(int)
    top, bottom = pixels[:, 4, 10], pixels[:, 15, 10]
    assert top[0] > 200 and top[2] < 60  # red
    assert bottom[2] > 200 and bottom[0] < 60  # blue
    # Portrait inside a square: white padding left and right, not on top.
    assert _rgb_at(pixels, 10, 0) == WHITE
    assert pixels[:, 0, 10].tolist() != WHITE


@pytest.fixture
def thirds(tmp_path):
    """60 x 20 image: red, green, blue thirds."""
    img = Image.new("RGB", (60, 20), (0, 255, 0))
    img.paste((255, 0, 0), (0, 0, 20, 20))
    img.paste((0, 0, 255), (40, 0, 60, 20))
    return _save(img, tmp_path / "thirds.png")


def test_resize_pad_keeps_aspect_and_pads_white(thirds):
    pixels = load_image(thirds, 30, resize="pad")
    assert pixels.shape == (3, 30, 30)
    # 60 x 20 -> 30 x 10, centred: rows 10..19 hold the picture.
    assert _rgb_at(pixels, 5, 15) == WHITE
    assert _rgb_at(pixels, 25, 15) == WHITE
    assert _rgb_at(pixels, 15, 2) == RED
    assert _rgb_at(pixels, 15, 15) == GREEN
    assert _rgb_at(pixels, 15, 27) == BLUE


def test_resize_stretch_fills_the_square(thirds):
    pixels = load_image(thirds, 30, resize="stretch")
    for y in (0, 15, 29):
        assert _rgb_at(pixels, y, 2) == RED
        assert _rgb_at(pixels, y, 15) == GREEN
        assert _rgb_at(pixels, y, 27) == BLUE


def test_resize_crop_takes_the_centre(thirds):
    pixels = load_image(thirds, 20, resize="crop")
    assert (pixels == np.array(GREEN, dtype=np.uint8)[:, None, None]).all()


def test_upscaling_small_image(tmp_path):
    path = _save(Image.new("L", (2, 3), 70), tmp_path / "tiny.png")
    pixels = load_image(path, 12, resize="stretch")
    assert pixels.shape == (3, 12, 12)
    assert np.all(pixels == 70)


def test_invalid_resize_and_size(tmp_path):
    path = _save(Image.new("L", (2, 2)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="resize"):
        load_image(path, 4, resize="squash")
    with pytest.raises(ValueError, match="image_size"):
        load_image(path, 0)
    with pytest.raises(ValueError, match="max_image_pixels"):
        load_image(path, 4, max_image_pixels=-1)


# ---------------------------------------------------------------- fast path vs reference


def _reference_load(path, size, resize):
    """The straightforward way: composite on white at full size, then one Lanczos resize."""
    with Image.open(path) as img:
        rgba = img.convert("RGBA")
    flat = Image.new("RGB", rgba.size, tuple(WHITE))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    width, height = flat.size
    if resize == "crop":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        flat = flat.crop((left, top, left + side, top + side))
        width = height = side
    if resize == "pad":
        scale = size / max(width, height)
        target = (max(1, round(width * scale)), max(1, round(height * scale)))
    else:
        target = (size, size)
    small = flat.resize(target, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (size, size), tuple(WHITE))
    canvas.paste(small, ((size - target[0]) // 2, (size - target[1]) // 2))
    return np.asarray(canvas).transpose(2, 0, 1)


def _transparent_picture(width, height, seed=0):
    """Smooth colours and alpha, hard edges, a fully transparent band and a noisy patch."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    colour = np.stack(
        [255 * x / width, 255 * y / height, 128 + 127 * np.sin(x / 37.0 + y / 23.0)], axis=2
    )
    alpha = 255 * (0.5 + 0.5 * np.cos(x / 53.0) * np.sin(y / 41.0))
    alpha[(x // 97 + y // 61) % 3 == 0] = 255  # opaque blocks with hard edges
    alpha[: height // 6] = 0  # transparent band: must come out white
    ph, pw = min(80, height // 3), min(120, width // 3)
    patch = (slice(height // 2, height // 2 + ph), slice(width // 3, width // 3 + pw))
    colour[patch] = rng.integers(0, 256, (ph, pw, 3))
    alpha[patch] = rng.integers(0, 256, (ph, pw))
    pixels = np.dstack([colour, alpha]).clip(0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGBA")


def _fast_path_rgba(tmp_path, width, height):
    return _save(_transparent_picture(width, height), tmp_path / "fast_rgba.png")


def _fast_path_la(tmp_path, width, height):
    return _save(_transparent_picture(width, height).convert("LA"), tmp_path / "fast_la.png")


def _fast_path_p_trns(tmp_path, width, height):
    img = _transparent_picture(width, height).convert("RGB").quantize(64)
    pixels = np.asarray(img).copy()
    pixels[: height // 6] = 63  # transparent through tRNS
    pixels[height // 2 :: 7, ::5] = 63  # and scattered single transparent pixels
    img = Image.fromarray(pixels, "P")
    img.putpalette(_transparent_picture(width, height).convert("RGB").quantize(64).getpalette())
    return _save(img, tmp_path / "fast_p.png", transparency=63)


def _fast_path_p_alpha_palette(tmp_path, width, height):
    img = _transparent_picture(width, height).quantize(64, method=Image.Quantize.FASTOCTREE)
    assert img.palette.mode == "RGBA"
    return _save(img, tmp_path / "fast_pa.png")


FAST_PATH_CASES = {
    "RGBA": _fast_path_rgba,
    "LA": _fast_path_la,
    "P-tRNS": _fast_path_p_trns,
    "P-alpha-palette": _fast_path_p_alpha_palette,
}


@pytest.mark.parametrize("resize", ["pad", "stretch", "crop"])
@pytest.mark.parametrize("case", FAST_PATH_CASES)
@pytest.mark.parametrize("size", [(1500, 900), (900, 1500), (30, 18)])
def test_fast_path_matches_full_size_composite_then_resize(tmp_path, monkeypatch, case, resize, size):
    # The loader reduces and resizes premultiplied pixels strip by strip and
    # composites on white only at the end; the reference composites at full
    # size and resizes once. Both are linear, so they agree up to rounding and
    # the two-step (reduce, then Lanczos) resampling.
    monkeypatch.setattr(decode_module, "_STRIP_PIXELS", 50_000)  # many strips
    path = FAST_PATH_CASES[case](tmp_path, *size)
    pixels = load_image(path, 64, resize=resize).astype(int)
    reference = _reference_load(path, 64, resize).astype(int)
    difference = np.abs(pixels - reference)
    assert difference.mean() < 2, difference.mean()


def test_transparent_band_comes_out_white_after_reduction(tmp_path, monkeypatch):
    monkeypatch.setattr(decode_module, "_STRIP_PIXELS", 50_000)
    path = _fast_path_rgba(tmp_path, 1500, 900)
    pixels = load_image(path, 64, resize="stretch")
    # The top sixth of the file (rows 0-149 of 900, 0-10 of 64) is fully
    # transparent: white, whatever its colour, beyond the Lanczos support
    # (3 source pixels of 14 each) of the first visible row.
    assert (pixels[:, :7] == 255).all()


# ---------------------------------------------------------------- huge images


def test_huge_palette_png_is_correct_and_never_converted_at_full_size(
    tmp_path, monkeypatch
):
    # 8000 x 6000 = 48 MP: as RGBA that would be 192 MB. A palette image with
    # a transparent index exercises the path that naively expands to RGBA.
    width, height = 8000, 6000
    img = Image.new("P", (width, height), 1)
    img.putpalette([255, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * (3 * 253))
    img.paste(0, (0, 0, width // 2, height // 2))  # red top-left quadrant
    img.paste(2, (width // 2, height // 2, width, height))  # transparent bottom-right
    path = _save(img, tmp_path / "huge.png", transparency=2, compress_level=1)
    del img

    converted = []
    original_convert = Image.Image.convert

    def recording_convert(self, mode=None, *args, **kwargs):
        converted.append(self.width * self.height)
        return original_convert(self, mode, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", recording_convert)
    pixels = load_image(path, 32, resize="pad")

    # 8000 x 6000 -> 32 x 24, centred: rows 4..27.
    assert _rgb_at(pixels, 1, 16) == WHITE
    assert _rgb_at(pixels, 8, 8) == RED
    assert _rgb_at(pixels, 8, 24) == BLUE
    assert _rgb_at(pixels, 20, 8) == BLUE
    assert _rgb_at(pixels, 20, 24) == WHITE  # transparent -> white
    # Colour conversion ran on strips, never on the whole picture.
    assert converted and max(converted) <= width * height // 8


def test_huge_jpeg_is_decoded_at_reduced_scale(tmp_path, monkeypatch):
    img = Image.new("RGB", (4000, 3000), (0, 0, 255))
    path = _save(img, tmp_path / "big.jpg", quality=90)
    sizes = []
    original_load = Image.Image.load

    def recording_load(self):
        result = original_load(self)
        sizes.append(self.size)
        return result

    monkeypatch.setattr(Image.Image, "load", recording_load)
    pixels = load_image(path, 32)
    assert pixels[2, 16, 16] > 240 and pixels[0, 16, 16] < 15
    # libjpeg scaled by 1/8 while decoding (4000 / 8 = 500 >= 3 * 32).
    assert max(w * h for w, h in sizes) <= 500 * 375


def test_max_image_pixels(tmp_path):
    path = _save(Image.new("RGB", (100, 100), "red"), tmp_path / "big.png")
    with pytest.raises(ImageLoadError, match="max_image_pixels=5000") as info:
        load_image(path, 8, max_image_pixels=5000)
    assert info.value.path == path
    assert "10000 pixels" in info.value.reason
    assert _rgb_at(load_image(path, 8, max_image_pixels=None), 4, 4) == RED

    frame = pd.DataFrame({"image_path": [path]}, index=["b"])
    with pytest.raises(ValueError, match=r"row 'b', column 'image_path'.*big\.png"):
        load_images(
            frame["image_path"],
            8,
            max_image_pixels=5000,
            column="image_path",
            index=frame.index,
        )


def test_pillow_limit_is_ours_and_restored(tmp_path, monkeypatch):
    # Pillow alone would refuse this 100 x 100 image (over 2 x 1000 pixels).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = _save(Image.new("RGB", (100, 100), "red"), tmp_path / "x.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixels = load_image(path, 8)
    assert _rgb_at(pixels, 4, 4) == RED
    assert Image.MAX_IMAGE_PIXELS == 1000
    assert DEFAULT_MAX_IMAGE_PIXELS == 200_000_000


# ---------------------------------------------------------------- bad files


@pytest.fixture
def bad_files(tmp_path, rng):
    good = _save(Image.new("RGB", (6, 6), "red"), tmp_path / "good.png")
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    noisy = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    full = tmp_path / "full.png"
    noisy.save(full)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    missing = str(tmp_path / "missing.png")
    return {
        "good": good,
        "missing": missing,
        "text": str(text),
        "truncated": str(truncated),
    }


@pytest.mark.parametrize(
    "kind, reason",
    [("missing", "file not found"), ("text", "not an image"), ("truncated", "truncated")],
)
def test_load_image_errors_name_path_and_reason(bad_files, kind, reason):
    with pytest.raises(ImageLoadError) as info:
        load_image(bad_files[kind], 8)
    assert isinstance(info.value, ValueError)
    assert info.value.path == bad_files[kind]
    assert reason in info.value.reason
    assert bad_files[kind] in str(info.value)


def test_truncated_jpeg(tmp_path, rng):
    noisy = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    full = tmp_path / "full.jpg"
    noisy.save(full)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(str(cut), 8)


def test_directory_is_an_error(tmp_path):
    with pytest.raises(ImageLoadError, match="directory"):
        load_image(tmp_path, 8)


@pytest.fixture
def bad_frame(bad_files):
    return pd.DataFrame(
        {
            "image_path": [
                bad_files["good"],
                bad_files["missing"],
                bad_files["text"],
                bad_files["truncated"],
                None,
            ]
        },
        index=["a", "b", "c", "d", "e"],
    )


def test_on_error_raise_names_row_column_path(bad_frame, bad_files):
    with pytest.raises(ImageLoadError) as info:
        load_images(
            bad_frame["image_path"], 8, column="image_path", index=bad_frame.index
        )
    message = str(info.value)
    assert "row 'b'" in message
    assert "column 'image_path'" in message
    assert bad_files["missing"] in message
    assert "file not found" in message
    assert info.value.row == "b" and info.value.column == "image_path"


def test_on_error_raise_uses_positions_without_index(bad_files):
    with pytest.raises(ValueError, match=r"row 1: .*file not found"):
        load_images([bad_files["good"], bad_files["missing"]], 8)


def test_on_error_warn_marks_and_warns_once(bad_frame):
    with pytest.warns(UserWarning) as record:
        pixels, present = load_images(
            bad_frame["image_path"],
            8,
            on_error="warn",
            column="image_path",
            index=bad_frame.index,
        )
    assert len(record) == 1
    message = str(record[0].message)
    assert "3 images in column 'image_path'" in message
    for row in ("'b'", "'c'", "'d'"):
        assert f"row {row}" in message
    assert present.tolist() == [True, False, False, False, False]
    assert pixels[0, :, 3, 3].tolist() == RED
    assert (pixels[1:] == 255).all()


def test_on_error_ignore_is_silent(bad_frame):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixels, present = load_images(bad_frame["image_path"], 8, on_error="ignore")
    assert present.tolist() == [True, False, False, False, False]
    assert (pixels[1:] == 255).all()


def test_invalid_on_error_is_raised_at_the_call():
    with pytest.raises(ValueError, match="on_error"):
        load_images_parallel(["x.png"], 8, on_error="skip")
    with pytest.raises(ValueError, match="on_error"):
        load_images(["x.png"], 8, on_error="skip")


# ---------------------------------------------------------------- missing values


def test_is_missing():
    for value in (None, float("nan"), np.nan, np.float32("nan"), pd.NA, pd.NaT, "", "  \t"):
        assert is_missing(value), value
    for value in ("a.png", 0, 0.0, b""):
        assert not is_missing(value), value


def test_missing_entries_are_white_and_absent(bad_files):
    paths = [None, float("nan"), "", "   ", pd.NA, bad_files["good"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixels, present = load_images(paths, 4)
    assert pixels.shape == (6, 3, 4, 4) and pixels.dtype == np.uint8
    assert present.tolist() == [False] * 5 + [True]
    assert (pixels[:5] == 255).all()


def test_pathlike_accepted_and_other_types_rejected(bad_files, tmp_path):
    from pathlib import Path

    pixels, present = load_images([Path(bad_files["good"])], 4)
    assert present.all()
    with pytest.raises(TypeError, match=r"int 3 in row 'y', column 'image_path'"):
        load_images(
            [bad_files["good"], 3], 4, column="image_path", index=["x", "y"]
        )
    with pytest.raises(TypeError, match="path"):
        load_image(3, 4)


# ---------------------------------------------------------------- streaming / parallel


def _mixed_paths(tmp_path, rng, n=8):
    paths = []
    for i in range(n):
        array = rng.integers(0, 256, (10 + i, 14, 3), dtype=np.uint8)
        paths.append(_save(Image.fromarray(array), tmp_path / f"img{i}.png"))
    paths[2] = None
    paths[5] = str(tmp_path / "gone.png")
    return paths


def test_parallel_matches_serial_in_order(tmp_path, rng):
    paths = _mixed_paths(tmp_path, rng)
    expected, expected_present = load_images(paths, 16, on_error="ignore")

    starts, chunks, presents = [], [], []
    for start, pixels, present in load_images_parallel(
        paths, 16, num_workers=2, batch_size=3, on_error="ignore"
    ):
        assert pixels.dtype == torch.uint8 and pixels.shape[1:] == (3, 16, 16)
        starts.append(start)
        chunks.append(pixels.numpy())
        presents.append(present.numpy())
    assert starts == [0, 3, 6]
    np.testing.assert_array_equal(np.concatenate(chunks), expected)
    np.testing.assert_array_equal(np.concatenate(presents), expected_present)
    assert expected_present.tolist() == [True, True, False, True, True, False, True, True]
    # Different images really are different (order is meaningful).
    assert not np.array_equal(expected[0], expected[1])


def test_batches_are_whole_numbers_of_decoding_chunks():
    sampler = ChunkSampler(25, 10, 8)
    chunks = list(sampler)
    assert len(chunks) == len(sampler) == 5
    # Batches of 10 rows, each cut into chunks of at most 8: none straddles two batches.
    assert chunks == [
        list(range(0, 8)), [8, 9], list(range(10, 18)), [18, 19], list(range(20, 25)),
    ]


def test_batches_are_dealt_to_workers_by_pixels(tmp_path, rng):
    paths = _mixed_paths(tmp_path, rng, n=20)
    paths[3] = _save(Image.new("RGB", (1200, 1000), "red"), tmp_path / "big.png")
    sampler = ChunkSampler(20, 10, 2, num_workers=2, paths=paths)
    chunks = list(sampler)
    assert len(chunks) == len(sampler) == 2 * 2 * 3  # per batch: 3 chunks for each of 2 workers
    # Every row exactly once, and no chunk straddles two batches.
    assert sorted(i for c in chunks for i in c) == list(range(20))
    first, second = chunks[:6], chunks[6:]
    assert all(i < 10 for c in first for i in c) and all(i >= 10 for c in second for i in c)
    # The DataLoader gives chunk k to worker k % 2: the 1.2-MP file has worker 0 to
    # itself in its batch, worker 1 decodes the other 9 rows.
    worker0 = sorted(i for c in first[0::2] for i in c)
    worker1 = sorted(i for c in first[1::2] for i in c)
    assert worker0 == [3] and worker1 == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    # Equal costs are dealt evenly.
    assert len([i for c in second[0::2] for i in c]) == 5


def test_one_huge_file_gets_a_worker_to_itself(tmp_path, rng, monkeypatch):
    import multiprocessing
    import os

    paths = _mixed_paths(tmp_path, rng, n=16)
    paths[9] = _save(Image.new("RGB", (1500, 1000), "blue"), tmp_path / "huge.png")
    decoded_by = multiprocessing.Array("i", len(paths))
    original = ImageFolderDataset.__getitem__

    def record(self, i):
        decoded_by[i] = os.getpid()
        return original(self, i)

    monkeypatch.setattr(ImageFolderDataset, "__getitem__", record)
    expected, expected_present = load_images(paths, 8, on_error="ignore")
    batches = list(load_images_parallel(paths, 8, num_workers=2, batch_size=16, on_error="ignore"))
    assert [start for start, _, _ in batches] == [0]
    # Rows come back in their places although they were decoded out of order.
    np.testing.assert_array_equal(batches[0][1].numpy(), expected)
    np.testing.assert_array_equal(batches[0][2].numpy(), expected_present)
    pids = list(decoded_by[:])
    present = [i for i, p in enumerate(paths) if p is not None]
    assert sum(pids[i] == pids[9] for i in present) == 1


def test_dealt_batches_raise_at_their_first_failing_row(tmp_path, rng):
    paths = _mixed_paths(tmp_path, rng, n=12)
    paths[1] = str(tmp_path / "first-gone.png")  # rows 1 and 5 both fail; 1 comes first
    paths[7] = _save(Image.new("RGB", (900, 900), "green"), tmp_path / "big.png")
    with pytest.raises(ImageLoadError, match=r"row 1, column 'c'.*first-gone\.png"):
        list(load_images_parallel(paths, 8, num_workers=2, batch_size=12, column="c"))


def test_parallel_rebatches_chunks_in_order(tmp_path, rng):
    paths = _mixed_paths(tmp_path, rng, n=25)
    expected, expected_present = load_images(paths, 16, on_error="ignore")
    starts, chunks, presents = [], [], []
    for start, pixels, present in load_images_parallel(
        paths, 16, num_workers=2, batch_size=10, on_error="ignore"
    ):
        starts.append(start)
        chunks.append(pixels.numpy())
        presents.append(present.numpy())
    assert starts == [0, 10, 20]
    assert [len(c) for c in chunks] == [10, 10, 5]
    np.testing.assert_array_equal(np.concatenate(chunks), expected)
    np.testing.assert_array_equal(np.concatenate(presents), expected_present)


def test_one_slow_file_does_not_hold_up_the_rest_of_its_batch(tmp_path, rng, monkeypatch):
    import multiprocessing
    import os
    import time

    paths = _mixed_paths(tmp_path, rng, n=32)
    paths[2] = paths[0]
    paths[5] = paths[1]
    decoded_by = multiprocessing.Array("i", len(paths))
    original = ImageFolderDataset.__getitem__

    def slow_first(self, i):
        if i == 0:
            time.sleep(1.0)  # a 100-MP PNG
        decoded_by[i] = os.getpid()
        return original(self, i)

    monkeypatch.setattr(ImageFolderDataset, "__getitem__", slow_first)
    batches = list(load_images_parallel(paths, 8, num_workers=2, batch_size=32))
    assert [start for start, _, _ in batches] == [0]
    # The one model batch was decoded by both workers, in chunks.
    assert len(set(decoded_by[:])) == 2


def test_stream_raises_at_first_failure_after_earlier_batches(tmp_path, rng):
    paths = _mixed_paths(tmp_path, rng)
    stream = load_images_parallel(paths, 8, batch_size=2, column="image_path")
    start, pixels, present = next(stream)
    assert start == 0 and present.tolist() == [True, True]
    next(stream)  # rows 2, 3: a missing value is not a failure
    with pytest.raises(ImageLoadError, match=r"row 5, column 'image_path'.*gone\.png"):
        next(stream)


def test_dataset_items_report_instead_of_raising(bad_files):
    dataset = ImageFolderDataset(
        [bad_files["good"], bad_files["text"], None], 4, resize="crop"
    )
    assert len(dataset) == 3
    pixels, present, error = dataset[0]
    assert pixels.dtype == torch.uint8 and tuple(pixels.shape) == (3, 4, 4)
    assert present is True and error == ""
    _, present, error = dataset[1]
    assert present is False and "not an image" in error
    pixels, present, error = dataset[2]
    assert present is False and error == "" and bool((pixels == 255).all())


def test_image_load_error_pickles():
    error = ImageLoadError("a.png", "file not found", row="r", column="c")
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.path, clone.reason) == ("a.png", "file not found")
    assert (clone.row, clone.column) == ("r", "c")
    assert str(clone) == str(error)


def test_module_exports():
    for name in images_module.__all__:
        assert hasattr(images_module, name)
    assert images_module.is_missing is validation.is_missing  # one definition, re-exported


@pytest.mark.parametrize("n", [1, 3])
def test_fewer_rows_than_workers_give_no_empty_batch(tmp_path, n):
    # the sampler deals every worker a chunk, empty ones too; none may come out as a batch
    # (an empty batch broke the pixel cache when only one uncached file was left to decode)
    paths = []
    for i in range(n):
        Image.new("RGB", (6, 6), (40 * i, 0, 0)).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    batches = list(load_images_parallel(paths, 4, num_workers=2, batch_size=8))
    assert [(start, len(present)) for start, _, present in batches] == [(0, n)]
