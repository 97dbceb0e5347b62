"""The experiment scripts' own logic: every point of every search grid is a distinct train.py
command that train.py accepts, and the README table's rows have scripts behind them."""
import importlib.util
import os

import train
from conftest import ROOT


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "experiments", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_search_point_is_a_distinct_command_that_train_accepts():
    search = load("search")
    for row, (data, grids) in search.ROWS.items():
        commands = [tuple(search.flags_of(data, choice)) for choice in search.points(grids)]
        assert len(commands) == len(set(commands)), f"{row}: two grid points give the same command"
        for flags in commands:
            args = train.parse_args(list(flags) + ["--out", os.path.join(ROOT, "runs", "unused")])
            assert args.dataset == data


def test_every_table_row_has_its_script():
    table = load("table")
    for row in table.ROWS:
        assert os.path.exists(os.path.join(ROOT, "experiments", row + ".sh")), row
