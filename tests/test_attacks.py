"""Faults a fifth search found, as a new user meets them: each is now refused in one line, or works
as promised, and loses nothing."""
import importlib.util
import json
import os

import numpy as np
import pytest

import bench
import evaluate
import files
import optim
import sample as sampling
import train
from ancestral import complete, sample_mixture
from conftest import ROOT, one_line, random_binary, run_cli, tiny_splits, write_npz
from made import MADE


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "experiments", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny(tmp_path):
    return write_npz(tmp_path / "tiny.npz", *tiny_splits())


def test_bench_json_never_replaces_the_data_set_it_reads(tmp_path, monkeypatch, capsys):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    mnist = data_dir / "binarized_mnist.npz"
    mnist.write_bytes(b"the user's copy of the data")
    monkeypatch.setenv("MADE_DATA_DIR", str(data_dir))
    assert bench.main(["--json", str(mnist)]) == 2
    one_line(capsys.readouterr().err, "--json", "the data set", "which this command reads")
    assert mnist.read_bytes() == b"the user's copy of the data"


def search_row(tmp_path, monkeypatch):
    search = load("search")
    path = write_npz(tmp_path / "tiny.npz", *tiny_splits(0, 10))
    monkeypatch.setattr(search, "ROOT", str(tmp_path))
    monkeypatch.setattr(search, "ROWS", {"tiny": (path, [{"optimizer": ["adam3"], "hidden": ["8", "9"], "epochs": ["2"]}])})
    return search


def test_a_second_search_of_a_row_is_refused_while_the_first_runs(tmp_path, monkeypatch, capsys):
    search = search_row(tmp_path, monkeypatch)
    with files.exclusive(str(tmp_path / "runs" / "search" / "tiny.lock"), "held"):
        assert search.main(["tiny"]) == 2
    one_line(capsys.readouterr().err, "another search.py is searching this row")
    assert not (tmp_path / "results" / "search" / "tiny.json").exists()


def test_a_point_recorded_as_failed_is_measured_again_and_the_best_chosen(tmp_path, monkeypatch, capsys):
    search = search_row(tmp_path, monkeypatch)
    summary = tmp_path / "results" / "search" / "tiny.json"
    summary.parent.mkdir(parents=True)
    flags = [search.flags_of(search.ROWS["tiny"][0], {"epochs": "2", "hidden": h, "optimizer": "adam3"}) for h in ("8", "9")]
    summary.write_text(json.dumps({"configurations": [{"name": "x", "flags": f, "error": 2} for f in flags]}))
    assert search.main(["tiny"]) == 0
    record = json.loads(summary.read_text())
    assert all("valid_nll" in entry for entry in record["configurations"]) and record["chosen"]
    capsys.readouterr()


def test_ctrl_c_stops_a_search_with_status_130_and_records_no_failure(tmp_path, monkeypatch, capsys):
    """train.py stops its run at a safe point and returns 130: the search stops there too, instead of
    recording the point as failed and going on; a Ctrl-C between runs stops it as well."""
    search = search_row(tmp_path, monkeypatch)
    monkeypatch.setattr(search.train, "main", lambda argv: 130)
    assert search.main(["tiny"]) == 130
    assert "the same command resumes it" in capsys.readouterr().err
    assert not (tmp_path / "results" / "search" / "tiny.json").exists()

    def ctrl_c(argv):
        raise KeyboardInterrupt
    monkeypatch.setattr(search.train, "main", ctrl_c)
    assert search.main(["tiny"]) == 130
    one_line(capsys.readouterr().err, "search.py: interrupted")


def test_a_search_where_every_point_fails_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    search = search_row(tmp_path, monkeypatch)
    monkeypatch.setattr(search.train, "main", lambda argv: 2)
    assert search.main(["tiny"]) == 2
    one_line(capsys.readouterr().err, "no configuration finished")


def test_best_refuses_a_damaged_search_record_and_table_a_damaged_result(tmp_path, monkeypatch, capsys):
    best = load("best")
    monkeypatch.setattr(best, "ROOT", str(tmp_path))
    (tmp_path / "results" / "search").mkdir(parents=True)
    (tmp_path / "results" / "search" / "dna_masks.json").write_text('{"row": "dna_masks", "configur')
    assert best.main(["dna"]) == 2
    one_line(capsys.readouterr().err, "dna_masks.json", "damaged")
    table = load("table")
    monkeypatch.setattr(table, "ROOT", str(tmp_path))
    (tmp_path / "results" / "dna_1mask").mkdir()
    (tmp_path / "results" / "dna_1mask" / "metrics.json").write_text('{"test_nll": 84.0')
    assert table.main([]) == 2
    one_line(capsys.readouterr().err, "dna_1mask", "not a readable record")


