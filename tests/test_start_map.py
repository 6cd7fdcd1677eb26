"""The start map (initial gate biases over a grid, development seeds), shards of a run, and the
rule that chooses a start from the map."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import timing_counting_spikes as tcs
from test_online import ROOT, cli, excite


def test_the_default_grid_is_the_issues_grid_and_the_printed_start():
    starts = tcs.parse_grid(tcs.MAP_GRID)
    assert len(starts) == 4 * 7 + 1 and starts[-1] == tcs.Config.gate_biases
    assert {s[1] for s in starts[:-1]} == {0.0, 1.0, 2.0, 3.0} and {s[0] for s in starts} == {0.0}
    assert sorted({s[2] for s in starts[:-1]}) == [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]
    spec = tcs.TABLES["map"]
    assert len(spec["rows"]) == len(tcs.MAP_ROWS) * len(starts) and spec["seeds"] == tuple(range(100, 110))
    # task row first, start fastest: rows 1-29 are Table 1's NMSD row from every start
    first = [r["config"] for r in spec["rows"][:len(starts)]]
    assert all(c["task"] == "nmsd" and c["F"] == 10 for c in first)
    assert [c["gate_biases"] for c in first] == list(starts)


def test_a_map_rows_budget_is_the_peephole_mean_plus_3_std_capped():
    budget = {tcs.row_label(tcs.row_config(**r["config"], learning="online")): r["budget"]
              for r in tcs.TABLES["map"]["rows"]}
    assert budget["NMSD F=10 I in {0,1}"] in (167000, 88000)     # Table 1 (sigmoid) or Table 2 (linear)
    assert budget["GTS F=10 I in {0}"] == 53000 and budget["GTS F=20 I in {0}"] == 91000
    assert budget["GTS F=10 I in {0,1}"] == tcs.MAP_CAP           # 1647 + 3 * 46 thousand, capped
    assert budget["PFG f_rect F=10"] == tcs.MAP_CAP and budget["PFG f_cos F=10"] == 241000
    nets = tcs.table_nets("map", {"learning": "online"}, rows=[1, 30])
    assert sorted({c.budget for _, c, _, _ in nets}) == [88000, 167000]
    assert {s for _, _, s, _ in nets} == set(tcs.DEV_SEEDS)


def test_every_rows_paper_numbers_follow_from_its_config():
    """The results files take a row's paper numbers from its config (so a map of any grid has
    them); for every row of every table that is the row's own."""
    for name, spec in tcs.TABLES.items():
        for row in spec["rows"]:
            for learning in tcs.LEARNING:
                assert tcs.paper_numbers(tcs.row_config(**row["config"], learning=learning)) == row["paper"], name


def test_a_grid_cells_biases_reach_its_networks_initial_weights_and_its_results_file(tmp_path):
    starts = tcs.parse_grid("0.5:1,3:-0.5")
    nets = tcs.table_nets("map", {"learning": "online", "seeds": (100,)}, rows=[1, 2], spec=tcs.map_table(starts))
    run = tcs.OnlineRun(nets, "map")
    b = tcs.unpack(run.st["theta"], 1, 1)["b"]
    for k, (row, cfg, seed, v) in enumerate(nets):
        assert cfg.gate_biases == starts[row]
        assert [b[k, g] for g in (tcs.I_, tcs.F_, tcs.O_)] == list(starts[row])
    out = str(tmp_path / "m.json")
    r = cli("--table", "map", "--learning", "online", "--grid=0.5:1,3:-0.5", "--rows", "3-4", "--seeds", "100",
            "--budget", "2", "--workers", "1", "--json", out)
    assert r.returncode == 0, r.stderr
    doc = json.load(open(out))
    assert [r["config"]["gate_biases"] for r in doc["rows"]] == [[0.5, 1.0, -0.5], [0.5, 3.0, -0.5]]
    assert all(r["paper"]["peep"] == list(tcs.TABLES["2"]["rows"][0]["paper"]["peep"]) for r in doc["rows"])
    assert "| NMSD F=10 I in {0,1} (gate biases +0.5/+3/-0.5) | peep |" in tcs.online_markdown(doc)
    r = cli("--report", out)
    assert r.returncode == 0 and "**Table 2: NMSD F=10 I in {0,1}**, input-gate bias +0.5" in r.stdout
    assert "| forget \\ output | -0.5 |" in r.stdout and "| 1 | +0.5/+1/-0.5 |" in r.stdout, r.stdout[:2000]


