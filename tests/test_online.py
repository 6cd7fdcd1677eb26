"""The paper's online learning: its gradient, its streams, its runs (ensembles, shards,
checkpoints, interrupts) and its command line."""
import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import timing_counting_spikes as tcs
from bench import benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, **kw):
    return subprocess.run([sys.executable, os.path.join(ROOT, "timing_counting_spikes.py"), *args],
                          capture_output=True, text=True, timeout=300, **kw)


def online(task, **kw):
    return tcs.Config(**{**dict(task=task, hidden=2, cell="paper", readout=tcs.TASKS[task].readout,
                                learning="online", periods=3, test_periods=4, test_streams=2), **kw})


def budgeted(nets, budget):
    """Networks (cfg, ...) or (row, cfg, ...) with their training-stream budget set."""
    at = 0 if isinstance(nets[0][0], tcs.Config) else 1
    return [n[:at] + (dataclasses.replace(n[at], budget=budget),) + n[at + 1:] for n in nets]


def nets_of(st, cfg, **kw):
    return tcs.OnlineNets(st, cfg.cell, cfg.hidden, tcs.TASKS[cfg.task].n_in, **kw)


CASES = [("gts", dict(F=5, delays=(0, 1, 2))), ("cmsd", dict(F=4, delays=(0, 1, 2))),
         ("nmsd", dict(F=5, delays=(0, 1, 2))), ("pfg", dict(F=6, func="tri")),
         ("gts", dict(F=5, delays=(0, 1), cell="modern", readout="linear")),
         ("pfg", dict(F=6, func="rect", forget=False)), ("gts", dict(F=5, delays=(0, 1, 2), forget=False))]


@pytest.mark.parametrize("variant", tcs.VARIANTS)
@pytest.mark.parametrize("task,kw", CASES)
def test_online_gradient_over_a_stream_equals_the_truncated_gradient(task, kw, variant):
    """With the weights held fixed, dE/dtheta summed over one training stream by the forward
    RTRL partials equals the batched engine's truncated gradient on the same stream."""
    cfg = online(task, **kw)
    st = tcs.online_state(budgeted([(cfg, 3, variant)], 10))
    st["theta"] += 0.5 * np.random.default_rng(1).standard_normal(st["theta"].shape) * st["gmask"]
    st["tol"][:] = 10.0                       # no early stop: the stream runs all its periods
    st["alpha"][:] = 0.0                      # weights fixed
    net = nets_of(st, cfg)
    net.gsum = np.zeros_like(st["theta"])
    theta0 = st["theta"].copy()
    steps = 0
    while st["j"][0] == 0:
        net.step()
        steps += 1
    assert np.array_equal(st["theta"], theta0)
    # the same stream from the task's own generator
    periods = 1 if task == "nmsd" else cfg.periods
    if task == "pfg":
        b = tcs.PFG.streams(cfg, 1, periods)
    else:
        b = tcs.TASKS[task].streams(cfg, tcs.stream_delays(cfg, 3, tcs.ONLINE_TRAIN, 0, [0], periods), steps)
    assert len(b.d) == steps
    P = tcs.unpack(theta0, cfg.hidden, tcs.TASKS[task].n_in)
    _, want, _ = tcs.loss_and_grads(P, b.x[:, :, None], b.d[:, None], np.array([variant == "peep"]),
                                    cell=dataclasses.replace(tcs.cell_of(cfg), grad="truncated"),
                                    mask=None if b.mask is None else b.mask[:, None])
    got = tcs.unpack(net.gsum, cfg.hidden, tcs.TASKS[task].n_in)
    for k in tcs.PARAMS:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-12, err_msg=k)
    assert max(np.max(np.abs(want[k])) for k in ("Wh", "b", "Wy")) > 1e-3     # a gradient that says something


@pytest.mark.parametrize("task,kw", CASES)
def test_a_tasks_rows_are_the_same_in_both_engines(task, kw):
    """A training stream laid out by the online engine's window holds, step for step, the
    inputs, targets, period ends and targets given of the same stream built for the batch
    engine: both come from the task's rows (Steps)."""
    cfg = online(task, **kw)
    st = tcs.online_state(budgeted([(cfg, 3, "peep")], 10))
    net = tcs.OnlineNets(st, cfg.cell, cfg.hidden, tcs.TASKS[task].n_in, window=80)
    periods = 1 if task == "nmsd" else cfg.periods
    if task == "pfg":
        b = tcs.PFG.streams(cfg, 1, periods)
    else:
        I = tcs.stream_delays(cfg, 3, tcs.ONLINE_TRAIN, 0, [0], periods)
        b = tcs.TASKS[task].streams(cfg, I, int(np.sum(cfg.F + I)))
    T, H = len(b.d), cfg.hidden
    net.L = 80
    net.lay_out(slice(None), 0)
    if tcs.TASKS[task].n_in:
        assert np.array_equal(net.S[:T, 2 * H, 0], b.x[:, 0, 0])
    assert np.array_equal(net.D[:T, 0], b.d[:, 0]) and np.array_equal(net.SP[:T, 0], b.info["ends"][:, 0])
    assert np.array_equal(net.A[:T, 0], np.ones(T, bool) if b.mask is None else b.mask[:, 0] > 0)
    assert np.count_nonzero(net.SP[:T, 0]) == periods and np.count_nonzero(net.D[:T, 0]) > 0


def test_every_period_of_a_long_stream_has_its_own_delay_whatever_the_window():
    """100 periods of one training stream (about 13 windows of the step's lay-out) see exactly
    the delays the stream's key names, and running them one step per call or all in one call
    leaves the same state, bit for bit."""
    cfg = online("gts", F=3, delays=(0, 1, 2), periods=100)
    st = tcs.online_state(budgeted([(cfg, 4, "peep")], 10))
    st["tol"][:] = 10.0                       # never wrong: the stream runs all its periods
    whole = {k: v.copy() for k, v in st.items()}
    net, seen, steps = nets_of(st, cfg), [], 0
    while st["j"][0] == 0:
        if st["pos"][0] == 0:
            seen.append(int(st["I"][0]))      # the delay of the period that starts here
        net.step()
        steps += 1
    want = tcs.stream_delays(cfg, 4, tcs.ONLINE_TRAIN, 0, [0], 100).ravel()
    assert len(seen) == 100 and steps > 10 * tcs.ONLINE_WINDOW and seen == [int(v) for v in want]
    assert len(set(seen)) == 3
    nets_of(whole, cfg).run(steps)
    for k in st:
        assert np.array_equal(whole[k], st[k]), k


