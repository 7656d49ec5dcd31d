"""Tests of skseg.datasets: folder loaders, make_pairs and load_pairs_csv."""

import os
from collections import Counter
from math import comb
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold

from skseg.datasets import (
    LAYOUTS,
    load_pairs_csv,
    load_signatures,
    make_pairs,
    make_synthetic_signatures,
)

# Real data sets live beside the clone (<clone>/../shared/data), or where
# SKSEG_DATA points; the tests that read them skip when they are absent.
DATA = Path(os.environ.get("SKSEG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


# --------------------------------------------------------------------------
# load_signatures: one fake tree per layout


def test_cedar_layout(tmp_path):
    for w in (1, 2, 10):
        touch(tmp_path, *[f"full_org/original_{w}_{n}.png" for n in (1, 2, 10)])
        touch(tmp_path, *[f"full_forg/forgeries_{w}_{n}.png" for n in (1, 2)])
    touch(tmp_path, "full_org/Thumbs.db", "full_org/.DS_Store", "full_forg/._forgeries_1_9.png")
    data = load_signatures(tmp_path)
    assert data.layout == "cedar"
    assert Counter(data.writer) == {"1": 5, "2": 5, "10": 5}
    assert data.genuine.sum() == 9 and (~data.genuine).sum() == 6
    # Writers in natural order, genuine before forged, files in natural order.
    assert list(data.writer[:5]) == ["1"] * 5 and list(data.writer[-5:]) == ["10"] * 5
    names = [Path(p).name for p in data.paths[:5]]
    assert names == ["original_1_1.png", "original_1_2.png", "original_1_10.png",
                     "forgeries_1_1.png", "forgeries_1_2.png"]
    assert data.paths.dtype.kind == "U" and data.genuine.dtype == bool
    assert all(Path(p).is_file() for p in data.paths)


def test_cedar_layout_inside_one_folder(tmp_path):
    # The Kaggle copy of CEDAR puts full_org/ and full_forg/ under signatures/.
    touch(tmp_path, "signatures/full_org/original_3_1.PNG",
          "signatures/full_forg/forgeries_3_1.png")
    data = load_signatures(tmp_path)
    assert data.layout == "cedar"
    assert list(data.writer) == ["3", "3"] and list(data.genuine) == [True, False]


def test_kaggle_layout_under_train_ignores_test_folder(tmp_path):
    touch(tmp_path, "train/001/001_01.PNG", "train/001/001_02.png",
          "train/001_forg/0119001_01.png", "train/002/002_01.JPG",
          "train/002_forg/01_0113002.jpeg", "train_data.csv",
          # The Kaggle test/ folder repeats train writers: it is not read.
          "test/002/002_01.JPG", "test/002_forg/01_0113002.jpeg")
    with pytest.warns(UserWarning, match="2 image files .* 'kaggle'.*test/002"):
        data = load_signatures(tmp_path)
    assert data.layout == "kaggle"
    assert list(data.writer) == ["001", "001", "001", "002", "002"]
    assert list(data.genuine) == [True, True, False, True, False]
    assert all("train" in Path(p).parts for p in data.paths)
    # Pointing at train/ itself gives the same images.
    assert list(load_signatures(tmp_path / "train").paths) == list(data.paths)


def test_bhsig_layout_keeps_scripts_apart(tmp_path):
    for script, folder in (("H", "Hindi"), ("B", "Bengali")):
        for w in (1, 2):
            touch(tmp_path, *[f"{folder}/{w:03d}/{script}-S-{w}-G-{n:02d}.tif" for n in (1, 2)])
            touch(tmp_path, f"{folder}/{w:03d}/{script}-S-{w}-F-01.TIF")
    data = load_signatures(tmp_path)
    assert data.layout == "bhsig"
    assert Counter(data.writer) == {"B-S-1": 3, "B-S-2": 3, "H-S-1": 3, "H-S-2": 3}
    assert data.genuine.sum() == 8
    for path, genuine in zip(data.paths, data.genuine):
        assert ("-G-" in Path(path).name) == genuine


def test_generic_layout(tmp_path):
    touch(tmp_path, "alice/genuine/a.png", "alice/genuine/b.bmp", "alice/forged/c.tiff",
          "bob/Genuine/a.jpg", "bob/genuine/b.jpg", "bob/forged/notes.txt")
    data = load_signatures(tmp_path)
    assert data.layout == "generic"
    assert list(data.writer) == ["alice"] * 3 + ["bob"] * 2
    assert list(data.genuine) == [True, True, False, True, True]


def test_explicit_layout_and_errors(tmp_path):
    touch(tmp_path, "001/a.png", "001_forg/b.png")
    assert load_signatures(tmp_path, layout="kaggle").layout == "kaggle"
    with pytest.raises(ValueError, match=r"(?s)'cedar' layout.*Accepted layouts") as err:
        load_signatures(tmp_path, layout="cedar")
    assert str(tmp_path) in str(err.value)
    with pytest.raises(ValueError, match="Unknown layout 'sigcomp'.*'bhsig'") as err:
        load_signatures(tmp_path, layout="sigcomp")
    assert str(tmp_path) in str(err.value)


def test_folder_matching_no_layout(tmp_path):
    touch(tmp_path, "misc/a.png", "b.png", "readme.txt")
    with pytest.raises(ValueError, match="(?s)No signature images.*'cedar'.*'generic'"):
        load_signatures(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="0 image files"):
        load_signatures(tmp_path / "empty")


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*does not exist"):
        load_signatures(tmp_path / "nowhere")
    touch(tmp_path, "file.png")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_signatures(tmp_path / "file.png")


@pytest.mark.skipif(not (DATA / "cedar").is_dir(), reason="CEDAR data not available")
def test_real_cedar():
    data = load_signatures(DATA / "cedar")
    assert data.layout == "cedar"
    assert len(np.unique(data.writer)) == 55
    assert data.genuine.sum() == 1320 and (~data.genuine).sum() == 1320


@pytest.mark.skipif(not (DATA / "sigcomp2011_dutch").is_dir(),
                    reason="SigComp 2011 Dutch data not available")
def test_real_sigcomp_dutch():
    data = load_signatures(DATA / "sigcomp2011_dutch")
    assert data.layout == "kaggle"
    assert len(np.unique(data.writer)) == 64 and len(data.paths) == 1649
    pairs, y, groups = load_pairs_csv(DATA / "sigcomp2011_dutch" / "train_data.csv",
                                      forged_label=1)
    assert pairs.shape == (23206, 2) and y.sum() == 12602
    assert set(groups) == set(data.writer)
    # Every forged pair's questioned image is in a forgery folder of that writer.
    assert all(Path(q).parent.name == g + "_forg" for q, g in zip(pairs[y == 0, 1], groups[y == 0]))


# --------------------------------------------------------------------------
# make_pairs


@pytest.fixture(scope="module")
def small_data():
    # Writers with different numbers of genuine and forged images.
    writer = np.array(["a"] * 5 + ["b"] * 7 + ["c"] * 3)
    genuine = np.array([1, 1, 1, 1, 0] + [1, 1, 1, 0, 0, 0, 0] + [1, 1, 0], dtype=bool)
    paths = np.array([f"{w}_{i}.png" for i, w in enumerate(writer)])
    return dict(paths=paths, writer=writer, genuine=genuine)


def test_make_pairs_protocol(small_data):
    pairs, y, groups, kind = make_pairs(small_data, random_forgeries=1.0,
                                        return_kind=True, random_state=0)
    path_writer = dict(zip(small_data["paths"], small_data["writer"]))
    path_genuine = dict(zip(small_data["paths"], small_data["genuine"]))
    n_genuine = {"a": 4, "b": 3, "c": 2}
    n_forged = {"a": 1, "b": 4, "c": 1}
    for w in "abc":
        mine = groups == w
        counts = Counter(kind[mine])
        assert counts["genuine"] == comb(n_genuine[w], 2)
        # Balanced with genuine pairs, unless there are too few combinations.
        assert counts["skilled"] == min(comb(n_genuine[w], 2), n_genuine[w] * n_forged[w])
        assert counts["random"] == comb(n_genuine[w], 2)
    assert pairs.dtype == object and pairs.shape == (len(y), 2)
    assert list(y) == list((kind == "genuine").astype(int))
    assert len({tuple(p) for p in pairs}) == len(pairs)  # no repeated pair
    for (ref, question), k, g in zip(pairs, kind, groups):
        assert path_genuine[ref] and path_writer[ref] == g  # reference: genuine
        if k == "genuine":
            assert path_genuine[question] and path_writer[question] == g and ref < question
        elif k == "skilled":
            assert not path_genuine[question] and path_writer[question] == g
        else:
            assert path_genuine[question] and path_writer[question] != g
    assert type(pairs[0, 0]) is str


def test_make_pairs_default_is_balanced_and_deterministic(small_data):
    pairs, y, groups = make_pairs(small_data, random_state=1)
    assert set(np.unique(y)) == {0, 1}
    again = make_pairs(small_data, random_state=1)
    assert (again[0] == pairs).all() and (again[1] == y).all() and (again[2] == groups).all()
    rng = np.random.RandomState(1)
    assert (make_pairs(small_data, random_state=rng)[0] == pairs).all()
    other = [make_pairs(small_data, random_state=s)[0] for s in range(2, 8)]
    assert any(o.shape != pairs.shape or (o != pairs).any() for o in other)


def test_make_pairs_ratio_and_cap(small_data):
    _, y, groups = make_pairs(small_data, n_forgeries_per_genuine_pair=0.5, random_state=0)
    assert ((y == 0) & (groups == "a")).sum() == 3  # round(0.5 * 6)
    _, y, groups, kind = make_pairs(small_data, random_forgeries=2.0, max_pairs_per_writer=6,
                                    return_kind=True, random_state=0)
    assert max(Counter(groups).values()) <= 6
    assert Counter(kind[groups == "a"]) == {"genuine": 1, "skilled": 1, "random": 3}
    _, y, _ = make_pairs(small_data, n_forgeries_per_genuine_pair=0, random_state=0)
    assert (y == 1).all()


def test_make_pairs_synthetic_images_keep_identity():
    data = make_synthetic_signatures(n_writers=2, n_genuine=3, n_forgeries=2, random_state=0)
    pairs, y, groups = make_pairs(data, random_state=0)
    assert pairs.shape == (12, 2) and pairs.dtype == object
    assert all(isinstance(item, np.ndarray) and item.ndim == 2 for item in pairs.ravel())
    ids = {id(im) for im in data.images}
    assert all(id(item) in ids for item in pairs.ravel())
    assert pairs[0, 0] is pairs[1, 0]  # the same reference, the same object
    # Ready for writer-independent cross-validation.
    for train, test in GroupKFold(2).split(pairs, y, groups):
        assert not set(groups[train]) & set(groups[test])


def test_make_pairs_errors(small_data):
    with pytest.raises(ValueError, match="no paths or images"):
        make_pairs({"writer": small_data["writer"], "genuine": small_data["genuine"]})
    with pytest.raises(ValueError, match="same length"):
        make_pairs(dict(small_data, writer=small_data["writer"][:-1]))
    with pytest.raises(ValueError, match="no writer has two genuine"):
        make_pairs(dict(small_data, genuine=np.zeros(15, dtype=bool)))
    with pytest.raises(ValueError, match="random_forgeries"):
        make_pairs(small_data, random_forgeries=-1)
    with pytest.raises(ValueError, match="max_pairs_per_writer"):
        make_pairs(small_data, max_pairs_per_writer=0)
    with pytest.raises(ValueError, match="random_state"):
        make_pairs(small_data, random_state="seed")


# --------------------------------------------------------------------------
# load_pairs_csv


@pytest.fixture
def kaggle_csv(tmp_path):
    touch(tmp_path, "train/001/a.png", "train/001/b.png", "train/001_forg/c.png",
          "train/002/d.png", "train/002_forg/e.png")
    csv_path = tmp_path / "train_data.csv"
    csv_path.write_text("001/a.png,001/b.png,0\n001/a.png,001_forg/c.png,1\n"
                        "\n002/d.png,002_forg/e.png,1\n")
    return csv_path


def test_load_pairs_csv_kaggle(kaggle_csv):
    pairs, y, groups = load_pairs_csv(kaggle_csv, forged_label=1)
    # Paths resolve under train/ next to the CSV; labels flip to 1 = genuine.
    assert pairs.dtype == object and pairs.shape == (3, 2)
    assert pairs[0, 0] == str(kaggle_csv.parent / "train" / "001/a.png")
    assert list(y) == [1, 0, 0] and list(groups) == ["001", "001", "002"]
    # forged_label=0 reads the opposite convention.
    assert list(load_pairs_csv(kaggle_csv, forged_label=0)[1]) == [0, 1, 1]
    # An explicit root, no groups, or a callable for them.
    pairs, y, groups = load_pairs_csv(kaggle_csv, forged_label=1,
                                      root=kaggle_csv.parent / "train", groups=None)
    assert groups is None and Path(pairs[2, 1]).is_file()
    _, _, groups = load_pairs_csv(kaggle_csv, forged_label=1, groups=lambda p: p[:3] + "!")
    assert list(groups) == ["001!", "001!", "002!"]


def test_load_pairs_csv_header(tmp_path, kaggle_csv):
    body = kaggle_csv.read_text()
    with_header = tmp_path / "with_header.csv"
    with_header.write_text("image_1,image_2,label\n" + body)
    for header in ("infer", 0):
        _, y, _ = load_pairs_csv(with_header, forged_label=1, root=tmp_path / "train",
                                 header=header)
        assert list(y) == [1, 0, 0]
    with pytest.raises(ValueError, match="line 1: label 'label' is not 0 or 1"):
        load_pairs_csv(with_header, forged_label=1, root=tmp_path / "train", header=None)


@pytest.mark.parametrize("row, message", [
    ("001/a.png,001/b.png,2", r"line 3: label '2' is not 0 or 1"),
    ("001/a.png,001/b.png", r"line 3: expected 3 columns .* got 2"),
    ("001/a.png,001/b.png,0,extra", r"line 3: expected 3 columns .* got 4"),
])
def test_load_pairs_csv_bad_rows(tmp_path, kaggle_csv, row, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("001/a.png,001/b.png,0\n001/a.png,001_forg/c.png,1\n" + row + "\n")
    with pytest.raises(ValueError, match=message):
        load_pairs_csv(bad, forged_label=1)


def test_load_pairs_csv_missing_files(tmp_path, kaggle_csv):
    bad = tmp_path / "missing.csv"
    bad.write_text("001/a.png,001/b.png,0\n001/a.png,001_forg/zz.png,1\n"
                   "009/x.png,001/b.png,0\n")
    with pytest.raises(FileNotFoundError,
                       match=r"2 image paths .* First: line 2: .*zz\.png; line 3: .*x\.png"):
        load_pairs_csv(bad, forged_label=1)
    # check_files=False trusts the list.
    assert load_pairs_csv(bad, forged_label=1, check_files=False)[0].shape == (3, 2)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_pairs_csv(tmp_path / "nope.csv", forged_label=1)


def test_load_pairs_csv_argument_errors(tmp_path, kaggle_csv):
    with pytest.raises(TypeError, match="forged_label"):
        load_pairs_csv(kaggle_csv)
    with pytest.raises(ValueError, match="forged_label"):
        load_pairs_csv(kaggle_csv, forged_label=2)
    flat = tmp_path / "flat.csv"
    touch(tmp_path, "a.png", "b.png")
    flat.write_text("a.png,b.png,0\n")
    with pytest.raises(ValueError, match="line 1: cannot tell the writer of 'a.png'"):
        load_pairs_csv(flat, forged_label=1)
    assert load_pairs_csv(flat, forged_label=1, groups=None)[2] is None


def test_layouts_constant():
    assert LAYOUTS == ("cedar", "kaggle", "bhsig", "generic")
