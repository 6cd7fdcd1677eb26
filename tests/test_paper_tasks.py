"""Tests for the paper's tasks: the generators, the free-running evaluator, the loss mask,
stop-at-first-error streams, freezing of perfect members, learning, and their CLI.

Every comparison states its tolerance; all arithmetic is float64.
"""
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import timing_counting_spikes as tcs  # noqa: E402


def cli(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "timing_counting_spikes.py"), *args],
                          capture_output=True, text=True, timeout=300)


def spikes(b, j):
    return np.flatnonzero(b.info["ends"][:, j])


# ---------------------------------------------------------------- generators

@pytest.mark.parametrize("delays", [(0, 1), (0, 1, 2), (0, 3)])
def test_cmsd_spacing_targets_and_silence_between_spikes(delays):
    cfg = tcs.Config(task="cmsd", F=7, delays=delays, periods=6, readout="sigmoid")
    b = tcs.CMSD.sample(cfg, np.random.default_rng(0), 200)
    scale = max(delays)                        # sigmoid output: delays mapped onto [0, 1]
    seen = set()
    for j in range(200):
        at = spikes(b, j)
        assert len(at) >= cfg.periods
        gaps = np.diff(np.concatenate([[-1], at]))             # F + I(n), the first from the reset
        assert set(gaps) <= {cfg.F + i for i in delays}
        seen |= set(gaps)
        np.testing.assert_array_equal(np.flatnonzero(b.x[:, 0, j]), at)       # input: the spikes
        np.testing.assert_array_equal(np.flatnonzero(b.mask[:, j]), at)       # a target only there
        np.testing.assert_allclose(b.d[at, j], (gaps - cfg.F) / scale, rtol=0, atol=1e-15)
        assert np.all(b.d[b.mask[:, j] == 0, j] == 0)
    assert seen == {cfg.F + i for i in delays}


def test_cmsd_linear_output_keeps_raw_delays_and_tolerance():
    cfg = tcs.Config(task="cmsd", F=5, delays=(0, 2), readout="linear")
    b = tcs.CMSD.sample(cfg, np.random.default_rng(1), 50)
    assert set(np.unique(b.d[b.mask > 0])) == {0.0, 2.0}
    assert tcs.CMSD.tolerance(cfg) == 0.49
    assert tcs.CMSD.tolerance(tcs.Config(task="cmsd", delays=(0, 1, 2), readout="sigmoid")) == 0.49 / 2


def test_nmsd_one_spike_per_stream_and_every_possible_test_stream():
    cfg = tcs.Config(task="nmsd", F=10, delays=(0, 1, 2), readout="sigmoid")
    b = tcs.NMSD.sample(cfg, np.random.default_rng(0), 100)
    assert b.d.shape == (12, 100)
    assert np.all(b.mask.sum(axis=0) == 1) and np.all(b.x.sum(axis=(0, 1)) == 1)
    at = np.argmax(b.mask, axis=0)
    np.testing.assert_array_equal(b.d[at, np.arange(100)], (at - 9) / 2)
    t = tcs.NMSD.test_set(cfg, None)
    np.testing.assert_array_equal(np.argmax(t.mask, axis=0), [9, 10, 11])     # one per delay
    assert t.info["periods"] == 1


def test_gts_holds_the_delay_through_its_interval_and_targets_every_step():
    cfg = tcs.Config(task="gts", F=6, delays=(0, 1, 2), periods=4)
    b = tcs.GTS.sample(cfg, np.random.default_rng(3), 50)
    assert np.all(b.mask == 1)                   # training streams: a target at every step
    for j in range(50):
        at = spikes(b, j)
        np.testing.assert_array_equal(np.flatnonzero(b.d[:, j]), at)         # 1 at spikes, else 0
        starts = np.concatenate([[0], at[:-1] + 1])
        for s, e in zip(starts, at):
            held = b.x[s:e + 1, 0, j]
            assert np.all(held == held[0]) and held[0] == e - s + 1 - cfg.F   # I(n) = gap - F
    t = tcs.GTS.test_set(dataclasses_replace(cfg, test_streams=3, test_periods=20), np.random.default_rng(0))
    for j in range(3):
        at = spikes(t, j)
        assert len(at) == 20 and np.all(t.mask[:at[-1] + 1, j] == 1) and np.all(t.mask[at[-1] + 1:, j] == 0)


