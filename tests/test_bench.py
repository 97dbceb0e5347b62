"""bench.py runs end to end (--quick); no timing is asserted, speed is measured, not tested."""
import json

import pytest

import bench


def test_quick_benchmark_writes_its_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "GEMM floor" in table and "sample" in table
    rows = json.loads(out.read_text())["rows"]
    assert all(row["value"] > 0 for row in rows)


def test_epoch_estimate_of_a_model_of_ones_own(capsys):
    assert bench.main(["--hidden", "20", "--masks", "2", "--direct"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("MADE 784-20-784 +direct, 2 mask(s), on CPU")
    train, valid, epoch = (float(line.split()[-2]) for line in lines[1:4])
    assert "training" in lines[1] and "2-mask ensemble" in lines[2] and "one epoch of train.py" in lines[3]
    # each figure is printed rounded to 0.1 s, so the printed sum may be off by three half-steps
    assert train > 0 and valid > 0 and abs(epoch - (train + valid)) <= 0.15 + 1e-9


@pytest.mark.parametrize("argv", [["--masks", "4"], ["--direct"], ["--hidden", "20", "--quick"],
                                  ["--hidden", "none"], ["--hidden", "20", "--masks", "0"]])
def test_estimate_flags_that_cannot_go_together_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(argv)
    assert exit_.value.code == 2 and "error:" in capsys.readouterr().err