def test_a_mixture_is_evaluated_and_sampled_once_its_data_moved(tmp_path, capsys):
    path = write_npz(tmp_path / "tiny.npz", *tiny_splits())
    folders = [tmp_path / name for name in ("a", "b")]
    for seed, folder in enumerate(folders):
        assert train.main(["--dataset", path, "--hidden", "8", "--epochs", "1", "--seed", str(seed),
                           "--out", str(folder)]) == 0
    moved = tmp_path / "moved.npz"
    os.rename(path, moved)
    assert evaluate.main([str(f) for f in folders]) == 2
    one_line(capsys.readouterr().err, "--dataset NEW_PATH")
    assert evaluate.main([str(f) for f in folders] + ["--dataset", str(moved)]) == 0
    assert sampling.main([str(f) for f in folders] + ["--dataset", str(moved), "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.npy").exists()
    capsys.readouterr()


def test_a_foreign_metrics_json_does_not_leave_a_finished_run_stuck(tmp_path, capsys):
    path = write_npz(tmp_path / "tiny.npz", *tiny_splits())
    for seed, name in enumerate(("a", "b")):
        assert train.main(["--dataset", path, "--hidden", "8", "--epochs", "2", "--seed", str(seed),
                           "--out", str(tmp_path / name)]) == 0
    own = json.loads((tmp_path / "b" / "metrics.json").read_text())
    (tmp_path / "b" / "metrics.json").write_bytes((tmp_path / "a" / "metrics.json").read_bytes())
    assert evaluate.main([str(tmp_path / "b")]) == 2
    assert "--resume" in capsys.readouterr().err  # the advice it gives…
    assert train.main(["--resume", "--out", str(tmp_path / "b")]) == 0  # …works
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["test_nll"] == own["test_nll"]
    assert evaluate.main([str(tmp_path / "b")]) == 0
    capsys.readouterr()


def test_an_output_name_too_long_for_its_temporary_file_is_refused_before_the_work(tmp_path, capsys, tiny):
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    name = "s" * 240 + ".png"  # a legal name (244 bytes), but not with the 19 bytes its temporary file adds
    assert sampling.main([str(tmp_path / "run"), "--out", str(tmp_path / name)]) == 2
    one_line(capsys.readouterr().err, "the name is too long", "temporary")
    assert sorted(os.listdir(tmp_path)) == ["run", "tiny.npz"]


@pytest.mark.parametrize("flag, value", [("--eps", "1e-50"), ("--lr", "1e39"), ("--weight-decay", "1e-46")])
def test_a_value_the_models_dtype_cannot_hold_is_refused_naming_its_flag(tiny, tmp_path, flag, value):
    result = run_cli("train.py", "--dataset", tiny, "--hidden", "8", flag, value, "--out", tmp_path / "run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]  # (argparse's usage, then its one error line)
    assert last.startswith("train.py: error: " + flag) and "float32" in last, last
    assert not (tmp_path / "run").exists()


def test_the_python_optimizers_refuse_values_their_dtype_cannot_hold():
    with pytest.raises(ValueError, match="eps"):
        optim.AdaGrad(MADE(6, [8]), eps=1e-50)
    optim.AdaGrad(MADE(6, [8], dtype="float64"), eps=1e-50)  # float64 holds it


def test_divergence_names_the_weight_decay_when_there_is_one(tiny, tmp_path, capsys):
    flags = ["--dataset", tiny, "--hidden", "8", "--optimizer", "sgd", "--lr", "1", "--weight-decay", "1e30",
             "--out", str(tmp_path / "run")]
    assert train.main(flags) == 2
    one_line(capsys.readouterr().err, "--lr 1.0", "--weight-decay 1e+30")


def test_an_observe_file_whose_header_claims_a_terabyte_is_refused(tmp_path, capsys, tiny):
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    mask = tmp_path / "mask.npy"
    np.save(mask, np.ones(16, dtype=bool))
    raw = mask.read_bytes().replace(b"(16,)", b"(1099511627776,)")
    mask.write_bytes(raw)
    assert evaluate.main([str(tmp_path / "run"), "--observe", str(mask)]) == 2
    one_line(capsys.readouterr().err, "mask.npy", "shorter than its header says")


def test_the_python_api_names_the_argument_it_refuses():
    model = MADE(6, [8], n_masks=2)
    x = random_binary((3, 6))
    for bad in (np.full((3, 6), 0.5), np.full((3, 6), np.nan)):
        with pytest.raises(ValueError, match="x must hold only 0 and 1"):
            complete(model, bad, np.arange(6) < 3)
    np.testing.assert_array_equal(model.log_prob(x.tolist()), model.log_prob(x))  # a list is data too
    with pytest.raises(ValueError, match="x must be an"):
        model.log_prob([[0, 1]])
    with pytest.raises(ValueError, match="one width"):
        sample_mixture([model, MADE(7, [8])], 5)


def test_resume_refuses_data_dir_for_a_run_trained_on_a_file(tiny, tmp_path, capsys):
    assert train.main(["--dataset", tiny, "--hidden", "8", "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert train.main(["--resume", "--out", str(tmp_path / "run"), "--epochs", "2", "--data-dir", str(tmp_path)]) == 2
    one_line(capsys.readouterr().err, "--data-dir", "is a file")