def dataclasses_replace(cfg, **kw):
    import dataclasses
    return dataclasses.replace(cfg, **kw)


@pytest.mark.parametrize("func,F", [("cos", 10), ("tri", 10), ("rect", 10), ("tri", 25)])
def test_pfg_targets_match_the_paper_formulas(func, F):
    cfg = tcs.Config(task="pfg", F=F, func=func, periods=3)
    b = tcs.PFG.sample(cfg, None, 2)
    assert b.x.shape == (3 * F, 0, 2) and b.mask is None
    t = np.arange(3 * F)
    m = t % F
    want = {"cos": 0.5 * (1 - np.cos(2 * np.pi * t / F)),
            "tri": np.where(m > F / 2, 2 * m / F, 2 - 2 * m / F) - 1,     # the paper's, minus 1
            "rect": (m > F / 2).astype(float)}[func]
    np.testing.assert_allclose(b.d[:, 0], want, rtol=0, atol=1e-12)
    assert b.d.min() >= 0 and b.d.max() <= 1
    np.testing.assert_array_equal(np.flatnonzero(b.info["ends"][:, 0]), np.arange(F - 1, 3 * F, F))
    # the paper's slopes: max|f'| = pi/F (cos), 2/F (tri), 1 (rect)
    slope = {"cos": np.sin(np.pi / F) / 1, "tri": 2 / F, "rect": 1.0}[func]
    assert np.max(np.abs(np.diff(b.d[:, 0]))) == pytest.approx(slope, abs=1e-12)


def test_pfg_test_set_is_one_stream_shared_by_every_seed():
    cfg = tcs.Config(task="pfg", F=10, seeds=(0, 1), test_periods=7, hidden=1)
    tests = tcs.test_sets(cfg)
    assert tests[0].d.shape == (70, 1)
    np.testing.assert_array_equal(tests[0].d, tests[1].d)


def test_test_sets_of_seeds_are_padded_without_targets_or_period_ends():
    cfg = tcs.Config(task="cmsd", F=5, delays=(0, 4), seeds=(0, 1, 2), test_periods=30, test_streams=4)
    tests = tcs.test_sets(cfg)
    assert len({b.d.shape for b in tests.values()}) == 1
    for b in tests.values():
        assert np.all(b.info["ends"].sum(axis=0) == 30)
        assert np.all(b.mask.sum(axis=0) == 30)


# ---------------------------------------------------------------- free-running evaluator

def constant_net(value, readout="linear", n_in=0):
    """A one-cell network whose output is `value` at every step (Wy = 0)."""
    P = {"Wx": np.zeros((1, n_in, 4)), "Wh": np.zeros((1, 1, 4)), "b": np.zeros((1, 4)),
         "Wy": np.zeros((1, 1, 1)), "by": np.array([[value]]),
         "p_i": np.zeros((1, 1)), "p_f": np.zeros((1, 1)), "p_o": np.zeros((1, 1))}
    return P, tcs.Cell("modern", readout)


