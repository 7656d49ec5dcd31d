"""Tests of skseg.preprocessing.SignaturePreprocessor."""

import ast
import hashlib
import pickle
import warnings
from pathlib import Path

import numpy as np
import PIL
import pytest
from PIL import Image, ImageDraw, ImageFilter
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils._param_validation import InvalidParameterError

import skseg.preprocessing as preprocessing
from skseg._image import ImageLoadError
from skseg.preprocessing import BlankImageError, BlankImageWarning, SignaturePreprocessor

CANVAS = (40, 60)  # small canvases keep the tests fast


def fake_signature(height=90, width=220, paper=240, ink=50, seed=0, noise=0.0):
    """A scan of a smooth pen stroke: ``uint8`` (height, width), dark ink on paper."""
    rng = np.random.default_rng(seed)
    img = Image.new("L", (width, height), paper)
    xs = np.linspace(0.1 * width, 0.9 * width, 30)
    phase, amplitude = rng.uniform(0, 6), rng.uniform(0.15, 0.3) * height
    ys = height / 2 + amplitude * np.sin(xs / width * 9 + phase)
    ImageDraw.Draw(img).line(list(zip(xs.tolist(), ys.tolist())), fill=ink, width=3)
    # soft stroke edges, as a pen and a scanner give
    gray = np.asarray(img.filter(ImageFilter.GaussianBlur(0.8)), dtype=np.float64)
    if noise:
        gray = gray + rng.normal(0, noise, gray.shape)
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)


def ink_difference(a, b):
    """Mean absolute difference of two canvases over the pixels where either has ink."""
    a, b = a.astype(int), b.astype(int)
    return np.abs(a - b)[(a > 0) | (b > 0)].mean()


def save(tmp_path, name, gray):
    path = tmp_path / name
    Image.fromarray(gray).save(path)
    return path


def prep(**params):
    return SignaturePreprocessor(canvas_size=CANVAS, **params)


# --- output: shape, polarity, geometry ---------------------------------------------


def test_single_images_ink_high_background_exactly_zero():
    out = prep().fit_transform([fake_signature(), fake_signature(seed=1, noise=3)])
    assert out.shape == (2,) + CANVAS and out.dtype == np.uint8
    for canvas in out:
        assert canvas.max() > 200  # thin strokes get lighter when shrunk
        assert (canvas[0] == 0).all() and (canvas[-1] == 0).all()  # no paper left
        assert 0.02 < (canvas > 0).mean() < 0.5  # a stroke, not a filled canvas


def test_invert_false_gives_dark_ink_on_255():
    out = prep(invert=False).transform([fake_signature()])[0]
    assert out.min() < 55 and (out[0] == 255).all()
    np.testing.assert_array_equal(out, 255 - prep().transform([fake_signature()])[0])


def test_default_canvas_is_signet_size():
    assert SignaturePreprocessor().transform([fake_signature()]).shape == (1, 155, 220)


def test_aspect_kept_and_centred():
    scan = np.full((300, 300), 235, dtype=np.uint8)
    scan[100:140, 60:140] = 30  # a 40 x 80 block of ink: aspect 1:2
    out = SignaturePreprocessor(canvas_size=(100, 100), blur_radius=0).transform([scan])[0]
    rows = np.flatnonzero((out > 127).any(axis=1))
    cols = np.flatnonzero((out > 127).any(axis=0))
    assert (cols[0], cols[-1]) == (0, 99)  # the width fills the canvas
    assert abs(rows[0] - 25) <= 1 and abs(rows[-1] - 74) <= 1  # 50 rows, centred


def test_crop_false_keeps_the_margins():
    scan = np.full((100, 100), 240, dtype=np.uint8)
    scan[5:15, 5:25] = 20  # ink in the top-left corner
    out = SignaturePreprocessor(canvas_size=(100, 100), crop=False).transform([scan])[0]
    assert out[10, 10] > 200 and out[50:].max() == 0 and out[:, 50:].max() == 0


def test_remove_background_false_keeps_the_paper():
    out = prep(remove_background=False).transform([fake_signature(paper=240)])[0]
    assert np.count_nonzero(out == 255 - 240) > 0.1 * out.size


# --- background and brightness do not leak -------------------------------------------


def test_background_grey_level_does_not_leak():
    # CEDAR's trap: genuine scans have grey paper (~240), forgeries white (~252).
    grey = fake_signature(paper=238, noise=2, seed=3)
    white = fake_signature(paper=252, noise=2, seed=3)
    for ink_contrast, tolerance in [("stretch", 1), ("equalize", 1), ("binary", 0)]:
        out = prep(ink_contrast=ink_contrast).transform([grey, white])
        assert (out[:, [0, -1]] == 0).all()  # padding rows: the paper is gone
        assert ink_difference(*out) <= tolerance, ink_contrast
        assert ((out[0] > 0) != (out[1] > 0)).mean() < 0.01  # the same ink pixels


