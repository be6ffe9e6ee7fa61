"""read_image: every kind of file, written by PIL or OpenCV from a real photo, against a reference
decode (the exact array written for lossless files, Pillow and OpenCV for JPEG)."""

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from modernvision._errors import BadFileError, InvalidArgumentError, MissingFileError, UserError
from modernvision.classic.viola_jones import to_gray
from modernvision.data import ImageFolder, load_image, load_photo
from modernvision.data.formats import load_rgb
from modernvision.data.io import image_size, read_image, read_label_map


@pytest.fixture(scope="module")
def rgb():
    # a non-square crop (so a transposed image cannot pass for the right one) of a real photo
    return np.ascontiguousarray(load_photo("astronaut")[60:140, 150:250])  # (80, 100, 3)


@pytest.fixture(scope="module")
def grey():
    return np.ascontiguousarray(load_photo("camera")[100:180, 200:300])  # (80, 100)


def _round16(v: np.ndarray) -> np.ndarray:
    return np.round(v.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)


def test_8bit_grey_png(tmp_path, grey):
    Image.fromarray(grey).save(tmp_path / "g.png")
    assert np.array_equal(read_image(tmp_path / "g.png", mode=None), grey)
    assert np.array_equal(read_image(tmp_path / "g.png", mode="L"), grey)
    assert np.array_equal(read_image(tmp_path / "g.png"), np.dstack([grey] * 3))


@pytest.mark.parametrize("writer", ["pil", "opencv"])
def test_16bit_grey_png_is_scaled_not_clipped(tmp_path, grey, writer):
    # real 16-bit content: the photo's levels times 257 plus sub-level detail
    detail = np.random.default_rng(0).integers(0, 257, grey.shape)
    v = np.minimum(grey.astype(np.int64) * 257 + detail, 65535).astype(np.uint16)
    path = tmp_path / "g16.png"
    if writer == "pil":
        Image.fromarray(v).save(path)
    else:
        cv2.imwrite(str(path), v)
    assert Image.open(path).mode.startswith("I")
    out = read_image(path, mode="L")
    assert out.dtype == np.uint8 and np.array_equal(out, _round16(v))
    assert np.abs(out.astype(int) - grey).max() <= 1  # the photo survives
    assert (out == 255).mean() < 0.05  # PIL's convert("L") made ~every pixel 255
    assert np.array_equal(read_image(path, mode=None), out)
    # the predict path (load_image) and faces/match (mode=None) see the same pixels
    assert np.array_equal(np.asarray(load_image(path, mode="L")), out)


def test_16bit_grey_extremes(tmp_path):
    v = np.array([[0, 128, 129, 32768, 65406, 65407, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "e.png"), v)
    assert read_image(tmp_path / "e.png", mode=None).tolist() == [[0, 0, 1, 128, 254, 255, 255]]


def test_16bit_rgb_png(tmp_path, rgb):
    detail = np.random.default_rng(1).integers(0, 257, rgb.shape)
    v = np.minimum(rgb.astype(np.int64) * 257 + detail, 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), v[..., ::-1])  # OpenCV writes BGR
    out = read_image(tmp_path / "c16.png")
    assert np.array_equal(out, _round16(v))  # Pillow would keep only the high byte


