"""The experiment scripts' own logic: every point of every search grid is a distinct train.py
command that train.py accepts, the results tables are what table.py prints and every row has a
script, the completion comparison scores each run as ancestral.log_prob_unobserved does, a search
resumes an interrupted point, and best.py mixes runs in probability, chosen greedily on validation."""
import importlib.util
import json
import os

import numpy as np
import pytest

import backend
import data
import runs
import train
from conftest import ROOT, tiny_splits, write_npz
from ancestral import log_prob_unobserved, observed_first_ordering
from made import sample_ordering
from runs import load_run


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "experiments", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_search_point_is_a_distinct_command_that_train_accepts():
    search = load("search")
    for row, (dataset, grids) in search.ROWS.items():
        commands = [tuple(search.flags_of(dataset, choice)) for choice in search.points(grids)]
        assert len(commands) == len(set(commands)), f"{row}: two grid points give the same command"
        for flags in commands:
            args = train.parse_args(list(flags) + ["--out", os.path.join(ROOT, "runs", "unused")])
            assert args.dataset == dataset


def test_every_table_row_has_its_script():
    table = load("table")
    for row in table.ROWS:
        assert os.path.exists(os.path.join(ROOT, "experiments", row + ".sh")), row


def test_table_names_the_machine_a_row_ran_on():
    describe = load("table").describe
    assert describe({"device": "cpu", "cpu_count": 2}) == "CPU, 2 cores"
    assert describe({"device": "NVIDIA H100 80GB HBM3", "cupy_tf32": "0"}) == "NVIDIA H100 80GB HBM3"
    assert describe({"device": "NVIDIA H100 80GB HBM3", "cupy_tf32": "1"}) == "NVIDIA H100 80GB HBM3, TF32"


def test_completions_scores_every_run_on_the_same_orderings(tmp_path):
    rng = np.random.default_rng(0)
    path = str(tmp_path / "squares.npz")
    np.savez(path, **{f"{split}_data": (rng.random((n, 16)) < 0.3).astype(np.float32)
                      for split, n in (("train", 200), ("valid", 40), ("test", 30))})
    runs = []
    for hidden in (8, 20):
        runs.append(str(tmp_path / f"run{hidden}"))
        assert train.main(["--dataset", path, "--hidden", str(hidden), "--masks", "4", "--epochs", "2",
                           "--out", runs[-1]]) == 0
    # the second run as if still training: no metrics.json, so its progress comes from its checkpoint
    with open(os.path.join(runs[1], "metrics.json")) as file:
        best_epoch = json.load(file)["best_epoch"]
    os.remove(os.path.join(runs[1], "metrics.json"))
    out = str(tmp_path / "completions_top.png")
    K = 5  # orderings: one more than the runs' cycles of 4 masks
    assert load("completions").main(runs + ["--out", out, "--examples", "3", "--completions", "2",
                                            "--orderings", str(K)]) == 0
    with open(out[:-4] + ".json") as file:
        summary = json.load(file)
    assert os.path.exists(out) and summary["test_examples"] == 30 and summary["observed_values_per_example"] == 8
    first, second = summary["runs"]
    assert (second["finished"], second["epochs_run"], second["best_epoch"]) == (False, 2, best_epoch)
    assert first["one_ordering"]["minus_first_run"] == 0 and first["epochs_run"] == 2 and first["finished"]

    # the second run's numbers, computed here directly: one ordering (seed 0), and the average in
    # probability over the orderings of seeds 0 … K−1
    model, splits, _ = load_run(runs[1], False)
    test = backend.to_device(splits["test"], False, model.dtype)
    observed = data.observed_mask("top", test.shape, backend.random_generator(0, "observed"))
    log_p = np.stack([log_prob_unobserved(model, test, observed, seed=seed).astype(np.float64) for seed in range(K)])
    assert np.isclose(second["one_ordering"]["completion_nll"], -log_p[0].mean())
    ensemble = -(np.logaddexp.reduce(log_p, axis=0) - np.log(K))
    assert np.isclose(second[f"{K}_orderings"]["completion_nll"], ensemble.mean())
    assert np.isclose(second[f"{K}_orderings"]["minus_first_run"],
                      second[f"{K}_orderings"]["completion_nll"] - first[f"{K}_orderings"]["completion_nll"])

    def mean_nll():
        return -model.log_prob(test).astype(np.float64).mean()

    # whole digits under each of the 4 masks of its cycle (not K: there are no more), under K
    # orderings none of its masks has, and under the completions' observed-first orderings
    trained, new = second["whole_digit_nll_trained_orderings"], second["whole_digit_nll_new_orderings"]
    assert len(trained["per_ordering"]) == 4 and len(new["per_ordering"]) == K
    cycle_orderings = []
    for k in range(4):
        model.use_mask(k)
        cycle_orderings.append(model.ordering.tolist())
        assert np.isclose(trained["per_ordering"][k], mean_nll())
    for k in range(K):
        ordering = sample_ordering(16, backend.random_generator(0, "new_orderings", k))
        assert ordering.tolist() not in cycle_orderings
        model.use_ordering(ordering, seed=k)
        assert np.isclose(new["per_ordering"][k], mean_nll())
    assert np.isclose(new["mean"], np.mean(new["per_ordering"]))
    observed_first = second["whole_digit_nll_observed_first_orderings"]["per_ordering"]
    for seed in range(K):
        model.use_ordering(observed_first_ordering(observed[0], backend.random_generator(seed, "pattern_orderings", 0)),
                           seed=seed)
        assert np.isclose(observed_first[seed], mean_nll())