def test_two_cells_of_a_map_on_one_axis_step_bit_for_bit_as_each_alone():
    spec = tcs.map_table(tcs.parse_grid("0:2:-2,1"))
    given = {"learning": "online", "seeds": (100, 101), "budget": 300}
    for rows in ([13, 14], [19, 20]):                 # GTS F=10 I in {0}, PFG f_cos: each start a cell
        both = tcs.OnlineRun(tcs.table_nets("map", given, rows, spec), "map")
        excite(both)
        both.online_nets(compact=0.0).run(1500)
        for k, row in enumerate(rows):
            alone = tcs.OnlineRun(tcs.table_nets("map", given, [row], spec), "map")
            excite(alone)
            alone.online_nets(compact=0.0).run(1500)
            at = slice(4 * k, 4 * k + 4)
            assert alone.st["j"].max() > 5 and np.ptp(alone.st["theta"], axis=1).max() > 0
            for name in alone.st:
                assert np.array_equal(alone.st[name], both.st[name][..., at], equal_nan=True), (row, name)


def test_shards_deal_pairs_round_robin_and_each_network_to_exactly_one():
    per = [("1", tcs.table_nets("1", {"learning": "online", "seeds": (0, 1, 2)})),
           ("gts", tcs.table_nets("gts", {"learning": "online", "seeds": (0, 1, 2)}))]
    every = [(name, net[0], net[2], net[3]) for name, nets in per for net in nets]
    seen = []
    nets_of = dict(per)
    for k in (1, 2, 3, 4):
        shard = tcs.shard_nets(per, k, 4)
        mine = [(name,) + tuple(nets_of[name][p][i] for i in (0, 2, 3)) for name, at in shard for p in at]
        assert len(mine) in (2 * 10, 2 * 11)          # 42 pairs over 4 shards: 10 or 11 each
        assert {name for name, _ in shard} == {"1", "gts"}
        pairs = {(name, row, seed) for name, row, seed, _ in mine}
        assert all((name, row, seed, v) in mine for name, row, seed in pairs for v in tcs.VARIANTS)
        seen += mine
    assert sorted(seen) == sorted(every)
    with pytest.raises(ValueError, match="too few for 50 shards"):
        tcs.shard_nets(per[:1], 50, 50)


def test_shards_merged_equal_the_whole_run(tmp_path):
    """--shard K/3 of a small table, each run on its own and merged, gives every network's
    outcome and weights exactly as the whole run does."""
    common = ["--table", "gtsnf", "--learning", "online", "--seeds", "0,1", "--budget", "20",
              "--alpha", "0.05", "--workers", "1"]
    whole = str(tmp_path / "whole.json")
    r = cli(*common, "--json", whole, "--save", whole[:-5] + ".npz")
    assert r.returncode == 0, r.stderr
    outs = []
    for k in (1, 2, 3):
        out = str(tmp_path / f"shard{k}.json")
        r = cli(*common, "--shard", f"{k}/3", "--json", out, "--save", out[:-5] + ".npz")
        assert r.returncode == 0 and f"shard {k}/3" in r.stdout, r.stderr
        outs.append(out)
    merged = str(tmp_path / "merged.json")
    r = cli("--merge", *outs, "--json", merged, "--save", merged[:-5] + ".npz")
    assert r.returncode == 0, r.stderr
    a, b = json.load(open(whole)), json.load(open(merged))
    assert sum(m["streams_run"] for r in a["rows"] for m in r["members"]) > 6 * 20 - 1
    for ra, rb in zip(a["rows"], b["rows"]):
        assert ra["members"] == rb["members"] and ra["ours"] == rb["ours"] and ra["fisher_p"] == rb["fisher_p"]
    for pa, pb in zip(tcs.load_table_params(whole[:-5] + ".npz", a), tcs.load_table_params(merged[:-5] + ".npz", b)):
        assert all(np.array_equal(pa[n], pb[n]) for n in pa)


