"""Tests for timing_counting_spikes: gradients, structure, fairness, determinism, files, CLI, learning.

Every comparison states its tolerance; all arithmetic is float64.
"""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import timing_counting_spikes as tcs  # noqa: E402

# A small MSD config that trains in seconds and still needs timing (D up to 12, T 40).
SMALL = tcs.Config(T=40, D_min=5, D_max=12, hidden=8, iters=60, batch=16, n_test=64,
                   eval_every=20, seeds=(0, 1), variants=tcs.VARIANTS)


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "timing_counting_spikes.py"), *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


# ---------------------------------------------------------------- an independent reference cell

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def reference_forward(P, x, peep):
    """Textbook LSTM, one model, one step at a time, np.tanh, no fused matrices.

    P: one model's params (no model axis); x (T, I, N). Returns y (T, N).
    """
    H = P["Wh"].shape[0]
    T, _, N = x.shape
    h, c = np.zeros((N, H)), np.zeros((N, H))
    ys = []
    for t in range(T):
        z = x[t].T @ P["Wx"] + h @ P["Wh"] + P["b"]
        zi, zf, zg, zo = (z[:, k * H:(k + 1) * H] for k in range(4))
        if peep:
            zi, zf = zi + P["p_i"] * c, zf + P["p_f"] * c
        i, f, g = sigmoid(zi), sigmoid(zf), np.tanh(zg)
        c = f * c + i * g
        o = sigmoid(zo + P["p_o"] * c) if peep else sigmoid(zo)
        h = o * np.tanh(c)
        ys.append((h @ P["Wy"])[:, 0] + P["by"][0])
    return np.array(ys)


def random_member(cfg, seed, variant, scale=0.5):
    P = tcs.init_member(cfg, seed, variant)
    r = np.random.default_rng(seed + 100)
    for k in P:
        if k in tcs.SHARED or variant == "peep":
            P[k] = P[k] + scale * r.standard_normal(P[k].shape)
    return P