def test_completions_scores_a_raster_ordered_run_under_its_own_ordering(tmp_path):
    """A model of one ordering that already puts the top half first is scored under that ordering
    and its one mask, whatever --orderings says, and the summary says so."""
    rng = np.random.default_rng(1)
    path = str(tmp_path / "squares.npz")
    np.savez(path, **{f"{split}_data": (rng.random((n, 16)) < 0.3).astype(np.float32)
                      for split, n in (("train", 100), ("valid", 20), ("test", 20))})
    runs = [str(tmp_path / name) for name in ("agnostic", "raster", "raster_connectivity")]
    for run, flags in zip(runs, (["--masks", "4"], ["--ordering", "natural"],
                                 ["--ordering", "natural", "--masks", "4", "--shuffle", "connectivity"])):
        assert train.main(["--dataset", path, "--hidden", "8", "--epochs", "1", "--out", run] + flags) == 0
    out = str(tmp_path / "completions_top.png")
    assert load("completions").main(runs + ["--out", out, "--examples", "2", "--completions", "1",
                                            "--orderings", "3"]) == 0
    with open(out[:-4] + ".json") as file:
        agnostic, raster, raster_connectivity = json.load(file)["runs"]
    assert agnostic["ensemble"] == "3 orderings" and raster["ensemble"] == "its own ordering and mask"
    assert raster_connectivity["ensemble"] == "3 masks of its own ordering"

    model, splits, _ = load_run(runs[1], False)
    test = splits["test"]
    observed = data.observed_mask("top", test.shape, backend.random_generator(0, "observed"))
    top = np.arange(16) < 8
    # its own ordering: log p(x_U | x_O) = log p(x) − log p(x_O), with p(x_O) the product of the
    # first eight conditionals of the one forward pass
    log_p = model.log_prob(test).astype(np.float64)
    logits = model.forward(test).astype(np.float64)
    log_p_top = -(np.logaddexp(0, logits) - test * logits)[:, top].sum(1)  # log σ(a) for 1, log σ(−a) for 0
    expected = -(log_p - log_p_top).mean()
    assert np.isclose(raster["one_ordering"]["completion_nll"], expected, rtol=1e-4)
    assert np.isclose(raster["3_orderings"]["completion_nll"], expected, rtol=1e-4)
    assert np.allclose(raster["whole_digit_nll_observed_first_orderings"]["per_ordering"], -log_p.mean(), rtol=1e-4)
    assert len(raster["whole_digit_nll_trained_orderings"]["per_ordering"]) == 1
    assert np.all(observed == top)