@pytest.mark.parametrize("ink_contrast", ["stretch", "equalize"])
@pytest.mark.parametrize("gain", [0.45, 0.8])
def test_ink_levels_ignore_the_scan_brightness(ink_contrast, gain):
    scan = fake_signature(paper=240, ink=60)
    darker = np.rint(scan * gain).astype(np.uint8)  # dark or dim background
    out = prep(ink_contrast=ink_contrast).transform([scan, darker])
    assert ink_difference(*out) < 2
    kept = prep(ink_contrast="keep").transform([scan, darker])
    assert ink_difference(*kept) > 5  # sigver's levels follow the brightness


def test_colour_scan_equals_its_grayscale():
    gray = fake_signature()
    rgb = np.stack([gray] * 3, axis=-1)
    rgb[gray < 200] = (20, 30, 180)  # blue ink
    out = prep().transform([rgb, np.asarray(Image.fromarray(rgb).convert("L"))])
    np.testing.assert_array_equal(out[0], out[1])


def test_large_noisy_margins_give_the_tight_result():
    rng = np.random.default_rng(0)
    page = np.clip(rng.normal(240, 4, (700, 900)), 0, 255).astype(np.uint8)
    page[300:390, 350:570] = np.minimum(page[300:390, 350:570], fake_signature())
    out = prep().transform([page, fake_signature()]).astype(int)
    assert np.abs(out[0] - out[1]).mean() < 2


def test_flatten_background_handles_uneven_lighting():
    gradient = np.linspace(110, 250, 220)[None, :] / 240
    uneven = np.rint(fake_signature() * gradient).astype(np.uint8)
    reference = prep().transform([fake_signature()]).astype(int)[0]
    flat = prep(flatten_background=True).transform([uneven]).astype(int)[0]
    plain = prep().transform([uneven]).astype(int)[0]
    assert np.abs(flat - reference).mean() < 2 < np.abs(plain - reference).mean()


def test_very_small_image_still_has_ink():
    tiny = np.asarray(Image.fromarray(fake_signature()).resize((30, 12), Image.LANCZOS))
    out = prep().transform([tiny])[0]
    assert out.max() > 100 and out[0].max() == 0


# --- blank images ----------------------------------------------------------------


def test_blank_image_warns_and_gives_empty_canvas():
    noise = np.clip(np.random.default_rng(0).normal(240, 3, (80, 120)), 0, 255)
    X = [fake_signature(), np.full((50, 50), 255, np.uint8), noise.astype(np.uint8)]
    named = r": image 1 \(array of shape \(50, 50\), dtype uint8\); image 2 \("
    with pytest.warns(BlankImageWarning, match=r"2 image\(s\) have no ink.*" + named):
        out = prep().transform(X)
    assert out[0].max() > 200 and out[1].max() == 0 and out[2].max() == 0


def test_blank_image_raise_and_ignore():
    X = [[fake_signature(), np.full((50, 50), 200, np.uint8)]]
    with pytest.raises(BlankImageError, match="pair 0, second image"):
        prep(on_blank="raise").transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = prep(on_blank="ignore", invert=False).transform(X)
    assert (out[0, 1] == 255).all()


# --- input forms ---------------------------------------------------------------


def test_pairs_in_and_out_with_mixed_item_types(tmp_path):
    a = fake_signature(seed=1)
    path = save(tmp_path, "b.png", fake_signature(seed=2))
    X = [(a, path), (Image.fromarray(a), str(path))]
    out = prep().transform(X)
    assert out.shape == (2, 2) + CANVAS
    np.testing.assert_array_equal(out[0], out[1])


def test_array_forms_agree():
    images = [fake_signature(seed=s) for s in range(4)]
    single = prep().transform(images)
    np.testing.assert_array_equal(prep().transform(np.stack(images)), single)  # (n, H, W)
    pairs = prep().transform(np.stack(images).reshape(2, 2, 90, 220))  # (n, 2, H, W)
    np.testing.assert_array_equal(pairs, single.reshape(2, 2, *CANVAS))
    objects = np.empty((2, 2), dtype=object)  # (n, 2) object array of 2-D arrays
    objects[0, 0], objects[0, 1], objects[1, 0], objects[1, 1] = images
    np.testing.assert_array_equal(prep().transform(objects), pairs)