def test_tables_run_on_different_seeds_merge_into_one_of_every_seed_and_draw(tmp_path):
    """Seeds 0 and 1 of a small table run apart and merged equal the run of both seeds, and
    the merged row's config names both seeds, so the figure script draws any of its networks."""
    common = ["--table", "gtsnf", "--learning", "online", "--rows", "1", "--budget", "20", "--alpha", "0.05",
              "--workers", "1"]
    outs = []
    for seeds in ("0,1", "0", "1"):
        out = str(tmp_path / f"s{seeds.replace(',', '')}.json")
        r = cli(*common, "--seeds", seeds, "--json", out, "--save", out[:-5] + ".npz")
        assert r.returncode == 0, r.stderr
        outs.append(out)
    merged = str(tmp_path / "merged.json")
    r = cli("--merge", *outs[1:], "--json", merged, "--save", merged[:-5] + ".npz")
    assert r.returncode == 0, r.stderr
    a, b = json.load(open(outs[0])), json.load(open(merged))
    assert b["rows"][0]["config"]["seeds"] == [0, 1] == a["rows"][0]["config"]["seeds"]
    assert a["rows"][0]["members"] == b["rows"][0]["members"] and a["rows"][0]["ours"] == b["rows"][0]["ours"]
    viz = subprocess.run([sys.executable, os.path.join(ROOT, "visualize_timing_counting_spikes.py"), "--from-table",
                          merged[:-5], "--outdir", str(tmp_path / "viz")], capture_output=True, text=True, timeout=300)
    assert viz.returncode == 0 and os.listdir(tmp_path / "viz"), viz.stderr


@pytest.mark.parametrize("args,needle", [
    (["--table", "map", "--learning", "online", "--grid", "0:1"], "'0:1' is not IN:FORGET:OUT"),
    (["--table", "map", "--learning", "online", "--grid", "0:1,x:2"], "'0:1,x:2' is not IN:FORGET:OUT"),
    (["--table", "map", "--learning", "online", "--grid", "0:1:nan"], "is not IN:FORGET:OUT"),
    (["--table", "map", "--learning", "online", "--grid", "0:1,1:2"], "names the start 0/1/2 twice"),
    (["--table", "map", "--grid", "0:1:2"], "--grid has no effect with --table unless --learning online"),
    (["--table", "1", "--learning", "online", "--grid", "0:1:2"], "--grid gives the starts of --table map"),
    (["--task", "gts", "--learning", "online", "--grid", "0:1:2"], "--grid has no effect with training"),
    (["--table", "1", "--learning", "online", "--shard", "3/2"], "'3/2' is not a shard K/N"),
    (["--table", "1", "--learning", "online", "--shard", "0/2"], "'0/2' is not a shard K/N"),
    (["--table", "1", "--learning", "online", "--shard", "x"], "'x' is not a shard K/N"),
    (["--table", "1", "--shard", "1/2"], "--shard has no effect with --table unless --learning online"),
    (["--table", "1", "--learning", "online", "--seeds", "0", "--shard", "9/9"], "7 pairs of networks, too few"),
    (["--report", "x.json", "--shard", "1/2"], "--shard has no effect with --report"),
    (["--resume", "x.npz", "--grid", "0:1:2"], "--grid has no effect with --resume"),
])
def test_bad_grid_and_shard_values_are_one_line_and_exit_2(args, needle, tmp_path, rejected):
    code, out, err = rejected(args, tmp_path)
    assert code == 2 and needle in err and "Traceback" not in err, err
    assert os.listdir(tmp_path) == []


def fake_row(start, task, paper, peep, vanilla, median=None, unfinished=0):
    """A map results row: (perfect, n) per variant, the peephole networks' median streams."""
    ours = {v: {"perfect": k, "n": n, "streams_quartiles": None if median is None or not k else [0, median, 0]}
            for v, (k, n) in (("peep", peep), ("vanilla", vanilla))}
    return {"label": task, "config": {"task": task, "gate_biases": list(start)}, "ours": ours,
            "paper": {"peep": paper, "vanilla": (0, "-", "-")}, "reached": {"unfinished": unfinished}}