def test_pack_unpack_round_trip():
    cfg = online("gts", F=5, delays=(0, 1))
    P = tcs.stack([tcs.init_member(cfg, s, v) for s in (0, 1) for v in tcs.VARIANTS])
    back = tcs.unpack(tcs.pack(P), cfg.hidden, 1)
    for k in tcs.PARAMS:
        np.testing.assert_array_equal(back[k], P[k])


def mixed_run():
    """Two GTS rows x two seeds x both variants, with streams that end often."""
    rows = [online("gts", F=4, delays=(0,)), online("gts", F=5, delays=(0, 1, 2))]
    return [(r, c, s, v) for r, c in enumerate(rows) for s in (0, 1) for v in tcs.VARIANTS]


def test_gradient_sums_of_an_axis_run_sorted_by_lay_out_are_each_networks_own():
    """Networks of two lay-outs on one axis, the later lay-out first: the axis runs sorted by
    lay-out, and the gradient sums the tests read (gsum) still land in each network's column."""
    groups = [[(online(task, **kw), s, v) for s in (0, 1) for v in tcs.VARIANTS]
              for task, kw in (("gts", dict(F=5, delays=(0, 1, 2))), ("cmsd", dict(F=4, delays=(0, 1, 2))))]
    sums = []
    for nets in groups + [groups[0] + groups[1]]:
        st = tcs.online_state(budgeted(nets, 10 ** 6))
        net = nets_of(st, nets[0][0])
        net.gsum = np.zeros_like(st["theta"])
        with np.errstate(over="ignore", invalid="ignore"):
            net.run(300)
        sums.append(net.gsum)
    assert net.order is not None and np.all(np.abs(sums[2]).sum(axis=0) > 0)
    assert np.array_equal(np.concatenate(sums[:2], axis=1), sums[2])


def excite(run):
    """Larger steps, so that a few hundred steps move the weights far."""
    run.st["alpha"][:] = 0.05
    run.st["mu"][:] = 0.5


@pytest.mark.parametrize("task,kw", [("nmsd", dict(F=4, delays=(0, 1, 2))), ("pfg", dict(F=5, func="cos"))])
def test_a_momentum_step_after_every_target_of_a_training_stream_and_nowhere_else(task, kw):
    """v = mu v - alpha dE/dtheta, theta += v at every step that gives a training network a
    target (NMSD: its spike; PFG: every step); at other steps and during tests, nothing moves."""
    cfg = online(task, **kw)
    st = tcs.online_state(budgeted([(cfg, 2, "peep")], 10 ** 6))
    st["alpha"][:], st["mu"][:] = 0.05, 0.7
    net = nets_of(st, cfg)
    net.gsum = np.zeros_like(st["theta"])
    v, theta, theta0 = st["vel"].copy(), st["theta"].copy(), st["theta"].copy()
    seen = {"target": 0, "none": 0}
    for _ in range(400):
        target = bool(st["trainf"][0] > 0) and (task == "pfg" or st["pos"][0] == st["last"][0])
        before = net.gsum.copy()
        net.step()
        g = net.gsum - before                          # this step's dE/dtheta, masked
        if target:
            v = 0.7 * v - 0.05 * g
            theta = theta + v
            seen["target"] += 1
        else:
            assert not g.any()
            seen["none"] += 1
        np.testing.assert_allclose(st["vel"], v, rtol=0, atol=1e-15)
        np.testing.assert_allclose(st["theta"], theta, rtol=0, atol=1e-15)
    assert seen["target"] > 20 and seen["none"] > 20    # both kinds of step were met
    assert np.abs(v).max() > 1e-4 and np.abs(st["theta"] - theta0).max() > 1e-3      # the steps were real


def test_network_in_an_ensemble_equals_its_solo_run():
    nets = mixed_run()
    whole = tcs.OnlineRun(budgeted(nets, 10 ** 6))
    excite(whole)
    nets_of(whole.st, nets[0][1]).run(600)
    for k in (0, 5, 7):
        solo = tcs.OnlineRun(budgeted([nets[k]], 10 ** 6))
        excite(solo)
        nets_of(solo.st, nets[k][1]).run(600)
        for name in ("theta", "vel", "s", "dS", "j", "q", "learned_at", "test_best"):
            assert np.array_equal(whole.st[name][..., k], solo.st[name][..., 0]), name
        assert solo.st["j"][0] > 20                    # it ran many streams


OUTCOMES = ("theta", "vel", "j", "q", "learned_at", "diverged_at", "test_best", "test_last", "done", "age")


def finishing_run():
    """Networks with input spikes (targets at a spike in about one step in 12) whose budgets run
    out at different times, so that the axis empties as they run."""
    cfg = online("cmsd", F=10, delays=(0, 1, 2), periods=3)
    return [(0, dataclasses.replace(cfg, budget=b), s, v) for b in (3, 10 ** 6, 10 ** 6) for s in range(6) for v in tcs.VARIANTS]


@pytest.mark.parametrize("kw", [dict(compact=0.0, sparse_from=0), dict(compact=0.75, sparse_from=10 ** 9),
                                dict(compact=0.75, sparse_from=0, window=7)])
def test_compaction_sparse_targets_and_window_change_no_number(kw):
    """A run that moves its unfinished networks to an axis of their own as others finish, takes
    the weight step only on the columns of the networks given a target, or lays out a shorter
    window, ends bit for bit where the plain run does."""
    nets = finishing_run()
    runs = []
    for opts in (dict(compact=0.0, sparse_from=10 ** 9), kw):
        run = tcs.OnlineRun(nets)
        excite(run)
        nets_of(run.st, nets[0][1], **opts).run(1500)
        runs.append(run.st)
    plain, other = runs
    assert len(nets) // 4 < plain["done"].sum() < len(nets)    # the axis emptied below compaction's mark
    live = ~plain["done"]                    # a finished network's stream state no longer matters
    for name in plain:
        same = slice(None) if name in OUTCOMES else live
        assert np.array_equal(plain[name][..., same], other[name][..., same], equal_nan=True), name


