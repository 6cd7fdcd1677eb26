"""The benchmark beside the tests (bench/benchmark.py): the shards it joins step as each alone,
its call counter counts right, and its command line rejects bad input in one line."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import timing_counting_spikes as tcs
from bench import benchmark
from test_online import OUTCOMES, ROOT


def test_the_benchmarks_late_shards_on_one_axis_step_as_each_alone():
    """late_run joins the unfinished networks of committed shards of different tables (input
    spikes and PFG, with and without an input) on one axis; 800 steps there end where each
    shard's networks end on their own."""
    paths = [os.path.join(ROOT, "results", f"ckpt_{shard}.npz") for shard in ("t1c", "3nf")]
    alone = []
    for p in paths:
        run = benchmark.late_run(tcs, (p,))
        with np.errstate(over="ignore", invalid="ignore"):
            run.online_nets().run(800)
        alone.append(run.st)
    both = benchmark.late_run(tcs, tuple(paths))
    assert both.n_in == 1 and len(both.st["done"]) == sum(len(a["done"]) for a in alone)
    j0 = both.st["j"].copy()
    with np.errstate(over="ignore", invalid="ignore"):
        both.online_nets().run(800)
    assert (both.st["j"] > j0).sum() > len(j0) // 2          # most networks ran training streams
    at = 0
    for a, n_in in zip(alone, (1, 0)):
        part = tcs.resize_inputs(tcs.take(both.st, np.arange(at, at + len(a["done"]))), 1, 1, n_in)
        at += len(a["done"])
        for name in OUTCOMES:
            assert np.array_equal(a[name], part[name]), name


def test_a_step_of_table_1s_networks_makes_few_numpy_calls():
    """The call count the benchmark reports, checked: at most 60 numpy calls per step with no
    stream ending and 90 from the start of training, for Table 1's 140 networks."""
    nets = tcs.table_nets("1", {"learning": "online"})
    with np.errstate(over="ignore", invalid="ignore"):
        steady, start = (benchmark.online_calls(tcs, nets, 160, endless) for endless in (True, False))
    assert 40 < steady <= 60 and 60 < start <= 90, (steady, start)


def test_the_call_counter_counts_each_numpy_call_once():
    a = np.zeros(4).view(benchmark._Counted)
    benchmark._Counted.calls = 0
    np.exp(a, out=a)                          # 1: a ufunc
    b = a + 1.0                               # 2: an operator, a ufunc inside
    a[1:] = b[:3]                             # 3, 4: a slice read and a write
    np.copyto(a, b, where=b > 0)              # 5, 6: a comparison and an array function
    assert benchmark._Counted.calls == 6 and type(b) is benchmark._Counted


def test_the_floor_of_a_stream_end_is_the_step_plus_its_zeroing_and_settle_and_the_docs_read_its_bound(tmp_path):
    """bench --floor on Table 1's 14 networks of seed 0, against this engine itself: the floor it
    reports is the step with no stream ending plus the zeroing writes plus settle, as its line
    says, and gen floor reads each run's bound of the case it names from the file."""
    lines = []
    nets = tcs.table_nets("1", {"learning": "online", "seeds": (0,)})
    floor = benchmark.stream_end_floor(tcs, nets, "Table 1 here", rounds=1, steps=200, log=lines.append)
    m = re.fullmatch(r"floor: ([0-9.]+) us/step \(no stream ending ([0-9.]+) \+ zeroing ([0-9.]+) \+ settle "
                     r"([0-9.]+)\): ([0-9.]+)x the other engine at most; this engine [0-9.]+x", lines[-1])
    assert m and lines[0].startswith("floor of a stream's end: Table 1 here, 14 networks"), lines
    assert abs(float(m[1]) - floor) < 0.051 and float(m[2]) > 0 and float(m[4]) > 0
    assert abs(float(m[2]) + float(m[3]) + float(m[4]) - floor) < 0.151
    path = tmp_path / "floor.txt"
    other = [line.replace("Table 1 here", "late") for line in lines[:-1]] + [lines[-1].replace(m[5] + "x", "9.99x")]
    path.write_text("\n".join(["machine: x"] + lines + other + lines) + "\n")
    assert tcs.gen_floor(str(path), r"Table\s1") == f"{m[5]}x, {m[5]}x"
    assert tcs.gen_floor(str(path), r"late") == "9.99x"
    with pytest.raises(ValueError, match="no floor"):
        tcs.gen_floor(str(path), r"nothing")


@pytest.mark.parametrize("args,needle", [
    (["--against", "nowhere.py"], "--against 'nowhere.py': no such file"),
    (["--against", "README.md"], "--against 'README.md': not a"),
    (["--rounds", "0"], "argument --rounds: '0' must be > 0"),
    (["--floor"], "--floor needs --against"),
])
def test_bad_benchmark_input_is_one_line_and_exit_2(args, needle):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "benchmark.py"), *args],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
