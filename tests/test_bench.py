"""bench.py runs end to end (--quick); no timing is asserted, speed is measured, not tested."""
import json

import bench


def test_quick_benchmark_writes_its_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "GEMM floor" in table and "sample" in table
    rows = json.loads(out.read_text())["rows"]
    assert all(row["value"] > 0 for row in rows)