def test_keys_drawn_ahead_or_at_once_change_no_number(monkeypatch):
    """GTS with two delays: the first input of a stream is its first delay, drawn from its key
    as the stream before it ends. Drawn at the window's first stream end for the streams a network runs
    while its tests fail, or at once (drawing only one training stream ahead): the same."""
    nets = tcs.table_nets("gts", {"learning": "online", "seeds": (0, 1)})
    drawn = []
    at_once = tcs.OnlineNets.draw_keys
    monkeypatch.setattr(tcs.OnlineNets, "draw_keys", lambda self, g: (drawn.append(len(g)), at_once(self, g)))
    states = []
    for ahead in (None, 1):
        drawn.clear()
        run = tcs.OnlineRun(nets)
        net = benchmark.engine_nets(tcs, run)
        assert net.keyed is not None
        net.ahead = ahead or net.ahead
        with np.errstate(over="ignore", invalid="ignore"):
            net.run(1500)
        states.append((run.st, sum(drawn)))
    (a, ahead), (b, once) = states
    assert a["j"].sum() > 5 * len(a["j"])                    # many streams ended and began
    assert once > 10 * max(ahead, 1)                         # one ahead: mostly drawn at once
    for name in a:
        assert np.array_equal(a[name], b[name], equal_nan=True), name


@pytest.mark.parametrize("task,kw", [("nmsd", dict(F=4, delays=(0, 1, 2))), ("gts", dict(F=5, delays=(0, 1, 2))),
                                     ("pfg", dict(F=4, func="cos"))])
def test_streams_begun_in_a_windows_last_steps_end_it_as_their_lay_out_would(task, kw, monkeypatch):
    """A stream begun in a window's last few steps is not laid out at its last step: it is still
    in its first period there, and its place, delay and the input of the next step are set at
    once (first_period). Laid out instead, every state array is the same after many windows,
    including an NMSD stream's first spike on the step after a window."""
    nets = [(online(task, **kw), s, v) for s in range(4) for v in tcs.VARIANTS]
    spikes, first_period = [], tcs.OnlineNets.first_period

    def recorded(self, idx):
        first_period(self, idx)
        spikes.append(np.count_nonzero(self.S[self.L, 2 * self.H, idx] == 1.0) if self.n_in else 0)
    states = []
    for way in (recorded, lambda self, idx: self.lay_out(idx, self.L)):
        monkeypatch.setattr(tcs.OnlineNets, "first_period", way)
        st = tcs.online_state(budgeted(nets, 10 ** 6))
        with np.errstate(over="ignore", invalid="ignore"):
            nets_of(st, nets[0][0]).run(3000)
        states.append(st)
    a, b = states
    assert len(spikes) > 20 and (task != "nmsd" or sum(spikes) > 0)
    for name in a:
        assert np.array_equal(a[name], b[name], equal_nan=True), name