@pytest.mark.parametrize("peep,median,paper,ok", [
    ((10, 10), 46e3, (100, "46 ± 14", "-"), True),
    ((6, 10), 46e3, (100, "46 ± 14", "-"), True),         # Fisher p = 0.087 against 10 of 10
    ((5, 10), 46e3, (100, "46 ± 14", "-"), False),        # p = 0.033
    ((10, 10), 92e3, (100, "46 ± 14", "-"), True),        # twice the paper's mean: still within
    ((10, 10), 93e3, (100, "46 ± 14", "-"), False),
    ((10, 10), 22e3, (100, "46 ± 14", "-"), False),
    ((5, 10), 1600e3, (50, "1647 ± 46", "-"), True),
    ((10, 10), 1600e3, (50, "1647 ± 46", "-"), False),    # p = 0.033 against 5 of 10
    ((0, 10), None, (50, "1647 ± 46", "-"), False),       # p = 0.033, and no median
    ((1, 10), None, (10, "32485", "-"), False),           # consistent, but no median to compare
    ((0, 10), None, (0, "never", "-"), True),             # the paper's none: no streams to compare
])
def test_the_rule_against_known_values(peep, median, paper, ok):
    assert tcs.reproduces(fake_row((0, 2, -2), "nmsd", paper, peep, (0, 10), median))[0] is ok


def test_the_start_reproducing_most_rows_wins_and_ties_go_to_the_most_perfect_networks():
    good, slow = (100, "46 ± 14", "-"), (100, "10 ± 1", "-")
    doc = {"rows": [fake_row((0, 2, -2), "nmsd", good, (10, 10), (0, 10), 46e3),
                    fake_row((0, 2, -2), "gts", good, (10, 10), (0, 10), 46e3),
                    fake_row((0, 1, 0), "nmsd", good, (9, 10), (9, 10), 40e3),
                    fake_row((0, 1, 0), "gts", slow, (10, 10), (0, 10), 46e3, unfinished=3),
                    fake_row((0, 3, 1), "nmsd", good, (10, 10), (10, 10), 46e3),
                    fake_row((0, 3, 1), "gts", slow, (10, 10), (10, 10), 46e3)]}
    scores = tcs.start_scores(doc)
    assert [s["start"] for s in scores] == [[0, 2, -2], [0, 3, 1], [0, 1, 0]]
    assert [len(s["reproduced"]) for s in scores] == [2, 1, 1] and [s["perfect"] for s in scores] == [20, 40, 28]
    assert scores[1]["by_family"] == {"NMSD": 1, "GTS": 0} and [s["short"] for s in scores] == [0, 0, 1]
    lines = tcs.scores_markdown(scores).splitlines()
    assert lines[0] == ("| rank | start (input/forget/output) | rows reproduced (of 2) | NMSD rows | GTS rows | "
                        "perfect networks (both variants) | rows short of budget |")
    assert lines[2:] == ["| 1 | +0/+2/-2 | 2 | 1 | 1 | 20 | 0 |", "| 2 | +0/+3/+1 | 1 | 1 | 0 | 40 | 0 |",
                         "| 3 | +0/+1/+0 | 1 | 1 | 0 | 28 | 1 |"]


