"""Loading, validating and fetching data sets; every refusal names what is wrong and where."""
import os
import urllib.request

import numpy as np
import pytest

import data
from conftest import random_binary, real_data_dir, write_npz


def splits_with(split, array, width=6):
    arrays = {s: random_binary((8, width), seed=i) for i, s in enumerate(data.SPLITS)}
    arrays[split] = array
    return arrays


def test_valid_file_loads_as_float32(small_npz):
    splits = data.load(small_npz)
    assert set(splits) == {"train", "valid", "test"}
    assert all(a.dtype == np.float32 and a.shape[1] == 6 for a in splits.values())


@pytest.mark.parametrize("bad_value", [0.5, 2.0, -1.0, np.nan, np.inf])
def test_bad_values_are_named_by_split_row_and_column(tmp_path, bad_value):
    valid = random_binary((8, 6))
    valid[5, 3] = bad_value
    path = write_npz(tmp_path / "bad.npz", **{f"{s}": a for s, a in splits_with("valid", valid).items()})
    with pytest.raises(data.DataError) as error:
        data.load(path)
    message = str(error.value)
    assert "bad.npz" in message and "'valid'" in message and "row 5 column 3" in message


@pytest.mark.parametrize("array,complaint", [(np.ones(6), "1 dimensions"), (np.ones((2, 3, 6)), "3 dimensions"),
                                             (np.zeros((0, 6)), "empty"), (np.array([["a", "b"]]), "dtype")])
def test_bad_shapes_are_refused(tmp_path, array, complaint):
    path = write_npz(tmp_path / "shape.npz", **splits_with("test", array))
    with pytest.raises(data.DataError, match=complaint):
        data.load(path)


def test_different_widths_are_refused(tmp_path):
    path = write_npz(tmp_path / "widths.npz", **splits_with("test", random_binary((8, 5))))
    with pytest.raises(data.DataError, match="different widths"):
        data.load(path)


def test_missing_keys_corrupt_files_and_pickles_are_refused(tmp_path):
    np.savez(tmp_path / "keys.npz", train_data=random_binary((3, 4)))
    with pytest.raises(data.DataError, match="valid_data, test_data"):
        data.load(str(tmp_path / "keys.npz"))
    good = write_npz(tmp_path / "good.npz", *[random_binary((30, 4))] * 3)
    (tmp_path / "cut.npz").write_bytes(open(good, "rb").read()[:300])
    with pytest.raises(data.DataError, match="corrupt"):
        data.load(str(tmp_path / "cut.npz"))
    np.savez(tmp_path / "objects.npz", train_data=np.array([{"x": 1}], dtype=object),
             valid_data=np.zeros((1, 1)), test_data=np.zeros((1, 1)))
    with pytest.raises(data.DataError, match="pickles"):
        data.load(str(tmp_path / "objects.npz"))


def write_amat(tmp_path, rows_by_split):
    for split, rows in rows_by_split.items():
        (tmp_path / f"mine_{split}.amat").write_text("".join(" ".join(r) + "\n" for r in rows))
    return str(tmp_path / "mine_train.amat")


def test_amat_files_load_together(tmp_path):
    path = write_amat(tmp_path, {s: [["0", "1", "1"], ["1", "0", "0"]] for s in data.SPLITS})
    splits = data.load(path)
    np.testing.assert_array_equal(splits["test"], [[0, 1, 1], [1, 0, 0]])


def test_amat_bad_lines_are_named(tmp_path):
    rows = {s: [["0", "1", "1"], ["1", "0", "0"]] for s in data.SPLITS}
    rows["valid"] = [["0", "1", "1"], ["1", "0"]]
    with pytest.raises(data.DataError, match=r"mine_valid.amat: line 2 has 2 values, line 1 has 3"):
        data.load(write_amat(tmp_path, rows))
    rows["valid"] = [["0", "1", "1"], ["1", "x", "0"]]
    with pytest.raises(data.DataError, match=r"mine_valid.amat: line 2 column 2 is 'x'"):
        data.load(write_amat(tmp_path, rows))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(data.DataError, match="binarized_mnist"):
        data.load("no_such_set")


def test_download_failure_names_the_url_and_leaves_no_file(tmp_path, monkeypatch):
    def refuse(url, timeout):
        raise OSError("network unreachable")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(data.DataError, match="mgermain/MADE.*dna.npz.*by hand"):
        data.load("dna", directory=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_a_download_that_is_not_the_data_set_is_removed(tmp_path, monkeypatch, small_npz):
    payload = open(small_npz, "rb").read()

    class Response:
        headers = {"Content-Length": str(len(payload))}

        def read(self):
            return payload

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response())
    cache = tmp_path / "cache"
    with pytest.raises(data.DataError, match="fingerprint"):
        data.load("dna", directory=str(cache))
    assert os.listdir(cache) == []