def previous_engine(tmp_path):
    """The online engine as it was before the step was rewritten for speed (from git history)."""
    commit = "9d859a6"
    try:
        text = subprocess.run(["git", "show", f"{commit}:timing_counting_spikes.py"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"needs git and commit {commit} of this repository")
    path = tmp_path / "previous_engine.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("previous_engine", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("table", ["1", "2", "gts", "3", "gtsnf", "3nf"])
def test_every_online_table_runs_bit_for_bit_as_on_the_previous_engine(table, tmp_path):
    """Seed 0 of every row of each online table, 2000 steps from the start of training, on this
    engine and on the one before the speed rewrite: the same weights, momentum and per-network
    outcomes, and the same stream state for every network still running."""
    old = previous_engine(tmp_path)
    states = []
    for engine in (old, tcs):
        run = engine.OnlineRun(engine.table_nets(table, {"learning": "online", "seeds": (0,),     # the same start on
                                                         "gate_biases": tcs.CHOSEN_START}))      # both engines
        with np.errstate(over="ignore", invalid="ignore"):
            benchmark.engine_nets(engine, run).run(2000)
        states.append(run.st)
    a, b = states
    assert a["j"].sum() > 5 * len(a["j"])                    # many streams ended and began
    for name in OUTCOMES:
        assert np.array_equal(a[name], b[name]), name
    live = ~a["done"]
    x = np.ones(len(a["s"]), bool)
    x[len(x) - 1 - run.n_in:-1] = False      # the input row holds the next step's input here, the last one there
    for name in ("dS", "testing", "key", "pos", "periods", "I", "last", "maxp", "trainf", "target"):
        assert np.array_equal(a[name][..., live], b[name][..., live]), name
    assert np.array_equal(a["s"][x][:, live], b["s"][x][:, live])


@pytest.mark.parametrize("shard", ["t1c", "t1r", "gtsnf", "t3c", "t3r", "3nf"])
def test_a_committed_checkpoint_resumes_bit_for_bit_as_on_the_previous_engine(shard, tmp_path):
    """The unfinished networks of a shard of the online tables, from the checkpoint its run left
    in results/ (late in training: long streams, tests), 1500 more steps on both engines."""
    old = previous_engine(tmp_path)
    states = []
    for engine in (old, tcs):
        run = engine.load_online_checkpoint(os.path.join(ROOT, "results", f"ckpt_{shard}.npz"))
        with np.errstate(over="ignore", invalid="ignore"):
            run.advance(1500, None, 1)
        states.append(run.st)
    a, b = states
    assert (~a["done"]).any()
    for name in OUTCOMES:
        assert np.array_equal(a[name], b[name]), name


def test_peepholes_held_at_zero_equal_the_vanilla_network():
    """Fair ablation: same initial shared weights, same streams; with its peepholes at zero
    and untrained, the peephole network follows the vanilla one bit for bit."""
    cfg = online("gts", F=5, delays=(0, 1, 2))
    run = tcs.OnlineRun(budgeted([(0, cfg, 3, "peep"), (0, cfg, 3, "vanilla")], 10 ** 6))
    K, _ = tcs.online_layout(cfg.hidden, 1)
    peep_rows = run.st["gmask"][:, 0] != run.st["gmask"][:, 1]
    assert peep_rows.sum() == 3 * cfg.hidden                  # p_i, p_f, p_o
    assert np.array_equal(run.st["theta"][~peep_rows, 0], run.st["theta"][~peep_rows, 1])
    run.st["theta"][peep_rows, 0] = 0.0
    run.st["gmask"][peep_rows, 0] = 0.0
    excite(run)
    nets_of(run.st, cfg).run(500)
    for name in ("theta", "s", "j", "test_best"):
        assert np.array_equal(run.st[name][..., 0], run.st[name][..., 1]), name
    assert run.st["j"][0] > 10


def test_streams_of_one_seed_are_shared_and_of_other_seeds_differ():
    cfg = online("gts", F=5, delays=(0, 1, 2))
    a = tcs.stream_delays(cfg, 3, tcs.ONLINE_TRAIN, 7, [0], 200)
    assert np.array_equal(a, tcs.stream_delays(cfg, 3, tcs.ONLINE_TRAIN, 7, [0], 200))
    for other in (tcs.stream_delays(cfg, 4, tcs.ONLINE_TRAIN, 7, [0], 200),
                  tcs.stream_delays(cfg, 3, tcs.ONLINE_TRAIN, 8, [0], 200),
                  tcs.stream_delays(cfg, 3, tcs.ONLINE_TEST, 7, [0], 200)):
        assert np.mean(a == other) < 0.5
    counts = np.bincount(tcs.stream_delays(cfg, 3, tcs.ONLINE_TRAIN, 0, range(50), 200).ravel(), minlength=3)
    assert np.all(np.abs(counts / counts.sum() - 1 / 3) < 0.02)          # uniform over the set


def test_a_network_that_is_never_wrong_is_perfect_after_one_training_stream():
    """Training stream of 3 periods, then 2 test streams of 4 periods: perfect, learned at 1."""
    cfg = online("gts", F=5, delays=(0,))
    run = tcs.OnlineRun(budgeted([(0, cfg, 0, "peep")], 100))
    run.st["tol"][:] = 10.0
    net = nets_of(run.st, cfg)
    net.run(5 * 3 + 2 * 5 * 4 - 1)
    assert not run.st["done"][0]
    net.run(1)
    assert run.st["done"][0] and run.st["learned_at"][0] == 1 and run.st["test_best"][0] == 4


def test_a_network_that_is_always_wrong_stops_at_its_budget():
    """Each stream ends at its first step; after 5 training streams (and their tests) it is done."""
    cfg = online("nmsd", F=5, delays=(0, 1))
    run = tcs.OnlineRun(budgeted([(0, cfg, 0, "vanilla")], 5))
    run.st["tol"][:] = 0.0
    net = nets_of(run.st, cfg)
    net.run(200)
    assert run.st["done"][0] and run.st["learned_at"][0] == -1 and run.st["j"][0] == 5


def test_no_forget_gate_pins_it_open_and_never_trains_it():
    cfg = online("pfg", F=6, func="cos", forget=False)
    run = tcs.OnlineRun(budgeted([(0, cfg, 0, "peep")], 10 ** 6))
    excite(run)
    before = tcs.unpack(run.st["theta"], cfg.hidden, 0)
    nets_of(run.st, cfg).run(300)
    after = tcs.unpack(run.st["theta"], cfg.hidden, 0)
    H = cfg.hidden
    np.testing.assert_array_equal(after["b"][:, H:2 * H], before["b"][:, H:2 * H])
    np.testing.assert_array_equal(after["Wh"][:, :, H:2 * H], before["Wh"][:, :, H:2 * H])
    np.testing.assert_array_equal(after["p_f"], before["p_f"])
    assert not np.allclose(after["b"][:, :H], before["b"][:, :H])        # the others did train
    tr = tcs.trace(after, np.zeros((20, 0, 1, 1)), tcs.cell_of(cfg))
    assert np.all(tr["f"] == 1.0)


def test_run_split_into_segments_and_shards_and_resumed_equals_one_go(tmp_path):
    nets = mixed_run()
    one = tcs.OnlineRun(budgeted(nets, 300))
    excite(one)
    one.advance(2000, None, 1)
    two = tcs.OnlineRun(budgeted(nets, 300))
    excite(two)
    two.advance(700, None, 3)
    tcs.save_online_checkpoint(str(tmp_path / "c.npz"), two)
    three = tcs.load_online_checkpoint(str(tmp_path / "c.npz"))
    assert three.steps == 700
    three.advance(1300, None, 2)
    for name in one.st:
        assert np.array_equal(one.st[name], three.st[name]), name


FAMILIES = {"spikes in, sigmoid": [online("nmsd", F=5, delays=(0, 1, 2)), online("cmsd", F=4, delays=(0, 1, 2))],
            "spikes in, linear": [online("nmsd", F=4, delays=(0, 1), readout="linear")],
            "spikes out": [online("gts", F=5, delays=(0, 1, 2)), online("gts", F=4, delays=(0,), forget=False)],
            "f out, no input": [online("pfg", F=6, func="tri"), online("pfg", F=5, func="rect", forget=False)]}


def test_several_tables_on_one_axis_step_as_each_alone(tmp_path):
    """Networks of every lay-out, output unit, forget gate and number of inputs on one axis
    (workers, compaction and the sparse weight step at work; budgets that run out at different
    times), saved and resumed: each family's networks end bit for bit where they do on an axis
    of their own, and the run cut back into one run per family is exactly that."""
    parts = {name: [(r, dataclasses.replace(c, budget=b), s, v) for r, c in enumerate(rows) for b in (4, 300)
                    for s in (0, 1) for v in tcs.VARIANTS] for name, rows in FAMILIES.items()}
    alone = []
    for nets in parts.values():
        run = tcs.OnlineRun(nets)
        excite(run)
        run.online_nets(compact=0.0, sparse_from=10 ** 9).run(1500)
        alone.append(run)
    both = tcs.OnlineRun([n for nets in parts.values() for n in nets], [[name, len(n)] for name, n in parts.items()])
    assert both.n_in == 1 and len(both.st["s"]) == 2 * 2 + 1 + 1
    excite(both)
    both.advance(600, None, 2)
    tcs.save_online_checkpoint(str(tmp_path / "c.npz"), both)
    both = tcs.load_online_checkpoint(str(tmp_path / "c.npz"))
    both.online_nets(sparse_from=0).run(900)
    done = both.st["done"]
    assert len(done) // 4 < done.sum() < len(done)          # the axis emptied below compaction's mark
    for run, part, (name, _) in zip(alone, both.split(), both.table):
        assert part.table == name and part.nets == run.nets and part.n_in == run.n_in
        live = ~run.st["done"]
        assert set(part.st) == set(run.st)
        for key in run.st:
            same = slice(None) if key in OUTCOMES else live
            a, b = run.st[key], part.st[key][:len(run.st[key])] if key in ("ftab", "dset") else part.st[key]
            assert np.array_equal(a[..., same], b[..., same], equal_nan=True), (name, key)


def test_workers_do_not_change_online_results():
    nets = mixed_run()
    runs = []
    for workers in (1, 2):
        run = tcs.OnlineRun(budgeted(nets, 50))
        excite(run)
        tcs.train_online(run, workers, log=lambda line: None)
        runs.append(run)
    assert runs[0].st["done"].all()
    for name in runs[0].st:
        assert np.array_equal(runs[0].st[name], runs[1].st[name]), name


def test_confirmation_runs_fresh_streams():
    cfg = online("gts", F=5, delays=(0, 1), test_periods=20)
    fresh = tcs.fresh_streams(cfg, 0, tcs.ONLINE_CONFIRM, 0, 30)
    assert fresh.d.shape[1] == 30 and fresh.info["periods"] == 20
    test = tcs.fresh_streams(cfg, 0, tcs.ONLINE_TEST, 0, 30)
    assert not np.array_equal(fresh.x[:100], test.x[:100])
    # a network whose output is 0 misses every first spike: confirmed on none
    P = tcs.stack([tcs.init_member(cfg, 0, "peep")])
    P["Wy"][:], P["by"][:] = 0.0, -20.0
    assert tcs.confirm(P, cfg, 0, ["peep"], 30) == ([0], 30)


def test_cli_online_run_writes_json_checkpoint_and_merges(tmp_path):
    outs = []
    for seed in ("0", "1"):
        j, c = str(tmp_path / f"s{seed}.json"), str(tmp_path / f"s{seed}.npz")
        r = cli("--task", "nmsd", "--learning", "online", "--F", "4", "--seeds", seed, "--budget", "40",
                "--alpha", "0.01", "--json", j, "--checkpoint", c, "--workers", "1")
        assert r.returncode == 0, r.stderr
        assert "| NMSD F=4 I in {0,1} | peep |" in r.stdout
        doc = json.load(open(j))
        assert doc["learning"] == "online" and doc["finished"] and len(doc["rows"][0]["members"]) == 2
        for m in doc["rows"][0]["members"]:
            assert m["streams_run"] == 40 or m["streams"] is not None
        outs.append(j)
    merged = str(tmp_path / "m.json")
    r = cli("--merge", *outs, "--json", merged)
    assert r.returncode == 0, r.stderr
    doc = json.load(open(merged))
    assert [m["seed"] for m in doc["rows"][0]["members"]] == [0, 0, 1, 1]
    assert sum(s["n"] for s in doc["rows"][0]["ours"].values()) == 4
    r = cli("--merge", outs[0], outs[0], "--json", merged)
    assert r.returncode == 2 and "is in two files" in r.stderr
    # the checkpoint resumes (a finished run stays finished), and refuses new settings
    r = cli("--resume", str(tmp_path / "s0.npz"), "--workers", "1")
    assert r.returncode == 0, r.stderr
    r = cli("--resume", str(tmp_path / "s0.npz"), "--alpha", "0.1")
    assert r.returncode == 2 and "--resume takes no training settings; drop --alpha" in r.stderr


def test_merge_of_shards_by_rows_and_seeds_keeps_every_networks_weights(tmp_path):
    """A table split as the reruns split it (some rows on more seeds, the others on fewer):
    --merge --save writes one weights file whose rows and members follow the merged JSON, each
    network's weights those its shard saved."""
    shards = [("1", "0-1"), ("2", "0")]
    outs, saved = [], {}
    for rows, seeds in shards:
        j = str(tmp_path / f"r{rows}.json")
        r = cli("--table", "2", "--learning", "online", "--rows", rows, "--seeds", seeds, "--budget", "30",
                "--json", j, "--save", j[:-5] + ".npz", "--workers", "1")
        assert r.returncode == 0, r.stderr
        doc = json.load(open(j))
        for row, P in zip(doc["rows"], tcs.load_table_params(j[:-5] + ".npz", doc)):
            for k, m in enumerate(row["members"]):
                saved[row["row"], m["seed"], m["variant"]] = P["Wx"][k]
        outs.append(j)
    merged = str(tmp_path / "m.json")
    r = cli("--merge", *outs[::-1], "--json", merged, "--save", str(tmp_path / "m.npz"))
    assert r.returncode == 0, r.stderr
    doc = json.load(open(merged))
    params = tcs.load_table_params(str(tmp_path / "m.npz"), doc)
    assert [r["row"] for r in doc["rows"]] == [1, 2] and [len(r["members"]) for r in doc["rows"]] == [4, 2]
    for row, P in zip(doc["rows"], params):
        for k, m in enumerate(row["members"]):
            assert np.array_equal(P["Wx"][k], saved[row["row"], m["seed"], m["variant"]])
    lone = str(tmp_path / "lone.json")                 # a shard whose weights are not beside it
    with open(outs[1]) as f, open(lone, "w") as g:
        g.write(f.read())
    r = cli("--merge", outs[0], lone, "--json", str(tmp_path / "x.json"), "--save", str(tmp_path / "x.npz"))
    assert r.returncode == 2 and "cannot read the weights" in r.stderr and "Traceback" not in r.stderr
    assert not os.path.exists(tmp_path / "x.json") and not os.path.exists(tmp_path / "x.npz")


def test_cli_runs_several_tables_on_one_axis_into_a_file_each(tmp_path):
    """--table 1,3nf: one run, resumed from its checkpoint; a results file and a weights file per
    table whose networks are those of the table run alone (budgets of 2 training streams)."""
    common = ["--learning", "online", "--seeds", "0", "--budget", "2", "--workers", "2"]
    r = cli("--table", "1,3nf", *common, "--json", str(tmp_path / "t{table}.json"), "--save",
            str(tmp_path / "t{table}.npz"), "--checkpoint", str(tmp_path / "c.npz"))
    assert r.returncode == 0 and "20 networks (10 row(s) of tables 1, 3nf" in r.stdout, r.stderr
    r = cli("--resume", str(tmp_path / "c.npz"), "--json", str(tmp_path / "r{table}.json"), "--workers", "1")
    assert r.returncode == 0, r.stderr
    r = cli("--table", "3nf", *common, "--json", str(tmp_path / "alone.json"), "--save", str(tmp_path / "alone.npz"))
    assert r.returncode == 0, r.stderr
    alone = json.load(open(tmp_path / "alone.json"))
    for a, b in zip(tcs.load_table_params(str(tmp_path / "alone.npz"), alone),
                    tcs.load_table_params(str(tmp_path / "t3nf.npz"), json.load(open(tmp_path / "t3nf.json")))):
        assert all(np.array_equal(a[n], b[n]) for n in a)       # the weights cut back to no input
    for name, rows in (("1", 7), ("3nf", 3)):
        for prefix in "tr":
            doc = json.load(open(tmp_path / f"{prefix}{name}.json"))
            assert doc["table"] == name and len(doc["rows"]) == rows and doc["finished"]
    for prefix in "tr":
        doc = json.load(open(tmp_path / f"{prefix}3nf.json"))
        assert [r["members"] for r in doc["rows"]] == [r["members"] for r in alone["rows"]]


def test_resume_keeps_the_wall_clock_budget_of_the_run(tmp_path):
    """A run stopped by --budget-minutes stays stopped on --resume (its budget is in the
    checkpoint, and the resumed run counts the time already spent); a new one extends it."""
    c = str(tmp_path / "c.npz")
    r = cli("--task", "gts", "--learning", "online", "--seeds", "0", "--budget", "1000000000",
            "--budget-minutes", "0.02", "--checkpoint", c, "--workers", "1")
    assert r.returncode == 0 and "wall-clock budget of 0.02 min reached" in r.stdout, r.stdout + r.stderr
    assert tcs.load_online_checkpoint(c).minutes == 0.02
    r = cli("--resume", c, "--workers", "1")
    assert r.returncode == 0 and "or 0.02 min" in r.stdout and "wall-clock budget of 0.02 min reached" in r.stdout
    run = tcs.load_online_checkpoint(c)
    more = round(run.seconds / 60 + 0.03, 3)       # 2 s beyond what it ran (a segment may overrun its budget)
    r = cli("--resume", c, "--workers", "1", "--budget-minutes", str(more))
    assert r.returncode == 0 and f"wall-clock budget of {more} min reached" in r.stdout, r.stdout + r.stderr
    assert tcs.load_online_checkpoint(c).steps > run.steps and tcs.load_online_checkpoint(c).minutes == more


@pytest.mark.parametrize("args,needle", [
    (["--task", "msd", "--learning", "online"], "not msd"),
    (["--task", "gts", "--learning", "online", "--momentum", "1"], "momentum = 1.0 must lie in [0, 1)"),
    (["--task", "gts", "--learning", "online", "--rows", "1"], "--rows has no effect with training"),
    (["--table", "gts", "--learning", "online", "--rows", "9"], "has rows 1-7, not 9"),
    (["--merge", "x.json"], "--json PATH"),
    (["--table", "1,3nf", "--learning", "online", "--json", "x.json"], "put {table} in the path"),
    (["--table", "all", "--learning", "online", "--rows", "1"], "--rows picks rows of one table"),
    (["--table", "all"], "several tables run together with --learning online only"),
    (["--table", "1,1", "--learning", "online"], "'1,1': give one of"),
])
def test_cli_rejects_bad_online_input_in_one_line(args, needle):
    r = cli(*args)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_damaged_checkpoint_is_one_line_and_exit_2(tmp_path):
    cfg = online("gts", F=5)
    good = str(tmp_path / "c.npz")
    tcs.save_online_checkpoint(good, tcs.OnlineRun(budgeted([(0, cfg, 0, "peep")], 5)))
    bad = str(tmp_path / "bad.npz")
    with open(good, "rb") as f, open(bad, "wb") as g:
        g.write(f.read()[:300])
    r = cli("--resume", bad)
    assert r.returncode == 2 and "is not an online checkpoint" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [["--resume"], ["--load"], ["--confirm"]])