def test_items_of_different_sizes():
    X = [fake_signature(), fake_signature(height=50, width=300), np.zeros((7, 9, 3), float) + 1]
    with pytest.warns(BlankImageWarning, match="image 2"):
        assert prep().transform(X).shape == (3,) + CANVAS
    ragged_pairs = [(fake_signature(), fake_signature(height=50, width=300))]
    assert prep().transform(ragged_pairs).shape == (1, 2) + CANVAS


def test_dataframe_of_paths(tmp_path):
    pd = pytest.importorskip("pandas")
    a = save(tmp_path, "a.png", fake_signature(seed=1))
    b = save(tmp_path, "b.png", fake_signature())
    frame = pd.DataFrame({"left": [str(a), str(b)], "right": [str(b), str(b)]})
    out = prep().transform(frame)
    np.testing.assert_array_equal(out, prep().transform([[a, b], [b, b]]))
    assert prep().transform(frame["left"]).shape == (2,) + CANVAS
    with pytest.raises(ValueError, match="2 columns"):
        prep().transform(frame.assign(extra=frame["left"]))


@pytest.mark.parametrize(
    "X, error, message",
    [
        ("a.png", TypeError, "single path 'a.png'; wrap it in a list"),
        ([], ValueError, "no images"),
        (np.zeros((3, 3), dtype=object), ValueError, r"shape \(3, 3\); expected \(n_pairs, 2\)"),
        ([("a", "b", "c")], ValueError, r"X\[0\] has 3; expected X of shape \(n_pairs, 2\)"),
        ([("a", "b"), "c"], ValueError, r"mixes pairs and single images: X\[0\] is a pair"),
        (np.zeros((20, 30), dtype=np.uint8), ValueError, r"numeric array of shape \(20, 30\)"),
        (np.zeros((2, 3, 20, 30)), ValueError, r"shape \(2, 3, 20, 30\); expected a batch"),
        (np.zeros((20, 30, 3)), ValueError, r"\(20, 30, 3\): one image with channels"),
        ({"a": 1}, TypeError, "got dict"),
    ],
    ids=["str", "empty", "n-by-3", "3-tuple", "mixed", "2-D numeric", "4-D not pairs",
         "one RGB image", "dict"],
)
def test_bad_containers(X, error, message):
    with pytest.raises(error, match=message):
        prep().transform(X)


def test_errors_name_the_pair_and_position(tmp_path):
    good = save(tmp_path, "good.png", fake_signature())
    X = [[good, good], [good, tmp_path / "missing.png"]]
    with pytest.raises(FileNotFoundError, match=r"^pair 1, second image \(path '.*missing\.png'\)"):
        prep().transform(X)
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageLoadError, match=r"^image 1 \(path '.*text\.png'\): not an image"):
        prep().transform([good, tmp_path / "text.png"])
    with pytest.raises(TypeError, match=r"^pair 0, first image \(object of type int\)"):
        prep().transform([(3, good)])
    with pytest.raises(ValueError, match=r"^image 1 \(array of shape \(4, 4\), dtype float64\)"):
        prep().transform([fake_signature(), np.full((4, 4), 2.0)])


def test_errors_name_the_item_with_parallel_jobs(tmp_path):
    X = [fake_signature(), fake_signature(seed=1), tmp_path / "missing.png"]
    with pytest.raises(FileNotFoundError, match=r"image 2 \(path '.*missing\.png'\)"):
        prep(n_jobs=2).transform(X)


def test_input_is_not_modified():
    scan = fake_signature()
    before = scan.copy()
    prep(flatten_background=True).transform([scan])
    np.testing.assert_array_equal(scan, before)


# --- determinism, deduplication, parallelism -------------------------------------------


GOLDEN_DIGESTS = {
    "default": "8be19b7439a1161e18b3ff99573a1c55c66580ea517b28fd414269d18728dbde",
    "flatten-equalize": "93e104858208383b1a1fdd9a3b21d02e30d8f147b81f1e81af8d61be88d82873",
}


@pytest.mark.parametrize(
    "name, params",
    [
        ("default", {}),
        ("flatten-equalize",
         {"flatten_background": True, "ink_contrast": "equalize", "canvas_size": (50, 70)}),
    ],
)
def test_golden_output_digest(name, params):
    # Pins the exact bytes: a change means the preprocessing (or Pillow's resampling)
    # changed, which invalidates stored models; update the digest deliberately.
    images = [
        fake_signature(seed=0),
        fake_signature(paper=245, ink=90, seed=1, noise=4),
        np.stack([fake_signature(height=60, width=150, seed=2)] * 3, axis=-1),
    ]
    out = SignaturePreprocessor(**params).transform(images)
    digest = hashlib.sha256(out.tobytes()).hexdigest()
    assert digest == GOLDEN_DIGESTS[name], f"digest {digest} (Pillow {PIL.__version__})"