def test_rgb_png_from_pil_and_opencv(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "pil.png")
    cv2.imwrite(str(tmp_path / "cv.png"), rgb[..., ::-1])
    for name in ("pil.png", "cv.png"):
        assert np.array_equal(read_image(tmp_path / name), rgb)
        assert np.array_equal(read_image(tmp_path / name, mode=None), rgb)
        assert np.array_equal(load_rgb(tmp_path / name), rgb)
    # grey from colour: OpenCV's BT.601, the same as the Viola-Jones detector's to_gray
    grey = read_image(tmp_path / "pil.png", mode="L")
    assert np.array_equal(grey, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    assert np.array_equal(grey, to_gray(rgb))


def test_rgba_drops_alpha(tmp_path, rgb):
    alpha = np.random.default_rng(2).integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    alpha[:10] = 0  # fully transparent rows keep their colour
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert np.array_equal(out, rgb)
    assert np.array_equal(out, np.asarray(Image.open(tmp_path / "a.png").convert("RGB")))
    with_alpha = cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(with_alpha[..., 3], alpha)  # the file really had the alpha


def test_grey_alpha_stays_grey(tmp_path, grey):
    alpha = np.full(grey.shape, 128, np.uint8)
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(tmp_path / "la.png")
    assert np.array_equal(read_image(tmp_path / "la.png", mode=None), grey)
    assert np.array_equal(read_image(tmp_path / "la.png"), np.dstack([grey] * 3))


@pytest.mark.parametrize("transparency", [False, True])
def test_palette_png(tmp_path, rgb, transparency):
    pal = Image.fromarray(rgb).quantize(colors=32)
    path = tmp_path / "p.png"
    pal.save(path, **({"transparency": 3} if transparency else {}))
    assert Image.open(path).mode == "P"
    expected = np.asarray(Image.open(path).convert("RGB"))
    out = read_image(path)
    assert np.array_equal(out, expected)
    assert np.abs(out.astype(int) - rgb).mean() < 12  # still the photo, in 32 colours
    assert read_image(path, mode=None).shape == rgb.shape


def test_one_bit_png(tmp_path, grey):
    Image.fromarray(grey > 128).save(tmp_path / "b.png")
    assert np.array_equal(read_image(tmp_path / "b.png", mode=None),
                          np.where(grey > 128, 255, 0).astype(np.uint8))


@pytest.mark.parametrize("colour", [True, False])
def test_jpeg_matches_pillow_and_opencv(tmp_path, rgb, grey, colour):
    src = rgb if colour else grey
    path = tmp_path / "x.jpg"
    Image.fromarray(src).save(path, quality=90)
    out = read_image(path, mode=None)
    pil = np.asarray(Image.open(path))
    ocv = cv2.imread(str(path), cv2.IMREAD_COLOR if colour else cv2.IMREAD_GRAYSCALE)
    ocv = ocv[..., ::-1] if colour else ocv
    assert out.shape == src.shape
    assert np.abs(out.astype(int) - pil).max() <= 1 and np.abs(out.astype(int) - ocv).max() <= 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation(tmp_path, rgb, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(rgb).save(path, quality=95, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    out = read_image(path)
    assert out.shape == expected.shape
    assert np.abs(out.astype(int) - expected).max() <= 1
    shown = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]  # OpenCV applies it too
    assert np.abs(out.astype(int) - shown).max() <= 1
    w, h = image_size(path)
    assert (h, w) == out.shape[:2]
    if orientation in (6, 8):
        assert out.shape[:2] == rgb.shape[1::-1]


@pytest.mark.parametrize("ext", [".bmp", ".tif", ".webp", ".gif", ".ppm"])
def test_other_lossless_formats(tmp_path, rgb, ext):
    path = tmp_path / f"x{ext}"
    img = Image.fromarray(rgb)
    img.save(path, **({"lossless": True} if ext == ".webp" else {}))
    expected = np.asarray(Image.open(path).convert("RGB"))  # GIF is a palette image
    assert np.array_equal(read_image(path), expected)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(MissingFileError, match="nope.png does not exist"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(MissingFileError, match="is a directory"):
        read_image(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(BadFileError, match=r"empty.png is empty \(0 bytes\)"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "junk.jpg").write_text("not an image")
    with pytest.raises(BadFileError, match="junk.jpg: not an image"):
        read_image(tmp_path / "junk.jpg")
    good = tmp_path / "t.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(good)
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[:60])
    with pytest.raises(BadFileError, match="trunc.png"):
        read_image(tmp_path / "trunc.png")
    cv2.imwrite(str(tmp_path / "f.tif"), np.zeros((4, 4), np.float32))
    with pytest.raises(BadFileError, match="float32 pixels"):
        read_image(tmp_path / "f.tif")
    with pytest.raises(InvalidArgumentError, match="mode must be"):
        read_image(good, mode="RGBA")
    with pytest.raises(MissingFileError, match="scene image"):
        read_image(tmp_path / "nope.png", what="scene image")
    for exc in (MissingFileError, BadFileError, InvalidArgumentError):
        assert issubclass(exc, UserError)


def test_image_folder_reads_through_read_image(tmp_path, grey):
    (tmp_path / "a").mkdir()
    v = (grey.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "a" / "x.png"), v)
    img, label = ImageFolder(tmp_path, mode="L")[0]
    assert label == 0 and np.array_equal(np.asarray(img), grey)


def test_label_map_keeps_raw_indices(tmp_path):
    labels = np.random.default_rng(3).integers(0, 5, (20, 30)).astype(np.uint8)
    im = Image.fromarray(labels, "P")
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0] + [0] * 753)
    im.save(tmp_path / "s.png")
    assert np.array_equal(read_label_map(tmp_path / "s.png"), labels)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(BadFileError, match="expected one channel"):
        read_label_map(tmp_path / "rgb.png")