def test_a_file_that_is_no_archive_at_all_is_named_in_words(tmp_path, args, rejected):
    """A text file where an .npz belongs: numpy takes it for a pickle and says so with advice
    to load it unsafely; the line says what the file is not, and nothing of numpy's advice."""
    (tmp_path / "x.npz").write_text("garbage")
    (tmp_path / "x.json").write_text('{"rows": []}')
    code, out, err = rejected(args + ["x" if args == ["--confirm"] else "x.npz"], tmp_path)
    assert code == 2 and "it is not an .npz archive" in err and "allow_pickle" not in err, err


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("mode", [["--task", "gts", "--learning", "online", "--budget", "100000000"],
                                  ["--seeds", "0-3"]])
def test_a_signal_ends_every_worker_prints_one_line_and_writes_nothing(tmp_path, sig, code, mode):
    out = str(tmp_path / "o.json")
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "timing_counting_spikes.py"), *mode, "--workers", "2",
                          "--json", out, "--save", str(tmp_path / "o.npz")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(100):                          # until both workers run, then a moment of work
        time.sleep(0.1)
        ps = subprocess.run(["ps", "-eo", "ppid"], capture_output=True, text=True).stdout.split()
        if ps.count(str(p.pid)) >= 2:
            break
    time.sleep(1.0)
    p.send_signal(sig)
    stdout, stderr = p.communicate(timeout=30)
    assert p.returncode == code, stderr
    assert stderr.strip().startswith("interrupted") and "nothing written" in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert os.listdir(tmp_path) == []
    # no worker outlives it
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-eo", "ppid,pid"], capture_output=True, text=True).stdout.split("\n")[1:]
    assert not [line for line in ps if line.split() and line.split()[0] == str(p.pid)]