def test_completions_refuses_an_output_folder_that_does_not_exist_before_any_work(tmp_path, capsys):
    missing = tmp_path / "no_such_folder" / "completions_top.png"
    # the run folders do not exist either: the output is checked first, before any loading
    assert load("completions").main([str(tmp_path / "no_run"), "--out", str(missing)]) == 2
    error = capsys.readouterr().err
    assert "--out" in error and "does not exist" in error and "Traceback" not in error
    assert not os.path.exists(missing.parent)


def test_projection_recovers_a_power_law_and_keeps_an_epoch_trained_again(tmp_path, capsys):
    project = load("project")
    def valid(t):
        return 87.0 + 40.0 * t ** -0.5
    def line(t, nll):
        return f"epoch {t:4d}  train   80.0000  valid {nll:9.4f}    80.0 s      1000 ex/s"
    # epochs 121-122 logged, then lost: the run resumed from its checkpoint of epoch 120
    lines = [line(t, valid(t)) for t in range(1, 121)] + [line(121, 999.0), line(122, 999.0),
             "interrupted during epoch 123; runs/x/checkpoint.npz holds epoch 120 (epochs 121–122 will be trained again)",
             "resuming runs/x after epoch 120 (at most 1000 epochs)"] + [line(t, valid(t)) for t in range(121, 201)]
    log = tmp_path / "train.log"
    log.write_text("\n".join(lines) + "\n")
    epochs, curve = project.validation_curve(log)
    assert list(epochs) == list(range(1, 201)) and curve[120] == round(valid(121), 4)
    a, b, c, rms = project.fit_power_law(epochs[epochs >= 40], curve[epochs >= 40])
    assert abs(c - 0.5) < 0.02 and abs(a + b * 1000 ** -c - valid(1000)) < 0.05 and rms < 0.01
    assert project.main([str(log), "--from", "40", "--at", "1000"]) == 0
    assert f"epoch 1000: {valid(1000):.2f}" in capsys.readouterr().out


