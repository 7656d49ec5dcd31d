"""Tests of skseg._image: loading one item into grayscale uint8, and its errors."""

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from skseg._image import ImageLoadError, ImageTooLargeError, describe_item, load_grayscale


def _asymmetric(height=20, width=30):
    """Paper with an ink block in the top-left corner, so rotations are visible."""
    gray = np.full((height, width), 250, dtype=np.uint8)
    gray[2:6, 3:12] = 10
    return gray


def _png_claiming_size(path, width, height):
    """A 10x10 PNG whose header claims ``width x height`` (a decompression bomb)."""
    Image.new("L", (10, 10), 255).save(path)
    data = bytearray(path.read_bytes())
    # After the 8-byte signature: IHDR length (4), type (4), width and height.
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


# --- modes -----------------------------------------------------------------------


def test_uint8_gray_array_is_returned_as_a_copy():
    gray = _asymmetric()
    loaded = load_grayscale(gray)
    np.testing.assert_array_equal(loaded, gray)
    loaded[0, 0] = 0
    assert gray[0, 0] == 250


def test_rgb_file_and_array_use_luma(tmp_path):
    rgb = np.full((8, 8, 3), 255, dtype=np.uint8)
    rgb[2:4, 2:4] = (0, 0, 255)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(load_grayscale(tmp_path / "rgb.png"), expected)
    np.testing.assert_array_equal(load_grayscale(rgb), expected)
    assert load_grayscale(rgb)[2, 2] == 29  # blue ink is dark


def test_rgba_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((6, 6, 4), dtype=np.uint8)  # transparent *black* paper
    rgba[1, 1] = (0, 0, 0, 255)  # opaque ink
    rgba[2, 2] = (0, 0, 0, 128)  # half-transparent ink
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    for item in (tmp_path / "rgba.png", rgba, Image.fromarray(rgba)):
        gray = load_grayscale(item)
        assert gray[0, 0] == 255 and gray[1, 1] == 0
        assert 120 <= gray[2, 2] <= 135


def test_la_array_is_composited_over_white():
    la = np.zeros((4, 4, 2), dtype=np.uint8)
    la[0, 0] = (0, 255)
    gray = load_grayscale(la)
    assert gray[0, 0] == 0 and gray[3, 3] == 255


def test_palette_with_transparent_index(tmp_path):
    img = Image.new("P", (6, 6), 0)
    img.putpalette([0, 0, 0, 50, 50, 50] + [0] * 762)  # index 0 black, 1 dark grey
    img.putpixel((1, 1), 1)
    img.save(tmp_path / "p.png", transparency=0)
    gray = load_grayscale(tmp_path / "p.png")
    assert gray[0, 0] == 255  # black but transparent: paper
    assert gray[1, 1] == 50


def test_palette_without_transparency(tmp_path):
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 200, 200, 200] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.save(tmp_path / "p.png")
    gray = load_grayscale(tmp_path / "p.png")
    assert gray[0, 0] == 0 and gray[1, 1] == 200


def test_16_bit_png_is_scaled_to_8_bits(tmp_path):
    deep = np.full((5, 5), 65535, dtype=np.uint16)
    deep[0, 0], deep[1, 1] = 0, 32896
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    gray = load_grayscale(tmp_path / "deep.png")
    assert (gray[0, 0], gray[1, 1], gray[4, 4]) == (0, 128, 255)


@pytest.mark.parametrize(
    "img, expected",
    [
        (Image.new("I", (3, 3), 65535), 255),  # 16-bit data in a 32-bit container
        (Image.new("I", (3, 3), 200), 200),  # 8-bit data in a 32-bit container
        (Image.new("F", (3, 3), 0.5), 128),  # float in [0, 1]
        (Image.new("F", (3, 3), 100.0), 100),  # float in [0, 255]
        (Image.new("1", (3, 3), 1), 255),
        (Image.new("CMYK", (3, 3), (0, 0, 0, 0)), 255),
    ],
    ids=["I-16bit", "I-8bit", "F-unit", "F-255", "1", "CMYK"],
)
def test_other_modes(img, expected):
    gray = load_grayscale(img)
    assert gray.dtype == np.uint8 and gray.shape == (3, 3)
    assert (gray == expected).all()


def test_exif_orientation_is_applied(tmp_path):
    gray = _asymmetric()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(gray).save(tmp_path / "rotated.png", exif=exif)
    np.testing.assert_array_equal(load_grayscale(tmp_path / "rotated.png"), np.rot90(gray, k=-1))


@pytest.mark.parametrize("fmt", ["png", "jpg", "tif", "bmp"])
def test_resolution_is_read_from_the_file_as_rows_then_columns(tmp_path, fmt):
    path = tmp_path / f"scan.{fmt}"
    Image.fromarray(_asymmetric()).save(path, dpi=(300, 150))  # Pillow: (horizontal, vertical)
    gray, resolution = load_grayscale(path, with_resolution=True)
    assert gray.shape == (20, 30)
    assert resolution == pytest.approx((150, 300), rel=1e-3)
    with Image.open(path) as img:
        assert load_grayscale(img, with_resolution=True)[1] == pytest.approx((150, 300), rel=1e-3)


def test_a_quarter_turn_swaps_the_resolution(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_asymmetric()).save(tmp_path / "turned.png", exif=exif, dpi=(300, 150))
    gray, resolution = load_grayscale(tmp_path / "turned.png", with_resolution=True)
    assert gray.shape == (30, 20)  # now 30 rows, which were the 300 dpi columns
    assert resolution == pytest.approx((300, 150), rel=1e-3)