def test_report_prints_every_kind_of_results_file(tmp_path):
    run = tcs.OnlineRun(budgeted([(0, online("nmsd", F=4), 0, v) for v in tcs.VARIANTS], 3))
    tcs.train_online(run, 1, log=lambda line: None)
    members, _ = tcs.online_results(run)
    path = str(tmp_path / "o.json")
    tcs.write_json(path, tcs.online_doc(run, members))
    for f, needle in ((os.path.join(ROOT, "results", "sweep.json"), "| seed | final MSE peep"),
                      (os.path.join(ROOT, "results", "table3.json"), "| PFG f_cos F=10 | peep | 100 | 145 ± 32"),
                      (path, "| NMSD F=4 I in {0,1} | vanilla | - | - | 0/1 (0-79 %) |")):
        r = cli("--report", f)
        assert r.returncode == 0 and needle in r.stdout, (f, r.stdout[:300], r.stderr)
    r = cli("--report", path, "--compare", os.path.join(ROOT, "results", "table1.json"))
    assert r.returncode == 0 and "batch recipe perfect" in r.stdout


def test_confirm_counts_a_batch_tables_perfect_networks_on_fresh_streams(tmp_path):
    out = str(tmp_path / "c.json")
    r = cli("--confirm", os.path.join(ROOT, "results", "table3"), "--json", out)
    assert r.returncode == 0, r.stderr
    doc = json.load(open(out))
    table = json.load(open(os.path.join(ROOT, "results", "table3.json")))
    row, won = doc["rows"][0], sum(m["streams"] is not None and m["variant"] == "peep" for m in table["rows"][0]["members"])
    assert won > 0 and row["ours"]["peep"]["perfect"] == won                        # f_cos F=10
    assert row["ours"]["peep"]["confirmed"] == won          # PFG: its one stream again, which they completed
    assert all(m["confirm_streams"] == 1 for m in row["members"] if m["streams"] is not None)   # PFG: one stream
    assert doc["confirm_env"] == tcs.environment()          # where the confirmation ran, beside the table's env
    r = cli("--confirm", str(tmp_path / "missing"))
    assert r.returncode == 2 and "cannot read the table run" in r.stderr