def hand_stream(targets, F, mask=None):
    L = len(targets)
    ends = np.zeros((L, 1), bool)
    ends[F - 1::F] = True
    return tcs.Batch(np.zeros((L, 0, 1)), np.asarray(targets, float)[:, None],
                     {"ends": ends, "periods": L // F}, None if mask is None else np.asarray(mask, float)[:, None])


@pytest.mark.parametrize("chunk", [3, 7, 500])
def test_free_run_stops_at_the_first_wrong_prediction(monkeypatch, chunk):
    monkeypatch.setattr(tcs, "FREE_RUN_CHUNK", chunk)
    F = 4
    # right (|0.2 - 0.4| < 0.3) for 3 whole periods and 2 steps, then wrong at step 14
    d = [0.4] * 14 + [0.9] + [0.2] * 25
    P, cell = constant_net(0.2)
    periods, sq, n = tcs.free_run(P, cell, [(0, "peep")], {0: hand_stream(d, F)}, 0.3)
    assert periods.tolist() == [[3]]
    # squared errors over the steps run, the wrong one included
    assert n[0] == 15 and sq[0] == pytest.approx(14 * 0.2 ** 2 + 0.7 ** 2, rel=1e-12)


def test_free_run_ignores_steps_without_target_and_counts_a_perfect_stream(monkeypatch):
    monkeypatch.setattr(tcs, "FREE_RUN_CHUNK", 5)
    F = 4
    d = [0.9] * 40                           # wrong everywhere ...
    mask = [0, 0, 0, 1] * 10                 # ... except that targets exist only at period ends
    d[3::4] = [0.1] * 10
    P, cell = constant_net(0.2)
    periods, _, n = tcs.free_run(P, cell, [(0, "peep")], {0: hand_stream(d, F, mask)}, 0.3)
    assert periods.tolist() == [[10]] and n[0] == 10      # perfect: all periods completed


def test_free_run_treats_nan_as_wrong():
    P, cell = constant_net(np.nan)
    periods, _, n = tcs.free_run(P, cell, [(0, "peep")], {0: hand_stream([0.5] * 8, 4)}, 0.3)
    assert periods.tolist() == [[0]] and n[0] == 1


def test_free_run_gts_constant_zero_output_fails_at_the_first_spike():
    cfg = tcs.Config(task="gts", F=6, delays=(0, 1), test_streams=5, test_periods=50, seeds=(0,),
                     hidden=1, readout="sigmoid")
    tests = tcs.test_sets(cfg)
    P, cell = constant_net(-50.0, "sigmoid", n_in=1)          # sigmoid(-50): a flat 0
    periods, sq, n = tcs.free_run(P, cell, [(0, "peep")], tests, 0.49)
    first = np.argmax(tests[0].d, axis=0)                      # index of each stream's first spike
    assert periods.tolist() == [[0] * 5]
    assert n[0] == np.sum(first + 1)                            # every step up to the spike ran
    assert sq[0] == pytest.approx(5.0, rel=1e-9)                # one miss of 1.0 per stream


def test_free_run_memory_does_not_grow_with_the_stream():
    """Peak memory of the run itself (test streams built beforehand) for 100 vs 2000 periods."""
    P, cell = constant_net(0.5)

    def peak(periods):
        tests = {0: hand_stream([0.5] * (10 * periods), 10)}
        tracemalloc.start()
        out = tcs.free_run(P, cell, [(0, "peep")], tests, 0.3)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert out[0][0, 0] == periods
        return top
    small, large = peak(100), peak(2000)
    assert large < 1.5 * small, (small, large)


# ---------------------------------------------------------------- loss mask and stop at first error

def test_mask_removes_unsupervised_steps_from_loss_and_gradient():
    cfg = tcs.Config(task="cmsd", F=4, delays=(0, 1), periods=3, hidden=2, batch=3)
    b = tcs.CMSD.sample(cfg, np.random.default_rng(0), 3)
    P = tcs.stack([tcs.init_member(cfg, 0, "peep")])
    x, d, m = b.x[:, :, None], b.d[:, None], b.mask[:, None]
    peep = np.array([True])
    loss, g, y = tcs.loss_and_grads(P, x, d, peep, mask=m)
    assert loss[0] == pytest.approx(0.5 * np.sum(m * (y - d) ** 2) / 3, rel=1e-12)
    # changing targets where the mask is 0 changes nothing
    d2 = np.where(m > 0, d, 7.0)
    loss2, g2, _ = tcs.loss_and_grads(P, x, d2, peep, mask=m)
    assert loss2[0] == loss[0] and all(np.array_equal(g[k], g2[k]) for k in g)


def test_stop_tol_cuts_every_stream_after_its_first_wrong_step():
    cfg = tcs.Config(task="pfg", F=5, periods=4, hidden=2)
    b = tcs.PFG.sample(cfg, None, 1)
    P = tcs.stack([tcs.init_member(cfg, 0, "peep")])
    x, d = b.x[:, :, None], b.d[:, None]
    peep = np.array([True])
    _, _, y = tcs.loss_and_grads(P, x, d, peep)
    wrong = np.abs(y - d)[:, 0, 0] >= 0.3
    first = int(np.argmax(wrong))
    assert wrong.any() and first < len(d) - 1
    cut = np.zeros_like(d)
    cut[:first + 1] = 1.0                    # the same as a mask ending at the first wrong step
    l1, g1, _ = tcs.loss_and_grads(P, x, d, peep, stop_tol=0.3)
    l2, g2, _ = tcs.loss_and_grads(P, x, d, peep, mask=cut)
    assert l1[0] == l2[0] and all(np.array_equal(g1[k], g2[k]) for k in g1)


# ---------------------------------------------------------------- training

PFG_SMALL = tcs.row_config(task="pfg", func="cos", F=10, iters=1500, eval_every=100, seeds=(0, 1),
                           test_periods=100, lr=3e-2)


def test_pfg_cos_is_learned_and_a_perfect_member_is_frozen():
    P, res = tcs.train(PFG_SMALL, log=lambda line: None)
    won = [m for m in res["members"] if m["solved_at"] is not None]
    assert won, "no member learned f_cos within 1500 batches"
    for m in won:
        k = m["history"]["iter"].index(m["solved_at"])
        assert m["history"]["perfect"][k] == 1.0 and m["history"]["periods"][k] == 100.0
        assert all(p == 1.0 for p in m["history"]["perfect"][k:])     # frozen: stays perfect
        assert m["streams"] == m["solved_at"] * PFG_SMALL.batch
    # a frozen member's weights are those it had when found perfect
    Ps, res_s = tcs.train(PFG_SMALL, log=lambda line: None, snapshots=True)
    for j, m in enumerate(res_s["members"]):
        if m["solved_at"] is not None:
            k = m["history"]["iter"].index(m["solved_at"])
            for name in tcs.PARAMS:
                np.testing.assert_array_equal(m["snapshots"][k][name][0], Ps[name][j])


def test_training_with_streams_stopped_at_the_first_error_cuts_every_batch(monkeypatch):
    """Training hands the task's tolerance to the loss at every batch (whose cut is tested
    above) exactly when stop_on_error is set, and the cut changes what is learned."""
    cfg = tcs.row_config(task="pfg", func="cos", F=10, iters=200, eval_every=100, seeds=(0,),
                         variants=("peep",), test_periods=20)
    seen, inner = [], tcs.loss_and_grads

    def spy(*args):
        seen.append(args[-1])                       # stop_tol
        return inner(*args)
    monkeypatch.setattr(tcs, "loss_and_grads", spy)
    Pa, _ = tcs.train(cfg, log=lambda line: None)
    assert seen == [None] * cfg.iters
    seen.clear()
    Pb, _ = tcs.train(dataclasses_replace(cfg, stop_on_error=True), log=lambda line: None)
    assert seen == [tcs.PFG.tolerance(cfg)] * cfg.iters == [0.3] * cfg.iters
    assert all(np.all(np.isfinite(Pb[k])) for k in Pb)
    assert not np.array_equal(Pa["Wh"], Pb["Wh"])


def test_paper_tasks_test_on_fresh_streams_at_every_test_and_msd_on_its_fixed_set(monkeypatch):
    """CMSD and GTS draw new test streams at every test (the draw is named by the iteration,
    per seed, so a solo run meets the same ones); MSD keeps its fixed held-out set."""
    seen, inner = [], tcs.evaluate

    def spy(cfg, P, members, tests):
        seen.append({s: b.x.copy() for s, b in tests.items()})
        return inner(cfg, P, members, tests)
    monkeypatch.setattr(tcs, "evaluate", spy)
    cfg = tcs.row_config(task="cmsd", F=4, delays=(0, 1), iters=30, eval_every=10, seeds=(0, 1), test_periods=20)
    tcs.train(cfg, log=lambda line: None)
    assert len(seen) >= 3
    for a, b in zip(seen, seen[1:]):
        assert not np.array_equal(a[0], b[0]) and not np.array_equal(a[1], b[1])
    np.testing.assert_array_equal(tcs.test_sets(cfg, draw=10)[1].x, seen[1][1])
    assert not np.array_equal(tcs.test_sets(cfg)[1].x, seen[1][1])      # not the fixed set either
    seen.clear()
    tcs.train(tcs.Config(T=40, D_min=5, D_max=12, hidden=2, iters=20, eval_every=10, n_test=8, seeds=(0,)),
              log=lambda line: None)
    assert len(seen) == 3 and all(np.array_equal(seen[0][0], x[0]) for x in seen)


def test_ensemble_member_equals_its_solo_run_with_freezing():
    """A member frozen in the ensemble when it became perfect (seed 0 peephole) and one that
    trained on to the end (seed 1 vanilla) each equal their solo runs."""
    _, res = tcs.train(PFG_SMALL, log=lambda line: None)
    picked = [m for m in res["members"] if (m["seed"], m["variant"]) in ((0, "peep"), (1, "vanilla"))]
    assert picked[0]["streams"] is not None and picked[1]["streams"] is None      # one frozen, one not
    for m in picked:
        _, solo = tcs.train(PFG_SMALL, members=[(m["seed"], m["variant"])], log=lambda line: None)
        s = solo["members"][0]
        assert s["history"] == m["history"] and s["streams"] == m["streams"]


def test_workers_do_not_change_paper_task_results():
    _, one = tcs.train_parallel(PFG_SMALL, 1, log=lambda line: None)
    _, two = tcs.train_parallel(PFG_SMALL, 2, log=lambda line: None)
    assert [m["history"] for m in one["members"]] == [m["history"] for m in two["members"]]


def test_fair_ablation_on_paper_tasks_shares_batches_and_test_streams():
    cfg = tcs.row_config(task="gts", F=5, delays=(0, 1), seeds=(3,), test_periods=10)
    a = tcs.GTS.sample(cfg, tcs.rng_for(3, tcs.STREAM_TRAIN), 4)
    b = tcs.GTS.sample(cfg, tcs.rng_for(3, tcs.STREAM_TRAIN), 4)
    np.testing.assert_array_equal(a.x, b.x)
    Pp, Pv = tcs.init_member(cfg, 3, "peep"), tcs.init_member(cfg, 3, "vanilla")
    for k in tcs.SHARED:
        np.testing.assert_array_equal(Pp[k], Pv[k])


# ---------------------------------------------------------------- tables and CLI

def test_row_summary_counts_perfect_members_and_their_streams():
    cfg = tcs.row_config(task="pfg", func="cos", F=10)
    res = {"members": [{"variant": "peep", "streams": 100, "final": {"rmse": 0.1, "periods": 1000.0}},
                       {"variant": "peep", "streams": 300, "final": {"rmse": 0.3, "periods": 1000.0}},
                       {"variant": "peep", "streams": None, "final": {"rmse": 0.5, "periods": 3.0}},
                       {"variant": "vanilla", "streams": None, "final": {"rmse": 0.2, "periods": 0.0}}]}
    s = tcs.row_summary(cfg, res)
    assert s["peep"]["perfect"] == 2 and s["peep"]["percent"] == pytest.approx(200 / 3)
    assert s["peep"]["streams_mean"] == 200 and s["peep"]["streams_std"] == pytest.approx(np.sqrt(2e4))
    assert s["peep"]["rmse_mean"] == pytest.approx(0.2)
    assert s["vanilla"]["perfect"] == 0 and s["vanilla"]["streams_mean"] is None
    assert "| PFG f_cos F=10 | vanilla | 90 | 2477 ± 341 | 0.13 ± 0.033 | 0 | - | - | 0 |" in \
        tcs.table_markdown({"rows": [{"label": "PFG f_cos F=10", "config": {"task": "pfg"},
                                      "paper": tcs.TABLES["3"]["rows"][0]["paper"], "ours": s}]})


def test_cli_trains_a_paper_task_and_prints_its_table(tmp_path):
    """The printed summary is the JSON's: per network its periods, perfect flag and streams,
    then per variant the count of perfect networks."""
    js = tmp_path / "r.json"
    r = cli("--task", "pfg", "--func", "cos", "--seeds", "0-1", "--iters", "300", "--eval-every", "100",
            "--test-periods", "20", "--json", str(js))
    assert r.returncode == 0, r.stderr
    doc = json.loads(js.read_text())
    lines = r.stdout.splitlines()
    head = next(k for k, line in enumerate(lines) if line.split()[:2] == ["seed", "variant"])
    assert lines[head].split()[2:] == ["periods", "perfect", "sqrt", "MSE", "streams"]
    for m, line in zip(doc["members"], lines[head + 1:]):
        f = m["final"]
        assert line.split() == [str(m["seed"]), m["variant"], f"{f['periods']:.1f}", f"{f['perfect']:.0f}",
                                f"{f['rmse']:.3f}", "-" if m["streams"] is None else str(m["streams"])]
    for v in ("peep", "vanilla"):
        n = sum(m["final"]["perfect"] for m in doc["members"] if m["variant"] == v)
        mean = next(line for line in lines if line.split()[:2] == ["mean", v])
        assert mean.split()[3] == f"{n:.0f}/2"


@pytest.mark.parametrize("args,needle", [
    (["--task", "pfg", "--func", "sine"], "invalid choice: 'sine'"),
    (["--task", "cmsd", "--delays", "0,x"], "not a list of integers"),
    (["--task", "cmsd", "--delays", "1,1"], "delays [1, 1] must be distinct"),
    (["--task", "gts", "--F", "1"], "F = 1 must be an integer >= 2"),
    (["--stop-on-error", "yes"], "--stop-on-error has no effect with --task msd"),
    (["--table", "9"], "'9': give one of 1, gts, 3"),
    (["--table", "3", "--func", "tri"], "--table 3 sets --F, --delays, --func, --task per row; drop --func"),
    (["--table", "1", "--lr", "0"], "'0' must be > 0"),
])
def test_cli_rejects_bad_paper_task_input_in_one_line(args, needle, rejected, tmp_path):
    code, out, err = rejected(args, tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


def test_a_diverged_network_of_a_paper_task_fails_and_stops_while_the_others_go_on(monkeypatch):
    """MSD stops the run (exit 3); on the paper's tasks the network whose training MSE leaves
    every sane bound is counted as failed and frozen, and the table says so."""
    cfg = tcs.row_config(task="pfg", func="cos", F=10, iters=60, eval_every=20, seeds=(0, 1), test_periods=20)
    inner = tcs.loss_and_grads

    def blow_up(P, x, d, peep, *args):
        loss, grads, y = inner(P, x, d, peep, *args)
        loss = loss.copy()
        loss[1] = np.inf                                    # the vanilla network of seed 0
        return loss, grads, y
    monkeypatch.setattr(tcs, "loss_and_grads", blow_up)
    P, res = tcs.train(cfg, log=lambda line: None)
    ms = res["members"]
    assert [m["diverged_at"] for m in ms] == [None, 1, None, None]
    assert ms[1]["streams"] is None and ms[1]["history"]["iter"] == [0, 20, 40, 60]
    s = tcs.row_summary(cfg, res)
    assert s["vanilla"]["diverged"] == 1 and s["peep"]["diverged"] == 0
    row = tcs.table_markdown({"rows": [{"label": "PFG f_cos F=10", "config": {"task": "pfg"},
                                        "paper": tcs.TABLES["3"]["rows"][0]["paper"], "ours": s}]})
    assert "(1 diverged)" in row.splitlines()[2] and "diverged" not in row.splitlines()[3]
    with pytest.raises(tcs.DivergenceError):
        tcs.train(tcs.Config(T=40, D_min=5, D_max=12, hidden=2, iters=5, n_test=8, seeds=(0,)), log=lambda line: None)