def test_no_resolution_without_one_recorded(tmp_path):
    Image.fromarray(_asymmetric()).save(tmp_path / "plain.png")
    assert load_grayscale(tmp_path / "plain.png", with_resolution=True)[1] is None
    assert load_grayscale(_asymmetric(), with_resolution=True)[1] is None
    img = Image.fromarray(_asymmetric())
    img.info["dpi"] = (0, 0)  # recorded, but useless
    assert load_grayscale(img, with_resolution=True)[1] is None
    assert isinstance(load_grayscale(tmp_path / "plain.png"), np.ndarray)  # default: array only


@pytest.mark.parametrize(
    "array",
    [
        np.full((3, 4, 1), 7, dtype=np.uint8),
        np.full((3, 4), 7, dtype=np.int64),
        np.full((3, 4), 7 / 255, dtype=np.float32),
    ],
    ids=["channel-axis", "int64-in-range", "float"],
)
def test_accepted_arrays(array):
    np.testing.assert_array_equal(load_grayscale(array), np.full((3, 4), 7, dtype=np.uint8))


def test_lazy_pil_image_item_is_decoded(tmp_path):
    Image.fromarray(_asymmetric()).save(tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as img:
        np.testing.assert_array_equal(load_grayscale(img), _asymmetric())


# --- errors: every one names the item -----------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"image 3 \(path '.*nope\.png'\): no such file"):
        load_grayscale(tmp_path / "nope.png", label="image 3")


def test_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"pair 0, first image \(path .*\): is a directory"):
        load_grayscale(tmp_path, label="pair 0, first image")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageLoadError, match=r"^path '.*notes\.png': not an image") as info:
        load_grayscale(tmp_path / "notes.png")
    assert info.value.__cause__ is not None  # the original error is chained


def test_truncated_file(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match=r"cut\.png'\): cannot decode.*truncated") as info:
        load_grayscale(tmp_path / "cut.png", label="image 0")
    assert info.value.__cause__ is not None


def test_empty_pil_image():
    with pytest.raises(ImageLoadError, match=r"image 2 \(PIL image.*\): the image is empty"):
        load_grayscale(Image.new("L", (0, 0)), label="image 2")


def test_header_above_max_pixels_is_refused_before_decoding(tmp_path):
    # The file holds 10x10 pixels: decoding would fail with "truncated", not this.
    path = _png_claiming_size(tmp_path / "bomb.png", 8000, 8000)
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png': 8000x8000 .* max_pixels="):
        load_grayscale(path)
    with pytest.raises(ImageTooLargeError, match="max_pixels=100"):
        load_grayscale(np.zeros((20, 20), dtype=np.uint8), max_pixels=100)


def test_pillow_decompression_bomb_error_is_converted(tmp_path):
    path = _png_claiming_size(tmp_path / "huge.png", 100_000, 100_000)
    with pytest.raises(ImageTooLargeError, match=r"huge\.png': Pillow refused") as info:
        load_grayscale(path, max_pixels=None)
    assert isinstance(info.value.__cause__, Image.DecompressionBombError)


def test_pillow_bomb_warning_as_error_is_converted(tmp_path):
    path = _png_claiming_size(tmp_path / "big.png", 10_000, 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageTooLargeError, match=r"big\.png': Pillow refused"):
            load_grayscale(path, max_pixels=None)


@pytest.mark.parametrize(
    "array, error, message",
    [
        (np.zeros(5, dtype=np.uint8), ValueError, r"\(5,\), dtype uint8\): expected an image"),
        (np.zeros((4, 4, 5), dtype=np.uint8), ValueError, "expected an image array"),
        (np.zeros((0, 5), dtype=np.uint8), ImageLoadError, "empty"),
        (np.zeros((4, 4), dtype=bool), TypeError, "boolean arrays are ambiguous"),
        (np.full((4, 4), 300, dtype=np.int64), ValueError, r"\[0, 255\].*300"),
        (np.full((4, 4), -1, dtype=np.int16), ValueError, r"\[0, 255\]"),
        (np.zeros((4, 4), dtype=complex), TypeError, "unsupported dtype complex128"),
        (np.empty((4, 4), dtype=object), TypeError, "unsupported dtype object"),
        (np.full((4, 4), 1.5), ValueError, r"float pixels must lie in \[0, 1\]"),
        (np.full((4, 4), np.nan), ValueError, "NaN or infinite"),
        (np.full((4, 4), np.inf, dtype=np.float32), ValueError, "NaN or infinite"),
    ],
    ids=[
        "1-D", "5-channels", "empty", "bool", "int64>255", "negative",
        "complex", "object", "float>1", "nan", "inf",
    ],
)
def test_bad_arrays(array, error, message):
    with pytest.raises(error, match=r"^pair 7, second image \(array of shape .*" + message):
        load_grayscale(array, label="pair 7, second image")


@pytest.mark.parametrize(
    "item", [3, None, b"a.png", [[0, 255]]], ids=["int", "None", "bytes", "list"]
)
def test_unsupported_item_types(item):
    with pytest.raises(TypeError, match=r"^image 1 \(object of type .*\): unsupported item; "
                                        r"expected a file path"):
        load_grayscale(item, label="image 1")


def test_describe_item(tmp_path):
    assert describe_item(tmp_path / "x.png") == f"path {str(tmp_path / 'x.png')!r}"
    assert describe_item(Image.new("RGB", (4, 3))) == "PIL image, mode 'RGB', size 4x3"
    assert describe_item(1.5) == "object of type float"