def test_the_gate_biases_reach_the_initial_weights_of_both_engines_and_every_results_file(tmp_path):
    """--gate-biases sets the paper cell's input, forget and output gate biases in the batch
    engine's parameters, the online engine's theta, and the config of every file written."""
    cfg = online("gts", F=4, gate_biases=(0.5, 2.0, -2.0))
    P = tcs.init_member(cfg, 3, "peep")
    H = cfg.hidden
    for k, b in zip((tcs.I_, tcs.F_, tcs.O_), cfg.gate_biases):
        assert np.all(tcs.gate(P["b"], k, H) == b)
    theta = tcs.online_state(budgeted([(cfg, 3, "peep")], 5))["theta"]
    assert np.array_equal(tcs.unpack(theta, H, 1)["b"][0], P["b"])
    for args, path in ((["--learning", "online", "--budget", "3", "--seeds", "1"], "o.json"),
                       (["--iters", "1", "--seeds", "1"], "b.json")):
        out = str(tmp_path / path)
        r = cli("--task", "gts", "--F", "4", "--cell", "paper", "--gate-biases", "0.5,2,-2", *args,
                "--workers", "1", "--json", out)
        assert r.returncode == 0, r.stderr
        doc = json.load(open(out))
        config = doc["rows"][0]["config"] if "rows" in doc else doc["config"]
        assert config["gate_biases"] == [0.5, 2.0, -2.0]
    old = dict(tcs.config_dict(cfg), paper_forget_bias=1.5)     # a file written before --gate-biases
    del old["gate_biases"]
    assert tcs.config_from_dict(old).gate_biases == (0.0, 1.5, 2.0)


def test_a_network_that_diverges_is_counted_in_its_row_and_the_others_finish(tmp_path):
    """One row with a huge alpha: its networks' weights leave the finite numbers and they end,
    counted as diverged with the stream they were in; the other row runs to its budget."""
    good = online("nmsd", F=4, delays=(0, 1), budget=60)
    wild = dataclasses.replace(good, alpha=1e300)
    nets = [(0, wild, s, v) for s in (0, 1) for v in tcs.VARIANTS] \
        + [(1, good, s, v) for s in (0, 1) for v in tcs.VARIANTS]
    run = tcs.OnlineRun(nets, table=None)
    lines = []
    tcs.train_online(run, 1, log=lines.append)
    members, _ = tcs.online_results(run)
    assert all(m["diverged_at"] is not None and m["streams"] is None for m in members if m["row"] == 0)
    assert all(m["diverged_at"] is None and (m["streams_run"] == 60 or m["streams"] is not None)
               for m in members if m["row"] == 1)
    assert sum("diverged after" in line for line in lines) == 4
    doc = tcs.online_doc(run, members)
    assert doc["rows"][0]["ours"]["peep"]["diverged"] == 2 and doc["rows"][1]["ours"]["peep"]["diverged"] == 0
    assert "2 diverged" in tcs.online_markdown(doc).splitlines()[2]


def test_the_long_run_agrees_with_the_1000_period_test_on_its_first_1000_periods(monkeypatch):
    """A hand-made paper cell whose state grows by a member's own rate each step fails once its
    output crosses the tolerance, some hundreds of periods in, at a period that depends on its
    seed's delays: the long run, built block by block and fed in chunks with streams of two
    seeds side by side, fails where the free-running test on the same 1000 periods does."""
    cfg = online("gts", F=5, delays=(0, 1, 2))
    members = [(3, "peep"), (3, "vanilla"), (8, "peep"), (8, "vanilla")]
    P = tcs.stack([tcs.init_member(cfg, s, v) for s, v in members])
    for v in P.values():
        v[:] = 0.0
    H = cfg.hidden
    for k, b in ((tcs.I_, 10.0), (tcs.F_, 10.0), (tcs.O_, 10.0)):
        tcs.gate(P["b"], k, H)[:] = b
    tcs.gate(P["b"], tcs.G_, H)[:] = np.array([0.003, 0.0031, 0.003, 0.0029])[:, None]
    P["Wy"][:] = 1.0
    monkeypatch.setattr(tcs.GTS, "tolerance", staticmethod(lambda cfg: 0.9999))
    held = tcs.long_run(P, cfg, members, periods=2000, block=300)
    for s in (3, 8):
        I = tcs.stream_delays(cfg, s, tcs.ONLINE_LONG, 0, [0], 1000)
        ks = [k for k, m in enumerate(members) if m[0] == s]
        periods, _, _ = tcs.free_run({n: v[ks] for n, v in P.items()}, tcs.cell_of(cfg), [members[k] for k in ks],
                                     {s: tcs.GTS.streams(cfg, I, int(np.sum(cfg.F + I)))}, 0.9999)
        assert np.array_equal(held[ks], periods[:, 0])
    assert np.all((held > 100) & (held < 1000)) and len(set(held)) == 4
    # a solution that never fails runs every period; NMSD has no long run
    monkeypatch.setattr(tcs.GTS, "tolerance", staticmethod(lambda cfg: 10.0))
    assert np.all(tcs.long_run(P, cfg, members, periods=2500, block=1000) == 2500)
    assert tcs.long_run(P, online("nmsd", F=5), members) is None