def test_a_cached_file_that_changed_is_reported(tmp_path):
    source = data.read_npz_splits(os.path.join(real_data_dir("dna"), "dna.npz"))
    source["test"][0, 0] = 1 - source["test"][0, 0]
    write_npz(tmp_path / "dna.npz", source["train"], source["valid"], source["test"])
    with pytest.raises(data.DataError, match="'test' does not match its published fingerprint"):
        data.load("dna", directory=str(tmp_path))


def test_the_fingerprint_is_of_the_rows_not_their_order():
    rows = random_binary((50, 13), seed=4)  # 13 columns: the packed rows end in a padded byte
    shuffled = rows[np.random.default_rng(0).permutation(50)]
    assert data.fingerprint(shuffled) == data.fingerprint(rows)
    for row, column in ((0, 0), (49, 12), (17, 8)):  # every bit counts, the last column's included
        flipped = rows.copy()
        flipped[row, column] = 1 - flipped[row, column]
        assert data.fingerprint(flipped) != data.fingerprint(rows)
    assert data.fingerprint(rows[:49]) != data.fingerprint(rows)  # a row fewer
    assert data.fingerprint(np.vstack([rows, rows[:1]])) != data.fingerprint(rows)  # a row twice


# Each verified set's fingerprints, as DATA.md describes them (order-free).
SHARED_README_FINGERPRINTS = {
    "binarized_mnist": ("aae6de292e6b68d8", "d10b4edf2e076569", "87ff96664646cc41"),
    "dna": ("46918e88b24d5ddd", "1f67d901fdc3ce6d", "bb7d0812242a73e0"),
    "mushrooms": ("5f4228c538defab3", "da85fbc4cafc6272", "a71e27a4fb68c6b0"),
    "nips": ("d4b4c83be88ae8c6", "fd71de12e627994c", "5d0ee2e65ce1fc8c"),
    "adult": ("05a2f2360f58bc94", "089d992826f3d2b3", "da8f06c5dd0926c5"),
    "connect4": ("a0b72dd7af70828c", "f8532cade072a975", "e6529c6497b4e868"),
    "ocr_letters": ("e918519b67bd2664", "5bb2aafc08bdb335", "4e8b68ccef3e2844"),
}


def test_seven_sets_are_verified_by_one_rule():
    assert data.VERIFIED == tuple(SHARED_README_FINGERPRINTS)
    for name, expected in SHARED_README_FINGERPRINTS.items():
        assert tuple(data.DATASETS[name][1][split] for split in data.SPLITS) == expected
    assert data.DATASETS["web"][1] is None and data.DATASETS["rcv1"][1] is None


@pytest.mark.parametrize("name,shape", [("binarized_mnist", (50000, 784)), ("dna", (1400, 180)),
                                        ("mushrooms", (2000, 112)), ("nips", (400, 500)), ("adult", (5000, 123)),
                                        ("connect4", (16000, 126)), ("ocr_letters", (32152, 128))])
def test_real_data_sets_load_and_verify(name, shape):
    splits = data.load(name, real_data_dir(name))
    assert splits["train"].shape == shape
    assert all(data.fingerprint(splits[split]) == data.DATASETS[name][1][split] for split in data.SPLITS)


@pytest.mark.parametrize("name", ["adult", "connect4", "ocr_letters"])
def test_a_copy_in_another_row_order_passes_and_one_bit_changed_is_refused(tmp_path, name):
    source = data.read_npz_splits(os.path.join(real_data_dir(name), name + ".npz"))
    rng = np.random.default_rng(0)
    reordered = {split: rows[rng.permutation(len(rows))] for split, rows in source.items()}
    write_npz(tmp_path / f"{name}.npz", reordered["train"], reordered["valid"], reordered["test"])
    assert data.load(name, directory=str(tmp_path))["test"].shape == source["test"].shape
    for split in data.SPLITS:
        changed = dict(reordered)
        changed[split] = reordered[split].copy()
        changed[split][3, 5] = 1 - changed[split][3, 5]
        write_npz(tmp_path / f"{name}.npz", changed["train"], changed["valid"], changed["test"])
        with pytest.raises(data.DataError) as error:
            data.load(name, directory=str(tmp_path))
        message = str(error.value)
        assert "\n" not in message and f"{name}.npz" in message and f"split '{split}'" in message