@pytest.mark.parametrize("variant", tcs.VARIANTS)
def test_cell_matches_textbook_reference(variant):
    cfg = dataclasses.replace(SMALL, hidden=5)
    P = random_member(cfg, 3, variant)
    batch = tcs.MSD.sample(cfg, np.random.default_rng(0), 7)
    want = reference_forward(P, batch.x, peep=(variant == "peep"))
    Pm = tcs.stack([P])
    _, _, y_train = tcs.loss_and_grads(Pm, batch.x[:, :, None], batch.d[:, None],
                                        np.array([variant == "peep"]))
    y_pred = tcs.predict(Pm, batch.x[:, :, None])
    np.testing.assert_allclose(y_train[:, 0], want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(y_pred[:, 0], want, rtol=0, atol=1e-12)


def test_peepholes_at_zero_equal_the_vanilla_cell():
    """A peephole model whose p_* are zero computes exactly what the vanilla reference does."""
    cfg = dataclasses.replace(SMALL, hidden=6)
    P = random_member(cfg, 5, "peep")
    for k in tcs.PEEPS:
        P[k][:] = 0.0
    batch = tcs.MSD.sample(cfg, np.random.default_rng(1), 9)
    x, d = batch.x[:, :, None], batch.d[:, None]
    loss_p, g_p, y_p = tcs.loss_and_grads(tcs.stack([P]), x, d, np.array([True]))
    loss_v, g_v, y_v = tcs.loss_and_grads(tcs.stack([P]), x, d, np.array([False]))
    np.testing.assert_allclose(y_p[:, 0], reference_forward(P, batch.x, peep=False), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(y_p, y_v)
    np.testing.assert_array_equal(loss_p, loss_v)
    for k in tcs.SHARED:
        np.testing.assert_array_equal(g_p[k], g_v[k])
    for k in tcs.PEEPS:
        assert np.all(g_v[k] == 0.0)
        assert np.any(g_p[k] != 0.0), f"peephole gradient {k} should be live in the peep variant"


# ---------------------------------------------------------------- gradient check

def test_gradcheck_passes_for_both_variants():
    lines = []
    worst = tcs.gradcheck(log=lines.append)
    assert worst <= tcs.GRADCHECK_TOL, "\n".join(lines)
    text = "\n".join(lines)
    for name in tcs.PARAMS:
        assert f"  {name} " in text, f"gradcheck did not report {name}"


def test_gradcheck_fails_on_a_wrong_gradient(monkeypatch):
    real = tcs.backward

    def broken(W, dy, ws):
        g = real(W, dy, ws)
        g["p_f"] = g["p_f"] * 1.001
        return g
    monkeypatch.setattr(tcs, "backward", broken)
    assert tcs.gradcheck(log=lambda line: None) > tcs.GRADCHECK_TOL


def test_gradcheck_cli_exit_code():
    r = cli("--gradcheck")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout


# ---------------------------------------------------------------- the task

def test_msd_generator_spacing_targets_and_coverage():
    cfg = tcs.Config(T=30, D_min=3, D_max=7)
    b = tcs.MSD.sample(cfg, np.random.default_rng(0), 20000)
    t1, t2, tt = b.info["t1"], b.info["t2"], b.info["target"]
    D = t2 - t1
    assert D.min() == cfg.D_min and D.max() == cfg.D_max
    np.testing.assert_array_equal(tt, t1 + 2 * D)
    assert tt.max() <= cfg.T - 1 and t1.min() == 0
    cols = np.arange(len(t1))
    assert np.all(b.x.sum(axis=(0, 1)) == 2) and np.all(b.x[t1, 0, cols] == 1) and np.all(b.x[t2, 0, cols] == 1)
    assert np.all(b.d.sum(axis=0) == 1) and np.all(b.d[tt, cols] == 1)
    for d in range(cfg.D_min, cfg.D_max + 1):     # every legal start occurs for every gap
        assert set(t1[D == d]) == set(range(cfg.T - 2 * d))


@pytest.mark.parametrize("T,dmin,dmax", [(150, 30, 75), (150, 0, 10), (150, 40, 30), (20, 5, 10)])
def test_impossible_task_configs_are_rejected(T, dmin, dmax):
    with pytest.raises(ValueError, match="D"):
        tcs.Config(T=T, D_min=dmin, D_max=dmax).validate()


def test_solved_criterion():
    cfg = tcs.Config(T=12, D_min=2, D_max=3)
    b = tcs.Batch(np.zeros((12, 1, 3)), np.zeros((12, 3)),
                  {"t1": np.array([0, 0, 1]), "t2": np.array([2, 3, 4]), "target": np.array([4, 6, 7])})
    y = np.zeros((12, 3))
    y[4, 0] = 1.0            # exact
    y[7, 1] = 1.0            # one late
    y[2, 2] = 9.0            # a big output before t2 does not count...
    y[7, 2] = 0.5            # ...the peak after t2 is on target
    np.testing.assert_array_equal(tcs.MSD.solved(cfg, y, b, 0), [True, False, True])
    np.testing.assert_array_equal(tcs.MSD.solved(cfg, y, b, 1), [True, True, True])


# ---------------------------------------------------------------- fairness, ensembles, determinism

def test_fair_ablation_shares_every_common_tensor():
    cfg = SMALL
    for s in cfg.seeds:
        Pp, Pv = tcs.init_member(cfg, s, "peep"), tcs.init_member(cfg, s, "vanilla")
        for k in tcs.SHARED:
            np.testing.assert_array_equal(Pp[k], Pv[k])
        assert all(np.any(Pp[k] != 0) for k in tcs.PEEPS)
        assert all(np.all(Pv[k] == 0) for k in tcs.PEEPS)
    batches = {s: tcs.MSD.sample(cfg, tcs.rng_for(s, tcs.STREAM_TRAIN), cfg.batch) for s in cfg.seeds}
    members = tcs.members_of(cfg)
    x, d, _ = tcs.stack_inputs(batches, members)
    np.testing.assert_array_equal(x[:, :, 0], x[:, :, 1])   # seed 0: peep and vanilla see one batch
    assert not np.array_equal(x[:, :, 0], x[:, :, 2])       # seed 1 sees another


def test_ensemble_member_equals_solo_run():
    cfg = dataclasses.replace(SMALL, iters=200, eval_every=100)
    P_all, res_all = tcs.train(cfg, log=lambda line: None)
    for k, (s, v) in enumerate(tcs.members_of(cfg)):
        solo = dataclasses.replace(cfg, seeds=(s,), variants=(v,))
        P1, res1 = tcs.train(solo, log=lambda line: None)
        for name in tcs.PARAMS:
            np.testing.assert_allclose(P_all[name][k], P1[name][0], rtol=0, atol=1e-9,
                                       err_msg=f"member {s}/{v} param {name}")
        np.testing.assert_allclose(res_all["members"][k]["history"]["test_mse"],
                                   res1["members"][0]["history"]["test_mse"], rtol=1e-9, atol=0)


def test_training_is_deterministic():
    P1, r1 = tcs.train(SMALL, log=lambda line: None)
    P2, r2 = tcs.train(SMALL, log=lambda line: None)
    for name in tcs.PARAMS:
        np.testing.assert_array_equal(P1[name], P2[name])
    assert [m["history"] for m in r1["members"]] == [m["history"] for m in r2["members"]]


def test_two_worker_processes_match_one():
    cfg = dataclasses.replace(SMALL, seeds=(0, 1, 2))
    P1, r1 = tcs.train_parallel(cfg, workers=1, log=lambda line: None)
    P2, r2 = tcs.train_parallel(cfg, workers=2, log=lambda line: None)
    assert [(m["seed"], m["variant"]) for m in r2["members"]] == tcs.members_of(cfg)
    for name in tcs.PARAMS:
        np.testing.assert_allclose(P1[name], P2[name], rtol=0, atol=1e-9)


def test_divergence_stops_training():
    cfg = dataclasses.replace(SMALL, lr=1e300)
    with pytest.raises(tcs.DivergenceError, match="diverged at iteration"):
        tcs.train(cfg, log=lambda line: None)


# ---------------------------------------------------------------- learning

def test_short_training_run_learns():
    cfg = dataclasses.replace(SMALL, iters=400, batch=32, eval_every=100, n_test=256, lr=1e-2,
                              lr_halve_every=200, seeds=(0, 1))
    _, res = tcs.train(cfg, log=lambda line: None)
    for m in res["members"]:
        h = m["history"]
        start_mse, end_mse = h["test_mse"][0], m["tail"]["test_mse"]
        assert end_mse < 0.75 * start_mse, f"{m['seed']}/{m['variant']}: MSE {start_mse:.4f} -> {end_mse:.4f}"
        assert h["solve"][0] < 0.2 and m["tail"]["solve"] > 0.5, \
            f"{m['seed']}/{m['variant']}: solve {h['solve'][0]:.3f} -> tail {m['tail']['solve']:.3f}"


# ---------------------------------------------------------------- files and the command line

def test_checkpoint_round_trip_reproduces_test_metrics(tmp_path):
    P, res = tcs.train(SMALL, log=lambda line: None)
    path = str(tmp_path / "run.npz")
    tcs.save_checkpoint(path, SMALL, P, tcs.members_of(SMALL))
    cfg, P2, members = tcs.load_checkpoint(path)
    assert cfg == SMALL and members == tcs.members_of(SMALL)
    metrics = tcs.evaluate(cfg, P2, members, tcs.test_sets(cfg))
    assert metrics == [m["final"] for m in res["members"]]


def test_cli_json_and_checkpoint(tmp_path):
    js, ck = tmp_path / "r.json", tmp_path / "r.npz"
    args = ["--T", "40", "--D-min", "5", "--D-max", "12", "--iters", "40", "--eval-every", "20",
            "--n-test", "32", "--seeds", "0-1", "--workers", "2", "--json", str(js), "--save", str(ck)]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    doc = json.loads(js.read_text())
    assert doc["config"]["seeds"] == [0, 1] and len(doc["members"]) == 4
    assert doc["members"][0]["history"]["iter"] == [0, 20, 40]
    assert set(doc["summary"]) == {"peep", "vanilla"}
    rep = cli("--report", str(js))
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout.startswith("| seed | final MSE peep | final MSE vanilla |")
    assert "| **mean** |" in rep.stdout and "seeds where peep is better" in rep.stdout
    r2 = cli("--load", str(ck))
    assert r2.returncode == 0, r2.stderr
    want = [f"{m['final']['solve']:.3f}" for m in doc["members"]]
    got = [line.split()[4] for line in r2.stdout.splitlines()[1:5]]
    assert got == want


@pytest.mark.parametrize("args,needle", [
    (["--iters", "-1"], "-1"),
    (["--batch", "0"], "'0'"),
    (["--lr", "0"], "'0'"),
    (["--lr", "nan"], "nan"),
    (["--D-max", "75"], "D_max = 75"),
    (["--D-min", "40", "--D-max", "30"], "[40, 30]"),
    (["--seeds", "3-1"], "3-1"),
    (["--cell", "retro"], "retro"),
    (["--load", "/nonexistent/run.npz"], "/nonexistent/run.npz"),
])
def test_bad_input_gives_one_clear_line_and_exit_2(args, needle, tmp_path, rejected):
    out = tmp_path / "never.json"
    more = [] if "--load" in args else ["--iters" if "--iters" not in args else "--eval-every", "5", "--json", str(out)]
    code, stdout, err = rejected(args + more, tmp_path)
    assert code == 2, stdout + err
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert not out.exists() and os.listdir(tmp_path) == []


def test_mismatched_checkpoint_is_rejected(tmp_path):
    P, _ = tcs.train(dataclasses.replace(SMALL, iters=0), log=lambda line: None)
    path = str(tmp_path / "bad.npz")
    tcs.save_checkpoint(path, dataclasses.replace(SMALL, hidden=4), P, tcs.members_of(SMALL))
    r = cli("--load", path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "shape" in r.stderr


def test_divergence_exits_nonzero_with_a_clear_message():
    r = cli("--T", "40", "--D-min", "5", "--D-max", "12", "--iters", "20", "--lr", "1e300")
    assert r.returncode == 3 and "diverged at iteration" in r.stderr and "Traceback" not in r.stderr
    assert "RuntimeWarning" not in r.stderr


def test_unwritable_output_is_refused_before_training():
    r = cli("--json", "/proc/no/such/place.json")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "/proc/no/such/place.json" in r.stderr.strip().splitlines()[-1]
    assert "training" not in r.stdout


def test_adam_with_active_clipping_treats_each_member_as_alone():
    cfg = dataclasses.replace(SMALL, seeds=tuple(range(5)))
    members = tcs.members_of(cfg)
    P = tcs.stack([random_member(cfg, s, v) for s, v in members])
    batches = {s: tcs.MSD.sample(cfg, tcs.rng_for(s, tcs.STREAM_TRAIN), cfg.batch) for s in cfg.seeds}
    x, d, _ = tcs.stack_inputs(batches, members)
    peep = np.array([v == "peep" for _, v in members])
    _, grads, _ = tcs.loss_and_grads(P, x, d, peep)
    assert all(g.flags["C_CONTIGUOUS"] for g in grads.values())
    grads = {k: 50.0 * g for k, g in grads.items()}          # far above the clip norm
    solo = [tcs.member(P, k) for k in range(len(members))]
    norms = tcs.Adam(P, cfg).step(P, grads, 1e-2)
    assert np.all(norms > 10 * cfg.clip)
    for k, Pk in enumerate(solo):
        tcs.Adam(Pk, cfg).step(Pk, {n: g[k:k + 1].copy() for n, g in grads.items()}, 1e-2)
        for n in tcs.PARAMS:
            np.testing.assert_array_equal(P[n][k], Pk[n][0], err_msg=f"member {k} param {n}")


# ---------------------------------------------------------------- the paper's truncated gradient

def rtrl_truncated_grads(P, x, d, cell):
    """The paper's truncated gradient from its forward RTRL partials (eqs. 12-14, 22-23, Appendix A).

    One model, no model axis; x (T, I, N), d (T, N). The partials dc/dw of every weight feeding the
    cell state (i, f, g columns of Wx, Wh, b and the i/f peepholes) are carried forward through the
    CEC only (dc_t/dc_{t-1} = f_t); every other weight gets plain per-step backprop, and no error
    enters c through the output gate's peephole (paper Section 3.2).
    """
    modern = cell.kind == "modern"
    sq = np.tanh if modern else (lambda c: c)
    dsq = (lambda c: 1 - np.tanh(c) ** 2) if modern else np.ones_like
    T, n_in, N = x.shape
    H = P["Wh"].shape[0]
    h, c = np.zeros((N, H)), np.zeros((N, H))
    grads = {k: np.zeros_like(v) for k, v in P.items()}
    state_side = [(k, idx) for k in ("Wx", "Wh", "b") for idx in np.ndindex(P[k].shape)
                  if idx[-1] // H in (0, 1, 2)] + [(k, (j,)) for k in ("p_i", "p_f") for j in range(H)]
    dc_dw = {key: np.zeros((N, H)) for key in state_side}
    for t in range(T):
        xt = x[t].T                                                   # (N, I)
        z = xt @ P["Wx"] + h @ P["Wh"] + P["b"]
        zi, zf, zg, zo = (z[:, k * H:(k + 1) * H] for k in range(4))
        zi, zf = zi + P["p_i"] * c, zf + P["p_f"] * c
        i, f = sigmoid(zi), sigmoid(zf)
        g = np.tanh(zg) if modern else zg
        dg = 1 - g ** 2 if modern else np.ones_like(zg)
        c_new = f * c + i * g
        o = sigmoid(zo + P["p_o"] * c_new)
        h_new = o * sq(c_new)
        y = h_new @ P["Wy"][:, 0] + P["by"][0]
        if cell.readout == "sigmoid":
            y = sigmoid(y)
        dy = (y - d[t]) / N * (y * (1 - y) if cell.readout == "sigmoid" else 1.0)     # (N,)
        # forward partials: dc_t/dw = f_t dc_{t-1}/dw + the direct term of step t
        factor = {0: g * i * (1 - i), 1: c * f * (1 - f), 2: i * dg}            # per gate, (N, H)
        source = {"Wx": lambda a: xt[:, a], "Wh": lambda a: h[:, a], "b": lambda a: 1.0}
        for (k, idx), part in dc_dw.items():
            direct = np.zeros((N, H))
            if k in source:
                q, j = idx[-1] // H, idx[-1] % H
                direct[:, j] = factor[q][:, j] * source[k](idx[0] if k != "b" else None)
            else:
                j = idx[0]
                direct[:, j] = factor[0 if k == "p_i" else 1][:, j] * c[:, j]
            dc_dw[k, idx] = f * part + direct
        # errors of step t
        e_s = dy[:, None] * P["Wy"][:, 0] * o * dsq(c_new)                        # eq. 18
        d_o = dy[:, None] * P["Wy"][:, 0] * sq(c_new) * o * (1 - o)               # eq. 11
        for (k, idx), part in dc_dw.items():                                      # eqs. 15-17, 25-26
            grads[k][idx] += np.sum(e_s * part)
        for k, src in (("Wx", xt), ("Wh", h), ("b", np.ones((N, 1)))):           # eq. 10
            g_o = src.T @ d_o
            grads[k][..., 3 * H:] += g_o if k != "b" else g_o[0]
        grads["p_o"] += np.sum(d_o * c_new, axis=0)                               # eq. 24
        grads["Wy"][:, 0] += h_new.T @ dy                                         # eq. 8
        grads["by"][0] += dy.sum()
        h, c = h_new, c_new
    return grads


@pytest.mark.parametrize("kind,readout", [("paper", "sigmoid"), ("modern", "linear")])
def test_truncated_gradient_equals_the_papers_rtrl(kind, readout):
    cfg = tcs.Config(T=25, D_min=3, D_max=8, hidden=2, batch=5, cell=kind, readout=readout)
    P = random_member(cfg, 7, "peep", scale=0.6)
    batch = tcs.MSD.sample(cfg, np.random.default_rng(2), cfg.batch)
    cell = tcs.Cell(kind, readout, "truncated")
    _, grads, _ = tcs.loss_and_grads(tcs.stack([P]), batch.x[:, :, None], batch.d[:, None],
                                      np.array([True]), cell=cell)
    want = rtrl_truncated_grads(P, batch.x, batch.d, cell)
    for k in tcs.PARAMS:
        np.testing.assert_allclose(grads[k][0], want[k], rtol=0, atol=1e-9, err_msg=k)
    # and truncation really changes something: the full gradient differs
    _, full, _ = tcs.loss_and_grads(tcs.stack([P]), batch.x[:, :, None], batch.d[:, None],
                                     np.array([True]), cell=tcs.Cell(kind, readout, "bptt"))
    assert not np.allclose(full["Wh"][0], grads["Wh"][0], rtol=1e-3)


def test_paper_cell_matches_its_equations_and_init():
    cfg = tcs.Config(T=30, D_min=3, D_max=8, hidden=1, cell="paper", readout="sigmoid")
    P = tcs.init_member(cfg, 3, "peep")
    b = P["b"]
    assert (b[0], b[1], b[3]) == (0.0, -2.0, 2.0)                 # gate biases 0, -2, +2
    for k in ("Wx", "Wh", "Wy", "by", "p_i", "p_f", "p_o"):
        assert np.all(np.abs(P[k]) <= 0.1)
    batch = tcs.MSD.sample(cfg, np.random.default_rng(4), 6)
    tr = tcs.trace(tcs.stack([P]), batch.x[:, :, None], tcs.cell_of(cfg))
    i, f, g, o, c, h = (tr[k][:, :, 0] for k in ("i", "f", "g", "o", "c", "h"))     # (T, H, N)
    c_prev = np.concatenate([np.zeros_like(c[:1]), c[:-1]])
    h_prev = np.concatenate([np.zeros_like(h[:1]), h[:-1]])
    # every equation recomputed from the weights: z = x Wx + h_{t-1} Wh + b, gates in order i f g o
    z = (np.einsum("tjn,jk->tkn", batch.x, P["Wx"]) + np.einsum("thn,hk->tkn", h_prev, P["Wh"])
         + P["b"][None, :, None])
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))
    H, pe = cfg.hidden, {k: P[k][None, :, None] for k in tcs.PEEPS}
    np.testing.assert_allclose(i, sig(z[:, tcs.I_ * H:(tcs.I_ + 1) * H] + pe["p_i"] * c_prev), rtol=0, atol=1e-14)
    np.testing.assert_allclose(f, sig(z[:, tcs.F_ * H:(tcs.F_ + 1) * H] + pe["p_f"] * c_prev), rtol=0, atol=1e-14)
    np.testing.assert_allclose(g, z[:, tcs.G_ * H:(tcs.G_ + 1) * H], rtol=0, atol=1e-14)      # identity: g = z_g
    np.testing.assert_allclose(c, f * c_prev + i * g, rtol=0, atol=1e-14)
    np.testing.assert_allclose(o, sig(z[:, tcs.O_ * H:(tcs.O_ + 1) * H] + pe["p_o"] * c), rtol=0, atol=1e-14)
    np.testing.assert_allclose(h, o * c, rtol=0, atol=1e-14)                                  # no output squashing
    y = tcs.predict(tcs.stack([P]), batch.x[:, :, None], tcs.cell_of(cfg))[:, 0]
    np.testing.assert_allclose(y, tr["y"][:, 0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(y, sig(np.einsum("thn,h->tn", h, P["Wy"][:, 0]) + P["by"][0]), rtol=0, atol=1e-14)


def test_cli_trains_the_paper_cell_with_truncated_gradients():
    r = cli("--T", "40", "--D-min", "5", "--D-max", "12", "--iters", "20", "--eval-every", "10",
            "--n-test", "16", "--hidden", "1", "--cell", "paper", "--readout", "sigmoid", "--grad", "truncated")
    assert r.returncode == 0, r.stderr
    assert "mean peep" in r.stdout and "mean vanilla" in r.stdout
