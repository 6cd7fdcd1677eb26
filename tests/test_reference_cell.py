"""The reference cell (one step of one network, as the paper writes it) against every engine:
the batched forward pass of both cells and the online step, on random weights and states."""
import numpy as np
import pytest

import timing_counting_spikes as tcs

CELLS = [tcs.Cell(kind, readout, forget=forget) for kind in tcs.CELLS for readout in tcs.READOUTS
         for forget in (True, False)]


def random_params(rng, n_in, H, peep, scale=0.7):
    P = {"Wx": rng.normal(0, scale, (n_in, 4 * H)), "Wh": rng.normal(0, scale, (H, 4 * H)),
         "b": rng.normal(0, scale, 4 * H), "Wy": rng.normal(0, scale, (H, 1)), "by": rng.normal(0, 0.3, 1)}
    for name in tcs.PEEPS:
        P[name] = rng.normal(0, scale, H) if peep else np.zeros(H)
    return P


def close(a, b):
    """Equal to 1e-12, relative where the paper cell's unsquashed state has grown."""
    return np.allclose(a, b, rtol=1e-12, atol=1e-12)


def reference_run(P, x, cell, h=None, c=None):
    """x (T, I) from the zero state (or h, c) -> outputs y (T,) and the last h, c."""
    H = P["Wh"].shape[0]
    h, c = (np.zeros(H), np.zeros(H)) if h is None else (h, c)
    ys = []
    for x_t in x:
        y, h, c = tcs.reference_step(P, x_t, h, c, cell)
        ys.append(y[0])
    return np.array(ys), h, c


@pytest.mark.parametrize("cell", CELLS, ids=str)
@pytest.mark.parametrize("peep", [True, False])
def test_the_batched_forward_pass_is_the_reference_cell(cell, peep):
    rng = np.random.default_rng(7)
    T, n_in, H, N = 15, 2, 3, 4
    Ps = [random_params(rng, n_in, H, peep) for _ in range(2)]
    x = rng.normal(0, 1.0, (T, n_in, 2, N))
    acts = tcs.trace(tcs.stack(Ps), x, cell)
    y = acts["y"]                                 # through the output unit already
    for m, P in enumerate(Ps):
        for n in range(N):
            ref, h, c = reference_run(P, x[:, :, m, n], cell)
            assert close(y[:, m, n], ref) and close(acts["h"][-1, :, m, n], h) and close(acts["c"][-1, :, m, n], c)


ONLINE = [("gts", dict(F=4, delays=(0, 1, 2))), ("gts", dict(F=4, delays=(0, 1, 2), forget=False)),
          ("nmsd", dict(F=5, delays=(0, 1), readout="linear")), ("pfg", dict(F=6, func="tri")),
          ("gts", dict(F=4, delays=(0, 1), cell="modern", readout="linear"))]


@pytest.mark.parametrize("task,kw", ONLINE)
def test_the_online_step_is_the_reference_cell(task, kw):
    """Random weights held still (alpha 0), streams that never end: at every step the online
    engine's output, cell output and state equal the reference cell's on the input it was fed."""
    cfg = tcs.Config(**{**dict(task=task, hidden=2, cell="paper", readout=tcs.TASKS[task].readout, learning="online",
                               periods=3, test_periods=4, test_streams=2, budget=10 ** 6), **kw})
    nets = [(cfg, s, v) for s in (0, 1) for v in tcs.VARIANTS]
    st = tcs.online_state(nets)
    rng = np.random.default_rng(3)
    H, n_in = cfg.hidden, tcs.TASKS[task].n_in
    Ps = [random_params(rng, n_in, H, v == "peep", scale=0.4) for _, _, v in nets]
    st["theta"][...] = tcs.pack(tcs.stack(Ps))
    st["alpha"][:], st["tol"][:], st["maxp"][:] = 0.0, 1e9, 10 ** 9
    net = tcs.OnlineNets(st, cfg.cell, H, n_in)
    cell = tcs.cell_of(cfg)
    h, c = [np.zeros(H) for _ in nets], [np.zeros(H) for _ in nets]
    for step in range(25):
        net.run(1)
        for k, P in enumerate(Ps):
            x = net.S[0, 2 * H:2 * H + n_in, k]
            y, h[k], c[k] = tcs.reference_step(P, x, h[k], c[k], cell)
            assert close(net.y[k], y[0]) and close(net.S[1, :H, k], h[k]) and close(net.S[1, H:2 * H, k], c[k]), \
                (step, k)
    assert np.array_equal(st["theta"], tcs.pack(tcs.stack(Ps)))        # alpha 0: nothing learned