@pytest.mark.parametrize("state", ["done", "testing"])
def test_weights_change_only_at_training_targets_even_when_the_state_overflows(state):
    """A network whose cell state grows without bound (g fed back from its own output) runs
    for thousands of steps while it is perfect and waits for its segment to end, or while it
    runs a long test: its state reaches inf, and yet its weights and momentum stay exactly as
    they were (0 * inf = NaN in the gradient must not reach them)."""
    cfg = online("pfg", F=5, func="cos", periods=2, test_periods=10 ** 6, budget=10)
    run = tcs.OnlineRun(budgeted([(0, cfg, 0, "vanilla")], 10))      # no peephole closes a gate on it
    st = run.st
    P = tcs.unpack(st["theta"], cfg.hidden, 0)
    H = cfg.hidden
    for k, b in ((tcs.I_, 30.0), (tcs.F_, 30.0), (tcs.O_, 30.0), (tcs.G_, 1.0)):
        tcs.gate(P["b"], k, H)[:] = b
    tcs.gate(P["Wh"], tcs.G_, H)[:] = 2.0                 # g = 2 h + 1: c doubles every step
    st["theta"][:] = tcs.pack(P)
    st["vel"][:] = 1e-3
    st["tol"][:] = 1e308                                 # only a non-finite output ends the stream
    if state == "done":
        st["done"][:], st["learned_at"][:] = True, 0
    else:
        st["testing"][:] = True
    tcs.start_streams(st, np.ones(1, bool))               # its stream (a test's length) and trainf anew
    theta, vel = st["theta"].copy(), st["vel"].copy()
    net = nets_of(st, cfg, compact=0.0)          # a perfect network is stepped on, not left behind
    for _ in range(3000):                  # up to the step where the state overflows (a test then ends)
        net.run(1)
        if not np.all(np.isfinite(net.y)):
            break
    assert not np.all(np.isfinite(net.y)), "the state was meant to overflow"
    assert np.array_equal(st["theta"], theta) and np.array_equal(st["vel"], vel)


def test_an_online_run_of_a_row_the_paper_reports_shows_its_numbers_without_table():
    cfg = tcs.row_config(task="gts", learning="online", F=10, delays=(0,), variants=("peep",))
    run = tcs.OnlineRun(budgeted([(0, cfg, 0, "peep")], 1))
    doc = tcs.online_doc(run, tcs.online_results(run)[0])
    assert doc["rows"][0]["paper"] == TABLE_GTS_F10
    assert "| GTS F=10 I in {0} | peep | 100 | 41 ± 4 |" in tcs.online_markdown(doc)
    other = tcs.row_config(task="gts", learning="online", F=12, delays=(0,))
    assert tcs.paper_numbers(other) is None


TABLE_GTS_F10 = tcs.TABLES["gts"]["rows"][0]["paper"]


def test_wilson_interval_and_fisher_test_against_known_values():
    assert tcs.wilson(10, 10) == [pytest.approx(0.7225, abs=1e-4), 1.0]      # the interval holds k / n
    assert tcs.wilson(0, 10) == [0.0, pytest.approx(0.2775, abs=1e-4)]
    lo, hi = tcs.wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert tcs.fisher_exact(10, 10, 0, 10) == pytest.approx(1.0825e-5, rel=1e-3)
    assert tcs.fisher_exact(3, 10, 7, 10) == pytest.approx(0.1789, abs=1e-4)
    assert tcs.fisher_exact(5, 10, 5, 10) == 1.0


def test_mcnemar_on_the_seeds_where_exactly_one_variant_is_perfect():
    assert tcs.mcnemar_exact(0, 9) == 2 / 2 ** 9 and tcs.mcnemar_exact(5, 0) == 2 / 32
    assert tcs.mcnemar_exact(0, 0) == 1.0 and tcs.mcnemar_exact(3, 3) == 1.0
    assert tcs.mcnemar_exact(1, 6) == pytest.approx(2 * (1 + 7) / 128)
    # seeds 0-3: both perfect, only peep, only vanilla, neither; seed 4 has no vanilla network
    won = {0: (True, True), 1: (True, False), 2: (False, True), 3: (False, False), 4: (True, None)}
    members = [{"seed": s, "variant": v, "streams": 5 if w else None}
               for s, pair in won.items() for v, w in zip(tcs.VARIANTS, pair) if w is not None]
    assert tcs.paired_test(members) == {"pairs": 4, "peep_only": 1, "vanilla_only": 1, "mcnemar_p": 1.0}
    assert tcs.paired_test([m for m in members if m["variant"] == "peep"]) is None
    # the committed GTS table: F = 20, 0 of the seeds perfect only with peepholes, 15 only without
    doc = json.load(open(os.path.join(ROOT, "results", "online_tablegts.json")))
    t = tcs.paired_test(doc["rows"][1]["members"])
    assert (t["peep_only"], t["vanilla_only"]) == (0, 15) and t["mcnemar_p"] == pytest.approx(6.1e-5, rel=0.01)


def test_every_committed_online_tables_row_summary_follows_from_its_members():
    """The per-variant summaries stored in the committed online tables (and the start map) are
    what online_row_summary computes now from their members, so a table merged or reported
    again says what it said when it ran."""
    import glob
    paths = sorted(glob.glob(os.path.join(ROOT, "results", "online_table*.json"))) + \
        [os.path.join(ROOT, "results", "map.json")]
    assert len(paths) >= 7
    for path in paths:
        for r in tcs.read_json(path)["rows"]:
            variants = [v for v in tcs.VARIANTS if v in r["ours"]]
            new = json.loads(json.dumps(tcs.online_row_summary(r["members"], variants)))
            assert new == r["ours"], (path, r["label"])