def test_shards_of_a_saved_run_resumed_and_merged_equal_the_whole_run_resumed(tmp_path):
    """--resume CKPT --shard K/N takes one task's part of a committed checkpoint (here of two
    tables on one axis, one of them without input), checkpointed on its own; merged, the shards
    give every network's outcome and weights as the whole checkpoint resumed does."""
    nets = tcs.table_nets("gtsnf", {"learning": "online", "seeds": (0, 1), "budget": 30})
    more = tcs.table_nets("3nf", {"learning": "online", "seeds": (0, 1), "budget": 30})
    run = tcs.OnlineRun(nets + more, [["gtsnf", len(nets)], ["3nf", len(more)]])
    excite(run)
    run.advance(300, None, 1)
    ckpt = str(tmp_path / "c.npz")
    tcs.save_online_checkpoint(ckpt, run)
    r = cli("--resume", ckpt, "--workers", "1", "--json", str(tmp_path / "whole{table}.json"),
            "--save", str(tmp_path / "whole{table}.npz"), "--checkpoint", str(tmp_path / "w.npz"))
    assert r.returncode == 0, r.stderr
    for k in (1, 2, 3):
        own = str(tmp_path / f"s{k}.npz")
        r = cli("--resume", ckpt, "--shard", f"{k}/3", "--workers", "1", "--checkpoint", own,
                "--json", str(tmp_path / f"s{k}_{{table}}.json"), "--save", str(tmp_path / f"s{k}_{{table}}.npz"))
        assert r.returncode == 0 and os.path.exists(own), r.stderr
        assert len(tcs.load_online_checkpoint(own).nets) in (4, 8)      # 10 pairs over 3 shards: 3 or 4
    for t in ("gtsnf", "3nf"):
        parts = [str(tmp_path / f"s{k}_{t}.json") for k in (1, 2, 3) if os.path.exists(tmp_path / f"s{k}_{t}.json")]
        merged = str(tmp_path / f"m{t}.json")
        r = cli("--merge", *parts, "--json", merged, "--save", merged[:-5] + ".npz")
        assert r.returncode == 0, r.stderr
        a, b = json.load(open(tmp_path / f"whole{t}.json")), json.load(open(merged))
        assert [r["members"] for r in a["rows"]] == [r["members"] for r in b["rows"]]
        for pa, pb in zip(tcs.load_table_params(str(tmp_path / f"whole{t}.npz"), a),
                          tcs.load_table_params(merged[:-5] + ".npz", b)):
            assert all(np.array_equal(pa[n], pb[n]) for n in pa)


def test_a_table_of_rows_with_and_without_input_confirms_and_saves_each_row_with_its_own_inputs(tmp_path):
    """A map puts PFG rows (no input) beside spike rows on one axis, in one table: a perfect PFG
    network is confirmed and run long with its own (no) inputs, and its row's weights are saved
    with none, as a run of PFG alone saves them."""
    spec = tcs.map_table(tcs.parse_grid("0:2:-2"))
    nets = tcs.table_nets("map", {"learning": "online", "seeds": (100,), "budget": 3}, [1, 10], spec)
    run = tcs.OnlineRun(nets, "map")
    assert run.n_in == 1 and tcs.TASKS[nets[-1][1].task].n_in == 0
    run.st["tol"][2:] = 10.0                          # the PFG networks are never wrong: perfect at once
    tcs.train_online(run)
    members, P = tcs.online_results(run, confirm_n=2, long_periods=30)
    assert [m["streams"] is not None for m in members] == [False, False, True, True]
    assert [(m["confirm_streams"], m["long_of"]) for m in members[2:]] == [(1, 30)] * 2   # PFG: its one stream
    path = str(tmp_path / "w.npz")
    tcs.save_table_params(path, [tcs.own_inputs(P, at, nets[at[0]][1]) for at in ([0, 1], [2, 3])])
    doc = tcs.online_doc(run, members)
    saved = tcs.load_table_params(path, doc)
    assert saved[0]["Wx"].shape == (2, 1, 4) and saved[1]["Wx"].shape == (2, 0, 4)


def test_the_rule_scores_table_files_of_any_age_by_their_start():
    """The scores read the committed tables too: the printed start's files, written before the
    gate biases and the budget column were in the results, score as the printed start, and their
    rows count as short when a network stopped before the budget without becoming perfect."""
    old = tcs.read_json(os.path.join(tcs.HERE, "results", "printed_online_tablegts.json"))
    assert "gate_biases" not in old["rows"][0]["config"] and "reached" not in old["rows"][0]
    assert tcs.start_of(old["rows"][0]) == (0.0, -2.0, 2.0)
    row = {"config": {"budget": 100}, "members": [{"streams": 40, "streams_run": 40},
                                                  {"streams": None, "streams_run": 100}]}
    assert not tcs.short(row)
    row["members"].append({"streams": None, "streams_run": 99})
    assert tcs.short(row)
    scores = tcs.start_scores(old)
    assert [s["start"] for s in scores] == [[0.0, -2.0, 2.0]] and scores[0]["short"] == len(old["rows"])