def test_the_masks_figure_is_drawn_from_the_models_own_masks(tmp_path, capsys):
    out = tmp_path / "figure1.png"
    assert load("draw_masks").main(["--inputs", "4", "--hidden", "5,3", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with __import__("pytest").raises(SystemExit):  # too many units to draw legibly
        load("draw_masks").main(["--inputs", "40", "--out", str(tmp_path / "big.png")])


def test_the_results_tables_are_what_table_py_prints_from_results(capsys):
    """README.md's and RESULTS.md's tables are printed by experiments/table.py, never copied by hand."""
    table = load("table")
    for argv, document in (([], "RESULTS.md"), (["--compact"], "README.md"), (["--best"], "RESULTS.md")):
        table.main(argv)
        printed = capsys.readouterr().out.strip()
        with open(os.path.join(ROOT, document), encoding="utf-8") as file:
            assert printed in file.read(), f"{document}'s table is not what table.py {' '.join(argv)} prints"


def test_table_py_into_a_pipe_closed_early_ends_without_a_traceback():
    """`table.py | head -1`: the reader leaves after one line, and table.py says nothing of it."""
    import subprocess
    import sys
    with subprocess.Popen([sys.executable, os.path.join(ROOT, "experiments", "table.py")], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout.readline().startswith(b"| data, setting")
        process.stdout.close()  # as head does after its line
        errors = process.stderr.read().decode()
    assert process.returncode == 0 and errors == "", errors


def test_search_resumes_an_interrupted_point_and_skips_a_measured_one(tmp_path, monkeypatch, capsys):
    """A point whose folder holds a checkpoint but no metrics.json continues from it (--resume), and
    a point already in results/search/ROW.json is not run again."""
    search = load("search")
    path = write_npz(tmp_path / "tiny.npz", *tiny_splits(0, 10))
    monkeypatch.setattr(search, "ROOT", str(tmp_path))
    monkeypatch.setattr(search, "ROWS", {"tiny": (path, [{"optimizer": ["adam3"], "hidden": ["8"], "epochs": ["4"]}])})
    name = "epochs=4-hidden=8-optimizer=adam3"
    out = tmp_path / "runs" / "search" / "tiny" / name
    flags = search.flags_of(path, {"optimizer": "adam3", "hidden": "8", "epochs": "4"})
    assert train.main(flags[:-1] + ["2", "--out", str(out)]) == 0  # the same point, stopped after 2 epochs
    os.remove(out / "metrics.json")                                  # as if interrupted there
    search.search("tiny")
    log = (out / "train.log").read_text()
    assert "resuming" in log and "after epoch 2 (at most 4 epochs)" in log
    with open(out / "metrics.json") as file:
        assert json.load(file)["epochs_run"] == 4
    summary = tmp_path / "results" / "search" / "tiny.json"
    with open(summary) as file:
        assert [entry["name"] for entry in json.load(file)["configurations"]] == [name]
    os.remove(out / "metrics.json")  # measured already: the summary's entry stands, nothing runs
    search.search("tiny")
    assert not (out / "metrics.json").exists()
    capsys.readouterr()


def test_best_mixes_per_example_nlls_in_probability():
    """experiments/best.py's mixture of per-example NLLs is −log of the mean of the members' probabilities."""
    best = load("best")
    rng = np.random.default_rng(0)
    members = rng.uniform(1.0, 900.0, size=(3, 50))  # NLLs far apart: exp(−NLL) underflows without the shift
    expected = -np.logaddexp.reduce(-members, axis=0) + np.log(3)
    assert np.allclose(best.mixture_nll(members), expected)
    assert np.allclose(best.mixture_nll(members[:1]), members[0])


def test_best_selects_greedily_on_validation_and_stops_when_nothing_helps():
    """Start from the best candidate alone; add the one that lowers the mixture most; stop when none does.
    Candidate 0 is best alone; 2 is 0's mirror (good where 0 is bad), so they mix well; 1 is a copy of 0,
    which would only tilt the equal weights towards 0; 3 is bad everywhere."""
    best = load("best")
    good, bad = np.full(10, 1.0), np.full(10, 9.0)
    first = np.where(np.arange(10) < 5, good, bad - 0.1)  # 0 is best alone by a hair
    mirror = np.where(np.arange(10) < 5, bad, good)
    chosen, nll = best.choose([first, first.copy(), mirror, np.full(10, 20.0)])
    assert chosen == [0, 2]
    assert nll == pytest.approx(best.mixture_nll([first, mirror]).mean())
    assert nll < first.mean()
    alone, alone_nll = best.choose([np.full(10, 3.0), np.full(10, 5.0)])  # mixing with a worse twin never helps
    assert alone == [0] and alone_nll == 3.0


def test_best_keeps_every_reading_of_the_test_split_and_refuses_a_damaged_record(tmp_path):
    """A rebuilt column's record keeps each earlier build's test figure, not only the last; a
    record it cannot read is refused in one line before anything is scored, never overwritten."""
    best = load("best")
    path = tmp_path / "metrics.json"
    assert best.published(str(path)) is None
    reads = [{"test_nll": 9.6}, {"test_nll": 9.58}]
    record = {"test_reads": reads, "members": [{"run": "runs/search/x/a"}], "valid_nll": 9.5}
    path.write_text(json.dumps(record))
    assert best.published(str(path))["test_reads"] == reads
    for damaged in (json.dumps(record)[:40], json.dumps({"members": [], "valid_nll": 9.5}), "[]",
                    json.dumps(dict(record, members=[{}]))):
        path.write_text(damaged)
        with pytest.raises(runs.RunError, match="damaged or of an older form"):
            best.published(str(path))


def test_best_never_replaces_the_published_mixture_with_one_it_cannot_compare_to():
    """A member of the published mixture missing here (runs/ is not in git), or a choice worse on
    validation, is refused before the test split is read."""
    best = load("best")
    record = {"members": [{"run": "runs/search/dna_masks/a"}, {"run": "runs/search/dna_masks/b"}], "valid_nll": 80.0}
    pool = [(os.path.join(best.ROOT, "runs/search/dna_masks/a"), "dna_masks", [])]
    with pytest.raises(runs.RunError, match="member runs/search/dna_masks/b is not here"):
        best.check_against_published(record, pool, 79.0)
    pool.append((os.path.join(best.ROOT, "runs/search/dna_masks/b"), "dna_masks", []))
    with pytest.raises(runs.RunError, match="above the published mixture's"):
        best.check_against_published(record, pool, 81.0)
    best.check_against_published(record, pool, 79.5)
    best.check_against_published(None, pool, 99.0)