def test_n_jobs_gives_the_same_bytes(tmp_path):
    paths = [save(tmp_path, f"{i}.png", fake_signature(seed=i, noise=2)) for i in range(6)]
    X = np.array(paths, dtype=object).reshape(3, 2)
    serial = prep(n_jobs=1).transform(X)
    np.testing.assert_array_equal(prep(n_jobs=2).transform(X), serial)
    np.testing.assert_array_equal(prep().transform(X), serial)  # and repeatable


def test_each_distinct_item_is_loaded_once(tmp_path, monkeypatch):
    a = save(tmp_path, "a.png", fake_signature(seed=1))
    b = save(tmp_path, "b.png", fake_signature(seed=2))
    image = Image.fromarray(fake_signature(seed=3))
    loaded = []
    original = preprocessing.load_grayscale

    def counting_loader(item, **kwargs):
        loaded.append(item)
        return original(item, **kwargs)

    monkeypatch.setattr(preprocessing, "load_grayscale", counting_loader)
    # the same file under three spellings, and the same PIL image object twice
    X = [[a, str(b)], [str(a), image], [b, tmp_path / "." / "a.png"], [image, a]]
    out = prep(compact_pairs=False).transform(X)
    assert len(loaded) == 3
    np.testing.assert_array_equal(out[0, 0], out[1, 0])
    np.testing.assert_array_equal(out[1, 1], out[3, 0])
    out[0, 0, 0, 0] = 7  # duplicates are copies, not views of one canvas
    assert out[1, 0, 0, 0] == 0


# --- scikit-learn API ------------------------------------------------------------


def test_fit_returns_self_and_transform_needs_no_fit():
    est = prep()
    assert est.fit(None) is est
    np.testing.assert_array_equal(
        prep().transform([fake_signature()]), est.fit_transform([fake_signature()])
    )


def test_clone_get_set_params_and_pickle():
    est = SignaturePreprocessor(canvas_size=(10, 20), ink_contrast="keep", n_jobs=2)
    params = est.get_params()
    assert params["canvas_size"] == (10, 20) and params["ink_contrast"] == "keep"
    assert clone(est).get_params() == params
    assert est.set_params(blur_radius=0.5).blur_radius == 0.5
    restored = pickle.loads(pickle.dumps(est))
    assert restored.get_params() == est.get_params()


def test_in_a_pipeline():
    pipe = Pipeline([("prep", prep())])
    X = [fake_signature(), fake_signature(seed=1)]
    np.testing.assert_array_equal(pipe.fit_transform(X), prep().transform(X))
    np.testing.assert_array_equal(pipe.transform(X), prep().transform(X))
    pipe.set_params(prep__canvas_size=(20, 30))
    assert pipe.fit_transform(X).shape == (2, 20, 30)


def test_tags_declare_non_tabular_stateless_input():
    tags = get_tags(prep())
    assert tags.input_tags.two_d_array is False and tags.input_tags.string is True
    assert tags.requires_fit is False
    assert tags.transformer_tags.preserves_dtype == []


@pytest.mark.parametrize(
    "params",
    [
        {"canvas_size": (0, 10)},
        {"canvas_size": (10,)},
        {"canvas_size": (10.5, 10)},
        {"canvas_size": "big"},
        {"blur_radius": -1},
        {"ink_contrast": "loud"},
        {"on_blank": "cry"},
        {"min_ink_contrast": 300},
        {"max_pixels": 0},
        {"n_jobs": "two"},
    ],
)
def test_invalid_parameters_are_refused_in_fit_and_transform(params):
    for method in ("fit", "transform"):
        with pytest.raises((ValueError, InvalidParameterError), match=next(iter(params))):
            getattr(SignaturePreprocessor(**params), method)([fake_signature()])


def test_modules_never_import_torch():
    root = Path(preprocessing.__file__).parent
    for name in ("preprocessing.py", "_image.py"):
        tree = ast.parse((root / name).read_text())
        imported = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for a in node.names]
        imported += [node.module or "" for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)]
        assert not any(m.split(".")[0] == "torch" for m in imported), name


@pytest.mark.parametrize(
    "check",
    [
        "check_no_attributes_set_in_init",
        "check_parameters_default_constructible",
        "check_get_params_invariance",
        "check_set_params",
        "check_estimator_repr",
        "check_do_not_raise_errors_in_init_or_set_params",
        "check_estimator_cloneable",
        "check_valid_tag_types",
        "check_mixin_order",
    ],
)
def test_sklearn_api_checks_that_need_no_tabular_data(check):
    # check_estimator skips the rest: it can only generate tabular data.
    from sklearn.utils import estimator_checks

    getattr(estimator_checks, check)("SignaturePreprocessor", SignaturePreprocessor())
