"""Learning precise timing with peephole LSTM, in pure numpy.

A reproduction of Gers, Schraudolph & Schmidhuber, "Learning Precise Timing with
LSTM Recurrent Networks", JMLR 3:115-143 (2002).

Task (MSD, as the earlier numpy reproduction defines it)
    A sequence of T steps on one binary input channel carries two spikes at
    t1 < t2 = t1 + D, with D uniform in [D_min, D_max]. The target is 1.0 at
    t_target = t1 + 2D and 0.0 elsewhere: the network must measure the gap D
    and reproduce it after the second spike, with no marker input at the
    moment it must fire. t1 is uniform over every start with t_target < T.

Model (gate order i, f, g, o, packed in Wx (I, 4H), Wh (H, 4H), b (4H,))
    z_t = x_t Wx + h_{t-1} Wh + b                      pre-activations
    i_t = sigmoid(z_i + p_i * c_{t-1})                  input gate
    f_t = sigmoid(z_f + p_f * c_{t-1})                  forget gate
    g_t = tanh(z_g)                                     cell input
    c_t = f_t * c_{t-1} + i_t * g_t                     cell state (the CEC)
    o_t = sigmoid(z_o + p_o * c_t)                      output gate sees the NEW c_t
    h_t = o_t * tanh(c_t)                               cell output
    y_t = h_t Wy + by                                   scalar linear readout
    The peephole vectors p_i, p_f, p_o (H,) are the paper's eqs. 19-21; the
    vanilla cell is the same cell without them. Loss: 0.5 * sum_t m_t (y_t - d_t)^2,
    averaged over the batch, with m_t = 0 where a task gives no target (else 1).
    Gradients: full BPTT in float64, checked against central differences
    (--gradcheck). Optimiser: Adam with a global L2 gradient-norm clip per model
    and the learning rate halved on a schedule.

Many models at once
    Every parameter and activation carries a leading model axis M, so one
    Python loop over time trains a whole ensemble (seeds x variants). The
    peephole and vanilla members of one seed share their initial shared
    weights, every training batch and the test set bit for bit; only the
    peephole vectors differ (vanilla members hold them at zero, gradient masked).

The paper's own tasks (--task; Sections 4.2-4.4 of the paper)
    nmsd  one interval per stream, from the zero state to a spike F + I steps later;
          the target at the spike is the delay I, drawn from a set such as {0, 1}
    cmsd  the continual version: a spike train, never reset, a target at every spike
    gts   inputs and targets exchanged: the input holds I(n), the target is the spike train
    pfg   no input; the target is f_cos, f_tri or f_rect with period F
    Where no target is given the loss mask is 0. A test stream runs free until its first
    prediction off by >= 0.49 (0.3 for PFG) or for 1000 periods; a network is perfect when
    every test stream completes them (NMSD: both of its possible streams; CMSD, GTS: 10 new
    streams at every test), and it is then frozen, as the paper stops training it. --stop-on-error yes also ends each training
    stream at its first wrong prediction, the paper's rule (not in our recipe).

The paper's own learning (--learning online; its Sections 2.2, 3.2, 4.1)
    Every network runs its own stream, one step at a time from the zero state. Forward RTRL
    partials dS = ds_c/dw (eqs. 12-14, 22-23) give the truncated gradient with O(1) memory;
    after every target a momentum step changes the weights (alpha 1e-5; momentum 0.99 NMSD
    and PFG, 0.999 GTS, 0.9999 MSD). A training stream stops at its first wrong prediction or
    after 100 periods; after each one the weights are frozen for a free-running test on fresh
    streams, and a network that passes them all is perfect. Its reported solutions are also
    run on 100 further fresh streams (the confirmation). All networks of a table (rows x seeds
    x variants), or of several tables (--table all), step together on one network axis, each
    with its own stream state, task, output unit, forget gate and momentum (a network without
    an input has a row of zeros for it); streams are counter-based hashes of (seed, stream,
    period), so the peephole and vanilla networks of a seed see the same streams. A table
    row's budget is the paper's mean + 3 std training streams; a network whose weights leave
    the finite numbers is counted as diverged in its row. Every perfect network then also runs
    free from the zero state for 100,000 periods (the long run), to see whether its solution
    holds. The two networks of a seed are a pair, so peephole against vanilla is the exact
    McNemar test on the seeds where only one is perfect (Fisher's, unpaired, beside it). A step
    of a table's networks makes about 50 numpy calls: each task lays out its streams a window
    of steps ahead (the same rows its batch streams are made of), and a stream's end costs a
    fixed number of calls over the whole axis, however many streams end at a step
    (bench/benchmark.py counts the calls).

The start (--table map)
    The paper prints the initial input, forget and output gate biases as 0/-2/+2; from them its
    algorithm learns nothing here. The start map runs rows of every task family from a grid of
    biases on development seeds 100-109 (--grid), and a rule fixed before it was read
    (start_scores) chose +0/+3/+0, the start that reproduces the most rows; the online tables
    run from it (--gate-biases 0,2,-2 gives the swapped start of the earlier tables). --shard K/N
    deals any online run's networks over N tasks (a cluster array), --merge joins their results
    bit for bit.

Commands
    python timing_counting_spikes.py                      # headline: seed 4, both variants
    python timing_counting_spikes.py --seeds 0-6 --json results/sweep.json   # 7-seed sweep
    python timing_counting_spikes.py --report results/sweep.json             # its tables
    python timing_counting_spikes.py --task pfg --func tri   # a paper task, the tables' recipe
    python timing_counting_spikes.py --table 3 --json results/table3.json    # the paper's Table 3
    python timing_counting_spikes.py --table gts --learning online --budget-minutes 10   # its algorithm
    python timing_counting_spikes.py --table all --learning online --json 'results/online_table{table}.json'
                                                          # every online table on one axis, a file each
    python timing_counting_spikes.py --table map --learning online --json results/map.json   # the start map
    python timing_counting_spikes.py --gradcheck          # exits 1 above tolerance
    python bench/benchmark.py                             # both engines' speed (beside the tests)
    python timing_counting_spikes.py --docs               # README.md and docs/ anew from results/
    A flag the chosen run would not read (--T with a paper task, --lr with online learning,
    --hidden with --load, two modes at once) is an error, as is any bad value: one line, exit 2.

References
    F. A. Gers, N. N. Schraudolph, J. Schmidhuber. Learning precise timing with
    LSTM recurrent networks. JMLR 3:115-143, 2002.
    F. A. Gers, J. Schmidhuber, F. Cummins. Learning to forget: continual
    prediction with LSTM. Neural Computation 12(10):2451-2471, 2000.

Options for the paper's own network
    --cell paper      identity input squashing g, no output squashing (h = o * c),
                      the paper's initialisation (uniform +-0.1 but the gate biases)
    --gate-biases     its initial input, forget and output gate biases: printed as 0/-2/+2;
                      under its own algorithm that start learns nothing; the probe and the map
                      on development seeds (--table probe, --table map) decide the start
    --readout sigmoid a logistic output unit (targets above 1 are scaled into [0, 1])
    --grad truncated  the paper's error truncation: errors reach the past only
                      through the CEC; the tests check it against the paper's
                      forward RTRL partials (eqs. 12-14, 22-23)
    --forget no       the cell without a forget gate (its activation pinned to 1.0)

Layout of this file, top to bottom
    configuration and the tables' recipes; parameters; the reference cell (one step of one
    network, as the paper writes it); the batched cell with forward and backward (BPTT); Adam;
    the tasks; batch training and evaluation of an ensemble; the paper's online learning (one
    RTRL step of many networks) and its runner, with checkpoints, shards, confirmation and
    paired statistics; the paper's tables, the start map and the rule that reads it;
    reporting; files; documents generated from results/; gradient check; command line. The
    benchmark lives beside the tests, in bench/benchmark.py.

Deliberately left out
    The paper's full budgets (10^7-10^8 training streams per network): our online runs stop
    after minutes of wall clock. Learning the initial state (the paper's Section 5.1).
"""
import argparse
import dataclasses
import itertools
import json
import math
import multiprocessing
import os
import platform
import re
import signal
import sys
import tempfile
import time
import zipfile
from queue import Empty

# Each matrix here is tiny (batch x 4H); BLAS threads only add overhead and
# would fight the worker processes that --workers starts for the second core.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402  (must follow the thread settings above)


# ----------------------------------------------------------------------------
# Configuration: every default lives here, once.

@dataclasses.dataclass
class Config:
    task: str = "msd"            # task generator (see TASKS)
    # the paper's tasks (nmsd, cmsd, gts, pfg)
    F: int = 10                  # shortest spike interval; PFG: the period
    delays: tuple = (0, 1)       # the set the spike delays I(n) are drawn from
    func: str = "cos"            # PFG target: cos, tri or rect
    periods: int = 5             # periods per training stream (NMSD: always 1)
    test_streams: int = 10       # free-running test streams per seed (NMSD: one per delay; PFG: 1)
    test_periods: int = 1000     # a test stream ends after this many periods
    stop_on_error: bool = False  # a training stream ends at its first wrong prediction, as the paper's
    # the earlier reproduction's MSD task (msd)
    T: int = 150                 # sequence length in steps
    D_min: int = 30              # shortest spike gap D
    D_max: int = 60              # longest spike gap D
    hidden: int = 8              # LSTM cells H
    iters: int = 3000            # training iterations (one batch each)
    batch: int = 32              # sequences per batch
    lr: float = 5e-3             # Adam learning rate at iteration 1
    lr_halve_every: int = 1500   # halve the learning rate every this many iterations
    clip: float = 1.0            # global L2 gradient-norm clip, per model
    beta1: float = 0.9           # Adam first-moment decay
    beta2: float = 0.999         # Adam second-moment decay
    adam_eps: float = 1e-8       # Adam denominator floor
    cell: str = "modern"         # "modern": tanh cell input and output; "paper": identity g, h = o*c
    readout: str = "linear"      # output unit: "linear" or "sigmoid"
    grad: str = "bptt"           # "bptt": full gradient; "truncated": the paper's error truncation
    forget: bool = True          # False: no forget gate (its activation pinned to 1.0, its weights unused)
    forget_bias: float = 1.0     # initial forget-gate bias (modern cell)
    gate_biases: tuple = (0.0, -2.0, 2.0)   # paper cell: initial input, forget, output gate biases (as printed)
    peep_init: float = 0.1       # std of the initial peephole weights (modern cell)
    n_test: int = 512            # held-out test sequences per seed
    eval_every: int = 100        # evaluate on the test set every this many iterations
    tol: int = 0                 # a sequence counts as solved within +-tol steps
    tail_evals: int = 5          # also report the mean over this many last evaluations
    seeds: tuple = (4,)          # one ensemble member per seed and variant
    variants: tuple = ("peep", "vanilla")  # "peep" and/or "vanilla"
    # the paper's online learning (learning = "online"; paper tasks only)
    learning: str = "batch"      # "batch": Adam on batches of streams; "online": the paper's RTRL + momentum
    alpha: float = 1e-5          # online: learning rate of every weight change
    momentum: float = 0.99       # online: momentum (the paper's: 0.99 NMSD/PFG, 0.999 GTS, 0.9999 MSD)
    budget: int = 100000         # online: training streams per network at most

    def validate(self):
        """Raise ValueError naming the first bad value and what is allowed."""
        def need(ok, msg):
            if not ok:
                raise ValueError(msg)
        need(self.task in TASKS, f"task {self.task!r} is unknown; allowed: {', '.join(TASKS)}")
        for name, allowed in (("cell", CELLS), ("readout", READOUTS), ("grad", GRADS)):
            v = getattr(self, name)
            need(v in allowed, f"{name} {v!r} is unknown; allowed: {', '.join(allowed)}")
        for name in ("T", "hidden", "batch", "n_test", "eval_every", "lr_halve_every", "tail_evals",
                     "F", "periods", "test_streams", "test_periods"):
            v = getattr(self, name)
            need(isinstance(v, int) and v >= 1, f"{name} = {v!r} must be an integer >= 1")
        need(isinstance(self.iters, int) and self.iters >= 0, f"iters = {self.iters!r} must be an integer >= 0")
        need(isinstance(self.tol, int) and self.tol >= 0, f"tol = {self.tol!r} must be an integer >= 0")
        for name in ("lr", "clip", "adam_eps"):
            v = getattr(self, name)
            need(np.isfinite(v) and v > 0, f"{name} = {v!r} must be a finite number > 0")
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            need(0 <= v < 1, f"{name} = {v!r} must lie in [0, 1)")
        need(self.learning in LEARNING, f"learning {self.learning!r} is unknown; allowed: {', '.join(LEARNING)}")
        need(np.isfinite(self.alpha) and self.alpha > 0, f"alpha = {self.alpha!r} must be a finite number > 0")
        need(0 <= self.momentum < 1, f"momentum = {self.momentum!r} must lie in [0, 1)")
        need(isinstance(self.budget, int) and self.budget >= 1, f"budget = {self.budget!r} must be an integer >= 1")
        need(self.learning == "batch" or TASKS[self.task].paper,
             f"learning online runs the paper's tasks (nmsd, cmsd, gts, pfg), not {self.task}")
        need(np.isfinite(self.forget_bias), f"forget_bias = {self.forget_bias!r} must be finite")
        need(len(self.gate_biases) == 3 and all(np.isfinite(v) for v in self.gate_biases),
             f"gate_biases {list(self.gate_biases)!r} must be three finite numbers (input, forget, output gate)")
        need(np.isfinite(self.peep_init) and self.peep_init >= 0,
             f"peep_init = {self.peep_init!r} must be a finite number >= 0")
        need(len(self.seeds) >= 1, "seeds: give at least one seed")
        need(all(isinstance(s, int) and s >= 0 for s in self.seeds),
             f"seeds {list(self.seeds)!r} must be integers >= 0")
        need(len(set(self.seeds)) == len(self.seeds), f"seeds {list(self.seeds)!r} repeat a seed")
        need(len(self.variants) >= 1 and set(self.variants) <= set(VARIANTS)
             and len(set(self.variants)) == len(self.variants),
             f"variants {list(self.variants)!r} must be distinct values from {list(VARIANTS)}")
        TASKS[self.task].check(self)


VARIANTS = ("peep", "vanilla")
CELLS = ("modern", "paper")
READOUTS = ("linear", "sigmoid")
GRADS = ("bptt", "truncated")
LEARNING = ("batch", "online")


@dataclasses.dataclass(frozen=True)
class Cell:
    """The options that change the cell's arithmetic, as data (one value per ensemble)."""
    kind: str = "modern"         # see Config.cell
    readout: str = "linear"      # see Config.readout
    grad: str = "bptt"           # see Config.grad
    forget: bool = True          # see Config.forget


def cell_of(cfg):
    return Cell(cfg.cell, cfg.readout, cfg.grad, cfg.forget)

SCRATCH = "scratch"     # the companion scripts' output folder unless given one (git ignores it)
WORKERS = os.cpu_count() or 1     # processes to deal models or networks to unless given: one per CPU core

# Random streams. Everything random about seed s comes from
# np.random.default_rng([s, STREAM]): one independent stream per purpose, so
# the peephole and vanilla runs of a seed draw identical shared tensors,
# batches and test sets, and adding peepholes changes no other draw.
STREAM_INIT = 0    # shared initial weights Wx, Wh, b, Wy, by
STREAM_PEEP = 1    # initial peephole vectors p_i, p_f, p_o (peep members only)
STREAM_TRAIN = 2   # training batches
STREAM_TEST = 3    # the fixed held-out test set


def rng_for(seed, stream, *more):
    return np.random.default_rng([seed, stream, *more])


# The recipes of the paper's tables, one per learning mode (the tables: row_config).
RECIPE = dict(hidden=1,                 # one memory block with one cell, as the paper's net
              iters=12000,              # training budget per network, in batches
              eval_every=100,           # free-running test after every this many batches
              lr=1e-2,                  # Adam, constant rate
              lr_halve_every=10 ** 6,
              stop_on_error=False,      # training streams run their full length (README: recipe)
              seeds=tuple(range(10)))
# Which order of the initial gate biases (input, forget, output) the paper ran: the order it
# prints, the forget and output values swapped, and both gates open. Under its own algorithm the
# printed order learns nothing; the swapped order is the only one that learns GTS, in the paper's
# number of streams, and the one its analysis of GTS solutions describes (an output gate opening
# once the peephole input outweighs a negative bias). Chosen on development seeds (--table probe;
# README: the gate biases).
READINGS = {"printed": Config.gate_biases, "swapped": (0.0, 2.0, -2.0), "open": (0.0, 2.0, 2.0)}
# The start the rule chose on the start map (development seeds; --table map, start_scores), and
# the one the online tables run from unless --gate-biases is given. The tables from the swapped
# reading in results/ ran before the map (docs/regenerate.md gives them --gate-biases 0,2,-2).
CHOSEN_START = (0.0, 3.0, 0.0)
# The paper's own learning (Section 4.1): its one-cell network and initialisation (gate biases
# as chosen above), training streams of up to 100 periods, alpha 1e-5 and the task's momentum
ONLINE_RECIPE = dict(learning="online", cell="paper", hidden=1, periods=100, seeds=tuple(range(10)),
                     gate_biases=CHOSEN_START)


# ----------------------------------------------------------------------------
# Parameters. One dict of arrays, each with a leading model axis M.
#   Wx (M, I, 4H)  Wh (M, H, 4H)  b (M, 4H)  p_i, p_f, p_o (M, H)  Wy (M, H, 1)  by (M, 1)

GATES = "ifgo"                      # the packing order of the 4H gate columns
I_, F_, G_, O_ = 0, 1, 2, 3         # gate k occupies columns k*H .. (k+1)*H
SHARED = ("Wx", "Wh", "b", "Wy", "by")
PEEPS = ("p_i", "p_f", "p_o")
PARAMS = SHARED + PEEPS


def gate(a, k, H):
    """Columns of gate k (I_, F_, G_ or O_) in a packed (..., 4H) array."""
    return a[..., k * H:(k + 1) * H]


def init_member(cfg, seed, variant):
    """Parameters of one model (no model axis). Shared tensors depend on the seed only."""
    H, n_in = cfg.hidden, TASKS[cfg.task].n_in
    r, q = rng_for(seed, STREAM_INIT), rng_for(seed, STREAM_PEEP)
    if cfg.cell == "paper":
        # paper, Section 4.1: every weight uniform in [-0.1, 0.1], except the gate biases,
        # printed as 0 (input), -2 (forget) and +2 (output); which order it ran is a reading
        # (README: the gate biases), so they are data here
        P = {"Wx": r.uniform(-0.1, 0.1, (n_in, 4 * H)), "Wh": r.uniform(-0.1, 0.1, (H, 4 * H)),
             "b": r.uniform(-0.1, 0.1, 4 * H), "Wy": r.uniform(-0.1, 0.1, (H, 1)),
             "by": r.uniform(-0.1, 0.1, 1)}
        for k, bias in zip((I_, F_, O_), cfg.gate_biases):
            gate(P["b"], k, H)[:] = bias
        for name in PEEPS:
            P[name] = q.uniform(-0.1, 0.1, H) if variant == "peep" else np.zeros(H)
        return P
    P = {"Wx": r.normal(0.0, 1.0 / np.sqrt(n_in + H), (n_in, 4 * H)),
         "Wh": r.normal(0.0, 1.0 / np.sqrt(n_in + H), (H, 4 * H)),
         "b": np.zeros(4 * H),
         "Wy": r.normal(0.0, 1.0 / np.sqrt(H), (H, 1)),
         "by": np.zeros(1)}
    gate(P["b"], F_, H)[:] = cfg.forget_bias
    for name in PEEPS:
        P[name] = q.normal(0.0, cfg.peep_init, H) if variant == "peep" else np.zeros(H)
    return P


def stack(members):
    """List of per-model dicts -> one dict with a leading model axis (copies)."""
    return {k: np.stack([m[k] for m in members]) for k in members[0]}


def member(P, k):
    """Model k of a stacked dict, keeping a model axis of length 1 (copies)."""
    return {name: v[k:k + 1].copy() for name, v in P.items()}


# ----------------------------------------------------------------------------
# The reference cell: one step of one network, written as the paper writes it. The tuned
# engines below compute exactly this (tests hold each to it to 1e-12), with their own layout.

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def reference_step(P, x, h, c, cell=Cell()):
    """One step of one network (P without a model axis; x (I,), h and c (H,)) -> (y, h, c).
    Gate order i, f, g, o in Wx, Wh, b; the paper's equation numbers on the right."""
    H = len(h)
    z = x @ P["Wx"] + h @ P["Wh"] + P["b"]                  # net inputs of every gate and the cell
    zi, zf, zg, zo = (z[k * H:(k + 1) * H] for k in range(4))
    i = sigmoid(zi + P["p_i"] * c)                          # input gate, peephole from the old state (19)
    f = sigmoid(zf + P["p_f"] * c) if cell.forget else 1.0  # forget gate (20), or none: pinned open
    g = np.tanh(zg) if cell.kind == "modern" else zg        # cell input: tanh, or the paper's identity g
    c = f * c + i * g                                       # the CEC (4)
    o = sigmoid(zo + P["p_o"] * c)                          # output gate sees the NEW state (21)
    h = o * (np.tanh(c) if cell.kind == "modern" else c)    # cell output; the paper drops h() (5)
    y = h @ P["Wy"] + P["by"]                               # output unit (7)
    return (y if cell.readout == "linear" else sigmoid(y)), h, c


# ----------------------------------------------------------------------------
# The cell. Buffers are (T, K, M, N): time, then features, then models, then
# sequences. The slice one step reads or writes is (K, M, N) and every gate
# block in it, (H, M, N), is ONE contiguous run of numbers: numpy is ~4x slower
# on views it cannot flatten, and a step is nothing but such calls. The batched
# matmul takes the per-model views (M, K, N) as strided BLAS operands, no copy.
# A Workspace allocates the buffers and builds the per-step views once per run.
#
# The step's state column is s_t = [h_{t-1} | c_{t-1} | x_t | 1] (K = 2H + I + 1
# rows), so ONE matmul with W_all (4H, K) = [Wh^T | diag(p_i), diag(p_f) | Wx^T | b]
# gives every pre-activation, input projection and i/f peepholes included; in
# backward one batched matmul per chunk of steps gives every weight gradient.
# Activation rows per step: [i f g o s(c)], H each, gates in GATES order; s(c) is
# the squashed cell state, h = o * s(c): tanh(c) for the modern cell, c for the paper's.
#
# float64 tanh costs ~18 ns per element here and exp ~10 ns, so every squashing
# goes through one exp: sigmoid(z) = 1 / (1 + exp(-z)), tanh(z) = 2 sigmoid(2z) - 1.
# The factors -1 (i, f, o) and -2 (g) are folded into a scaled copy of W_all
# made once per iteration, so the step spends no multiplications on them.

def exp_scale(H, kind):
    """(4H,) factor that turns z into the exp argument of each gate's squashing
    (for the paper cell's identity g: into z itself)."""
    s = -np.ones(4 * H)
    gate(s, G_, H)[:] = -2.0 if kind == "modern" else 1.0
    return s


def fused(P):
    """W_all (M, 4H, K): every model's gate weights against its state column [h | c | x | 1]
    (Wh; the i and f peepholes on the diagonal of the c columns, p_o apart; Wx; b). Both
    engines' weights are laid out from it."""
    M, n_in, H4 = P["Wx"].shape
    H = H4 // 4
    W = np.zeros((M, 4 * H, 2 * H + n_in + 1))
    W[:, :, :H] = P["Wh"].transpose(0, 2, 1)
    d = np.arange(H)
    W[:, I_ * H + d, H + d] = P["p_i"]
    W[:, F_ * H + d, H + d] = P["p_f"]
    W[:, :, 2 * H:2 * H + n_in] = P["Wx"].transpose(0, 2, 1)
    W[:, :, -1] = P["b"]
    return W


class Weights:
    """Per-iteration arrangements of P: the fused matrix W_all, scaled for forward, sliced for backward."""

    def __init__(self, P, N, cell):
        M, _, H4 = P["Wx"].shape
        H = H4 // 4
        W = fused(P)                                                # (M, 4H, K)
        self.cell = cell
        self.Ws = W * exp_scale(H, cell.kind)[:, None]              # (M, 4H, K) forward
        self.Wb = np.ascontiguousarray(W[:, :, :2 * H].transpose(0, 2, 1))  # (M, 2H, 4H) backward
        self.po = P["p_o"].T[:, :, None]                            # (H, M, 1)
        # p_o scaled like z_o, spelled out over the batch: a broadcast operand costs a
        # step ~3x the time of a contiguous one
        self.pos = np.ascontiguousarray(np.broadcast_to(-self.po, (H, M, N)))
        self.Wy, self.by = P["Wy"], P["by"]                         # (M, H, 1), (M, 1)


class StepViews:
    """The views one time step reads and writes."""
    __slots__ = ("s_prev_m", "c_prev", "z_m", "z_ifg", "z_if", "z_g", "z_o", "a_ifg", "a_if", "a_i",
                 "a_f", "a_g", "a_otc", "a_o", "a_tc", "c", "h", "tmp")

    def __init__(self, s_prev, s_next, act, z, tmp, H):
        # s_prev (K, M, N), s_next (K, M, N), act (5H, M, N), z (4H, M, N), tmp (H, M, N)
        self.s_prev_m, self.c_prev = s_prev.transpose(1, 0, 2), s_prev[H:2 * H]   # (M, K, N) view
        self.z_m, self.z_ifg, self.z_o = z.transpose(1, 0, 2), z[:3 * H], z[3 * H:]
        self.z_if, self.z_g = z[:2 * H], z[2 * H:3 * H]
        self.a_ifg, self.a_if, self.a_otc = act[:3 * H], act[:2 * H], act[3 * H:]
        self.a_i, self.a_f, self.a_g = act[:H], act[H:2 * H], act[2 * H:3 * H]
        self.a_o, self.a_tc = act[3 * H:4 * H], act[4 * H:]
        self.h, self.c = s_next[:H], s_next[H:2 * H]
        self.tmp = tmp


def cell_step(W, v):
    """One step of all models of either cell: reads s_prev, writes act = [i f g o s(c)] and the
    next [h | c]. W.Ws holds -W for i, f, o; for g, -2W in the modern cell (tanh(z) = 2 sigmoid(2z)
    - 1, so one exp serves i, f and g) and W itself in the paper's (g = z, its Section 4.1)."""
    modern = W.cell.kind == "modern"
    np.matmul(W.Ws, v.s_prev_m, out=v.z_m)         # scaled pre-activations, (4H, M, N) buffer
    # i, f = sigmoid(z), and the modern g's sigmoid(2z), from one exp
    z, a = (v.z_ifg, v.a_ifg) if modern else (v.z_if, v.a_if)
    np.exp(z, out=a)
    np.add(a, 1.0, out=a)
    np.reciprocal(a, out=a)
    if not W.cell.forget:                       # f pinned to 1: dz_f = dc c_prev f(1-f) = 0 in backward
        v.a_f.fill(1.0)
    if modern:                                  # g = tanh(z) = 2 sigmoid(2z) - 1
        np.multiply(v.a_g, 2.0, out=v.a_g)
        np.subtract(v.a_g, 1.0, out=v.a_g)
    else:                                       # g = z
        np.copyto(v.a_g, v.z_g)
    # c_t = f * c_{t-1} + i * g
    np.multiply(v.a_f, v.c_prev, out=v.c)
    np.multiply(v.a_i, v.a_g, out=v.tmp)
    np.add(v.c, v.tmp, out=v.c)
    # o = sigmoid(z_o + p_o * c_t); s(c) = tanh(c_t) (modern: in o's exp) or c_t itself (paper)
    np.multiply(v.c, W.pos, out=v.a_o)
    np.add(v.a_o, v.z_o, out=v.a_o)
    if modern:
        np.multiply(v.c, -2.0, out=v.a_tc)
    rows = v.a_otc if modern else v.a_o
    np.exp(rows, out=rows)
    np.add(rows, 1.0, out=rows)
    np.reciprocal(rows, out=rows)
    if modern:
        np.multiply(v.a_tc, 2.0, out=v.a_tc)
        np.subtract(v.a_tc, 1.0, out=v.a_tc)
    else:
        np.copyto(v.a_tc, v.c)
    # h_t = o * s(c_t)
    np.multiply(v.a_o, v.a_tc, out=v.h)




def state_buffer(T, M, H, n_in, N):
    """(T, K, M, N) rows [h | c | x | 1]; the h, c rows of step 0 are the zero start."""
    S = np.zeros((T, 2 * H + n_in + 1, M, N))
    S[:, -1] = 1.0
    return S


CHUNK_COLUMNS = 4096   # backward works on chunks of C steps with C * M * N <= this (cache-sized)


class Workspace:
    """Buffers for forward + backward of M models on batches of N sequences of length T.

    Forward keeps every step (S, ACT). Backward walks back through chunks of C
    steps and keeps only one chunk of local derivatives and dL/dz: for an
    ensemble the full-length versions would not fit in cache, and on this kind
    of machine a pass through main memory costs more than the arithmetic.
    """

    def __init__(self, M, T, N, H, n_in):
        self.shape = (M, T, N, H, n_in)
        K = 2 * H + n_in + 1
        self.S = state_buffer(T + 1, M, H, n_in, N)  # S[t] feeds step t; S[T] holds the last h, c
        self.ACT = np.empty((T, 5 * H, M, N))        # [i f g o s(c)] per step
        self.z = np.empty((4 * H, M, N))
        self.tmp = np.empty((H, M, N))
        self.steps = [StepViews(self.S[t], self.S[t + 1], self.ACT[t], self.z, self.tmp, H)
                      for t in range(T)]
        # backward, per chunk of C steps
        C = max(1, min(T, CHUNK_COLUMNS // (M * N)))
        self.chunks = [(t0, min(T, t0 + C)) for t0 in range(0, T, C)][::-1]
        self.DH = np.empty((C, H, M, N))             # dh from the readout
        self.Do = np.empty((C, H, M, N))             # dz_o = dh * Do
        self.Dc = np.empty((C, H, M, N))             # dc  += dh * Dc  (through s(c) and p_o)
        self.G = np.empty((C, 3, H, M, N))           # dz_{i,f,g} = dc * G
        # dL/dz (unscaled) with dL/dy as an extra row, against the window
        # [h_{t-1} | c_{t-1} | x_t | 1 | h_t | c_t] of S (rows K + 2H, no copy: S[t+1]
        # follows S[t] in memory): their product holds every weight gradient of step t
        self.dZ = np.empty((C, 4 * H + 1, M, N))
        self.dZ3 = self.dZ[:, :3 * H].reshape(C, 3, H, M, N)
        self.dZ_m = [self.dZ[k, :4 * H].transpose(1, 0, 2) for k in range(C)]   # (M, 4H, N) views
        self.S_win = np.lib.stride_tricks.as_strided(
            self.S, (T, M, N, K + 2 * H), (self.S.strides[0], self.S.strides[2], self.S.strides[3],
                                           self.S.strides[1]), writeable=False)
        self.dWc = np.empty((C, M, 4 * H + 1, K + 2 * H))   # per-step gradients of one chunk
        self.dS = np.zeros((2 * H, M, N))            # [dh | p_i dz_i + p_f dz_f] sent to step t-1
        self.dS_m = self.dS.transpose(1, 0, 2)
        self.dh = np.empty((H, M, N))
        self.dc = np.empty((H, M, N))
        self.dcn = np.zeros((H, M, N))               # f dc + peephole part, carried to step t-1


def model_sum(a):
    """Sum a (T, M, N) array over steps and sequences -> (M,).

    Each model's numbers are summed as one contiguous row, so the rounding is the
    same whether the model trains alone or inside an ensemble (numpy picks its
    summation order from the array's layout).
    """
    M = a.shape[1]
    return np.ascontiguousarray(a.transpose(1, 0, 2)).reshape(M, -1).sum(axis=1)


def output_unit(y, cell):
    """The output unit's squashing of y = h Wy + by: identity or logistic."""
    if cell.readout == "linear":
        return y
    with np.errstate(over="ignore"):            # exp -> inf is exact here: sigmoid -> 0
        return 1.0 / (1.0 + np.exp(-y))


def readout(W, h):
    """y = Wy^T h + by, squashed by a sigmoid if the cell says so: h (T, H, M, N) -> (T, M, N)."""
    return output_unit(np.einsum("tkmn,mk->tmn", h, W.Wy[:, :, 0]) + W.by, W.cell)


def forward(W, x, ws):
    """Training forward. x (T, I, M, N) -> y (T, M, N); caches live in ws."""
    M, T, N, H, n_in = ws.shape
    ws.S[:T, 2 * H:2 * H + n_in] = x
    with np.errstate(over="ignore"):            # exp -> inf is exact here: sigmoid -> 0
        for v in ws.steps:
            cell_step(W, v)
    return readout(W, ws.S[1:, :H])


def local_derivatives(W, ws, t0, t1):
    """Fill Do, Dc, G for steps t0 .. t1-1 from the cached activations.
    s(c) is the squashed state in the last activation rows: tanh(c), or c for the paper cell."""
    H = ws.shape[3]
    L = t1 - t0
    A = ws.ACT[t0:t1]
    i, f, g, o, sc = (A[:, k * H:(k + 1) * H] for k in range(5))
    c_prev = ws.S[t0:t1, H:2 * H]
    Do, Dc, tmp = ws.Do[:L], ws.Dc[:L], ws.DH[:L]
    modern = W.cell.kind == "modern"
    # h = o s(c), o = sigmoid(z_o + p_o c):  dz_o = dh s(c) o(1-o)
    np.subtract(1.0, o, out=Do)
    np.multiply(Do, o, out=Do)
    np.multiply(Do, sc, out=Do)
    #                                       dc += dh (o s'(c) + p_o Do), s' = 1 - tanh^2 or 1
    if modern:
        np.multiply(sc, sc, out=Dc)
        np.subtract(1.0, Dc, out=Dc)
        np.multiply(Dc, o, out=Dc)
    else:
        np.copyto(Dc, o)
    if W.cell.grad == "bptt":               # truncated: no error from a gate back into c
        np.multiply(Do, W.po, out=tmp)
        np.add(Dc, tmp, out=Dc)
    # c = f c_prev + i g:  dz_i = dc g i(1-i),  dz_f = dc c_prev f(1-f),  dz_g = dc i g'(z)
    Gi, Gf, Gg = ws.G[:L, 0], ws.G[:L, 1], ws.G[:L, 2]
    np.subtract(1.0, i, out=Gi)
    np.multiply(Gi, i, out=Gi)
    np.multiply(Gi, g, out=Gi)
    np.subtract(1.0, f, out=Gf)
    np.multiply(Gf, f, out=Gf)
    np.multiply(Gf, c_prev, out=Gf)
    if modern:                              # g = tanh(z): g' = 1 - g^2
        np.multiply(g, g, out=Gg)
        np.subtract(1.0, Gg, out=Gg)
        np.multiply(Gg, i, out=Gg)
    else:                                   # g = z: g' = 1
        np.copyto(Gg, i)


def backward(W, dy, ws):
    """BPTT. dy = dL/d(readout input) (T, M, N). Returns the gradient of every parameter.

    With W.cell.grad == "truncated" it computes the paper's truncated gradient instead
    (Sections 2.2, 3.2): errors reach the past only through the CEC, c_{t-1} <- f_t c_t;
    nothing flows back in time from the net inputs of the cell and gates, and nothing
    from the gates back through the peepholes into c.
    """
    full = W.cell.grad == "bptt"
    M, T, N, H, n_in = ws.shape
    dS, dh, dc, dcn = ws.dS, ws.dh, ws.dc, ws.dcn
    dS.fill(0.0)
    dcn.fill(0.0)
    K = 2 * H + n_in + 1
    dW = np.zeros((M, 4 * H + 1, K + 2 * H))                     # rows [dz | dy], columns S_win
    WyT = W.Wy[:, :, 0].T[None, :, :, None]                      # (1, H, M, 1)
    dZ_m = ws.dZ.transpose(0, 2, 1, 3)                           # (C, M, 4H+1, N) views
    for t0, t1 in ws.chunks:
        L = t1 - t0
        local_derivatives(W, ws, t0, t1)
        # y = Wy^T h + by:  dh from the readout
        np.multiply(WyT, dy[t0:t1, None], out=ws.DH[:L])
        ws.dZ[:L, 4 * H] = dy[t0:t1]
        # the recurrence, in reverse
        for t in range(t1 - 1, t0 - 1, -1):
            k = t - t0
            np.add(ws.DH[k], dS[:H], out=dh)                     # dh_t: readout + step t+1
            np.multiply(dh, ws.Dc[k], out=dc)                    # dc_t: through h_t and o's peephole
            np.add(dc, dcn, out=dc)                              #     + carried from step t+1
            np.multiply(dh, ws.Do[k], out=ws.dZ[k, 3 * H:4 * H])
            np.multiply(dc, ws.G[k], out=ws.dZ3[k])
            if full:                                             # (truncated: dS stays 0)
                np.matmul(W.Wb, ws.dZ_m[k], out=ws.dS_m)         # to h_{t-1} and (peepholes) c_{t-1}
            np.multiply(dc, ws.ACT[t, H:2 * H], out=dcn)         # the CEC: f_t dc_t ...
            np.add(dcn, dS[H:], out=dcn)                         # ... + p_i dz_i + p_f dz_f
        # every weight gradient of every step in the chunk: [dz | dy] (N) x window (N)
        np.matmul(dZ_m[:L], ws.S_win[t0:t1], out=ws.dWc[:L])
        # add the steps one by one, last first, so that the sum does not depend on the
        # chunk length (which depends on M): an ensemble member then matches its solo run
        for k in range(L - 1, -1, -1):
            np.add(dW, ws.dWc[k], out=dW)
    d = np.arange(H)
    dz_s, dy_s = dW[:, :4 * H], dW[:, 4 * H]                    # (M, 4H, K+2H), (M, K+2H)
    return {"Wx": dz_s[:, :, 2 * H:2 * H + n_in].transpose(0, 2, 1).copy(),   # z = ... x Wx
            "Wh": dz_s[:, :, :H].transpose(0, 2, 1).copy(),                   #   + h_{t-1} Wh
            "b": dz_s[:, :, K - 1].copy(),                                    #   + b
            # (fancy indexing returns these column-major for M > 1; keep every gradient
            #  C-ordered so that per-model sums round alike at any ensemble size)
            "p_i": np.ascontiguousarray(dz_s[:, I_ * H + d, H + d]),          # z_i += p_i c_{t-1}
            "p_f": np.ascontiguousarray(dz_s[:, F_ * H + d, H + d]),          # z_f += p_f c_{t-1}
            "p_o": np.ascontiguousarray(dz_s[:, O_ * H + d, K + H + d]),      # z_o += p_o c_t
            "Wy": dy_s[:, K:K + H, None].copy(),                              # y = h_t Wy
            "by": dy_s[:, K - 1:K].copy()}                                    #   + by


def wrong_predictions(err, tol, mask):
    """Steps whose prediction is wrong: |err| >= tol (NaN included) where a target is given."""
    return ~(np.abs(err) < tol) & (True if mask is None else mask > 0)


def loss_and_grads(P, x, d, peep, ws=None, cell=Cell(), mask=None, stop_tol=None):
    """Loss per model (M,) = 0.5 * sum_t mask (y - d)^2 averaged over the batch, its gradients, and y.

    x (T, I, M, N), d (T, M, N), peep (M,) bool: vanilla members get zero peephole gradients.
    mask (T, M, N) or None (every step has a target): 0 where no target is given.
    stop_tol: if given, each stream ends at its first wrong prediction, |y - d| >= stop_tol
    where a target is given (the paper's training streams stop there): later steps carry no error.
    """
    T, n_in, M, N = x.shape
    H = P["Wh"].shape[1]
    if ws is None or ws.shape != (M, T, N, H, n_in):
        ws = Workspace(M, T, N, H, n_in)
    W = Weights(P, N, cell)
    y = forward(W, x, ws)
    diff = y - d
    err = diff if mask is None else diff * mask               # dloss/dy, times N
    if stop_tol is not None:
        wrong = wrong_predictions(err, stop_tol, mask)
        err[np.cumsum(wrong, axis=0) > wrong] = 0.0           # the steps after the first wrong one
    loss = 0.5 * model_sum(err * diff) / N                    # mask enters once, as in its gradient
    dy = err / N
    if cell.readout == "sigmoid":
        dy *= y * (1.0 - y)
    grads = backward(W, dy, ws)
    peep = np.asarray(peep, dtype=bool)
    for name in PEEPS:
        grads[name] *= peep[:, None]
    return loss, grads, y


class Stepper:
    """Forward step by step with state memory independent of the stream length. The
    state carries over from one run() to the next, so a long stream can go in chunks."""

    def __init__(self, P, N, cell):
        M, n_in, H4 = P["Wx"].shape
        H = H4 // 4
        self.W, self.cell, self.rows, self.t = Weights(P, N, cell), cell, slice(2 * H, 2 * H + n_in), 0
        self.S = state_buffer(2, M, H, n_in, N)
        act, z, tmp = np.empty((5 * H, M, N)), np.empty((4 * H, M, N)), np.empty((H, M, N))
        self.views = [StepViews(self.S[k], self.S[1 - k], act, z, tmp, H) for k in (0, 1)]
        self.h_m = [self.S[k, :H].transpose(1, 0, 2) for k in (1, 0)]   # (M, H, N) views of step t's h
        self.WyT = self.W.Wy.transpose(0, 2, 1)                          # (M, 1, H)

    def run(self, x):
        """x (T, I, M, N) -> y (T, M, N), continuing from the state the last run left."""
        W, S = self.W, self.S
        y = np.empty((len(x),) + S.shape[2:])
        with np.errstate(over="ignore"):
            for k in range(len(x)):
                p = self.t % 2
                S[p, self.rows] = x[k]
                cell_step(W, self.views[p])
                np.matmul(self.WyT, self.h_m[p], out=y[k, :, None, :])
                self.t += 1
        return output_unit(y + W.by, self.cell)


def predict(P, x, cell=Cell()):
    """Inference with state memory independent of T: x (T, I, M, N) -> y (T, M, N)."""
    return Stepper(P, x.shape[3], cell).run(x)


FREE_RUN_CHUNK = 500     # steps the free-running evaluator takes between checks


class FreeRun:
    """Members running free, without caches, on streams fed to them in pieces, each stream
    until its first wrong prediction (|y - d| >= tol where a target is given; NaN is wrong).
    periods (M, N): the periods each of its N streams completed; sq, n_sq (M,): the sum and count of
    squared errors over the supervised steps run, up to the first wrong one included."""

    def __init__(self, P, cell, N, tol):
        M = P["Wx"].shape[0]
        self.run, self.tol = Stepper(P, N, cell), tol
        self.periods, self.alive = np.zeros((M, N), np.int64), np.ones((M, N), bool)
        self.sq, self.n_sq = np.zeros(M), np.zeros(M)

    def feed(self, x, d, mask, ends):
        """The next C steps: x (C, I, M, N), d (C, M, N), mask (C, M, N) or None, ends (C, M, N)
        (True at the last step of a period). Returns whether any stream is still running."""
        C = len(d)
        err = np.abs(self.run.run(x) - d)
        wrong = wrong_predictions(err, self.tol, mask)
        first = np.where(wrong.any(axis=0), wrong.argmax(axis=0), C)          # (M, N)
        t = np.arange(C)[:, None, None]
        ran = (t <= first) & self.alive & (True if mask is None else mask > 0)    # supervised steps run
        self.sq += model_sum(np.where(ran, err * err, 0.0))
        self.n_sq += model_sum(ran.astype(np.float64))
        self.periods += np.sum((t < first) & self.alive & ends, axis=0)
        self.alive &= first == C
        return bool(self.alive.any())


def free_run(P, cell, members, tests, tol):
    """Run member k on the test streams of its seed (FreeRun). Returns periods (M, N), sq (M,)
    and n_sq (M,)."""
    L, N = tests[members[0][0]].d.shape
    fr = FreeRun(P, cell, N, tol)
    for t0 in range(0, L, FREE_RUN_CHUNK):
        t1 = min(L, t0 + FREE_RUN_CHUNK)
        x, d, mask = stack_inputs(tests, members, t0, t1)
        ends = np.stack([tests[s].info["ends"][t0:t1] for s, _ in members], axis=1)   # (C, M, N)
        if not fr.feed(x, d, mask, ends):
            break
    return fr.periods, fr.sq, fr.n_sq


def trace(P, x, cell=Cell()):
    """Every activation of a forward pass, for plots: x (T, I, M, N) -> dict of (T, ..., M, N).
    s_c is the squashed cell state, h = o * s_c: tanh(c), or c for the paper cell."""
    T, n_in, M, N = x.shape
    H = P["Wh"].shape[1]
    ws = Workspace(M, T, N, H, n_in)
    y = forward(Weights(P, N, cell), x, ws)
    out = {name: ws.ACT[:, k * H:(k + 1) * H].copy() for k, name in enumerate(("i", "f", "g", "o", "s_c"))}
    out.update(c=ws.S[1:, H:2 * H].copy(), h=ws.S[1:, :H].copy(), y=y)
    return out


# ----------------------------------------------------------------------------
# Adam, one state per model.

class Adam:
    def __init__(self, P, cfg):
        self.cfg = cfg
        self.m = {k: np.zeros_like(v) for k, v in P.items()}
        self.v = {k: np.zeros_like(v) for k, v in P.items()}
        self.t = 0

    def step(self, P, grads, lr, active=None):
        """One update of every model; active (M,) bool, if given, leaves the others' weights alone."""
        c = self.cfg
        self.t += 1
        # 1. clip: scale each model's gradient so its global L2 norm is at most c.clip
        # (each model's row contiguous: numpy sums strided rows in another order)
        sq = sum(np.sum(np.ascontiguousarray(g).reshape(len(g), -1) ** 2, axis=1)
                 for g in grads.values())                                             # (M,)
        scale = c.clip / np.maximum(np.sqrt(sq), c.clip)
        for k, g in grads.items():
            g = g * scale.reshape((-1,) + (1,) * (g.ndim - 1))
            # 2. moments
            self.m[k] = c.beta1 * self.m[k] + (1 - c.beta1) * g
            self.v[k] = c.beta2 * self.v[k] + (1 - c.beta2) * g * g
            # 3. bias correction
            mh = self.m[k] / (1 - c.beta1 ** self.t)
            vh = self.v[k] / (1 - c.beta2 ** self.t)
            # 4. update
            step = lr * mh / (np.sqrt(vh) + c.adam_eps)
            if active is not None:
                step *= active.reshape(scale.shape + (1,) * (g.ndim - 1))
            P[k] -= step
        return np.sqrt(sq)


def lr_at(cfg, it):
    """Learning rate for iteration it (1-based): halved every lr_halve_every iterations."""
    return cfg.lr * 0.5 ** ((it - 1) // cfg.lr_halve_every)


# ----------------------------------------------------------------------------
# Tasks. A task turns a Config into batches and judges a trained ensemble; every
# task offers
#   n_in                  -> input channels I
#   check(cfg)            -> raise ValueError if cfg cannot be sampled
#   length(cfg)           -> T, the steps of one training sequence
#   sample(cfg, rng, n)   -> Batch of n training sequences
#   test_set(cfg, rng)    -> Batch: the fixed held-out set of one seed
#   evaluate(cfg, P, members, tests) -> one metric dict per member
#   columns               -> (key, title, format) of the metrics that tables show
#   freeze                -> True: a member stops training once it is "perfect"
#   label(cfg)            -> the row's name in tables and logs
# and the paper's tasks, what both engines and the tables read of them:
#   family, lay           -> its family in the start map's scores; its online stream lay-out
#   readout, momentum, batch -> the paper's output unit and momentum; the batch recipe's batch
#   target_scale(cfg)     -> delay targets are divided by this (a sigmoid output reaches 1 at most)
#   train_periods(cfg), test_periods(cfg), tests_needed(cfg) -> online: periods of a training and
#                            of a test stream, test streams completed to be perfect
#   fixed_tests, draws_tests -> test q is the q-th delay (NMSD); fresh test streams are drawn
#   one_interval          -> a stream is one interval (NMSD): no long free run
#   paper_key, period_targets(cfg) -> the field that tells its paper rows apart; f over one period (PFG)
#   rows(steps, scale, f) -> a stream's inputs, targets and where a prediction counts over some of
#                            its steps (Steps), for both engines: the batch engine's whole streams
#                            and the online engine's windows; every_step, delay_input, f_target ->
#                            whether a prediction counts at every step (else at a period's end
#                            only), whether the input through a period is its delay, whether the
#                            target is f through a period

@dataclasses.dataclass
class Batch:
    x: np.ndarray               # (T, I, n) inputs, features before the batch like every buffer
    d: np.ndarray               # (T, n) targets
    info: dict                  # task-specific arrays
    mask: np.ndarray = None     # (T, n) 1.0 where a target is given, 0.0 where none; None: every step


class Steps:
    """R steps of k streams made of periods, from where each stream is: which step ends a
    period (sp), how many periods began before each step (cnt), and each period's delay I,
    first step (start) and last (end). A task lays out its streams from it (rows), for both
    engines: the batch engine over whole streams from their start, the online engine over a
    window, from each network's place in its stream. I (n_per, k): the delays of the period
    under way at step 0 and of the ones after it; length (n_per, k) their lengths, F + I;
    pos (k,): steps of the first period run before step 0; same: every period of a stream has
    the one delay (I's rows are alike); clip: steps past the last period take its delay."""

    def __init__(self, I, length, pos, R, same=False, clip=False):
        n_per, k = I.shape
        end = (np.cumsum(length, axis=0) if not same else np.arange(1, n_per + 1)[:, None] * length[0]) - (pos + 1)
        self.I, self.end, self.start, self.same, self.clip = I, end, end - length + 1, same, clip
        self.inside = end < R
        self.ends = end[self.inside], np.nonzero(self.inside)[1]       # (steps, streams) of the periods' last steps
        self.sp = np.zeros((R, k), bool)
        self.sp[self.ends] = True
        self.cnt = np.cumsum(self.sp, axis=0, dtype=np.int8 if n_per < 128 else np.int64) - self.sp
        self.col = np.arange(k)

    def cols(self, sel):
        """The same steps of the streams sel only (None: all)."""
        if sel is None:
            return self
        s = object.__new__(Steps)
        s.I, s.end, s.start, s.same, s.clip = self.I[:, sel], self.end[:, sel], self.start[:, sel], self.same, self.clip
        s.inside, s.sp, s.cnt = self.inside[:, sel], self.sp[:, sel], self.cnt[:, sel]
        s.col = self.col[:s.sp.shape[1]]
        s.ends = s.end[s.inside], np.nonzero(s.inside)[1]
        return s

    def delay(self):
        """The delay of each step's period, (R, k), or (1, k) where each stream has one delay."""
        if self.same:
            return self.I[:1]
        return self.I[np.minimum(self.cnt, len(self.I) - 1) if self.clip else self.cnt, self.col]

    def phase(self):
        """Each step's place in its period, 0 at its first step."""
        return np.arange(len(self.sp))[:, None] - self.start[self.cnt, self.col]


class MSD:
    """Measure Spike Distance: spikes at t1 and t2 = t1 + D, target at t1 + 2D."""
    n_in = 1
    freeze = False
    paper = False            # the earlier reproduction's task, not one of the paper's
    family, paper_key = "MSD", None

    @staticmethod
    def label(cfg):
        return f"T={cfg.T}, D in [{cfg.D_min}, {cfg.D_max}]"
    columns = (("test_mse", "test MSE", ".5f"), ("zero_mse", "zero MSE", ".5f"), ("solve", "solve", ".3f"))
    history = ("test_mse", "solve", "solve_tol")     # metrics kept at every evaluation
    tail = ("test_mse", "solve")                     # metrics also averaged over the last evaluations

    @staticmethod
    def brief(ms):
        """The progress-line summary of some members' metrics."""
        return f"test {np.mean([m['test_mse'] for m in ms]):.2e} solve {np.mean([m['solve'] for m in ms]):.3f}"

    @staticmethod
    def check(cfg):
        if cfg.D_min < 1 or cfg.D_min > cfg.D_max:
            raise ValueError(f"D range [{cfg.D_min}, {cfg.D_max}] is empty or starts below 1; "
                             "need 1 <= D_min <= D_max")
        if 2 * cfg.D_max >= cfg.T:
            raise ValueError(f"D_max = {cfg.D_max} leaves no room: the target t1 + 2*D_max must be "
                             f"< T = {cfg.T}, so need 2*D_max < T")
        if cfg.stop_on_error:
            raise ValueError("stop_on_error applies to the paper's tasks (nmsd, cmsd, gts, pfg), not to msd")

    @staticmethod
    def length(cfg):
        return cfg.T

    @staticmethod
    def sample(cfg, rng, n):
        D = rng.integers(cfg.D_min, cfg.D_max + 1, size=n)
        # t1 uniform over 0 .. T-1-2D, the starts that keep the target inside the sequence
        t1 = np.floor(rng.random(n) * (cfg.T - 2 * D)).astype(np.int64)
        t2, tt = t1 + D, t1 + 2 * D
        cols = np.arange(n)
        x = np.zeros((cfg.T, 1, n))
        x[t1, 0, cols] = 1.0
        x[t2, 0, cols] = 1.0
        d = np.zeros((cfg.T, n))
        d[tt, cols] = 1.0
        return Batch(x, d, {"t1": t1, "t2": t2, "target": tt})

    @classmethod
    def test_set(cls, cfg, rng):
        return cls.sample(cfg, rng, cfg.n_test)

    @staticmethod
    def solved(cfg, y, batch, tol):
        """y (T, n). Solved when argmax over steps t2+1 .. T-1 is within tol of the target."""
        t = np.arange(cfg.T)[:, None]
        after = t > batch.info["t2"][None, :]                     # (T, n)
        peak = np.argmax(np.where(after, y, -np.inf), axis=0)     # (n,)
        return np.abs(peak - batch.info["target"]) <= tol

    @classmethod
    def evaluate(cls, cfg, P, members, tests):
        """Per member: mse per step, zero-predictor mse, exact and +-tol solve rates."""
        x, d, _ = stack_inputs(tests, members)
        y = predict(P, x, cell_of(cfg))
        out = []
        for k, (s, _) in enumerate(members):
            out.append({"test_mse": float(np.mean((y[:, k] - d[:, k]) ** 2)),
                        "zero_mse": float(np.mean(d[:, k] ** 2)),
                        "solve": float(np.mean(cls.solved(cfg, y[:, k], tests[s], 0))),
                        "solve_tol": float(np.mean(cls.solved(cfg, y[:, k], tests[s], cfg.tol)))})
        return out


# The paper's tasks (its Sections 4.2-4.4). Every stream starts from the zero state.
# A "period" is one spike interval, or one period of f for PFG. Steps are 0-based:
# the spike that ends interval n sits at index T(n) - 1, with T(0) = F + I(0) and
# T(n) = T(n-1) + F + I(n), so each spike follows F + I(n) - 1 silent steps.
# info["ends"] (T, n) marks the last step of every period; info["periods"] is the
# number of periods a stream holds in full.

class PaperTask:
    """What the paper's tasks share: the free-running evaluation and its metrics."""
    freeze = True            # the paper stops training a network once it is perfect
    paper = True
    columns = (("periods", "periods", ".1f"), ("perfect", "perfect", ".0f"))
    history = ("periods", "perfect", "rmse")
    tail = ()
    fixed_tests = False      # NMSD: test stream q is the q-th delay of the set
    draws_tests = True       # fresh test streams are drawn (NMSD tests every stream, PFG has one)
    one_interval = False     # NMSD: a stream is one interval, so there is no long free run
    paper_key = "delays"     # the field that tells the paper's rows of this task apart
    every_step = True        # a prediction counts at every step (NMSD, CMSD: at a spike only)
    delay_input = False      # GTS: the input through a period is its delay
    f_target = False         # PFG: the target is f through a period (rows reads f)

    @staticmethod
    def label(cfg):
        return f"{cfg.task.upper()} F={cfg.F} I in {{{','.join(map(str, cfg.delays))}}}"

    @staticmethod
    def target_scale(cfg):
        return 1

    @staticmethod
    def train_periods(cfg):
        return cfg.periods

    @staticmethod
    def test_periods(cfg):
        return cfg.test_periods

    @staticmethod
    def tests_needed(cfg):
        return cfg.test_streams

    @staticmethod
    def period_targets(cfg):
        return None

    @staticmethod
    def brief(ms):
        return (f"periods {np.mean([m['periods'] for m in ms]):7.1f} "
                f"perfect {sum(m['perfect'] for m in ms):.0f}/{len(ms)}")

    @staticmethod
    def check(cfg):
        if cfg.F < 2:
            raise ValueError(f"F = {cfg.F} must be an integer >= 2")

    @classmethod
    def evaluate(cls, cfg, P, members, tests):
        """Run each test stream free until its first wrong prediction, or its end.
        perfect: every stream of the member's test set completed all its periods."""
        periods, sq, n_sq = free_run(P, cell_of(cfg), members, tests, cls.tolerance(cfg))
        full = tests[members[0][0]].info["periods"]
        return [{"periods": float(np.mean(periods[k])), "perfect": float(np.all(periods[k] == full)),
                 "rmse": float(np.sqrt(sq[k] / max(n_sq[k], 1)))} for k in range(len(members))]


class SpikeTrain(PaperTask):
    """Spike-train tasks (NMSD, CMSD, GTS): streams built from delays I(n)."""
    n_in = 1

    @staticmethod
    def check(cfg):
        PaperTask.check(cfg)
        if (len(cfg.delays) < 1 or not all(isinstance(v, int) and v >= 0 for v in cfg.delays)
                or len(set(cfg.delays)) != len(cfg.delays)):
            raise ValueError(f"delays {list(cfg.delays)!r} must be distinct integers >= 0")

    @classmethod
    def tolerance(cls, cfg):
        return 0.49 / cls.target_scale(cfg)

    @staticmethod
    def length(cfg):
        # cfg.periods spikes fit even if every delay is the largest
        return cfg.periods * (cfg.F + max(cfg.delays))

    @staticmethod
    def draw(cfg, rng, n, periods):
        """Delays I (n, periods), uniform over the set."""
        return np.asarray(cfg.delays)[rng.integers(0, len(cfg.delays), size=(n, periods))]

    @classmethod
    def streams(cls, cfg, I, L):
        """Streams of L steps for delays I (n, periods); spikes past the end are dropped. Targets
        are given where a prediction counts, up to the stream's last spike."""
        s = Steps(I.T, cfg.F + I.T, 0, L, clip=True)
        x, d, counts = cls.rows(s, cls.target_scale(cfg), None)
        mask = counts if counts is not None else np.arange(L)[:, None] <= s.end[-1]
        return Batch(x[:, None].astype(np.float64), d.astype(np.float64),
                     {"ends": s.sp, "periods": int(np.min(s.inside.sum(axis=0)))}, mask.astype(np.float64))

    @classmethod
    def sample(cls, cfg, rng, n):
        L = cls.length(cfg)
        return cls.streams(cfg, cls.draw(cfg, rng, n, L // cfg.F + 1), L)    # enough to fill L

    @classmethod
    def test_set(cls, cfg, rng):
        I = cls.draw(cfg, rng, cfg.test_streams, cfg.test_periods)
        return cls.streams(cfg, I, int(np.max(np.sum(cfg.F + I, axis=1))))


class CMSD(SpikeTrain):
    """The paper's continual MSD: the input is a spike train; at each spike the target
    is its delay I(n) / target_scale; between spikes there is no target."""
    family, lay, readout, momentum, batch = "NMSD", "spike_in", "sigmoid", 0.9999, 8

    @staticmethod
    def target_scale(cfg):
        """A sigmoid output unit cannot reach a target above 1, so with it the delays are
        mapped onto [0, 1] and the 0.49 tolerance shrinks by the same factor; with a linear
        output they stay as they are."""
        return max(max(cfg.delays), 1) if cfg.readout == "sigmoid" else 1

    every_step = False

    @staticmethod
    def rows(s, scale, f):
        """The input spikes at each period's end; the target there is its delay / scale, and
        only there does a prediction count."""
        d = np.zeros(s.sp.shape)
        d[s.ends] = (s.I / scale)[s.inside]
        return s.sp, d, s.sp


class NMSD(CMSD):
    """Non-continual MSD: a stream is one interval, from the zero state to its spike. Online,
    a training or test stream is one period, and a network is perfect when it has completed
    the stream of every delay of the set, in order."""
    momentum, batch = 0.99, 16
    fixed_tests, draws_tests, one_interval = True, False, True

    @staticmethod
    def train_periods(cfg):
        return 1

    test_periods = train_periods

    @staticmethod
    def tests_needed(cfg):
        return len(cfg.delays)

    @staticmethod
    def length(cfg):
        return cfg.F + max(cfg.delays)

    @classmethod
    def sample(cls, cfg, rng, n):
        return cls.streams(cfg, cls.draw(cfg, rng, n, 1), cls.length(cfg))

    @classmethod
    def test_set(cls, cfg, rng):
        """Every possible stream once, one per delay: the paper's 'all possible input test streams'."""
        return cls.streams(cfg, np.asarray(cfg.delays)[:, None], cls.length(cfg))


class GTS(SpikeTrain):
    """Generating timed spikes: MSD with input and target exchanged. The input holds
    I(n) through interval n, from the step after spike n-1 up to spike n; the target
    is 1 at each spike and 0 at every other step, up to the stream's last spike."""
    family, lay, readout, momentum, batch = "GTS", "spike_out", "sigmoid", 0.999, 4
    delay_input = True

    @staticmethod
    def rows(s, scale, f):
        """The input is the period's delay throughout; the target is 1 at its end, 0 elsewhere."""
        return s.delay(), s.sp, None


class PFG(PaperTask):
    """Periodic function generation: no input; the target is f((t mod F) / F), t = 0, 1, ...
    Without input every stream is the same, so a batch repeats it and the test set is
    one stream of cfg.test_periods periods."""
    n_in = 0
    family, lay, readout, momentum, batch = "PFG", "func", "linear", 0.99, 1     # one stream: all are alike
    draws_tests, paper_key, f_target = False, "func", True
    columns = PaperTask.columns + (("rmse", "sqrt MSE", ".3f"),)
    # the paper's f_cos, f_tri, f_rect of u = (t mod F) / F, all in [0, 1]; its printed
    # f_tri runs from 2 down to 1 and back, so we take it minus 1, as its text intends
    FUNCS = {"cos": lambda u: 0.5 * (1.0 - np.cos(2.0 * np.pi * u)),
             "tri": lambda u: np.abs(2.0 * u - 1.0),
             "rect": lambda u: (u > 0.5).astype(np.float64)}

    @staticmethod
    def label(cfg):
        return f"PFG f_{cfg.func} F={cfg.F}"

    @staticmethod
    def tests_needed(cfg):
        return 1

    @classmethod
    def period_targets(cls, cfg):
        return cls.FUNCS[cfg.func](np.arange(cfg.F) / cfg.F)

    @classmethod
    def check(cls, cfg):
        PaperTask.check(cfg)
        if cfg.func not in cls.FUNCS:
            raise ValueError(f"func {cfg.func!r} is unknown; allowed: {', '.join(cls.FUNCS)}")

    @staticmethod
    def tolerance(cfg):
        return 0.3

    @staticmethod
    def length(cfg):
        return cfg.periods * cfg.F

    @staticmethod
    def rows(s, scale, f):
        """No input; the target is f (F, k) at the step's place in its period."""
        return None, f[s.phase(), s.col], None

    @classmethod
    def streams(cls, cfg, n, periods):
        I = np.zeros((periods, n), np.int64)
        s = Steps(I, cfg.F + I, 0, periods * cfg.F, same=True)
        _, d, _ = cls.rows(s, 1, np.repeat(cls.period_targets(cfg)[:, None], n, axis=1))
        return Batch(np.zeros((periods * cfg.F, 0, n)), d, {"ends": s.sp, "periods": periods})

    @classmethod
    def sample(cls, cfg, rng, n):
        return cls.streams(cfg, n, cfg.periods)

    @classmethod
    def test_set(cls, cfg, rng):
        return cls.streams(cfg, 1, cfg.test_periods)


TASKS = {"msd": MSD, "nmsd": NMSD, "cmsd": CMSD, "gts": GTS, "pfg": PFG}


# ----------------------------------------------------------------------------
# Batch training of an ensemble (Adam on batches of streams, BPTT), and its evaluation.

# Targets lie in [0, 1], or for a linear output in [0, largest delay] (10 in the paper's
# tables), so a training MSE per step above this means divergence as surely as a NaN does.
MSE_DIVERGED = 1e6


class DivergenceError(RuntimeError):
    pass


def quiet(line):
    """The training functions' default log: a library call prints nothing (the CLI passes print)."""


def members_of(cfg):
    """Ensemble members as (seed, variant) pairs; both variants of a seed sit side by side."""
    return [(s, v) for s in cfg.seeds for v in cfg.variants]


def test_sets(cfg, draw=None):
    """The held-out set of each seed, from its own stream, padded to one length (padding:
    no input, no target, no period ends) so that the seeds stack. draw None: the seed's
    fixed set (MSD, --load, figures); draw k: its k-th fresh set, so that the paper's tasks
    test on new streams at every test, as the paper does, and no network passes by luck on
    streams it has met before."""
    tests = {s: TASKS[cfg.task].test_set(cfg, rng_for(s, STREAM_TEST, *([] if draw is None else [draw])))
             for s in cfg.seeds}
    L = max(len(b.d) for b in tests.values())
    for b in tests.values():
        pad = L - len(b.d)
        if pad:
            b.x = np.concatenate([b.x, np.zeros((pad,) + b.x.shape[1:])])
            b.mask = np.concatenate([np.ones_like(b.d) if b.mask is None else b.mask, np.zeros((pad, b.d.shape[1]))])
            b.d = np.concatenate([b.d, np.zeros((pad, b.d.shape[1]))])
            b.info["ends"] = np.concatenate([b.info["ends"], np.zeros((pad, b.d.shape[1]), bool)])
    return tests


def stack_inputs(batches, members, t0=0, t1=None):
    """Steps t0 .. t1-1 of per-seed batches -> x (T, I, M, N), d (T, M, N) and mask (T, M, N)
    or None; the members of a seed share them."""
    x = np.stack([batches[s].x[t0:t1] for s, _ in members], axis=2)
    d = np.stack([batches[s].d[t0:t1] for s, _ in members], axis=1)
    if all(batches[s].mask is None for s, _ in members):
        return x, d, None
    mask = np.stack([np.ones_like(batches[s].d[t0:t1]) if batches[s].mask is None
                     else batches[s].mask[t0:t1] for s, _ in members], axis=1)
    return x, d, mask


def evaluate(cfg, P, members, tests):
    """The task's test metrics, one dict per member."""
    return TASKS[cfg.task].evaluate(cfg, P, members, tests)


def train(cfg, members=None, log=quiet, snapshots=False, report=None):
    """Train every (seed, variant) member together. Returns (params, results dict).

    At every evaluation point (iteration 0 included) a progress line goes to log, or
    report(it, train_mse, metrics, elapsed) is called instead if given. snapshots=True
    also returns each member's parameters at every evaluation point. On tasks that
    freeze, a member found perfect at an evaluation keeps its weights from then on and
    is not evaluated again (its metrics could not change); training ends early once
    every member is frozen.
    """
    cfg.validate()
    members = members_of(cfg) if members is None else list(members)
    task = TASKS[cfg.task]
    seeds = sorted({s for s, _ in members})
    P = stack([init_member(cfg, s, v) for s, v in members])
    peep = np.array([v == "peep" for _, v in members])
    train_rng = {s: rng_for(s, STREAM_TRAIN) for s in seeds}
    fixed_tests = None if task.freeze else test_sets(cfg)      # paper tasks: a fresh draw at every test
    M, cell, T = len(members), cell_of(cfg), task.length(cfg)
    ws = Workspace(M, T, cfg.batch, cfg.hidden, task.n_in)
    opt = Adam(P, cfg)
    hist = {"iter": [], "train_mse": [], **{k: [] for k in task.history}}
    run_sq, run_n = np.zeros(M), 0
    snaps, metrics, frozen, solved_at, diverged_at = [], [None] * M, np.zeros(M, bool), [None] * M, [None] * M
    t0 = time.perf_counter()

    def record(it, train_mse):
        if snapshots:
            snaps.append({k: v.copy() for k, v in P.items()})
        live = np.flatnonzero(~frozen)
        tests = (fixed_tests or test_sets(cfg, draw=it)) if len(live) else None
        if len(live) == M:
            new = evaluate(cfg, P, members, tests)
        else:
            new = evaluate(cfg, {k: v[live] for k, v in P.items()}, [members[k] for k in live],
                           tests) if len(live) else []
        for k, m in zip(live, new):
            metrics[k] = m
            if task.freeze and m["perfect"]:
                frozen[k], solved_at[k] = True, it
        hist["iter"].append(it)
        hist["train_mse"].append([None if np.isnan(v) else float(v) for v in train_mse])  # none before training
        for key in task.history:
            hist[key].append([m[key] for m in metrics])
        if report is None:
            log(progress_line(cfg, members, it, train_mse, metrics, time.perf_counter() - t0))
        else:
            report(it, [float(v) for v in train_mse], list(metrics), time.perf_counter() - t0)

    record(0, np.full(M, np.nan))
    for it in range(1, cfg.iters + 1):
        if frozen.all():                  # nothing left to train; keep the evaluation grid
            if it % cfg.eval_every == 0 or it == cfg.iters:
                record(it, np.full(M, np.nan))
            continue
        batches = {s: task.sample(cfg, train_rng[s], cfg.batch) for s in seeds}
        x, d, mask = stack_inputs(batches, members)
        with np.errstate(over="ignore", invalid="ignore"):   # a non-finite loss is caught below
            loss, grads, _ = loss_and_grads(P, x, d, peep, ws, cell, mask,
                                            task.tolerance(cfg) if cfg.stop_on_error else None)
        mse = loss * 2.0 / (T if mask is None else model_sum(mask) / cfg.batch)    # per supervised step
        bad = ~(mse < MSE_DIVERGED) & ~frozen                                     # NaN included
        if bad.any() and not task.freeze:
            raise DivergenceError(f"training diverged at iteration {it} (training MSE not finite or above "
                                  f"{MSE_DIVERGED:.0e} for "
                                  f"{', '.join(f'seed {members[k][0]} {members[k][1]}' for k in np.flatnonzero(bad))}"
                                  "); try a smaller --lr")
        for k in np.flatnonzero(bad):   # the paper's tasks: a diverged network fails, like one that never
            frozen[k], diverged_at[k] = True, it      # learns, and stops; the table goes on and counts it
        opt.step(P, grads, lr_at(cfg, it), ~frozen if frozen.any() else None)
        run_sq += mse
        run_n += 1
        if it % cfg.eval_every == 0 or it == cfg.iters:
            record(it, np.where(frozen, np.nan, run_sq / run_n))      # frozen members did not train
            run_sq[:], run_n = 0.0, 0
    seconds = time.perf_counter() - t0
    out = []
    for j, (s, v) in enumerate(members):
        h = {k: (hist[k] if k == "iter" else [row[j] for row in hist[k]]) for k in hist}
        out.append({"seed": s, "variant": v, "history": h, "final": metrics[j]})
        if task.tail:
            # one evaluation is a noisy sample of a still-moving network; the tail mean is steadier
            out[-1]["tail"] = {k: float(np.mean(h[k][1:][-cfg.tail_evals:] or [np.nan])) for k in task.tail}
        if task.freeze:
            # training streams used until the evaluation that found the member perfect
            out[-1]["solved_at"] = solved_at[j]
            out[-1]["streams"] = None if solved_at[j] is None else solved_at[j] * cfg.batch
            out[-1]["diverged_at"] = diverged_at[j]
        if snapshots:
            out[-1]["snapshots"] = [{k: a[j:j + 1] for k, a in snap.items()} for snap in snaps]
    return P, {"members": out, "seconds": seconds}


_progress_queue = None      # set in each worker process by _init_worker


def _init_worker(queue):
    global _progress_queue
    _progress_queue = queue
    _worker_signals()


def _worker_signals():
    """Workers leave Ctrl-C to the main process, which ends them with SIGTERM (the
    default action: no handler the main process may have installed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _train_worker(args):
    cfg, members, w, snapshots = args
    report = (lambda *a: None) if _progress_queue is None else (lambda *a: _progress_queue.put((w,) + a))
    return train(cfg, members, snapshots=snapshots, report=report)


def eval_points(cfg):
    return [it for it in range(cfg.iters + 1) if it == 0 or it % cfg.eval_every == 0 or it == cfg.iters]


def train_parallel(cfg, workers=1, log=quiet, snapshots=False):
    """Train all members, dealt round-robin to `workers` processes. The results are the same
    as in one process: a member's arithmetic does not depend on the other members. Given a
    log, the workers report each evaluation here, and it gets one progress line for all."""
    cfg.validate()
    members = members_of(cfg)
    groups = [g for g in (members[w::workers] for w in range(workers)) if g]
    if len(groups) <= 1:
        return train(cfg, members, log=log, snapshots=snapshots)
    jobs = [(cfg, g, w, snapshots) for w, g in enumerate(groups)]
    order = {m: k for k, m in enumerate(members)}
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context()
    queue = None if log is quiet else ctx.Queue()
    pending, printed = {}, 0

    def collect(timeout):
        """Take one report off the queue; print the line of an evaluation all workers reached."""
        nonlocal printed
        try:
            w, it, train_mse, metrics, elapsed = queue.get(timeout=timeout)
        except Empty:
            return False
        pending.setdefault(it, {})[w] = (train_mse, metrics, elapsed)
        if len(pending[it]) == len(jobs):
            got = pending.pop(it)
            rows = sorted(((order[m], got[w][0][k], got[w][1][k]) for w, g in enumerate(groups)
                           for k, m in enumerate(g)))
            log(progress_line(cfg, members, it, [r[1] for r in rows], [r[2] for r in rows],
                              max(v[2] for v in got.values())))
            printed += 1
        return True

    pool = ctx.Pool(len(jobs), initializer=_init_worker, initargs=(queue,))
    try:                                  # on any exit, Ctrl-C included, no worker outlives this
        futures = [pool.apply_async(_train_worker, (job,)) for job in jobs]
        while queue is not None and not all(f.ready() for f in futures):
            collect(0.2)
        failed = any(f.ready() and not f.successful() for f in futures)
        while queue is not None and not failed and printed < len(eval_points(cfg)) and collect(5.0):
            pass
        outs = [f.get() for f in futures]
    finally:
        pool.terminate()
        pool.join()
    # put members back in members_of(cfg) order
    flat = [(m, P, k, r) for (P, res), job in zip(outs, jobs)
            for k, (m, r) in enumerate(zip(job[1], res["members"]))]
    flat.sort(key=lambda e: order[e[0]])
    P = {name: np.concatenate([e[1][name][e[2]:e[2] + 1] for e in flat]) for name in PARAMS}
    return P, {"members": [e[3] for e in flat], "seconds": time.perf_counter() - t0}


# ----------------------------------------------------------------------------
# The paper's online learning (its Sections 2.2, 3.2, 4.1). Each network runs its own
# stream one step at a time from the zero state; forward RTRL partials (eqs. 12-14,
# 22-23) give the truncated gradient; a momentum step (Plaut et al.) changes the weights
# after every target; a training stream stops at its first wrong prediction or after
# its last period, and a free-running test follows every training stream. Networks of
# any rows, seeds and variants of one task family share one network axis, each with its
# own stream state, task parameters and momentum, so no network waits for another.
#
# Every array of an online state has the network axis LAST (M contiguous numbers per
# feature): with one cell per network each numpy call works on rows of M numbers, and a
# broadcast or a reduction over features costs a few plain passes (network-first, a
# reduction over 4 features costs 6x more). Per network the weights are one column
# theta (NP, M) = [W (4H, K) | p_o (H) | Wy (H) | by] with W over the state rows
# [h | c | x | 1] (K = 2H + I + 1) as in the batched engine: p_i, p_f on the c diagonal
# of the i, f rows; the g and o rows' c columns are structural zeros (gmask), since o sees
# the NEW c through p_o. The partials dS (3H, K) = ds_c/dW of the i, f, g rows: under
# truncation a weight into cell j's gates or input reaches only s_j, one partial per weight.
#
# Streams are counter-based: the delay of period n of stream (j, q) of a seed is a hash of
# (seed, purpose, j, q, n), so the peephole and vanilla networks of a seed meet the same
# training stream j and test streams whatever happened before, any stream can be rebuilt
# on its own (tests, confirmation), and a checkpoint holds no generator state.

ONLINE_TRAIN, ONLINE_TEST, ONLINE_CONFIRM, ONLINE_LONG = 1, 2, 3, 4      # stream purposes
_GOLD = np.uint64(0x9E3779B97F4A7C15)
MAX_TEST_STREAMS = 1 << 16                                # stream (j, q) is numbered j * this + q


_MIX = tuple(np.array(c, np.uint64) for c in (30, 0xBF58476D1CE4E5B9, 27, 0x94D049BB133111EB, 31))   # 0-d: faster


def mix64(z):
    """splitmix64's finaliser: a well-mixed uint64 from a uint64 (arithmetic mod 2^64)."""
    s30, m1, s27, m2, s31 = _MIX
    z = np.atleast_1d(z)                       # arrays wrap silently; numpy scalars would warn
    z = (z ^ (z >> s30)) * m1
    z = (z ^ (z >> s27)) * m2
    return z ^ (z >> s31)


def seed_key(seed, purpose):
    return mix64(np.asarray(seed).astype(np.uint64) * _GOLD + np.uint64(purpose))


def stream_key(base, j, q=0):
    """The key of stream (j, q) under a seed_key; arguments broadcast as arrays."""
    number = np.asarray(j).astype(np.uint64) * np.uint64(MAX_TEST_STREAMS) + np.asarray(q).astype(np.uint64)
    return mix64(base + (number + np.uint64(1)) * _GOLD)


def delay_index(key, n, count):
    """Which element of a delay set of `count` elements period n of the keyed stream takes:
    the key seeds a splitmix64 sequence, and period n takes its (n+1)-th number."""
    u = np.asarray(n).astype(np.uint64) + np.uint64(1)
    return (mix64(key + u * _GOLD) % np.asarray(count).astype(np.uint64)).astype(np.int64)


def stream_delays(cfg, seed, purpose, j, qs, periods, first=0):
    """Delays I (len(qs), periods) of periods first, first + 1, ... of streams (j, q), q in qs:
    exactly the online engine's."""
    keys = stream_key(seed_key(seed, purpose), j, np.asarray(qs))[:, None]
    n = np.arange(first, first + periods)[None, :]
    return np.asarray(cfg.delays)[delay_index(keys, n, len(cfg.delays))]


def fresh_streams(cfg, seed, purpose, j, n):
    """n free-running streams (j, 0..n-1) of a paper task, for a test or a confirmation.
    NMSD and PFG have nothing to draw: every possible stream, or the only one."""
    task = TASKS[cfg.task]
    if not task.draws_tests:
        return task.test_set(cfg, None)
    I = stream_delays(cfg, seed, purpose, j, range(n), cfg.test_periods)
    return task.streams(cfg, I, int(np.max(np.sum(cfg.F + I, axis=1))))


LAYOUTS = ("spike_in", "spike_out", "func")      # a stream's lay-out: spikes in, spikes out, or a function out
LAYOUT_TASKS = tuple(next(t for t in TASKS.values() if getattr(t, "lay", None) == name) for name in LAYOUTS)
ONLINE_WINDOW = 32       # steps of every network's streams the online step lays out at once
COMPACT_BELOW = 0.75     # a window runs on a compacted axis once fewer than this share of networks is unfinished
ONE = np.array(1.0)      # numpy takes a 0-d array operand faster than a Python float
SPARSE_FROM = 256        # from this many networks, a step whose targets are few updates only their weights


def online_layout(H, n_in):
    """(K, sizes): state rows and the sizes of theta's pieces [W, p_o, Wy, by]."""
    K = 2 * H + n_in + 1
    return K, (4 * H * K, H, H, 1)


def pack(P):
    """A stacked parameter dict -> theta (NP, M): W_all with the network axis last, then p_o, Wy, by."""
    M = P["Wx"].shape[0]
    return np.concatenate([fused(P).transpose(1, 2, 0).reshape(-1, M), P["p_o"].T, P["Wy"][:, :, 0].T, P["by"].T])


def unpack(theta, H, n_in):
    """theta (NP, M) -> a stacked parameter dict (copies), the batched engine's layout."""
    M = theta.shape[1]
    K, sizes = online_layout(H, n_in)
    W, po, Wy, by = np.split(theta, np.cumsum(sizes)[:-1])
    W = W.reshape(4 * H, K, M)
    d = np.arange(H)
    c = np.ascontiguousarray
    return {"Wx": c(W[:, 2 * H:2 * H + n_in].transpose(2, 1, 0)), "Wh": c(W[:, :H].transpose(2, 1, 0)),
            "b": c(W[:, -1].T), "Wy": c(Wy.T[:, :, None]), "by": c(by.T),
            "p_i": c(W[I_ * H + d, H + d].T), "p_f": c(W[F_ * H + d, H + d].T), "p_o": c(po.T)}


def grad_mask(H, n_in, peep, forget):
    """(NP,) 1.0 where theta holds a trainable weight: of the c rows only the own cell's
    i, f peepholes (and those only with peep); no forget-gate weights without a forget gate."""
    K, _ = online_layout(H, n_in)
    W = np.ones((4 * H, K))
    W[:, H:2 * H] = 0.0
    d = np.arange(H)
    if peep:
        W[I_ * H + d, H + d] = W[F_ * H + d, H + d] = 1.0
    if not forget:
        W[F_ * H:(F_ + 1) * H] = 0.0
    return np.concatenate([W.ravel(), np.full(H, 1.0 if peep else 0.0), np.ones(H + 1)])


def online_state(nets):
    """The whole state of an online run, one dict of arrays with the network axis last.
    nets: [(cfg, seed, variant)], one cell kind, hidden size and number of inputs for all;
    each network's cfg.budget caps its training streams. A network starts from
    init_member's weights, as in batch learning."""
    cfg0 = nets[0][0]
    H, n_in = cfg0.hidden, TASKS[cfg0.task].n_in
    M = len(nets)
    K, _ = online_layout(H, n_in)
    col = lambda f, dtype=np.float64: np.array([f(c, s, v) for c, s, v in nets], dtype)
    delays = [c.delays if TASKS[c.task].n_in else (0,) for c, _, _ in nets]     # no input (PFG): period F, no delays
    nd, Fmax = max(map(len, delays)), max(c.F for c, _, _ in nets)
    st = {"theta": pack(stack([init_member(c, s, v) for c, s, v in nets])),
          "gmask": col(lambda c, s, v: grad_mask(H, n_in, v == "peep", c.forget)).T.copy(),
          "s": np.concatenate([np.zeros((K - 1, M)), np.ones((1, M))]),       # rows [h | c | x | 1]
          "dS": np.zeros((3 * H, K, M)),
          "ktrain": seed_key(col(lambda c, s, v: s, np.int64), ONLINE_TRAIN),
          "ktest": seed_key(col(lambda c, s, v: s, np.int64), ONLINE_TEST),
          "F": col(lambda c, s, v: c.F, np.int64),
          "dset": np.array([list(d) + [0] * (nd - len(d)) for d in delays], np.int64).T.copy(),
          "dcount": np.array([len(d) for d in delays], np.int64),
          "scale": col(lambda c, s, v: TASKS[c.task].target_scale(c)),
          "tol": col(lambda c, s, v: TASKS[c.task].tolerance(c)),
          "train_periods": col(lambda c, s, v: TASKS[c.task].train_periods(c), np.int64),
          "test_periods": col(lambda c, s, v: TASKS[c.task].test_periods(c), np.int64),
          "tests_needed": col(lambda c, s, v: TASKS[c.task].tests_needed(c), np.int64),
          "fixed_tests": col(lambda c, s, v: TASKS[c.task].fixed_tests, bool),
          "alpha": col(lambda c, s, v: c.alpha), "mu": col(lambda c, s, v: c.momentum),
          "budget": col(lambda c, s, v: c.budget, np.int64),
          "ftab": np.zeros((Fmax, M)),
          # stream state: testing (else training) or done, training streams done j, test stream q, its key,
          # step in the period, period n, its last step, its delay I and input/target values
          "testing": np.zeros(M, bool), "done": np.zeros(M, bool),
          "j": np.zeros(M, np.int64), "q": np.zeros(M, np.int64),
          "key": np.zeros(M, np.uint64), "pos": np.zeros(M, np.int64), "n": np.zeros(M, np.int64),
          "last": np.zeros(M, np.int64), "I": np.zeros(M), "target": np.zeros(M),
          "periods": np.zeros(M, np.int64), "maxp": np.zeros(M, np.int64),
          "trainf": np.ones(M),
          # outcomes: training streams when found perfect or when its weights left the finite
          # numbers (-1: not so), test stream sizes, steps run while unfinished (for costs)
          "learned_at": np.full(M, -1, np.int64), "diverged_at": np.full(M, -1, np.int64),
          "test_best": np.zeros(M, np.int64), "test_last": np.zeros(M, np.int64),
          "age": np.zeros(M, np.int64)}
    st["vel"] = np.zeros_like(st["theta"])
    st.update(family(nets))
    for k, (c, _, _) in enumerate(nets):
        f = TASKS[c.task].period_targets(c)
        if f is not None:
            st["ftab"][:c.F, k] = f
    start_streams(st, np.ones(M, bool))
    return st


def family(nets):
    """What each network [(cfg, seed, variant)] of an online state does differently, as data:
    its streams' lay-out (an index into LAYOUTS), a linear output unit, a forget gate."""
    return {"lay": np.array([LAYOUTS.index(TASKS[c.task].lay) for c, _, _ in nets], np.int8),
            "linear": np.array([c.readout == "linear" for c, _, _ in nets]),
            "forget": np.array([c.forget for c, _, _ in nets])}


def input_rows(H, n_in, wide):
    """The rows of a network's state [h | s_c | x | 1] (n_in inputs) in a state of `wide` inputs."""
    return np.r_[0:2 * H + n_in, 2 * H + wide]


def resize_inputs(st, H, n_in, wide):
    """The state of networks with n_in inputs as one with `wide` inputs, or back (wide < n_in).
    An input a network does not have is a row of zeros in its state, weights, their momentum
    and partials, and its gradient mask: every sum over the state then adds only exact zeros,
    so the network steps as it would alone."""
    K, K2 = online_layout(H, n_in)[0], online_layout(H, wide)[0]
    rows = input_rows(H, min(n_in, wide), max(n_in, wide))

    def resize(a, axis):                      # a's state axis from K rows to K2
        if wide < n_in:
            return np.take(a, rows, axis=axis)
        new = np.zeros(a.shape[:axis] + (K2,) + a.shape[axis + 1:], a.dtype)
        new[(slice(None),) * axis + (rows,)] = a
        return new
    out = dict(st)
    for name in ("theta", "gmask", "vel"):    # W (4H, K) first, then p_o, W_y, b_y
        a = st[name]
        out[name] = np.concatenate([resize(a[:4 * H * K].reshape(4 * H, K, -1), 1).reshape(4 * H * K2, -1),
                                    a[4 * H * K:]])
    out["s"], out["dS"] = resize(st["s"], 0), resize(st["dS"], 1)
    return out


def join_states(parts, H):
    """One online state from several, the network axis joined: each widened to the most inputs
    any has (resize_inputs), its tables of delays and of f padded with zeros (its own count of
    delays and its F say how much of them it reads)."""
    n_ins = [len(p["s"]) - 2 * H - 1 for p in parts]
    parts = [resize_inputs(p, H, n, max(n_ins)) for p, n in zip(parts, n_ins)]
    out = {}
    for name in parts[0]:
        rows = max(len(p[name]) for p in parts) if name in ("dset", "ftab") else None
        out[name] = np.concatenate([p[name] if rows is None else
                                    np.concatenate([p[name], np.zeros((rows - len(p[name]),) + p[name].shape[1:],
                                                                      p[name].dtype)])
                                    for p in parts], axis=-1)
    return out


def take(st, idx):
    """The networks idx of a state, as a state of their own (copies)."""
    return {k: v[..., idx] for k, v in st.items()}


def put(st, idx, part):
    """Write a part (from take) back into the networks idx of a state."""
    for k, v in part.items():
        st[k][..., idx] = v


def stream_keys(testing, ktest, ktrain, j, q):
    """The key of the stream a network runs next: test stream (j, q) while testing, else
    training stream j (the number of training streams it has finished)."""
    number = j * MAX_TEST_STREAMS + q * testing + 1
    return mix64(np.where(testing, ktest, ktrain) + number.astype(np.uint64) * _GOLD)


def state_keys(st, nets=None):
    """stream_keys of the streams the counters of a state name, for the networks nets (None: all)."""
    return stream_keys(*(st[k] if nets is None else st[k][nets] for k in ("testing", "ktest", "ktrain", "j", "q")))


def start_streams(st, go):
    """Networks where go (M,) bool start the stream their flags and counters name, from the
    zero state: zero cell state and RTRL partials, period 0 and its delay (the online step
    starts its own streams; this sets up a state from scratch)."""
    testing, keep = st["testing"], ~go
    np.copyto(st["key"], state_keys(st), where=go)
    for name in ("pos", "n", "periods"):
        st[name] *= keep
    st["s"][:-1] *= keep
    st["dS"] *= keep
    np.copyto(st["maxp"], np.where(testing, st["test_periods"], st["train_periods"]), where=go)
    st["trainf"][:] = ~(testing | st["done"])
    I = period_delays(st, slice(None), st["n"])
    target, last = delay_targets(st, I)
    np.copyto(st["I"], I, where=go)
    np.copyto(st["target"], target, where=go)
    np.copyto(st["last"], last, where=go)


def period_delays(st, nets, n, fixed=True, streams=None):
    """Delays I of periods n (broadcast against the networks) of the streams of networks `nets`
    (a slice or indices): a hash of the stream's key and period; NMSD tests (fixed: there may be
    some on the axis) take the q-th delay of the set, every possible stream in turn. streams:
    (key, testing, q) of other streams of these networks than the ones st holds, broadcast
    against them (default: st's)."""
    pick = delay_index(st["key"][nets] if streams is None else streams[0], n, st["dcount"][nets])
    if fixed:
        testing, q = (st["testing"][nets], st["q"][nets]) if streams is None else streams[1:]
        pick = np.where(st["fixed_tests"][nets] & testing, q, pick)
    return st["dset"][pick, np.arange(len(st["F"]))[nets]]


def delay_targets(st, I):
    """What a period's delay I (M,) sets: its target, I / scale, and its last step, F + I - 1."""
    return I / st["scale"], st["F"] + I - 1


class OnlineNets:
    """Steps an online state in place. A step of every network: its input and target,
    forward (paper eqs. 19-20, 1, 4, 21, 5, 7), the RTRL partials (12-14, 22-23), the
    errors (9, 11, 18), the truncated gradient (8, 10, 15-17, 24-26), a momentum step
    where a training network was given a target, then the end of its stream if it ended.

    On a table's few hundred networks a step costs numpy's overhead per call, so it makes
    as few calls as it can (50 for Table 1's networks): what a stream does on its own is
    laid out a window of ONLINE_WINDOW steps ahead for every network at once (which steps
    end a period, the inputs and targets, where a training target is given, which step
    completes the stream's last period), since that changes only where a stream ends. A
    stream's end costs a fixed number of calls over the whole axis, however many networks'
    streams end at a step (from the start of training, most of them at every step): the
    zero state, what comes next (settle), and the next stream's quiet first steps one at a
    time (fill); the networks whose streams ended are laid out together a few steps later
    (next_streams), except those begun in the window's last steps, which need only their
    place at its end (first_period). On a wider axis the arithmetic counts too: where few
    networks get a target, only their weights take the momentum step, on their own columns,
    and finished networks leave the axis (run). Networks of several tables may share the
    axis: each one's lay-out, output unit and forget gate are data in st (family), and the
    steps that differ take each kind of network in turn. The state after a window is written
    back into st, so that st is a whole state between calls of run."""

    def __init__(self, st, kind, H, n_in, window=ONLINE_WINDOW, compact=COMPACT_BELOW, sparse_from=SPARSE_FROM):
        self.st, self.kind, self.H, self.n_in = st, kind, H, n_in
        self.window, self.compact, self.sparse_from = window, compact, sparse_from
        K, sizes = online_layout(H, n_in)
        (n_par, M), R3 = st["theta"].shape, 3 * H * K   # theta's rows (parameters), networks
        self.off = o = np.cumsum((0,) + sizes)          # where theta's pieces begin
        self.K, self.R3 = K, R3
        # What a network's momentum step reads lies in its column of two arrays, so that the
        # few networks given a target on a wide axis gather it in two calls (and the state from
        # the window in a third): par = [theta | v | alpha * mask | mu] (the mask is 0/1, so the
        # product is exact), and gx = [dE/dtheta, whose last row is dE/dz_k | dS | e_s |
        # delta_out], of which gxk is what the gradient is made of; st's theta, v and dS become views.
        self.par = np.empty((4, n_par, M))
        self.par[0], self.par[1], self.par[3] = st["theta"], st["vel"], st["mu"]
        np.multiply(st["gmask"], st["alpha"], out=self.par[2])
        self.gx = np.empty((n_par + R3 + 2 * H, M))
        self.gx[n_par:n_par + R3] = st["dS"].reshape(R3, M)
        st["theta"], st["vel"], st["dS"] = self.par[0], self.par[1], self.gx[n_par:n_par + R3].reshape(st["dS"].shape)
        th, self.galpha, self.mu = self.par[0], self.par[2], self.par[3]
        self.g = g = self.gx[:n_par]
        self.gxk = self.gx[n_par - 1:]
        self.es, self.do = self.gx[n_par + R3:n_par + R3 + H], self.gx[n_par + R3 + H:]
        self.W = th[:o[1]].reshape(4 * H, K, M)
        self.po, self.Wy, self.by = th[o[1]:o[2]], th[o[2]:o[3]], th[o[3]]
        self.gW3 = g[:3 * H * K].reshape(3, H, K, M)           # i, f, g rows of dE/dW
        self.gWo = g[3 * H * K:o[1]].reshape(H, K, M)          # o rows
        self.gpo, self.gWy, self.gby = g[o[1]:o[2]], g[o[2]:o[3]], g[o[3]]
        self.dS4 = st["dS"].reshape(3, H, K, M)
        # the window: S[r] = [h | c | x | 1] fed to step r; per step its target D, a training
        # target given (A), a period's last step (SP), C = 1 where a wrong prediction ends the
        # stream, 2 where a right one does too (the last step of its last period), periods
        # completed before it (PB), and whether its prediction was right (OK); and the stream
        # position after the window. A, SP and C are one int8 array, so that one call clears them.
        self.S = np.zeros((window + 1, K, M))
        self.S[:, K - 1] = 1.0
        self.D = np.zeros((window + 1, M))
        self.flags = np.zeros((3, window + 1, M), np.int8)
        self.A, self.SP, self.C = self.flags[0].view(bool), self.flags[1].view(bool), self.flags[2]
        self.OK = np.zeros((window, M), bool)
        self.PB = np.zeros((window + 1, M), np.int64)
        self.pos_end, self.n_end, self.I_end = np.zeros(M, np.int64), np.zeros(M, np.int64), np.zeros(M, np.int64)
        self.Fmin = int(st["F"].min()) if M else 1
        self.draws = bool(np.any(st["dcount"] > 1))              # otherwise every period has its set's only delay
        self.fixed = bool(np.any(st["fixed_tests"]))
        self.net, self.ar = np.arange(M), np.arange(2 * window + 3)[:, None]   # networks; rows or periods of a window
        # streams ended and not yet laid out (end_streams): which (quiet), the step each ended
        # (-1: none), and the first such step; their quiet steps' flags Q = [A | SP | C] and input
        self.pend, self.first_end, self.quiet = np.full(M, -1, np.int64), None, np.zeros(M, bool)
        self.Q, self.now, self.now2 = np.zeros((3, M), np.int8), np.empty(M, bool), np.empty(M, bool)
        self.Qb = self.Q.view(bool)
        # what the networks' tasks say of their streams (every_step, delay_input, f_target)
        every, outs, fs = (np.array([getattr(task, what) for task in LAYOUT_TASKS])[st["lay"]]
                           for what in ("every_step", "delay_input", "f_target"))
        # where a prediction counts only at a period's end (input spikes), no quiet step holds a
        # target or an end, so what follows a stream is settled at its lay-out: the networks
        # that wait so (None: none, True: every one), and the others
        self.waits = None if every.all() else True if not every.any() else ~every
        self.others = every
        self.x0 = np.where(outs, st["dset"][0], 0).astype(float)
        # a delay as input with draws (keyed, GTS): the key of the next stream is read at once
        # (end_streams, next_keys); a settle that waits draws it with draws (for the lay-out); every
        # other network's key is read by nothing in the window, and all are drawn anew at its end
        self.keyed = None if not (self.draws and outs.any()) else True if outs.all() else outs
        if self.keyed is not None:                 # the keyed networks; the rows drawn ahead (first_draws)
            self.kn = np.flatnonzero(outs)
            self.ahead = window // 2 + 1
            self.kbase = np.zeros(M, np.int64)
        self.ended_any = False
        # whether each network's next stream trains: Q's A row itself where no settle waits
        self.train = self.Qb[0] if self.waits is None else np.empty(M, bool)
        np.greater(st["trainf"], 0, out=self.train)
        self.funcs = bool(fs.any())               # targets that follow f through a period (PFG)
        self.ftab = st["ftab"].ravel()
        # scratch, and the gate rows as named views into B = [fac_i | fac_f | i | f | o | y]:
        # the RTRL factors fac (3, H) of the i, f, g rows end in i itself (the paper cell's
        # g' = 1), and V = [i | f | o | y] lie together, so that U = [(1 - i) i | (1 - f) f |
        # (1 - o) o | 1 - y] (the sigmoids' derivatives) takes two calls
        self.tmp3 = np.empty((3, H, K, M))
        # z = W s: einsum adds the K products in turn, as add.reduce does, where the networks are its
        # inner loop; on one network its inner loop runs over K and adds them in another order
        self.Ws = np.empty((4 * H, K, M)) if M == 1 else None
        self.z, self.nz = np.empty((4 * H, M)), np.empty((4 * H, M))
        B = np.empty((5 * H + 1, M))
        self.V, self.U = B[2 * H:], np.empty((3 * H + 1, M))
        self.Vd = self.V[:3 * H]
        self.fi, self.ff, self.i, self.f, self.aif, self.o = (B[:H], B[H:2 * H], B[2 * H:3 * H], B[3 * H:4 * H],
                                                             B[2 * H:4 * H], B[4 * H:5 * H])
        self.y, self.y1 = B[5 * H], B[5 * H:]
        self.Ud, self.ui, self.uf, self.uo, self.uy = self.U[:3 * H], self.U[:H], self.U[H:2 * H], \
            self.U[2 * H:3 * H], self.U[3 * H]
        self.nzif, self.nzo, self.zg = self.nz[:2 * H], self.nz[3 * H:], self.z[2 * H:3 * H]
        self.f3, self.fac4 = self.f[:, None, :], B[:3 * H].reshape(3, H, 1, M)
        self.modern = kind == "modern"
        # what the networks do differently (family): the lay-outs on the axis; a forget gate
        # (None: every network has one, True: none has, else where not); a sigmoid output unit
        # (on some networks or all; self.lin marks the linear ones where both are on the axis)
        self.lays = [(task, c) for c, task in enumerate(LAYOUT_TASKS) if np.any(st["lay"] == c)]
        # several lay-outs: each one's networks side by side on the axis (spans), so that a lay-out
        # takes them as a slice; where they are not, run steps an axis sorted so (order)
        self.order = self.spans = None
        if len(self.lays) > 1:
            if np.all(st["lay"][1:] >= st["lay"][:-1]):
                first = np.searchsorted(st["lay"], [c for _, c in self.lays] + [len(LAYOUT_TASKS)])
                self.spans = [(task, a, b) for (task, _), a, b in zip(self.lays, first[:-1], first[1:])]
                self.firsts = first[:-1]
            else:
                self.order = np.argsort(st["lay"], kind="stable")
        self.nof = None if st["forget"].all() else True if not st["forget"].any() else \
            np.broadcast_to(~st["forget"], (H, M))
        self.sigmoid = not st["linear"].all()
        self.lin = st["linear"] if self.sigmoid and st["linear"].any() else None
        self.sig = None if self.lin is None else ~self.lin
        self.gv = np.empty((H, M)) if self.modern else self.zg                     # g = tanh(z_g) or z_g
        self.T, self.dh = np.empty((H, M)), np.empty((H, M))
        self.sq = np.empty((H, M)) if self.modern else None                          # h(s_c) = tanh(s_c) or s_c
        self.es3, self.do3 = self.es[:, None, :], self.do[:, None, :]
        self.e, self.T1 = np.empty(M), np.empty(M)
        if not self.sigmoid:
            self.e = self.gby            # a linear output unit's dE/dz_k is its error
        self.ys = np.empty(M) if self.lin is not None else self.y                 # the sigmoid's output
        self.ended = np.empty(M, bool)
        self.rows = [(self.S[r], self.S[r, H:2 * H], self.S[r + 1, :H], self.S[r + 1, H:2 * H],
                      self.D[r], self.A[r], self.C[r], self.OK[r]) for r in range(window)]
        self.S2 = [self.S[r:r + 2].reshape(2 * K, M) for r in range(window)]     # [s | h | s_c | x | 1] of step r
        self.v = np.empty_like(th)
        # masks as np.putmask needs them, the shape of what they mask (views, so built once):
        # A[r] over theta's rows, the streams ended at a step over [h | s_c] and dS
        self.Ab = [np.broadcast_to(self.A[r], th.shape) for r in range(window)]
        self.fin = np.empty(th.shape, bool)       # settle's test of the weights' finiteness
        self.ended_hc = np.broadcast_to(self.ended, (2 * H, M))
        self.ended_dS = np.broadcast_to(self.ended, st["dS"].shape)
        self.filling, self.filling_any = np.zeros(M, bool), False       # quiet steps filled one at a time (fill)
        self.filling3 = np.broadcast_to(self.filling, (3, M))
        self.gsum = None         # set to zeros_like(theta) to sum dE/dtheta at every training target (the tests)

    def run(self, steps):
        """steps steps of every network, a window at a time. Once fewer than `compact` of the
        networks are unfinished, the rest run on an axis of their own; where several lay-outs
        share the axis, its networks run sorted by lay-out (the same numbers either way: every
        call works on each network alone)."""
        st = self.st
        with np.errstate(over="ignore", invalid="ignore"):    # exp -> inf is exact; NaN is a wrong prediction
            if self.order is not None:
                part = take(st, self.order)
                sorted_ = OnlineNets(part, self.kind, self.H, self.n_in, self.window, self.compact, self.sparse_from)
                if self.gsum is not None:
                    sorted_.gsum = self.gsum[:, self.order]
                sorted_.run(steps)
                put(st, self.order, part)
                if self.gsum is not None:
                    self.gsum[:, self.order] = sorted_.gsum
                return
            while steps > 0:
                live = np.flatnonzero(~st["done"])
                if len(live) < self.compact * len(st["done"]) and self.gsum is None:
                    if len(live):
                        part = take(st, live)
                        OnlineNets(part, self.kind, self.H, self.n_in, self.window, self.compact,
                                   self.sparse_from).run(steps)
                        put(st, live, part)
                    return
                L = min(steps, self.window)
                self.run_window(L)
                steps -= L

    def step(self):
        self.run(1)

    def run_window(self, L):
        st = self.st
        self.L = L
        self.S[0] = st["s"]
        self.lay_out(slice(None), 0)
        self.drawn = False                         # (first_draws: at the window's first stream end)
        # whether the networks given a target at a step are ragged along the axis: in this window's
        # lay-out, a change between neighbours every 5 networks or more often (see step_at)
        A = self.A[:L]
        self.ragged = 5 * np.count_nonzero(A[:, 1:] != A[:, :-1]) > A.size
        for r in range(L):
            self.step_at(r)
            if self.first_end is not None:
                if r == L - 1 or r >= self.first_end + self.Fmin - 1:
                    self.next_streams(r)
                if self.filling_any:
                    self.fill(r)
        # the state after the window
        st["s"][...] = self.S[L]
        st["pos"][:], st["n"][:], st["periods"][:] = self.pos_end, self.n_end, self.PB[L]
        st["I"][:] = self.I_end
        st["target"][:], st["last"][:] = delay_targets(st, self.I_end)
        np.add(st["age"], L, out=st["age"], where=~st["done"])
        st["trainf"][:] = self.train
        if self.ended_any:                         # every stream's key, as its counters name it
            st["key"][:] = state_keys(st)
            self.ended_any = False

    def lay_out(self, nets, r0):
        """Lay out steps r0 .. L of the window for the networks `nets` (a slice or indices)
        from the stream state st holds for them at step r0 (their position in the period,
        period, periods completed, stream key and flags), as if no prediction were wrong."""
        st, H, R = self.st, self.H, self.L + 1 - r0
        n_per = R // self.Fmin + 2                # periods enough to pass step L (each lasts >= F steps)
        n0 = st["n"][nets]
        I = self.delays(nets, n_per)
        s = Steps(I, st["F"][nets] + I, st["pos"][nets], R, same=not self.draws)
        per = st["periods"][nets] + s.cnt
        live = ~st["done"][nets]
        rows = slice(r0, self.L + 1)
        self.SP[rows, nets] = s.sp
        self.PB[rows, nets] = per
        last = s.sp & (per >= st["maxp"][nets] - 1) & live
        for task, sel, grp in self.split(nets):    # each task lays out its streams (rows)
            x, d, counts = task.rows(s.cols(sel), st["scale"][grp], st["ftab"][:, grp] if task.f_target else None)
            last_, live_ = (last, live) if sel is None else (last[:, sel], live[sel])
            if x is not None:
                self.S[rows, 2 * H, grp] = x
            self.D[rows, grp] = d
            if counts is None:                     # a prediction counts at every step
                self.C[rows, grp] = live_.view(np.int8) + last_
                self.A[rows, grp] = self.train[grp]
            else:
                self.C[rows, grp] = (counts & live_).view(np.int8) + last_
                self.A[rows, grp] = counts & self.train[grp]
        self.I_end[nets] = I[s.cnt[-1], s.col]
        self.n_end[nets] = n0 + s.cnt[-1]
        self.pos_end[nets] = R - 1 - s.start[s.cnt[-1], s.col]

    def step_at(self, r):
        st, H = self.st, self.H
        s, c_prev, h, c, d, at, C, ok = self.rows[r]
        z, nz, i, f, aif, g, o, T, y, e, T1 = (self.z, self.nz, self.i, self.f, self.aif, self.gv, self.o,
                                               self.T, self.y, self.e, self.T1)
        # forward: z = W [h(t-1) | s_c(t-1) | x | 1]; y_in, y_phi = sigmoid; g = z (paper) or tanh(z)
        if self.Ws is None:                        # (no (4H, K, M) product in memory: ~2x quicker)
            np.einsum("gkm,km->gm", self.W, s, out=z)
        else:
            np.multiply(self.W, s, out=self.Ws)
            np.add.reduce(self.Ws, axis=1, out=z)
        np.negative(z, out=nz)                     # sigmoid(z) = 1 / (1 + exp(-z)); -z for every gate at once
        np.exp(self.nzif, out=aif)
        aif += ONE
        np.reciprocal(aif, out=aif)
        if self.nof is True:                       # no forget gate: y_phi = 1
            f[...] = 1.0
        elif self.nof is not None:
            np.putmask(f, self.nof, 1.0)
        if self.modern:
            np.tanh(self.zg, out=g)
        # s_c = y_phi s_c(t-1) + y_in g (4); y_out = sigmoid(z_out + p_o s_c) (21); y_c = y_out h(s_c) (5)
        np.multiply(f, c_prev, out=c)
        np.multiply(i, g, out=T)
        c += T
        np.multiply(self.po, c, out=o)
        np.subtract(self.nzo, o, out=o)            # -(z_out + p_o s_c), exactly: rounding is symmetric
        np.exp(o, out=o)
        o += ONE
        np.reciprocal(o, out=o)
        sq = np.tanh(c, out=self.sq) if self.modern else c
        np.multiply(o, sq, out=h)
        # output unit (7), its error and dE/dz_k (9, sign flipped: we descend); dE/dtheta is
        # computed where a training target is given (at) and used nowhere else
        if H == 1:
            np.multiply(self.Wy, h, out=self.y1)
        else:
            np.multiply(self.Wy, h, out=T)
            np.add.reduce(T, axis=0, out=y)
        y += self.by
        if self.sigmoid:
            ys = self.ys
            np.negative(y, out=ys)
            np.exp(ys, out=ys)
            ys += ONE
            np.reciprocal(ys, out=ys)
            if self.lin is not None:               # linear output units keep y
                np.putmask(y, self.sig, ys)
        np.subtract(y, d, out=e)
        np.abs(e, out=T1)
        np.less(T1, st["tol"], out=ok)
        U = self.U
        np.subtract(ONE, self.V, out=U)            # the sigmoids' derivatives: (1 - a) a
        self.Ud *= self.Vd
        dk = self.gby
        if self.sigmoid:
            np.multiply(e, y, out=dk)
            dk *= self.uy
            if self.lin is not None:
                np.putmask(dk, self.lin, e)
        dh = np.multiply(self.Wy, dk, out=self.dh)              # (H, M) the error at the cell output
        # RTRL partials (12-14, 22-23): dS = y_phi dS + [g f_in', s_c(t-1) f_phi', y_in g'] x state
        np.multiply(self.ui, g, out=self.fi)
        np.multiply(self.uf, c_prev, out=self.ff)
        if self.modern:                            # y_in g' = y_in (1 - g^2), in i's place (i is used up)
            np.multiply(g, g, out=T)
            np.subtract(ONE, T, out=T)
            i *= T
        self.dS4 *= self.f3
        np.multiply(self.fac4, s, out=self.tmp3)
        self.dS4 += self.tmp3
        # internal state error e_s = y_out h'(s_c) dh (18); output gate delta = h(s_c) f_out' dh (11)
        es, do = self.es, self.do
        np.multiply(o, dh, out=es)
        if self.modern:
            np.multiply(sq, sq, out=T)
            np.subtract(ONE, T, out=T)
            es *= T
        np.multiply(self.uo, sq, out=do)
        do *= dh
        # dE/dtheta through the partials (15-17, 25-26), output gate (10, 24), output unit (8);
        # momentum (Plaut et al.): v = mu v - alpha dE/dtheta, theta += v, at every target of a
        # training stream and nowhere else. Elsewhere v and theta are not touched at all, not
        # multiplied by 0: the state of a network that is testing, or perfect and waiting for its
        # segment to end, may overflow, and 0 * inf = NaN in dE/dtheta would reach the weights.
        few = len(at) >= self.sparse_from and self.gsum is None and 8 * np.count_nonzero(at) <= len(at)
        if not few:
            np.multiply(self.es3, self.dS4, out=self.gW3)
            np.multiply(self.do3, s, out=self.gWo)
            np.multiply(do, c, out=self.gpo)
            np.multiply(h, dk, out=self.gWy)
            if self.gsum is not None:
                np.add(self.gsum, self.g * st["gmask"], out=self.gsum, where=at)
            self.g *= self.galpha                                    # alpha dE/dtheta, masked
            np.multiply(st["vel"], self.mu, out=self.v)
            if not (self.ragged or self.filling_any):     # where= is quick on a mask of long runs; the
                # lay-out's runs hold until streams end at many steps (their first steps filled one at a time)
                np.subtract(self.v, self.g, out=st["vel"], where=at)
                np.add(st["theta"], st["vel"], out=st["theta"], where=at)
            else:                                  # and 3x slower on a ragged one: whole rows, then put
                self.v -= self.g
                np.putmask(st["vel"], self.Ab[r], self.v)
                np.add(st["theta"], st["vel"], out=self.v)
                np.putmask(st["theta"], self.Ab[r], self.v)
        elif len(idx := np.flatnonzero(at)):     # few targets on a wide axis: the same, on their columns
            K, R3, off = self.K, self.R3, self.off
            X = np.take(self.gxk, idx, axis=1)                   # (1 + 3HK + 2H, k) [dE/dz_k | dS | e_s | delta_out]
            Y = np.take(self.S2[r], idx, axis=1)                 # (2K, k) [s | h | s_c | ...]
            Z = np.take(self.par, idx, axis=2)                   # (4, P, k) [theta | v | alpha * mask | mu]
            grad = np.empty_like(Z[0])
            np.multiply(X[1 + R3:1 + R3 + H, None], X[1:1 + R3].reshape(3, H, K, -1),
                        out=grad[:R3].reshape(3, H, K, -1))
            np.multiply(X[-H:, None], Y[:K], out=grad[R3:off[1]].reshape(H, K, -1))
            np.multiply(X[-H:], Y[K + H:K + 2 * H], out=grad[off[1]:off[2]])
            np.multiply(Y[K:K + H], X[0], out=grad[off[2]:off[3]])
            grad[-1] = X[0]
            grad *= Z[2]                           # then the momentum step, as above
            Z[1] *= Z[3]
            Z[1] -= grad
            Z[0] += Z[1]
            self.par[:2, :, idx] = Z[:2]
        # a wrong prediction where one counts, or a right last step of the last period, ends the stream
        ended = np.greater(C, ok, out=self.ended)
        if ended.any():
            self.end_streams(r, ended)

    def split(self, nets):
        """[(task, sel, nets')]: for each lay-out on the axis, the task that lays it out and which
        of the networks `nets` (a slice, or sorted indices) have it: at positions sel of nets (None:
        all of them), networks nets'. Several lay-outs lie side by side (spans), so these are slices."""
        if len(self.lays) == 1:
            return [(self.lays[0][0], None, nets)]
        if isinstance(nets, slice):
            return [(task, slice(a, b), slice(a, b)) for task, a, b in self.spans]
        cut = np.append(np.searchsorted(nets, self.firsts), len(nets))
        return [(task, slice(i, k), nets[i:k]) for (task, _, _), i, k in zip(self.spans, cut[:-1], cut[1:]) if k > i]

    def end_streams(self, r, E):
        """Networks where E (M,) bool ended a stream at step r; the next starts from the zero
        state at step r + 1. A stream's first Fmin - 1 steps hold no period's end, whatever the
        stream, so until it is laid out (next_streams, for every network whose stream ended by
        then together) they hold only what its start sets (fill). What follows a stream (settle)
        is worked out at once, on the whole axis, except where a prediction counts only at a
        period's end (NMSD, CMSD): no quiet step holds a target or an end, so it waits for the
        lay-out. Each call here is one masked call over the whole axis, however many streams
        ended; the quiet steps are filled one step at a time for all such networks together
        (fill), or, where only a few streams ended and none is being filled so, at once for
        those few."""
        st, H = self.st, self.H
        idx = None if self.filling_any else np.flatnonzero(E)
        few = idx is not None and 16 * len(idx) <= len(E)
        if few:                                    # on their columns
            self.S[r + 1, :2 * H, idx] = 0.0
            st["dS"][..., idx] = 0.0
        else:                                      # (putmask: 2-3x quicker than copyto's where=)
            np.putmask(self.S[r + 1, :2 * H], self.ended_hc, 0.0)
            np.putmask(st["dS"], self.ended_dS, 0.0)
        np.putmask(self.pend, E, r)
        np.logical_or(self.quiet, E, out=self.quiet)
        self.first_end = r if self.first_end is None else self.first_end
        self.ended_any = True
        now = E
        if self.waits is not None:                 # some networks' settle waits: only the others now
            now = None if self.waits is True else np.greater(E, self.waits, out=self.now)
        if now is not None and (now is E or now.any()):
            self.settle(r, now, keys=False)
            if self.keyed is not None:             # GTS with draws: the input through the first interval is I(0)
                self.next_keys(np.flatnonzero(now & self.keyed))     # of the next stream, which its key draws
        rows = slice(r + 1, r + 1 + min(self.Fmin, self.L - r))
        if self.waits is True:                     # nothing counts, no input, no target (no end: PB unread):
            self.flags[:, rows, idx] = 0           # three writes of zeros, however many
            self.S[rows, 2 * H, idx] = 0.0
            self.D[rows, idx] = 0.0
            return
        if not few:
            np.logical_or(self.filling, E, out=self.filling)
            self.filling_any = True
            return
        self.flags[:, rows, idx] = self.Q[:, None, idx]
        self.PB[rows, idx] = 0
        if self.n_in:
            self.S[rows, 2 * H, idx] = self.x0[idx]
        self.D[rows, idx] = st["ftab"][self.ar[:rows.stop - rows.start], idx] if self.funcs else 0.0

    def first_draws(self):
        """The keys and first delays of the streams the keyed networks may run in the rest of the
        window, drawn at its first stream end: where its tests fail, a network alternates training
        stream j and test stream (j + 1, 0), each at least a step long, so it reaches at most
        j0 + L / 2 (j0 its j now); those of j = j0 .. j0 + ahead - 1 are drawn, in rows
        2 (j - j0) + testing (next_keys reads them: (2 j + testing) k + kbase in the flat tables,
        k keyed networks)."""
        st, kn = self.st, self.kn
        self.drawn = True
        j = st["j"][kn] + np.arange(self.ahead)[:, None, None]            # (ahead, 1, k)
        T = np.array([False, True])[:, None]                              # (2, 1)
        key = stream_keys(T, st["ktest"][kn], st["ktrain"][kn], j, 0)     # (ahead, 2, k)
        x0 = period_delays(st, kn, 0, self.fixed, (key, T, 0))
        self.kbase[kn] = np.arange(len(kn)) - 2 * len(kn) * st["j"][kn]
        self.keys_ahead, self.x0_ahead = key.ravel(), x0.ravel()

    def next_keys(self, g):
        """The key and first delay of the next stream of networks g (keyed, their stream just
        settled): from the window's first draws, or drawn now where it is not among them (a
        test after a passed one)."""
        if not self.drawn:
            self.first_draws()
        st, k = self.st, len(self.kn)
        flat = st["j"][g] * (2 * k)
        flat += self.kbase[g]
        flat += st["testing"][g] * k
        q = st["q"][g]
        if q.any() or flat.max(initial=0) >= self.x0_ahead.size:
            now = (q > 0) | (flat >= self.x0_ahead.size)
            self.draw_keys(g[now])
            g, flat = g[~now], flat[~now]
        st["key"][g] = self.keys_ahead.take(flat)
        self.x0[g] = self.x0_ahead.take(flat)

    def draw_keys(self, g):
        """The key and first delay of the stream each network g runs next, drawn now."""
        st = self.st
        st["key"][g] = state_keys(st, g)
        self.x0[g] = period_delays(st, g, 0, self.fixed)

    def fill(self, r):
        """Step r + 1 of the streams that ended and are not laid out yet (the quiet steps, see
        end_streams), what the task's rows put there: no period's end; a target where the network
        trains, and a wrong prediction ending the stream, unless predictions count only at a
        period's end (then neither); the first delay as input (GTS), or f from the period's start
        (PFG), and a target of 0 otherwise."""
        P, H = self.filling, self.H
        np.putmask(self.flags[:, r + 1], self.filling3, self.Q)
        np.putmask(self.PB[r + 1], P, 0)
        if self.n_in:
            np.putmask(self.S[r + 1, 2 * H], P, self.x0)
        if self.funcs:                             # step r - pend of the stream: the phase f is at
            phase = np.multiply(r - self.pend, len(self.net))
            phase += self.net
            np.putmask(self.D[r + 1], P, self.ftab.take(phase, mode="clip"))
        else:
            np.putmask(self.D[r + 1], P, 0.0)

    def next_streams(self, r):
        """Lay out, from step r + 1, the streams of the networks whose last stream ended before
        step r (settling first what comes next where that waited); those that ended at r itself
        wait for the next lay-out, Fmin - 1 steps on (where streams end at every step, most
        never need one). At the window's last step every stream waiting is still in its first
        period, which sets its state at the window's end (first_period)."""
        st = self.st
        go = self.quiet
        if r < self.L - 1 and self.Fmin > 1:
            go = np.less(self.pend, r, out=self.now)
            go &= self.quiet
        idx = np.flatnonzero(go)
        if self.waits is not None and len(idx):
            wait = go if self.waits is True else go & self.waits
            if wait is go or wait.any():
                self.settle(self.pend, wait, keys=self.draws)
        st["pos"][idx] = r - self.pend[idx]        # steps the next stream has run by step r + 1
        np.putmask(st["n"], go, 0)                 # its period n, periods completed and their number
        np.putmask(st["periods"], go, 0)
        np.putmask(st["maxp"], go, np.where(st["testing"], st["test_periods"], st["train_periods"]))
        self.pend[idx] = -1
        self.quiet[idx] = False
        self.first_end = r if self.quiet.any() else None
        if self.filling_any:
            self.filling[idx] = False
            self.filling_any = self.first_end is not None and self.filling.any()
        if len(idx) and r < self.L - 1:
            self.lay_out(idx, r + 1)
        elif len(idx):
            self.first_period(idx)

    def first_period(self, idx):
        """At the window's last step, the streams of networks idx, begun in its last Fmin steps
        (see next_streams) and so still in their first period at step L: what lay_out would give
        for step L, the stream's place there and the input fed to it, which the state keeps
        (the first delay, as the quiet steps hold it, or a spike where step L ends the period)."""
        st, H, L = self.st, self.H, self.L
        I0 = self.delays(idx, 1)[0]
        pos = st["pos"][idx]
        self.I_end[idx], self.n_end[idx], self.pos_end[idx] = I0, 0, pos
        self.PB[L, idx] = 0
        if self.n_in:
            spike = (pos == st["F"][idx] + I0 - 1) & ~self.others[idx]      # a spike-in stream's first spike
            self.S[L, 2 * H, idx] = np.where(spike, 1.0, self.x0[idx])

    def settle(self, at, E, keys=True):
        """What follows the streams that networks where E (M,) bool ended at step `at` (one, or
        one per network); sets whether each next trains, whether it is done, and (with keys) its
        next stream's key. After a training stream comes a test; a test stream that completes
        all its periods is followed by the next, and the last makes the network perfect (frozen
        from then on); a failed test returns it to training, or ends it once its budget of
        training streams is used up. A network whose weights are no longer finite after a
        training stream has diverged: it ends there, counted as failed, and the others go on
        (non-finite weights give a NaN output, a wrong prediction, so the stream in which they
        diverge ends at once). Each line is one call over the whole axis, masked by E."""
        st = self.st
        T, done, j, q = st["testing"], st["done"], st["j"], st["q"]
        if not isinstance(at, int):                # row at of each network's column, in the flat arrays
            flat = np.multiply(at, len(self.net))
            flat += self.net
            ok, pb, sp = self.OK.ravel().take(flat), self.PB.ravel().take(flat), self.SP.ravel().take(flat)
        else:
            ok, pb, sp = self.OK[at], self.PB[at], self.SP[at]
        # periods completed: a wrong prediction (the end of the stream, unless right) completes none
        periods = pb + (sp & ok)
        trained = np.greater(E, T)
        tested = E & T
        passed = np.greater_equal(periods, st["test_periods"]) & tested
        any_passed = passed.any()                  # (until networks learn, none does: skip what follows from it)
        j += trained
        np.putmask(st["test_last"], tested & (q == 0), periods)    # a test's size: its first stream's periods
        np.maximum(st["test_best"], st["test_last"], out=st["test_best"])
        np.putmask(q, trained, 0)
        np.isfinite(st["theta"], out=self.fin)
        bad = np.greater(trained, np.logical_and.reduce(self.fin, axis=0, out=self.now2), out=self.now2)
        now = np.greater(tested, passed) & (j >= st["budget"])
        now |= bad
        if any_passed:
            q += passed
            perfect = passed & (q >= st["tests_needed"])
            now |= perfect
            trained |= passed                      # a test follows, unless the network is done
        if now.any():
            np.putmask(st["diverged_at"], bad, j)
            if any_passed:
                np.putmask(st["learned_at"], perfect, j)
            st["age"] += (at + 1) * now            # a network done now ran at + 1 steps of this window
            done |= now
        np.greater(trained, now, out=trained)
        np.greater(T, E, out=T)
        T |= trained
        if keys:
            np.putmask(st["key"], E, state_keys(st))
        live = np.logical_not(done, out=self.Qb[2])
        np.greater(live, T, out=self.train)        # (the state's trainf follows at the window's end)
        if self.waits is not None:                 # the waiting networks' quiet steps hold no target, no end
            np.logical_and(self.train, self.others, out=self.Qb[0])
            self.Qb[2] &= self.others

    def delays(self, nets, n_per):
        """Delays I (n_per, k) of the periods n, n + 1, ... of the streams of networks `nets`."""
        st = self.st
        if not self.draws:                         # every period has the set's only delay
            only = st["dset"][0, nets]
            return only[None].repeat(n_per, axis=0)      # one C call; np.broadcast_to costs ~10 us in Python
        return period_delays(st, nets, st["n"][nets] + self.ar[:n_per], self.fixed)


# ----------------------------------------------------------------------------
# The online runner. A run advances every unfinished network in segments of steps, dealt
# to worker processes in shards; per-network arithmetic never looks at another network,
# so the shards, the segment lengths and a resume from a checkpoint change nothing.

ONLINE_SEGMENT_SECONDS = 3.0      # aim for segments this long (the latency of checkpoints and Ctrl-C)
PROGRESS_SECONDS = 30.0           # a progress line this often
CHECKPOINT_MINUTES = 5.0          # wall clock between checkpoints of a run given --checkpoint


def inputs_of(nets):
    """The most inputs any of the networks [(row, cfg, seed, variant)] has; on one axis the
    others are widened to it (resize_inputs)."""
    return max(TASKS[c.task].n_in for _, c, _, _ in nets)


class OnlineRun:
    """nets [(row, cfg, seed, variant)] of one cell kind and size, of any tasks, on one axis;
    their state and progress; a budget in training streams per network (its cfg.budget) and, if
    minutes, in wall clock for the whole run. table: the table the rows are of (or None), or for
    several tables on one axis [[name, count]], the networks of each in turn."""

    def __init__(self, nets, table=None, st=None, steps=0, seconds=0.0, minutes=None):
        self.nets, self.table, self.steps, self.seconds = nets, table, steps, seconds
        self.minutes, self.workers = minutes, 1          # workers: of the last train_online call
        cfg0 = nets[0][1]
        self.kind, self.H = cfg0.cell, cfg0.hidden
        self.n_in = inputs_of(nets)
        for _, c, _, _ in nets:
            if (c.cell, c.hidden) != (self.kind, self.H):
                raise ValueError("one online run holds networks of one cell kind and size; "
                                 f"{row_label(c)} differs from {row_label(cfg0)}")
        if st is None:                 # each run of networks with as many inputs set up on its own, then joined
            groups = [list(g) for _, g in itertools.groupby(nets, lambda n: TASKS[n[1].task].n_in)]
            parts = [online_state([(c, s, v) for _, c, s, v in g]) for g in groups]
            st = parts[0] if len(parts) == 1 else join_states(parts, self.H)
        self.st = st

    def online_nets(self, **kw):
        """An OnlineNets stepping this run's state."""
        return OnlineNets(self.st, self.kind, self.H, self.n_in, **kw)

    def tables(self):
        """[(table, its networks' positions)]: the one table (or None), or each of several."""
        if not isinstance(self.table, list):
            return [(self.table, slice(None))]
        ends = np.cumsum([0] + [count for _, count in self.table])
        return [(name, slice(a, b)) for (name, _), a, b in zip(self.table, ends, ends[1:])]

    def split(self):
        """The run of several tables as one run per table, its networks' states cut back to their
        own inputs and the wall clock shared out by network-steps; a run of one table: itself."""
        if not isinstance(self.table, list):
            return [self]
        out, steps = [], max(int(self.st["age"].sum()), 1)
        for name, at in self.tables():
            nets = self.nets[at]
            st = resize_inputs(take(self.st, at), self.H, self.n_in, inputs_of(nets))
            run = OnlineRun(nets, name, st, self.steps, self.seconds * int(st["age"].sum()) / steps, self.minutes)
            run.workers = self.workers
            out.append(run)
        return out

    def shard(self, k, n):
        """Shard k of n of this run's networks (shard_nets), their state as saved: a run of its own."""
        tables = self.tables()
        parts = shard_nets([(name, self.nets[at]) for name, at in tables], k, n)
        first = {name: at.start or 0 for name, at in tables}        # where each table's networks begin
        idx = [first[name] + p for name, at in parts for p in at]
        table = parts[0][0] if len(parts) == 1 else [[name, len(at)] for name, at in parts]
        nets = [self.nets[p] for p in idx]
        return OnlineRun(nets, table, resize_inputs(take(self.st, idx), self.H, self.n_in, inputs_of(nets)),
                         self.steps, self.seconds, self.minutes)     # (a shard of networks without input has none)

    def advance(self, steps, pool, workers):
        """steps more steps of every unfinished network, dealt to `workers` shards; returns
        the networks that diverged in them."""
        live = np.flatnonzero(~self.st["done"])
        shards = [live[w::workers] for w in range(workers) if len(live[w::workers])]
        jobs = [(take(self.st, idx), self.kind, self.H, self.n_in, steps) for idx in shards]
        parts = map(_online_segment, jobs) if pool is None else pool.map(_online_segment, jobs)
        for idx, part in zip(shards, parts):
            put(self.st, idx, part)
        self.steps += steps
        return live[self.st["diverged_at"][live] >= 0]

    def name(self, k):
        row, c, s, v = self.nets[k]
        return f"{row_label(c)} seed {s} {v}"

    def progress(self):
        st, per_variant = self.st, {}
        for k, (_, _, _, v) in enumerate(self.nets):
            p = per_variant.setdefault(v, [0, 0, 0])
            p[0] += 1
            p[1] += st["learned_at"][k] >= 0
            p[2] += st["j"][k]
        return (f"step {self.steps:>10} | " + " | ".join(f"{v}: perfect {won}/{n}, streams/net {streams / n:9.0f}"
                                                          for v, (n, won, streams) in per_variant.items())
                + f" | running {int(np.count_nonzero(~st['done']))} | {self.seconds:6.0f}s")


def _online_segment(job):
    st, kind, H, n_in, steps = job
    OnlineNets(st, kind, H, n_in).run(steps)
    return st


def train_online(run, workers=1, minutes=None, checkpoint=None, checkpoint_minutes=CHECKPOINT_MINUTES, log=quiet):
    """Advance an OnlineRun until every network is perfect or out of budget, or `minutes`
    of wall clock (this call and earlier ones before a resume) have passed. With a
    checkpoint path the whole run is saved there atomically every checkpoint_minutes."""
    steps, t0 = 200, time.perf_counter()
    start, run.workers = run.seconds, workers
    saved = shown = t0
    pool = None if workers == 1 else multiprocessing.get_context().Pool(workers, initializer=_worker_signals)
    try:
        while not run.st["done"].all():
            if minutes is not None and run.seconds >= 60 * minutes:
                log(f"wall-clock budget of {minutes} min reached")
                break
            ts = time.perf_counter()
            for k in run.advance(steps, pool, min(workers, int(np.count_nonzero(~run.st["done"])))):
                log(f"{run.name(k)} diverged after {run.st['diverged_at'][k]} training streams (weights not "
                    "finite); counted as failed in its row, the others go on")
            took = time.perf_counter() - ts
            run.seconds = start + time.perf_counter() - t0
            # segment length for the next one: ~ONLINE_SEGMENT_SECONDS, changing by at most 4x
            steps = int(np.clip(steps * ONLINE_SEGMENT_SECONDS / max(took, 1e-3), steps / 4, steps * 4)) + 1
            if time.perf_counter() - shown >= PROGRESS_SECONDS or run.st["done"].all():
                log(run.progress())
                shown = time.perf_counter()
            if checkpoint and time.perf_counter() - saved >= 60 * checkpoint_minutes:
                save_online_checkpoint(checkpoint, run)
                saved = time.perf_counter()
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return run


CONFIRM_STREAMS = 100     # fresh streams a perfect network must also complete before we report it


def confirm(P, cfg, seed, variants, n=CONFIRM_STREAMS):
    """How many of n fresh free-running streams (a purpose no training or test drew from)
    each network of one row and seed completes; NMSD and PFG: every possible stream."""
    tests = {seed: fresh_streams(cfg, seed, ONLINE_CONFIRM, 0, n)}
    periods, _, _ = free_run(P, cell_of(cfg), [(seed, v) for v in variants], tests, TASKS[cfg.task].tolerance(cfg))
    return [int(np.sum(p == tests[seed].info["periods"])) for p in periods], periods.shape[1]


LONG_PERIODS = 100000     # periods a perfect network then runs free from the zero state (the long run)
LONG_BLOCK = 1000         # periods of a long stream built at a time, so its memory stays small


def long_block(cfg, seed, first, periods):
    """Periods first .. first + periods - 1 of a seed's long stream (purpose ONLINE_LONG) as
    arrays x (L, I, 1), d (L, 1), mask (L, 1), ends (L, 1) that continue the block before."""
    task = TASKS[cfg.task]
    if not task.n_in:                           # no input (PFG): its one stream, period after period
        b = task.streams(cfg, 1, periods)
    else:
        I = stream_delays(cfg, seed, ONLINE_LONG, 0, [0], periods, first)
        b = task.streams(cfg, I, int(np.sum(cfg.F + I)))
    return b.x, b.d, np.ones_like(b.d) if b.mask is None else b.mask, b.info["ends"]


def long_run(P, cfg, members, periods=LONG_PERIODS, block=LONG_BLOCK):
    """Periods (M,) each member completes running free from the zero state on its seed's long
    stream, up to its first wrong prediction or `periods`: whether a solution holds far past
    the 1000-period test. Streams of different seeds differ in length, so each seed's is built
    block by block and fed in chunks; past its last period a seed's members get no input, no
    target and no period ends. None for NMSD, whose streams are one interval each."""
    if TASKS[cfg.task].one_interval:
        return None
    seeds = sorted({s for s, _ in members})
    fr = FreeRun(P, cell_of(cfg), 1, TASKS[cfg.task].tolerance(cfg))
    made, left = dict.fromkeys(seeds, 0), dict.fromkeys(seeds, 0)    # periods built; steps of them not yet fed
    buf = {}
    C = FREE_RUN_CHUNK
    while any(left[s] or made[s] < periods for s in seeds):
        for s in seeds:
            while left[s] < C and made[s] < periods:
                new = long_block(cfg, s, made[s], min(block, periods - made[s]))
                old = [a[len(a) - left[s]:] for a in buf[s]] if s in buf else [a[:0] for a in new]
                buf[s] = [np.concatenate([a, b]) for a, b in zip(old, new)]
                made[s] += min(block, periods - made[s])
                left[s] = len(buf[s][1])
        chunk = {}
        for s in seeds:
            n = min(C, left[s])
            piece = [a[len(a) - left[s]:len(a) - left[s] + n] for a in buf[s]]
            chunk[s] = [np.concatenate([a, np.zeros((C - n,) + a.shape[1:], a.dtype)]) for a in piece]
            left[s] -= n
        x, d, mask, ends = (np.stack([chunk[s][k] for s, _ in members], axis=1 + (k == 0)) for k in range(4))
        if not fr.feed(x, d, mask, ends):
            break
    return fr.periods[:, 0]


def online_results(run, confirm_n=CONFIRM_STREAMS, long_periods=LONG_PERIODS):
    """Per network: found perfect after how many training streams (None: not within the
    streams it ran), streams run, the test streams' sizes; for a perfect network also the
    confirmation on fresh streams and the periods of its long run (long_run, a row at a time)."""
    st, out = run.st, []
    P = unpack(st["theta"], run.H, run.n_in)
    for k, (row, cfg, seed, variant) in enumerate(run.nets):
        won, lost = bool(st["learned_at"][k] >= 0), bool(st["diverged_at"][k] >= 0)
        m = {"row": row, "seed": seed, "variant": variant, "streams": int(st["learned_at"][k]) if won else None,
             "diverged_at": int(st["diverged_at"][k]) if lost else None, "streams_run": int(st["j"][k]),
             "steps_run": int(st["age"][k]), "test_best": int(st["test_best"][k]), "test_last": int(st["test_last"][k])}
        if won:
            (m["confirmed"],), m["confirm_streams"] = confirm(own_inputs(P, slice(k, k + 1), cfg), cfg, seed,
                                                             [variant], confirm_n)
        out.append(m)
    for row in sorted({r for r, _, _, _ in run.nets}):
        won = [k for k, (r, _, _, _) in enumerate(run.nets) if r == row and out[k]["streams"] is not None]
        if won:
            cfg = run.nets[won[0]][1]
            held = long_run(own_inputs(P, won, cfg), cfg, [run.nets[k][2:] for k in won], long_periods)
            for i, k in enumerate(won):
                out[k]["long_periods"], out[k]["long_of"] = None if held is None else int(held[i]), long_periods
    return out, P


def own_inputs(P, idx, cfg):
    """The parameters of networks idx of a run, cut back to the inputs of cfg's task: a run's
    state has as many as any of its networks (PFG beside spike tasks: a row of zeros)."""
    return {n: v[idx][:, :TASKS[cfg.task].n_in] if n == "Wx" else v[idx] for n, v in P.items()}


def wilson(k, n, z=1.959964):
    """95 % Wilson score interval of a proportion k / n."""
    if n == 0:
        return None
    p = k / n
    mid, half = (p + z * z / (2 * n)), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo, hi = (mid - half) / (1 + z * z / n), (mid + half) / (1 + z * z / n)
    return [float(min(max(0.0, lo), p)), float(max(min(1.0, hi), p))]     # rounding never leaves p outside


def fisher_exact(a, n1, b, n2):
    """Two-sided p of Fisher's exact test that a of n1 and b of n2 come from one proportion:
    the sum of the hypergeometric probabilities of every table no more likely than the one seen."""
    k, n = a + b, n1 + n2
    prob = [math.comb(n1, x) * math.comb(n2, k - x) / math.comb(n, k) for x in range(max(0, k - n2), min(k, n1) + 1)]
    seen = math.comb(n1, a) * math.comb(n2, b) / math.comb(n, k)
    return float(min(1.0, sum(q for q in prob if q <= seen * (1 + 1e-9))))


def mcnemar_exact(b, c):
    """Two-sided p of the exact McNemar test on paired outcomes: of the b + c pairs in which
    exactly one member succeeded, b are the first's; the probability under Binomial(b + c, 1/2)
    of a split at least as uneven."""
    n, k = b + c, min(b, c)
    return 1.0 if n == 0 else float(min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n))


def paired_test(members):
    """Peephole against vanilla on a row's networks paired by seed (they share their initial
    weights and every stream): the seeds where only the peephole network is perfect, where only
    the vanilla one is, and the exact McNemar p on them; None without both variants of a seed."""
    won = {(m["seed"], m["variant"]): m["streams"] is not None for m in members}
    seeds = sorted({s for s, v in won if all((s, x) in won for x in VARIANTS)})
    if not seeds:
        return None
    b = sum(won[s, "peep"] and not won[s, "vanilla"] for s in seeds)
    c = sum(won[s, "vanilla"] and not won[s, "peep"] for s in seeds)
    return {"pairs": len(seeds), "peep_only": b, "vanilla_only": c, "mcnemar_p": mcnemar_exact(b, c)}


def perfect_summary(ms):
    """A row's networks of one variant (either engine's members): (the perfect ones, their
    streams to perfect, the summary every table shows: networks, perfect, diverged, training
    streams to perfect as mean and std)."""
    won = [m for m in ms if m["streams"] is not None]
    st = np.array([m["streams"] for m in won], float)
    return won, st, {"n": len(ms), "perfect": len(won), "percent": 100.0 * len(won) / len(ms),
                     "diverged": sum(m.get("diverged_at") is not None for m in ms),
                     "streams_mean": float(st.mean()) if len(won) else None,
                     "streams_std": float(st.std(ddof=1)) if len(won) > 1 else None}


def online_row_summary(members, variants):
    """Per variant: perfect_summary's, the 95 % Wilson interval of the perfect count, those
    confirmed on every fresh stream, the median and quartiles of streams to perfect, and the
    streams the others ran without learning."""
    out = {}
    for v in variants:
        ms = [m for m in members if m["variant"] == v]
        won, st, out[v] = perfect_summary(ms)
        lost = [m["streams_run"] for m in ms if m["streams"] is None]
        out[v] |= {"wilson95": wilson(len(won), len(ms)),
                   "confirmed": sum(m["confirmed"] == m["confirm_streams"] for m in won),
                   "streams_quartiles": [float(q) for q in np.percentile(st, (25, 50, 75))] if len(won) else None,
                   "not_learned_within": [min(lost), max(lost)] if lost else None,
                   "test_best_median": float(np.median([m["test_best"] for m in ms])),
                   "long_held": sum(m.get("long_periods") is not None and m["long_periods"] == m["long_of"]
                                    for m in won),
                   "long_failed_at": sorted(m["long_periods"] for m in won if m.get("long_periods") is not None
                                            and m["long_periods"] < m["long_of"]),
                   "long_of": next((m["long_of"] for m in won if "long_of" in m), None)}
    return out


def peep_vs_vanilla(ours):
    """Fisher's exact p of a row's perfect counts, peephole against vanilla (None without both):
    the unpaired test, kept beside paired_test's."""
    if not set(VARIANTS) <= set(ours):
        return None
    a, b = ours["peep"], ours["vanilla"]
    return fisher_exact(a["perfect"], a["n"], b["perfect"], b["n"])


ONLINE_STATE_VERSION = 2


def save_online_checkpoint(path, run):
    """The whole run (state arrays, networks, progress) in one .npz, written atomically."""
    meta = json.dumps({"version": ONLINE_STATE_VERSION, "minutes": run.minutes,
                       "table": run.table, "steps": run.steps, "seconds": run.seconds,
                       "nets": [[r, config_dict(c), s, v] for r, c, s, v in run.nets]})
    atomic_write(path, lambda f: np.savez(f, meta=np.array(meta), **{"st_" + k: v for k, v in run.st.items()}))


def load_online_checkpoint(path):
    """-> OnlineRun as saved. ValueError with one clear line if the file is unusable."""
    what = "an online checkpoint written by --checkpoint"

    def read(z):
        st = {k[3:]: z[k] for k in z.files if k.startswith("st_")}
        meta = json.loads(str(z["meta"]))
        if not st or not isinstance(meta, dict):
            raise KeyError("st_theta" if not st else "meta")
        return meta, st
    meta, st = read_npz(path, "the checkpoint", what, read)
    version = meta.get("version")
    if version != ONLINE_STATE_VERSION:
        raise ValueError(f"checkpoint {path!r} is of version {version!r}; this code reads version {ONLINE_STATE_VERSION}")
    try:
        nets = [(r, config_from_dict(c), s, v) for r, c, s, v in meta["nets"]]
    except (KeyError, TypeError, ValueError) as e:
        raise not_npz(path, what, e) from None
    for k, v in family([(c, s, v) for _, c, s, v in nets]).items():
        st.setdefault(k, v)                    # checkpoints from before tables shared an axis: derived from nets
    widest = max(nets, key=lambda n: TASKS[n[1].task].n_in)
    fresh = online_state([widest[1:]])
    if set(st) != set(fresh) or any(st[k].dtype != fresh[k].dtype or st[k].shape[:-1] != fresh[k].shape[:-1]
                                    or st[k].shape[-1] != len(nets) for k in ("theta", "s", "dS", "j")):
        raise ValueError(f"checkpoint {path!r}: its arrays do not match its networks (damaged or foreign file)")
    return OnlineRun(nets, meta["table"], st, meta["steps"], meta["seconds"], meta.get("minutes"))


# ----------------------------------------------------------------------------
# The paper's tables. One recipe for every row and both variants (RECIPE, ONLINE_RECIPE
# above); a row changes only the task. Ten networks per row and variant, seeds 0-9, as the
# paper's ten.

def row_config(**row):
    """The Config of one table row: the recipe of its learning mode (batch unless the row
    says online), the task's output unit, batch size or momentum, then the row itself."""
    task = row["task"]
    if row.get("learning") == "online":
        base = {**ONLINE_RECIPE, "readout": TASKS[task].readout, "momentum": TASKS[task].momentum}
    else:
        base = {**RECIPE, "readout": TASKS[task].readout, "batch": TASKS[task].batch}
    return Config(**{**base, **row})


ROW_FIELDS = ("task", "F", "delays", "func")     # what every table row sets (some rows set more)


def _row(task, paper, **kw):
    return {"config": dict(task=task, **kw), "paper": paper}


# The paper's numbers: % perfect, training streams [10^3] (mean +- std), and for
# PFG sqrt(MSE); "-" where it gives none. Its Tables 1, 3 and the table of Figure 7
# (GTS: "could not be learned by networks without peephole connections").
NO_GTS = (0, "not learned", "-")
TABLES = {
    "1": {"title": "Table 1: NMSD and continual MSD, sigmoid output",
          "rows": [_row("nmsd", {"vanilla": (100, "160 ± 14", "-"), "peep": (100, "125 ± 14", "-")}, F=10),
                   _row("nmsd", {"vanilla": (100, "732 ± 97", "-"), "peep": (100, "763 ± 103", "-")}, F=20),
                   _row("nmsd", {"vanilla": (100, "17521 ± 2200", "-"), "peep": (80, "12885 ± 2091", "-")}, F=30),
                   _row("nmsd", {"vanilla": (20, "37533 ± 4558", "-"), "peep": (70, "25686 ± 2754", "-")}, F=40),
                   _row("nmsd", {"vanilla": (0, "-", "-"), "peep": (10, "32485", "-")}, F=50),
                   _row("cmsd", {"vanilla": (10, "8850", "-"), "peep": (20, "27453 ± 11750", "-")}, F=10),
                   _row("cmsd", {"vanilla": (20, "29257 ± 13758", "-"), "peep": (60, "9791 ± 2660", "-")},
                        F=10, delays=(0, 1, 2))]},
    "gts": {"title": "Figure 7 (table): GTS, sigmoid output",
            "rows": [_row("gts", {"vanilla": NO_GTS, "peep": (100, "41 ± 4", "-")}, F=10, delays=(0,)),
                     _row("gts", {"vanilla": NO_GTS, "peep": (100, "67 ± 8", "-")}, F=20, delays=(0,)),
                     _row("gts", {"vanilla": NO_GTS, "peep": (80, "845 ± 82", "-")}, F=30, delays=(0,)),
                     _row("gts", {"vanilla": NO_GTS, "peep": (100, "1152 ± 101", "-")}, F=40, delays=(0,)),
                     _row("gts", {"vanilla": NO_GTS, "peep": (100, "2538 ± 343", "-")}, F=50, delays=(0,)),
                     _row("gts", {"vanilla": NO_GTS, "peep": (50, "1647 ± 46", "-")}, F=10, delays=(0, 1)),
                     _row("gts", {"vanilla": NO_GTS, "peep": (30, "954 ± 393", "-")}, F=10, delays=(0, 1, 2))]},
    "3": {"title": "Table 3: PFG, linear output",
          "rows": [_row("pfg", {"vanilla": (90, "2477 ± 341", "0.13 ± 0.033"), "peep": (100, "145 ± 32", "0.18 ± 0.016")},
                        func="cos", F=10),
                   _row("pfg", {"vanilla": (0, "> 10000", "-"), "peep": (60, "149 ± 7", "0.17 ± 0.019")},
                        func="cos", F=25),
                   _row("pfg", {"vanilla": (0, "> 10000", "-"), "peep": (100, "869 ± 204", "0.13 ± 0.014")},
                        func="tri", F=10),
                   _row("pfg", {"vanilla": (0, "> 10000", "-"), "peep": (50, "4063 ± 303", "0.13 ± 0.024")},
                        func="tri", F=25),
                   _row("pfg", {"vanilla": (0, "> 10000", "-"), "peep": (80, "1107 ± 97", "0.12 ± 0.014")},
                        func="rect", F=10),
                   _row("pfg", {"vanilla": (0, "> 10000", "-"), "peep": (20, "748 ± 278", "0.12 ± 0.012")},
                        func="rect", F=25)]},
}


T2 = [("0-1", 100, "48 ± 12", 100, "46 ± 14"), ("0-2", 100, "25 ± 4", 100, "10.3 ± 3.3"),
      ("0-3", 100, "12.3 ± 2.4", 100, "7.4 ± 2.2"), ("0-4", 100, "8.5 ± 1.3", 100, "3.6 ± 0.4"),
      ("0-5", 100, "4.5 ± 0.4", 100, "6.0 ± 1.4"), ("0-6", 100, "6.1 ± 1.0", 100, "7.1 ± 2.8"),
      ("0-7", 100, "8.5 ± 2.9", 70, "15 ± 6.5"), ("0-8", 100, "14.1 ± 4.2", 50, "22 ± 9"),
      ("0-9", 90, "39 ± 28", 50, "33 ± 17"), ("0-10", 60, "23 ± 5", 20, "395 ± 167"),
      ("0,2", 100, "33 ± 8", 100, "18 ± 5"), ("0,3", 100, "12.5 ± 4.2", 100, "23 ± 6"),
      ("0,4", 100, "12.1 ± 2.8", 100, "13.7 ± 2.7"), ("0,5", 100, "8.5 ± 2.3", 100, "10.4 ± 2.0"),
      ("0,6", 100, "7.7 ± 1.5", 100, "12.7 ± 3.1"), ("0,7", 100, "7.7 ± 1.5", 100, "14.5 ± 6.0"),
      ("0,8", 100, "7.5 ± 2.0", 100, "6.3 ± 1.3"), ("0,9", 100, "5.8 ± 1.6", 100, "7.5 ± 1.6"),
      ("0,10", 100, "5.6 ± 0.9", 100, "6.7 ± 1.7")]
TABLES["2"] = {"title": "Table 2: NMSD F=10, many delay sets, linear output",
               "rows": [_row("nmsd", {"vanilla": (a, b, "-"), "peep": (c, d, "-")}, F=10,
                             delays=tuple(range(int(k[2:]) + 1)) if "-" in k else (0, int(k[2:])), readout="linear")
                        for k, a, b, c, d in T2]}
# Without a forget gate (its activation pinned to 1.0), on the F = 10 rows of Table 3 and of
# Figure 7. The paper: PFG never learned for more than two successive periods; GTS never
# learned from scratch.
NEVER = (0, "never", "-")
TABLES["3nf"] = {"title": "Table 3 rows F=10 without forget gate (paper: never more than two periods)",
                 "rows": [_row("pfg", {"vanilla": NEVER, "peep": NEVER}, func=f, F=10, forget=False)
                          for f in ("cos", "tri", "rect")]}
TABLES["gtsnf"] = {"title": "Figure 7 rows F=10 without forget gate (paper: never learned from scratch)",
                   "rows": [_row("gts", {"vanilla": NEVER, "peep": NEVER}, F=10, delays=d, forget=False)
                            for d in ((0,), (0, 1), (0, 1, 2))]}
BUDGET_FROM = {"3nf": "3", "gtsnf": "gts"}     # tables without a count of their own take the budget of these
ONLINE_TABLES = ("1", "2", "gts", "3", "gtsnf", "3nf")     # --table all: the paper's, on one axis


def paper_mean_std(text):
    """The paper's 'm ± s' -> (m, s), or one network's 'n' -> (n, 0); None for '-', 'never' or
    '> n' (no mean)."""
    parts = text.split("±")
    try:
        return float(parts[0]), float(parts[1]) if len(parts) > 1 else 0.0
    except ValueError:
        return None


def paper_streams(text):
    """The paper's training streams [10^3] as an upper count: 'm ± s' -> m + 3 s, 'n' -> n,
    '> n' -> n; None where it gives no count."""
    ms = paper_mean_std(text.replace(">", ""))
    return None if ms is None else ms[0] + 3.0 * ms[1]


def paper_budget(name, k):
    """Training streams per network for row k of an online table: the paper's mean + 3 std to
    perfect (the larger of the two variants), or, where the row has no count, the largest of
    its table (of BUDGET_FROM's table for the tables without forget gate)."""
    def counts(row):
        return [c for c in (paper_streams(row["paper"][v][1]) for v in VARIANTS) if c is not None]
    own = counts(TABLES[name]["rows"][k])
    table = TABLES[BUDGET_FROM.get(name, name)]["rows"]
    return int(round(1e3 * max(own or [c for row in table for c in counts(row)])))


# Rows from the tables above on which the recipe was chosen, on seeds 100-104 (README)
TABLES["recipe"] = {"title": "Recipe selection (development seeds; not a result)", "derived": True,
                    "rows": [TABLES["1"]["rows"][1], TABLES["1"]["rows"][6], TABLES["gts"]["rows"][0],
                             TABLES["3"]["rows"][0], TABLES["3"]["rows"][4]]}
# The probe of the gate-bias readings: rows of Tables 1, 2, 3 and Figure 7, each reading a row
# of its own; run one task family at a time (--rows).
PROBE_ROWS = (("2", 0), ("2", 18), ("1", 0), ("gts", 0), ("gts", 5), ("3", 0), ("3", 4))
TABLES["probe"] = {"title": "The initial gate biases under the paper's algorithm (development seeds; not a result)",
                   "online_only": True, "derived": True,
                   "rows": [{**TABLES[t]["rows"][k], "config": {**TABLES[t]["rows"][k]["config"], "gate_biases": b}}
                            for t, k in PROBE_ROWS for b in READINGS.values()]}
# The start map: the initial gate biases (input, forget, output) over a grid, on rows of every
# task family, on development seeds only. A start is data in each row's config, so a map is an
# online table like the others: its cells share one network axis. A row's budget is the paper's
# mean + 3 std streams to perfect of its peephole networks, capped at MAP_CAP (rows so capped:
# GTS F=10 I in {0,1} and PFG f_rect F=10). Rows are ordered task row first, start fastest, so
# --rows takes a task row's cells together (rows 1-29 of the default grid: Table 1 NMSD, ...).
DEV_SEEDS = tuple(range(100, 110))       # the seeds readings are chosen on; tables report seeds 0-9 (0-29)
MAP_ROWS = (("1", 0), ("2", 0), ("2", 1), ("2", 3), ("2", 10), ("2", 18), ("gts", 0), ("gts", 1), ("gts", 5),
            ("3", 0), ("3", 4))
MAP_GRID = "0:0,1,2,3:-2,-1,-0.5,0,0.5,1,2;0:-2:2"   # input:forget:output lists, ';' joins grids (+ the printed start)
MAP_CAP = 400000                         # training streams per network at most, whatever the paper's count


def parse_grid(text):
    """'IN:FORGET:OUT' of comma-separated numbers, several joined by ';' -> the starts (input,
    forget, output gate biases) of their products, in order; ArgumentTypeError naming the bad part."""
    starts = []
    for part in text.split(";"):
        lists = part.split(":")
        try:
            values = [[float(v) for v in lst.split(",")] for lst in lists]
        except ValueError:
            values = []
        if len(values) != 3 or not all(np.isfinite(v) for lst in values for v in lst):
            raise argparse.ArgumentTypeError(f"{part!r} is not IN:FORGET:OUT, three lists of finite numbers "
                                             "joined by ':' (e.g. 0:0,1,2,3:-2,-1,0,1,2; several joined by ';')")
        starts += [tuple(s) for s in itertools.product(*values)]
    twice = sorted({s for s in starts if starts.count(s) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{text!r} names the start {'/'.join(f'{b:g}' for b in twice[0])} twice")
    return tuple(starts)


def map_budget(paper):
    """A map row's budget: its peephole networks' mean + 3 std streams in the paper, capped at MAP_CAP."""
    return int(min(round(1e3 * paper_streams(paper["peep"][1])), MAP_CAP))


def map_table(starts):
    """The start map over `starts` (parse_grid) as a table: every MAP_ROWS row from each start."""
    rows = [{**TABLES[t]["rows"][k], "budget": map_budget(TABLES[t]["rows"][k]["paper"]),
             "config": {**TABLES[t]["rows"][k]["config"], "gate_biases": b}} for t, k in MAP_ROWS for b in starts]
    return {"title": "The start map: initial gate biases under the paper's algorithm (development seeds; "
                     "not a result)", "online_only": True, "derived": True, "seeds": DEV_SEEDS, "rows": rows}


TABLES["map"] = map_table(parse_grid(MAP_GRID))


def row_label(cfg):
    """'NMSD F=10 I in {0,1}' or 'PFG f_cos F=10'."""
    return TASKS[cfg.task].label(cfg)


def row_summary(cfg, results):
    """Per variant: networks, % perfect, streams to perfect (mean, std) and sqrt MSE of the perfect ones."""
    out = {}
    for v in cfg.variants:
        ms = [m for m in results["members"] if m["variant"] == v]
        won, _, out[v] = perfect_summary(ms)
        rm = np.array([m["final"]["rmse"] for m in won])
        out[v] |= {"rmse_mean": float(rm.mean()) if len(won) else None,
                   "rmse_std": float(rm.std(ddof=1)) if len(won) > 1 else None,
                   "periods_median": float(np.median([m["final"]["periods"] for m in ms]))}
    return out


def run_table(name, workers, overrides=None, log=quiet):
    """Train every row of TABLES[name] (with optional Config overrides, e.g. grad).
    Returns the results doc (JSON) and the trained parameters of each row."""
    rows, params = [], []
    t0 = time.perf_counter()
    spec = TABLES[name]["rows"]
    for k, row in enumerate(spec):
        cfg = row_config(**{**row["config"], **(overrides or {})})
        P, res = train_parallel(cfg, workers)
        params.append(P)
        s = row_summary(cfg, res)
        rows.append({"label": row_label(cfg), "config": config_dict(cfg), "paper": row["paper"], "ours": s,
                     "seconds": res["seconds"],
                     "members": [{k2: m[k2] for k2 in ("seed", "variant", "final", "solved_at", "streams")}
                                 for m in res["members"]]})
        log(f"row {k + 1}/{len(spec)} {row_label(cfg):<24} "
            + " | ".join(f"{v}: {s[v]['perfect']}/{s[v]['n']} perfect"
                         + (f", {s[v]['diverged']} diverged" if s[v]["diverged"] else "") for v in cfg.variants)
            + f" | {res['seconds']:.1f} s (total {time.perf_counter() - t0:.1f} s)")
    return {"table": name, "title": TABLES[name]["title"], "overrides": overrides or {}, "rows": rows,
            "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in RECIPE.items()},
            "seconds": time.perf_counter() - t0, "env": environment()}, params


def save_table_params(path, params):
    """Every row's trained parameters in one .npz: row{k}_{name}, members in the row's order."""
    atomic_write(path, lambda f: np.savez(f, **{f"row{k}_{n}": P[n] for k, P in enumerate(params)
                                                for n in PARAMS}))


def load_table_params(path, doc):
    """The weights save_table_params wrote for a table's results doc: per row {name: (members, ...)}.
    ValueError with one line if the file is missing, damaged or of another run."""
    params = read_npz(path, "the weights", "the weights file of its table run",
                      lambda z: [{n: z[f"row{k}_{n}"] for n in PARAMS} for k in range(len(doc["rows"]))])
    if any(len(P["b"]) != len(r["members"]) for P, r in zip(params, doc["rows"])):
        raise ValueError(f"{path!r} holds other networks than its results file (another run?)")
    return params


def _mean_std(s, key, scale, fmt):
    m, sd = s[key + "_mean"], s[key + "_std"]
    if m is None:
        return "-"
    return f"{m / scale:{fmt}}" + ("" if sd is None else f" ± {sd / scale:{fmt}}")


def table_markdown(doc):
    """The paper's numbers beside ours, per row and variant."""
    pfg = any(r["config"]["task"] == "pfg" for r in doc["rows"])
    head = ["row", "variant", "paper % perfect", "paper streams [10^3]"] + (["paper sqrt MSE"] if pfg else []) \
        + ["our % perfect", "our streams [10^3]"] + (["our sqrt MSE"] if pfg else []) + ["median periods"]
    lines = []
    for r in doc["rows"]:
        for v in ("vanilla", "peep"):
            if v not in r["ours"]:
                continue
            p, s = r["paper"][v], r["ours"][v]
            lines.append([r["label"], v, f"{p[0]}", p[1]] + ([p[2]] if pfg else [])
                         + [f"{s['percent']:.0f}" + (f" ({s['diverged']} diverged)" if s.get("diverged") else ""),
                            _mean_std(s, "streams", 1e3, ".1f")]
                         + ([_mean_std(s, "rmse", 1, ".3f")] if pfg else []) + [f"{s['periods_median']:g}"])
    return md_table(head, lines)


def table_nets(name, given, rows=None, spec=None):
    """[(row index, cfg, seed, variant)] of a table's rows (`rows`: 1-based numbers, or all),
    the flags given over each row's recipe, the table's seeds (if it names them) and, online,
    its budget (the row's own, else paper_budget's). spec: the table, if not TABLES[name]."""
    spec = spec or TABLES[name]
    table, nets = spec["rows"], []
    for k in (range(len(table)) if rows is None else [r - 1 for r in rows]):
        if not 0 <= k < len(table):
            raise ValueError(f"rows: table {name} has rows 1-{len(table)}, not {k + 1}")
        own = {"seeds": spec["seeds"]} if "seeds" in spec else {}
        if "budget" not in given and given.get("learning") == "online":
            own["budget"] = table[k].get("budget") or paper_budget(name, k)
        cfg = row_config(**{**table[k]["config"], **own, **given})
        cfg.validate()
        nets += [(k, cfg, s, v) for s, v in members_of(cfg)]
    return nets


def shard_nets(per, k, n):
    """Shard k of n (1-based) of the networks [(table, nets)] of a run, as [(table, positions of
    its networks in nets)]: the pairs (a row's two variants of one seed) dealt round robin in
    order, over every table, so that each shard holds about as many networks of every row as
    any other and costs about the same; tables it gets none of are left out. Merging the
    shards' results (--merge) gives the whole run's."""
    out, i = [], 0
    for name, nets in per:
        mine = []
        for _, pair in itertools.groupby(range(len(nets)), lambda p: (nets[p][0], nets[p][2])):
            if i % n == k - 1:
                mine += list(pair)
            i += 1
        if mine:
            out.append((name, mine))
    if not out:
        raise ValueError(f"--shard {k}/{n}: the run has {i} pairs of networks, too few for {n} shards")
    return out


def budget_reached(cfg, ms, rate):
    """How far a row's networks got against its budget: the networks still unfinished (neither
    perfect, diverged nor at the budget), the fewest streams any of them ran, and what the rest
    would cost at `rate` network-steps per second on one core, each network's steps per stream
    so far (a lower bound: streams grow as networks learn)."""
    open_ = [m for m in ms if m["streams"] is None and m["diverged_at"] is None and m["streams_run"] < cfg.budget]
    steps = sum(m["steps_run"] for m in ms) / max(sum(m["streams_run"] for m in ms), 1)
    rest = sum((cfg.budget - m["streams_run"]) * (m["steps_run"] / m["streams_run"] if m["streams_run"] else steps)
               for m in open_)
    return {"budget": cfg.budget, "unfinished": len(open_),
            "fewest_streams": min((m["streams_run"] for m in open_), default=None),
            "rest_core_hours": rest / rate / 3600 if rate else None}


def paper_row(cfg):
    """(table, row index) of the paper's row that cfg runs (same task, F, delays or function,
    output unit and forget gate), or None if it reports none."""
    keys = ("task", "F", "readout", "forget", TASKS[cfg.task].paper_key)
    for name, table in TABLES.items():
        if table.get("derived"):          # rows copied from the paper's tables
            continue
        for k, row in enumerate(table["rows"]):
            c = row_config(**row["config"], learning=cfg.learning)
            if all(getattr(c, key) == getattr(cfg, key) for key in keys):
                return name, k
    return None


def paper_numbers(cfg):
    """The paper's numbers of the row that cfg runs (paper_row), or None."""
    at = paper_row(cfg)
    return None if at is None else TABLES[at[0]]["rows"][at[1]]["paper"]


def online_doc(run, members):
    """The results file of an online run: per row its networks, their summary, the paper's
    numbers and how far the row got against its budget."""
    rows = []
    rate = float(run.st["age"].sum()) / (run.seconds * run.workers) if run.seconds else None
    for k in sorted({r for r, _, _, _ in run.nets}):
        cfg = next(c for r, c, _, _ in run.nets if r == k)
        ms = [m for m in members if m["row"] == k]
        ours = online_row_summary(ms, cfg.variants)
        rows.append({"row": k + 1, "label": row_label(cfg), "config": config_dict(cfg),
                     "paper": paper_numbers(cfg),
                     "ours": ours, "paired": paired_test(ms), "fisher_p": peep_vs_vanilla(ours),
                     "reached": budget_reached(cfg, ms, rate),
                     "members": ms})
    return {"table": run.table, "title": TABLES[run.table]["title"] if run.table else rows[0]["label"],
            "learning": "online", "steps": run.steps, "seconds": run.seconds, "workers": run.workers,
            "net_steps_per_core_second": rate, "finished": bool(run.st["done"].all()), "rows": rows,
            "env": environment()}


def merge_docs(docs, params=None):
    """One online results file from shards of one table (disjoint rows or seeds); with params
    (per doc, its rows' weights as --save writes them) also the merged rows' weights, the
    members in the merged order."""
    head = docs[0]
    for d in docs:
        if not isinstance(d, dict) or d.get("learning") != "online" or d.get("table") != head.get("table"):
            raise ValueError("merge takes online results files of one table")
    rows, seen, where = {}, set(), {}
    for i, d in enumerate(docs):
        for k, r in enumerate(d["rows"]):
            row = rows.setdefault(r["row"], {**r, "members": []})
            if r["config"]["budget"] != row["config"]["budget"]:
                raise ValueError(f"merge: row {r['row']} has budgets {row['config']['budget']} and "
                                 f"{r['config']['budget']} in different files")
            for j, m in enumerate(r["members"]):
                if (m["row"], m["seed"], m["variant"]) in seen:
                    raise ValueError(f"merge: row {r['row']} seed {m['seed']} {m['variant']} is in two files")
                seen.add((m["row"], m["seed"], m["variant"]))
                where[m["row"], m["seed"], m["variant"]] = (i, k, j)
                row["members"].append(m)
    rates = [d["net_steps_per_core_second"] for d in docs if d.get("net_steps_per_core_second")]
    rate = float(np.mean(rates)) if rates else None
    for row in rows.values():
        row["members"].sort(key=lambda m: (m["seed"], VARIANTS.index(m["variant"])))
        row["config"] = {**row["config"], "seeds": sorted({m["seed"] for m in row["members"]})}   # shards of seeds
        row["ours"] = online_row_summary(row["members"], sorted({m["variant"] for m in row["members"]},
                                                               key=VARIANTS.index))
        row["paired"], row["fisher_p"] = paired_test(row["members"]), peep_vs_vanilla(row["ours"])
        row["reached"] = budget_reached(config_from_dict(row["config"]), row["members"], rate)
    doc = {**head, "rows": [rows[k] for k in sorted(rows)], "steps": max(d["steps"] for d in docs),
           "seconds": sum(d["seconds"] for d in docs), "net_steps_per_core_second": rate,
           "finished": all(d["finished"] for d in docs), "env": [d["env"] for d in docs]}
    if params is None:
        return doc, None
    at = [[where[m["row"], m["seed"], m["variant"]] for m in r["members"]] for r in doc["rows"]]
    return doc, [{n: np.stack([params[i][k][n][j] for i, k, j in row]) for n in PARAMS} for row in at]


def report_any(doc, compare=None):
    """The markdown of any results file: a run (--json), a batch table, an online run or table."""
    if compare is not None and (doc.get("learning") != "online" or compare.get("learning") == "online"
                                or "rows" not in compare):
        raise ValueError("--compare shows the results file of a batch --table run beside an online one: "
                         "--report ONLINE.json --compare BATCH.json")
    if doc.get("learning") == "online":
        parts = [doc["title"]]
        if doc["table"] == "map":
            parts += [map_markdown(doc), "The rule's scores:", scores_markdown(start_scores(doc))]
        return "\n\n".join(parts + [online_markdown(doc, compare), online_footer(doc)])
    if "rows" in doc:
        return table_markdown(doc)
    return report_markdown(doc)


def confirm_table(prefix):
    """Every network a batch --table run (PREFIX.json + PREFIX.npz) counted perfect, run on
    CONFIRM_STREAMS fresh streams: the doc with per member 'confirmed' and per row and
    variant the number confirmed on every fresh stream."""
    doc, params = read_table_run(prefix)
    for row, P in zip(doc["rows"], params):
        cfg = config_from_dict(row["config"])
        for k, m in enumerate(row["members"]):
            if m["streams"] is not None:
                (m["confirmed"],), m["confirm_streams"] = confirm({n: v[k:k + 1] for n, v in P.items()}, cfg,
                                                                 m["seed"], [m["variant"]])
        for v, s in row["ours"].items():
            s["confirmed"] = sum(m.get("confirmed") == m.get("confirm_streams") for m in row["members"]
                                 if m["variant"] == v and m["streams"] is not None)
    doc["confirm_env"] = environment()      # where the confirmation ran; "env" is the table's
    return doc


def online_markdown(doc, batch=None):
    """Per row and variant: the paper's numbers, the batch recipe's (if its results file is
    given), and the online algorithm's: perfect on the tests (95 % Wilson interval, networks
    that diverged), confirmed on fresh streams, training streams to perfect (mean +- std and
    median [quartiles]), how far the others got; per row, Fisher's exact p of peephole against
    vanilla and how far the row got against its budget."""
    head = ["row", "variant", "paper % perfect", "paper streams [10^3]"] + (["batch recipe perfect"] if batch else []) \
        + ["online perfect (95 % CI)", f"confirmed ({CONFIRM_STREAMS} fresh streams)", "online streams [10^3]",
           "median [quartiles] [10^3]", "not learned within [10^3]", "median best test periods",
           "still correct at 10^5 periods", "seeds only peep / only vanilla perfect: McNemar p (paired)",
           "Fisher p (unpaired)", "budget [10^3]: reached?"]
    lines = []
    theirs = {r["label"]: r["ours"] for r in batch["rows"]} if batch else {}
    readings = TABLES.get(doc["table"], {}).get("derived") or \
        len({tuple(r["config"].get("gate_biases", ())) for r in doc["rows"]}) > 1
    for r in doc["rows"]:
        first = True
        for v in ("vanilla", "peep"):
            if v not in r["ours"]:
                continue
            s = r["ours"][v]
            p = r["paper"][v] if r["paper"] else ("-", "-")
            b = theirs.get(r["label"], {}).get(v)
            lost, ci, q = s["not_learned_within"], s.get("wilson95"), s.get("streams_quartiles")
            bp = "-" if b is None else f"{b['perfect']}/{b['n']}" + (f" ({b['confirmed']} conf.)" if "confirmed" in b else "")
            won = f"{s['perfect']}/{s['n']}" + (f" ({100 * ci[0]:.0f}-{100 * ci[1]:.0f} %)" if ci else "") \
                + (f", {s['diverged']} diverged" if s.get("diverged") else "")
            label = r["label"] + (f" (gate biases {'/'.join(f'{b:+g}' for b in r['config']['gate_biases'])})"
                                  if readings else "")
            lines.append([label, v, f"{p[0]}", p[1]] + ([bp] if batch else []) + [
                   won, f"{s['confirmed']}/{s['perfect']}" if s["perfect"] else "-",
                   _mean_std(s, "streams", 1e3, ".1f"),
                   "-" if q is None else f"{q[1] / 1e3:.1f} [{q[0] / 1e3:.1f}-{q[2] / 1e3:.1f}]",
                   "-" if lost is None else (plain(lost[0] / 1e3) if lost[0] == lost[1]
                                             else f"{plain(lost[0] / 1e3)}-{plain(lost[1] / 1e3)}"),
                   f"{s['test_best_median']:.0f}", long_text(r["config"]["task"], s),
                   paired_text(r) if first else "",
                   (f"{r['fisher_p']:.2g}" if r.get("fisher_p") is not None else "-") if first else "",
                   reached_text(r.get("reached")) if first else ""])
            first = False
    out = [md_table(head, lines)]
    if any(short(r) for r in doc["rows"]):
        out.append(f"\n{SHORT_MARK} the row has not reached its budget: its test compares how fast the variants "
                   "learn within the streams run, not whether they can")
    return "\n".join(out)


SHORT_MARK = "(short)"


def short(row):
    """Whether a results row has networks left short of their budget."""
    if "reached" not in row:        # files older than the budget column: read it off the members
        return any(m["streams"] is None and m["streams_run"] < row["config"]["budget"] for m in row["members"])
    return bool(row["reached"]["unfinished"])


def paired_text(row):
    """'3 / 0: p = 0.25': the row's paired test (its networks paired by seed), marked if the row is short."""
    t = paired_test(row["members"])
    if t is None:
        return "-"
    return f"{t['peep_only']} / {t['vanilla_only']}: p = {t['mcnemar_p']:.2g}" + (f" {SHORT_MARK}" if short(row) else "")


def online_footer(doc):
    """Where and how an online results file was made: its shards' wall clock, processes and machines."""
    envs = doc["env"] if isinstance(doc["env"], list) else [doc["env"]]
    shards = f" in {len(envs)} shards" if len(envs) > 1 else f" on {doc['workers']} process(es)"
    lines = [f"{doc['steps']} steps, {doc['seconds']:.0f} s of wall clock{shards}; "
             + ("every network finished" if doc["finished"] else "some networks unfinished")]
    return "\n\n".join(lines + sorted({machine_line(env) for env in envs}))     # paragraphs, also in markdown


def long_text(task, s):
    """'3/4 (one failed at period 5,210)': of the perfect networks, how many ran free from the zero
    state for all the long run's periods, and where the others failed."""
    if TASKS[task].one_interval:
        return "n/a (one interval per stream)"
    if not s["perfect"] or s.get("long_of") is None:
        return "-"
    failed = s["long_failed_at"]
    return f"{s['long_held']}/{s['perfect']}" + (f" (failed at period {', '.join(f'{p:,}' for p in failed)})"
                                                 if failed else "")


def reached_text(reached):
    """'53: yes', or '3567: 412 at least (2.1 core-h more)' for a row not run to its budget."""
    if reached is None:
        return "-"
    text = f"{plain(reached['budget'] / 1e3)}: "
    if not reached["unfinished"]:
        return text + "yes"
    cost = reached["rest_core_hours"]
    return text + f"{plain(reached['fewest_streams'] / 1e3)} at least" \
        + ("" if cost is None else f" ({plain(cost)} core-h more)")


def plain(x):
    """A count or cost in a table: whole above 100, else 3 significant digits; never an exponent."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}" if abs(x) >= 0.001 else f"{x:.1g}" if x else "0"


# The rule that chooses one start from the map, fixed before the map was read. A start
# reproduces a row for the peephole networks when their perfect count is consistent with the
# paper's (two-sided Fisher's exact test of our k of n against the paper's percentage of its
# ten networks: p >= RULE_P) and, where the paper gives a mean, the median streams of our
# perfect networks lie within a factor RULE_FACTOR of it (no perfect network: not within).
# The start that reproduces the most rows wins; ties go to the most perfect networks over
# both variants and every row.
RULE_P = 0.05
RULE_FACTOR = 2.0
PAPER_NETWORKS = 10        # the paper's networks per row and variant


def reproduces(row, variant="peep"):
    """Whether one row of a results file reproduces the paper's row by the rule: (bool, Fisher's
    p, our median streams / the paper's mean or None)."""
    s, (percent, streams, _) = row["ours"][variant], row["paper"][variant]
    p = fisher_exact(s["perfect"], s["n"], round(percent * PAPER_NETWORKS / 100), PAPER_NETWORKS)
    mean = paper_mean_std(streams)
    q = s.get("streams_quartiles")
    ratio = None if mean is None or q is None else q[1] / (1e3 * mean[0])
    fast = mean is None or percent == 0 or (ratio is not None and 1 / RULE_FACTOR <= ratio <= RULE_FACTOR)
    return p >= RULE_P and fast, p, ratio


def start_of(row):
    """A row's initial gate biases (files older than the biases in the config ran the printed ones)."""
    c = row["config"]
    return tuple(c["gate_biases"]) if "gate_biases" in c else config_from_dict(c).gate_biases


def start_text(start):
    return "/".join(f"{b:+g}" for b in start)


def start_scores(doc):
    """Per start of a map's results file, best first by the rule: the rows it reproduces (in
    all and per task family), its perfect networks over both variants, its rows short of their
    budgets."""
    out = {}
    for r in doc["rows"]:
        s = out.setdefault(start_of(r), {"start": list(start_of(r)), "rows": 0, "reproduced": [], "by_family": {},
                                          "perfect": 0, "short": 0})
        family = TASKS[r["config"]["task"]].family
        s["rows"] += 1
        s["by_family"].setdefault(family, 0)
        if reproduces(r)[0]:
            s["reproduced"].append(r["label"])
            s["by_family"][family] += 1
        s["perfect"] += sum(v["perfect"] for v in r["ours"].values())
        s["short"] += short(r)
    return sorted(out.values(), key=lambda s: (-len(s["reproduced"]), -s["perfect"]))


def scores_markdown(scores):
    """The rule's scores, a start per line, best first."""
    families = list(dict.fromkeys(f for s in scores for f in s["by_family"]))
    rows = scores[0]["rows"]
    head = ["rank", "start (input/forget/output)", f"rows reproduced (of {rows})"] \
        + [f"{f} rows" for f in families] + ["perfect networks (both variants)", "rows short of budget"]
    return md_table(head, [[k + 1, start_text(s["start"]), len(s["reproduced"])]
                           + [s["by_family"].get(f, 0) for f in families] + [s["perfect"], s["short"]]
                           for k, s in enumerate(scores)])


def map_cells(doc):
    """A map's results as {task row label: {start: row}}, the task row labelled with its table
    (Table 1's and Table 2's NMSD F=10 I in {0,1} differ in their output unit)."""
    out = {}
    for r in doc["rows"]:
        name, _ = paper_row(config_from_dict(r["config"]))
        out.setdefault(f"{TABLES[name]['title'].split(':')[0]}: {r['label']}", {})[start_of(r)] = r
    return out


def map_markdown(doc):
    """Per task row, a table of forget-gate bias (rows) by output-gate bias (columns), input
    bias given: in each cell the peephole and vanilla networks perfect, the median streams of
    the peephole ones relative to the paper's mean, and R where the start reproduces the row."""
    parts = []
    for label, cells in map_cells(doc).items():
        groups = {}
        for start in cells:
            groups.setdefault(start[0], []).append(start)
        for inp, starts in groups.items():
            forget, output = sorted({s[1] for s in starts}), sorted({s[2] for s in starts})
            parts.append(f"**{label}**, input-gate bias {inp:+g}: peephole / vanilla perfect, "
                         "[median streams / paper's mean], R: reproduced")
            head = ["forget \\ output"] + [f"{o:+g}" for o in output]
            lines = []
            for f in forget:
                row = [f"{f:+g}"]
                for o in output:
                    r = cells.get((inp, f, o))
                    if r is None:
                        row.append("")
                        continue
                    ok, _, ratio = reproduces(r)
                    p, v = r["ours"]["peep"], r["ours"]["vanilla"]
                    row.append(f"{p['perfect']}/{p['n']} / {v['perfect']}/{v['n']}"
                               + ("" if ratio is None else f" [{ratio:.2g}x]") + (" R" if ok else "")
                               + ("" if not r["reached"]["unfinished"] else " (short)"))
                lines.append(row)
            parts.append(md_table(head, lines))
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------
# Reporting.

def md_table(head, rows):
    """A markdown table: a line for the head's cells, the rule, a line per row of cells."""
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(map(str, cells)) + " |" for cells in rows])


def seeds_text(seeds):
    """'seed 4', 'seeds 0-9' or 'seeds 0, 3, 5'."""
    seeds = sorted(seeds)
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


def by_variant(members, values):
    """{variant: [values of its members]}"""
    out = {}
    for (_, v), x in zip(members, values):
        out.setdefault(v, []).append(x)
    return out


def progress_line(cfg, members, it, train_mse, metrics, elapsed):
    parts = [f"it {it:>{len(str(cfg.iters))}}/{cfg.iters}"]
    for v, ms in by_variant(members, list(zip(train_mse, metrics))).items():
        tr = [a for a, _ in ms if not np.isnan(a)]          # frozen networks no longer train
        parts.append(f"{v}: train {f'{np.mean(tr):.2e}' if tr else '-':>8} "
                     + TASKS[cfg.task].brief([b for _, b in ms]))
    parts.append(f"{elapsed:6.1f}s")
    return " | ".join(parts)


def summarize(results):
    """Mean and sample std over seeds of every final and tail metric, per variant."""
    members = [(m["seed"], m["variant"]) for m in results["members"]]
    out = {}
    for v, ms in by_variant(members, results["members"]).items():
        out[v] = {"n": len(ms)}
        for part in ("final", "tail"):
            for key in ms[0].get(part, {}):
                a = np.array([m[part][key] for m in ms])
                out[v][f"{part}_{key}"] = {"mean": float(a.mean()),
                                           "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0}
    return out


def summary_table(cfg, results):
    """Per-member rows, then mean (and std over seeds) per variant."""
    has_tail = "tail" in results["members"][0]
    task = TASKS[cfg.task]
    cols = [("final", key, title, fmt) for key, title, fmt in task.columns]
    if cfg.tol and "solve_tol" in task.history:
        cols.append(("final", "solve_tol", f"solve+-{cfg.tol}", ".3f"))
    if has_tail:
        cols += [("tail", "test_mse", f"MSE last{cfg.tail_evals}", ".5f"),
                 ("tail", "solve", f"solve last{cfg.tail_evals}", ".3f")]
    width = [max(9, len(c[2])) for c in cols]
    rows = [f"{'seed':>4} {'variant':<8} " + " ".join(f"{c[2]:>{w}}" for c, w in zip(cols, width))]
    if task.freeze:         # training streams used until found perfect
        rows[0] += f" {'streams':>9}"
    def show(x, fmt):
        return "-" if x is None or np.isnan(x) else f"{x:{fmt}}"      # e.g. no evaluation yet
    for m in results["members"]:
        rows.append(f"{m['seed']:>4} {m['variant']:<8} "
                    + " ".join(f"{show(m[p][k], fmt):>{w}}" for (p, k, _, fmt), w in zip(cols, width))
                    + (f" {'-' if m.get('streams') is None else m['streams']:>9}" if task.freeze else ""))
    for v, s in summarize(results).items():
        # the perfect column counts networks; its mean row says how many, its std row nothing
        stat = {"mean": lambda x, k, fmt: f"{round(x * s['n'])}/{s['n']}" if k == "perfect" else show(x, fmt),
                "std": lambda x, k, fmt: "" if k == "perfect" else show(x, fmt)}
        for name in ("mean", "std") if s["n"] > 1 else ("mean",):
            rows.append(f"{name:>4} {v:<8} " + " ".join(f"{stat[name](s[p + '_' + k][name], k, fmt):>{w}}"
                                                        for (p, k, _, fmt), w in zip(cols, width)))
    return "\n".join(rows)


def report_markdown(doc):
    """Markdown tables of a results JSON: per seed, peephole beside vanilla, then mean and spread;
    for a run of the paper's tasks, the per-network table the run printed at its end."""
    cfg = config_from_dict(doc["config"])
    if TASKS[cfg.task].paper:
        return summary_table(cfg, doc)
    rows = {}
    for m in doc["members"]:
        rows.setdefault(m["seed"], {})[m["variant"]] = m
    variants = [v for v in VARIANTS if v in cfg.variants]
    cols = [("final", "test_mse", "final MSE", ".5f"), ("final", "solve", "final solve", ".3f"),
            ("tail", "test_mse", f"MSE last {cfg.tail_evals}", ".5f"),
            ("tail", "solve", f"solve last {cfg.tail_evals}", ".3f")]
    head = ["seed"] + [f"{title} {v}" for _, _, title, _ in cols for v in variants]
    table, lines = {(p, k, v): [] for p, k, _, _ in cols for v in variants}, []
    for seed in sorted(rows):
        cells = [str(seed)]
        for p, k, _, fmt in cols:
            for v in variants:
                x = rows[seed][v][p][k]
                table[p, k, v].append(x)
                cells.append(f"{x:{fmt}}")
        lines.append(cells)
    for name, fn in (("mean", np.mean), ("std", lambda a: np.std(a, ddof=1) if len(a) > 1 else 0.0),
                     ("min", np.min), ("max", np.max)):
        lines.append([f"**{name}**"] + [f"{fn(table[p, k, v]):{fmt}}" for p, k, _, fmt in cols for v in variants])
    out = [md_table(head, lines)]
    if variants == list(VARIANTS) and len(rows) > 1:
        paired = []
        for p, k, title, fmt in cols:
            diff = np.array(table[p, k, "peep"]) - np.array(table[p, k, "vanilla"])
            better = int(np.sum(diff < 0)) if k == "test_mse" else int(np.sum(diff > 0))
            paired.append([title, f"{diff.mean():+{fmt}}", f"{diff.std(ddof=1):{fmt}}", f"{better} of {len(diff)}"])
        out.append(md_table(["paired over seeds (peep - vanilla)", "mean difference", "std",
                             "seeds where peep is better"], paired))
    return "\n\n".join(out)


# ----------------------------------------------------------------------------
# Files, always written to a temporary file first and renamed into place.

def atomic_write(path, write):
    """Call write(f) on a temporary binary file next to path, then rename it to path."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)                 # mkstemp makes 0600 files; give the usual mode
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def check_output_path(path):
    """ValueError unless path names a file we could create (its folder may not exist yet)."""
    if os.path.isdir(path):
        raise ValueError(f"output path {path!r} is a directory; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    try:                                   # the only sure test is to create a file there
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
    except OSError as e:
        raise ValueError(f"output path {path!r} cannot be written: the folder {folder!r} takes no new files "
                         f"({e.strerror})")
    os.close(fd)
    os.unlink(probe)


TUPLES = ("seeds", "variants", "delays", "gate_biases")     # Config fields that JSON stores as lists


def config_dict(cfg):
    d = dataclasses.asdict(cfg)
    for k in TUPLES:
        d[k] = list(d[k])
    return d


def config_from_dict(d):
    if "paper_forget_bias" in d:        # files written before the gate biases were data
        d = {**{k: v for k, v in d.items() if k != "paper_forget_bias"},
             "gate_biases": [0.0, d["paper_forget_bias"], 2.0]}
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"config has unknown field(s) {', '.join(sorted(unknown))}: written by a newer version "
                         "of this program?")
    d = {k: tuple(v) if k in TUPLES else v for k, v in d.items()}
    cfg = Config(**d)
    cfg.validate()
    return cfg


def numpy_simd():
    """The SIMD targets numpy's vectorised loops (exp, tanh, ...) dispatch to on this CPU, e.g.
    X86_V3 (AVX2) or also X86_V4 (AVX-512): they round differently (NPY_DISABLE_CPU_FEATURES
    switches them off)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:                                 # numpy 1.x keeps them elsewhere
        try:
            from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
        except ImportError:
            return "unknown"
    return " ".join(k for k in __cpu_dispatch__ if __cpu_features__.get(k)) or "baseline only"


def blas_core():
    """The kernel OpenBLAS chose for this CPU at run time (e.g. Haswell, SkylakeX; its
    OPENBLAS_CORETYPE sets it), read from the library numpy loaded; 'unknown' elsewhere."""
    import ctypes
    import glob
    root = os.path.dirname(np.__file__)
    for lib in sorted(glob.glob(os.path.join(root, "..", "numpy.libs", "*openblas*"))
                      + glob.glob(os.path.join(root, ".dylibs", "*openblas*"))):
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename64_",
                     "openblas_get_corename"):
            f = getattr(handle, name, None)
            if f is not None:
                f.restype = ctypes.c_char_p
                return f().decode()
    return "unknown"


def environment():
    """Where a result was computed, stored beside it: training is chaotic, and the rounding of
    numpy's vectorised exp (by the SIMD code it dispatches to) and of BLAS (by the kernel
    OpenBLAS picks for the CPU) moves one seed's numbers from machine to machine. The CPU's
    name alone does not tell machines apart (one name covers several Xeon generations), so its
    family/model/stepping, numpy's SIMD targets and OpenBLAS's kernel are recorded too."""
    cpu, ident = platform.processor() or "unknown", {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model", "stepping") and key not in ident:
                    ident[key] = value.strip()
                if not line.strip() and ident:        # the first processor is enough
                    break
        cpu = ident.get("model name", cpu)
    except OSError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')} ({blas.get('openblas configuration', '').strip()})"
    except (TypeError, KeyError, AttributeError):       # numpy without the dict form
        blas = "unknown"
    return {"python": platform.python_version(), "numpy": np.__version__, "blas": blas, "cpu": cpu,
            "cpu_id": "/".join(ident.get(k, "?") for k in ("cpu family", "model", "stepping")),
            "numpy_simd": numpy_simd(), "blas_core": blas_core(), "machine": platform.machine(),
            "cpus": os.cpu_count()}


def machine_line(env=None):
    """environment() (or a recorded one) as the one line a run prints at its end, beside its numbers."""
    env = env or environment()
    if "numpy_simd" not in env:               # recorded before the SIMD code and kernel were
        return f"machine: {env.get('cpu', 'CPU not recorded')}, {env['cpus']} cpus, numpy {env['numpy']}"
    return (f"machine: {env['cpu']} (family/model/stepping {env['cpu_id']}), {env['cpus']} cpus, numpy "
            f"{env['numpy']} (SIMD {env['numpy_simd']}), BLAS {env['blas']}, kernel {env['blas_core']}")


def what_is_wrong(e):
    """An error met reading a file, in words for its one line (never a Python class name)."""
    if isinstance(e, OSError):
        return e.strerror or str(e)
    if isinstance(e, KeyError):
        return f"it has no entry {e.args[0]!r}"
    if isinstance(e, (zipfile.BadZipFile, EOFError)):
        return "it is cut short, or not an .npz archive"
    if isinstance(e, json.JSONDecodeError):
        return f"it is not valid JSON (line {e.lineno})"
    if "allow_pickle" in str(e):              # numpy took it for a pickle: neither .npz nor .npy
        return "it is not an .npz archive"
    return "its contents are not laid out as this program writes them"


def read_json(path):
    """The JSON in path; ValueError with one line naming the file if it cannot be read or parsed."""
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise ValueError(f"cannot read {path!r} ({e.strerror or e})")
    except ValueError:
        raise ValueError(f"{path!r} is not JSON")


JSON_KIND = {list: "list", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def read_table_run(prefix):
    """PREFIX.json + PREFIX.npz of a --table --json --save run -> (doc, each row's weights)."""
    try:
        doc = read_json(prefix + ".json")
        return doc, load_table_params(prefix + ".npz", doc)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"cannot read the table run {prefix!r} (.json + .npz from --table --json --save): {e}")


def write_json(path, doc):
    atomic_write(path, lambda f: f.write((json.dumps(doc, indent=1) + "\n").encode()))


def save_json(path, cfg, results):
    members = [{k: v for k, v in m.items() if k != "snapshots"} for m in results["members"]]
    write_json(path, {"config": config_dict(cfg), "members": members, "summary": summarize(results),
                      "seconds": results["seconds"], "env": environment()})


HERE = os.path.dirname(os.path.abspath(__file__))      # the repository, whose results/ holds the committed blocks


def headline_block(cfg, results, folder=os.path.join(HERE, "results")):
    """The one line that says which committed block of headline numbers this machine should
    reproduce and whether it did, or None if cfg is not the headline run. Which block is
    decided by numpy's version, the SIMD code its vectorised exp dispatches to and OpenBLAS's
    kernel, not by the CPU's vendor or name."""
    if config_dict(cfg) != config_dict(Config()):
        return None
    env = environment()
    key = lambda e: (e.get("numpy"), e.get("numpy_simd"), e.get("blas_core"))
    where = f"numpy {env['numpy']}, SIMD {env['numpy_simd']}, OpenBLAS kernel {env['blas_core']}"
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if not (name.startswith("headline") and name.endswith(".json")):
            continue
        try:
            doc = read_json(os.path.join(folder, name))
            if key(doc["env"]) != key(env) or config_dict(config_from_dict(doc["config"])) != config_dict(cfg):
                continue
            theirs = [(m["seed"], m["variant"], m["final"]) for m in doc["members"]]
        except (ValueError, KeyError, TypeError):
            continue
        ours = [(m["seed"], m["variant"], m["final"]) for m in results["members"]]
        return (f"committed block for {where}: results/{name}; "
                + ("reproduced bit for bit" if ours == theirs else "NOT reproduced (the final metrics differ)"))
    return (f"no committed block was made with {where}: expect other numbers for seed 4, within the spread "
            "of the 30-seed sweep (docs/msd.md)")


def save_checkpoint(path, cfg, P, members):
    meta = json.dumps({"config": config_dict(cfg), "members": [list(m) for m in members]})
    atomic_write(path, lambda f: np.savez(f, meta=np.array(meta), **P))


def npz_kind(path):
    """What an .npz this program writes holds, and which flag reads it, judged by its arrays
    (for the error when another flag is given it); None if it is none of them."""
    try:
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if "st_theta" in names:
        return "an online run's checkpoint (written by --checkpoint; --resume continues it)"
    if "row0_Wx" in names:
        return ("a table's weights (written by --table --save; --confirm PREFIX and the figure script's "
                "--from-table PREFIX read it with its .json)")
    if "meta" in names and set(PARAMS) <= names:
        return "a run's weights (written by --save; --load reads it)"
    return None


def not_npz(path, what, e):
    """The one-line error for a file that is not `what` or is damaged (naming what it is, if it
    is another file of this program's), e the exception that found it out."""
    kind = npz_kind(path)
    return ValueError(f"{path!r} is {kind}, not {what}" if kind else
                      f"{path!r} is not {what}, or it is damaged ({what_is_wrong(e)})")


def read_npz(path, name, what, read):
    """read(z) of the .npz at path, read without pickles; ValueError with one line if the file
    cannot be read (naming it as `name`) or is not `what` (read failed on it)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return read(z)
    except OSError as e:
        raise ValueError(f"cannot read {name} {path!r} ({e.strerror or e})") from None
    except (KeyError, TypeError, ValueError, AttributeError, EOFError, zipfile.BadZipFile) as e:
        raise not_npz(path, what, e) from None      # ValueError: also numpy's for a file that is no archive


def load_checkpoint(path):
    """-> (cfg, P, members). ValueError with one clear line if the file is unusable."""
    meta, P = read_npz(path, "the checkpoint", "a checkpoint written by --save",
                       lambda z: (json.loads(str(z["meta"])), {k: z[k].astype(np.float64) for k in PARAMS}))
    cfg = config_from_dict(meta["config"])
    members = [tuple(m) for m in meta["members"]]
    M, H, n_in = len(members), cfg.hidden, TASKS[cfg.task].n_in
    want = {"Wx": (M, n_in, 4 * H), "Wh": (M, H, 4 * H), "b": (M, 4 * H), "Wy": (M, H, 1), "by": (M, 1),
            "p_i": (M, H), "p_f": (M, H), "p_o": (M, H)}
    for k, shape in want.items():
        if P[k].shape != shape:
            raise ValueError(f"checkpoint {path!r}: {k} has shape {P[k].shape}, config says {shape}")
    if members != members_of(cfg):
        raise ValueError(f"checkpoint {path!r}: members {members} do not match its config")
    return cfg, P, members


# ----------------------------------------------------------------------------
# Documents. Every table of README.md and docs/, and every number in their prose, sits between
# markers that name what it is generated from:
#     <!-- gen: report results/table1.json -->  (a block: the lines up to <!-- /gen -->)
#     the median is <!-- gen: median results/online_tablegts.json 1 peep -->38.6k<!-- /gen --> streams
# `--docs` writes them anew from the committed results files; a test fails when a committed
# document differs from what it generates now, so no number drifts from its file.

DOCS = ("README.md", "docs")            # the documents with generated parts (a folder: its .md files)
GEN_MARK = re.compile(r"<!-- gen: (.*?) -->(.*?)<!-- /gen -->", re.S)


def _doc(path):
    return read_json(os.path.join(HERE, path))


def _row(path, row):
    return _doc(path)["rows"][int(row) - 1]


NAMES = {"peep": "peephole", "vanilla": "vanilla"}


def _k(x):
    """Streams in thousands: '38.6k'."""
    return f"{plain(x / 1e3)}k"


def gen_report(path, compare=None):
    return report_any(_doc(path), compare and _doc(compare))


def gen_text(path, lines=None):
    """A text results file (or its lines A-B) as a code block."""
    with open(os.path.join(HERE, path)) as f:
        text = f.read().splitlines()
    if lines:
        a, b = (int(v) for v in lines.split("-"))
        text = text[a - 1:b]
    return "\n".join(["```text"] + text + ["```"])


def gen_headline_blocks():
    """The committed headline runs, one per numpy SIMD code and OpenBLAS kernel they were made with."""
    lines = []
    for name in sorted(os.listdir(os.path.join(HERE, "results"))):
        if name.startswith("headline") and name.endswith(".json"):
            doc = _doc(os.path.join("results", name))
            if "numpy_simd" not in doc["env"]:
                continue
            f = {m["variant"]: m["final"] for m in doc["members"]}
            lines.append([doc["env"]["numpy"], doc["env"]["numpy_simd"], doc["env"]["blas_core"]]
                         + [f"{f[v]['test_mse']:.5f} / {f[v]['solve']:.3f}" for v in VARIANTS] + [f"`results/{name}`"])
    return md_table(["numpy", "SIMD code numpy dispatches to", "OpenBLAS kernel", "peephole MSE / solve",
                     "vanilla MSE / solve", "file"], lines)


def gen_counts(*columns):
    """Perfect networks per row (peephole / vanilla, of n each) of several table runs side by
    side: columns 'TITLE=FILE', the rows matched by label."""
    pairs = [c.split("=", 1) for c in columns]
    docs = [(title.replace("_", " "), _doc(path)) for title, path in pairs]
    labels = list(dict.fromkeys(r["label"] for _, d in docs for r in d["rows"]))
    lines = []
    for label in labels:
        cells = [label]
        for _, d in docs:
            r = next((r for r in d["rows"] if r["label"] == label), None)
            if r is None:
                cells.append("")
                continue
            div = sum(r["ours"][v].get("diverged") or 0 for v in r["ours"])
            n = {r["ours"][v]["n"] for v in r["ours"]}
            cells.append(" / ".join(str(r["ours"][v]["perfect"]) for v in VARIANTS if v in r["ours"])
                         + (f" of {n.pop()}" if len(n) == 1 else "") + (f" ({div} diverged)" if div else ""))
        lines.append(cells)
    return md_table(["row"] + [t for t, _ in docs], lines)


def gen_map(path):
    return map_markdown(_doc(path))


def _perfect(s):
    """A variant's perfect networks in a row's summary: '27/30'."""
    return f"{s['perfect']}/{s['n']}"


def _median(s):
    """A variant's median streams to perfect in a row's summary: '38.6k', or '-' with none perfect."""
    q = s.get("streams_quartiles")
    return "-" if q is None else _k(q[1])


def gen_perfect(path, row, variant):
    return _perfect(_row(path, row)["ours"][variant])


def gen_total(path, variant, rows=None):
    """Perfect networks of a variant over a results file's rows (all, or 1-based 'A-B' / 'A,B'): 'k of n'."""
    pick = None if rows is None else {int(r) for r in parse_seeds(rows)}
    ss = [r["ours"][variant] for k, r in enumerate(_doc(path)["rows"], 1) if pick is None or k in pick]
    return f"{sum(s['perfect'] for s in ss)} of {sum(s['n'] for s in ss)}"


def gen_median(path, row, variant):
    return _median(_row(path, row)["ours"][variant])


def gen_mean(path, row, variant):
    s = _row(path, row)["ours"][variant]
    return "-" if s["streams_mean"] is None else f"{_mean_std(s, 'streams', 1e3, '.1f')}k"


def gen_paired(path, row):
    t = paired_test(_row(path, row)["members"])
    return f"{t['peep_only']} / {t['vanilla_only']} seeds, McNemar p = {t['mcnemar_p']:.2g}"


def gen_ran(path, row, variant=None):
    """The training streams the networks of a row (or of every row: 'all'), of a variant or
    both, ran without learning: '448-459k'."""
    rows = _doc(path)["rows"] if row == "all" else [_row(path, row)]
    return _k_range([m["streams_run"] for r in rows for m in r["members"] if m["streams"] is None
                     and (variant is None or m["variant"] == variant)])


def _k_range(counts):
    """Streams from fewest to most, in thousands: '448-459k', or '241k' if they round alike; '-' if none."""
    if not counts:
        return "-"
    a, b = plain(min(counts) / 1e3), plain(max(counts) / 1e3)
    return f"{a}k" if a == b else f"{a}-{b}k"


def gen_msd(path, part, key, variant, stat="median"):
    """A statistic over seeds of an MSD sweep's final or tail metric: median, mean, min, max."""
    a = [m[part][key] for m in _doc(path)["members"] if m["variant"] == variant]
    return f"{getattr(np, stat)(a):.3f}"


def gen_msd_paired(path, part, key):
    """Peephole minus vanilla over the seeds of an MSD sweep: 'mean ± standard error, peephole
    better on k of n seeds'."""
    ms = {(m["seed"], m["variant"]): m[part][key] for m in _doc(path)["members"]}
    seeds = sorted({s for s, _ in ms})
    d = np.array([ms[s, "peep"] - ms[s, "vanilla"] for s in seeds])
    fmt = ".5f" if key == "test_mse" else ".3f"
    better = int(np.sum(d < 0 if key == "test_mse" else d > 0))
    return (f"{d.mean():+{fmt}} ± {d.std(ddof=1) / np.sqrt(len(d)):{fmt}} s.e., peephole better on "
            f"{better} of {len(d)} seeds")


def gen_msd_below(path, part, key, variant, bound):
    """How many seeds of an MSD sweep have a metric below a bound: 'k of n'."""
    a = [m[part][key] for m in _doc(path)["members"] if m["variant"] == variant]
    return f"{sum(x < float(bound) for x in a)} of {len(a)}"


def gen_at(path, variant, it, key):
    """A metric of a run's member (seed's variant) at one evaluation of its history."""
    h = next(m["history"] for m in _doc(path)["members"] if m["variant"] == variant)
    return f"{h[key][h['iter'].index(int(it))]:.3f}"


def gen_grep(path, pattern):
    """The first group of the first match of a regular expression (no spaces: write \\s) in a text file."""
    with open(os.path.join(HERE, path)) as f:
        m = re.search(pattern, f.read())
    if m is None:
        raise ValueError(f"{pattern!r} is not in {path}")
    return m.group(1)


def gen_readings(*paths):
    """Runs of the same rows from several starts (gate biases), side by side: per row and start,
    the perfect networks peephole, vanilla (their median streams)."""
    cells, starts = {}, []
    for path in paths:
        for r in _doc(path)["rows"]:
            start = start_of(r)
            starts += [start] if start not in starts else []
            ours = r["ours"]
            text = ", ".join(_perfect(ours[v]) for v in VARIANTS)
            medians = [_median(ours[v]) for v in VARIANTS if ours[v]["perfect"]]
            key = f"{r['label']}, {r['config']['readout']} output (paper: " \
                + " / ".join(f"{r['paper'][v][0]} %, {r['paper'][v][1]}" for v in VARIANTS) + ")"
            cells.setdefault(key, {})[start] = text + (f" ({', '.join(medians)})" if medians else "")
    return md_table(["row (paper: peephole / vanilla, streams [10^3])"] + [start_text(s) for s in starts],
                    [[key] + [row.get(s, "") for s in starts] for key, row in cells.items()])


def gen_weights(prefix):
    """Per row of a table run's saved weights: the output unit's mean bias, the range of the
    forget-gate biases and the largest output weight over its networks (one cell per network)."""
    doc, params = read_table_run(os.path.join(HERE, prefix))
    lines = []
    for r, P in zip(doc["rows"], params):
        fb, F = gate(P["b"], F_, 1)[:, 0], r["config"]["F"]
        lines.append([r["label"], f"{P['by'].mean():.2f}", f"{math.log(1 / (F - 1)):.2f}",
                      f"{fb.min():.2f} to {fb.max():.2f}", f"{np.abs(P['Wy']).max():.2f}"])
    return md_table(["row", "mean output bias", "logit(1/F)", "forget-gate biases", "largest abs(W_y)"], lines)


def gen_times(*paths):
    """The wall clock of each command in times files ('12.3 s: command' or 'name 12.3 command')."""
    lines = []
    for path in paths:
        with open(os.path.join(HERE, path)) as f:
            for line in filter(str.strip, f):
                m = re.match(r"(?:\S+ )?([0-9.]+)(?: s:)? (.*)", line.strip())
                lines.append([f"`{m.group(2)}`", f"{float(m.group(1)):.1f} s"])
    return md_table(["command", "wall clock"], lines)


def _bench_runs(path, cases=None):
    """A benchmark file's (bench/benchmark.py) runs: per online case (networks, case) and engine
    (this, against) each run's (fastest M net-steps/s, calls per step, speed-up or None); per batch
    case each run's ms per model-iteration. With `cases`, a regular expression, only the online
    cases whose "networks case" it finds."""
    with open(os.path.join(HERE, path)) as f:
        lines = f.read().splitlines()
    online, batch = {}, {}
    for line in lines:
        m = re.match(r"(this|against)\s+(\d+) (.+?)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)(?:\s+([0-9.]+)x)?$",
                     line)
        if m and (cases is None or re.search(cases, f"{m.group(2)} {m.group(3).strip()}")):
            engine, width, case = m.group(1), int(m.group(2)), m.group(3).strip()
            online.setdefault((width, case), {}).setdefault(engine, []).append(
                (float(m.group(5)), float(m.group(7)), m.group(8)))
        m = re.match(r"(1 model, peep|14 models \(7 seeds x 2\), [12] process(?:es)?)\s+([0-9.]+)\s+([0-9.]+)"
                     r"\s+([0-9.]+)$", line)
        if m:
            batch.setdefault(m.group(1), []).append(m.group(3))
    return online, batch


def gen_bench(path, cases=None):
    """The online cases of every benchmark run in a benchmark file, side by side (_bench_runs): per case the
    numpy calls per step of this engine and of the one it ran against, then per run the fastest
    M network-steps/s of each and the speed-up; then the batch engine's ms per iteration (not
    with `cases`, which selects online cases)."""
    online, batch = _bench_runs(path, cases)
    lines = []
    for (width, case), runs in online.items():
        now, before = runs["this"], runs.get("against", [])
        lines.append([width, case, (f"{before[0][1]:.0f} → " if before else "") + f"{now[0][1]:.0f}",
                      ", ".join(f"{r[0]:.2f}" for r in before) or "-", ", ".join(f"{r[0]:.2f}" for r in now),
                      ", ".join(r[2] + "x" for r in before if r[2]) or "-"])
    return md_table(["networks", "case", "numpy calls per step, before → now", "M net-steps/s before (fastest, each run)",
                     "M net-steps/s now", "speed-up"], lines) + ("" if not batch or cases else "\n\n" + md_table(
        ["batch engine", "ms per model-iteration, each run"], [[name, ", ".join(v)] for name, v in batch.items()]))


def _bench_case(path, cases):
    """The runs of the one benchmark case a regular expression (no spaces: write \\s) finds (_bench_runs)."""
    online, _ = _bench_runs(path, cases)
    if len(online) != 1:
        raise ValueError(f"{cases!r} finds {len(online)} cases in {path}, not one")
    return next(iter(online.values()))


def gen_speedups(path, cases):
    """Each run's speed-up of one benchmark case (_bench_case)."""
    return ", ".join(r[2] + "x" for r in _bench_case(path, cases).get("against", []) if r[2])


def gen_ceiling(path, steady, start):
    """Each run's speed-up from the start of training were a stream's end free: this engine's
    network-steps/s with no stream ending (the case `steady` finds) over the other engine's from
    the start (the case `start` finds)."""
    now, before = _bench_case(path, steady)["this"], _bench_case(path, start)["against"]
    return ", ".join(f"{a[0] / b[0]:.2f}x" for a, b in zip(now, before))


def gen_floor(path, label):
    """Each run's bound on the speed-up (bench/benchmark.py --floor) of the case whose label the
    regular expression `label` (no spaces: write \\s) finds: the other engine's speed over this
    engine's step with only zeroing and settle."""
    with open(os.path.join(HERE, path)) as f:
        runs = re.findall(r"^floor of a stream's end: (.*?), \d+ networks.*\n(?:  .*\n)*floor: .*?: ([0-9.]+)x the other",
                          f.read(), re.M)
    found = [x for case, x in runs if re.search(label, case)]
    if not found:
        raise ValueError(f"{path} holds no floor of bench/benchmark.py --floor whose case {label!r} finds")
    return ", ".join(x + "x" for x in found)


def gen_remaining(*paths):
    """What every row short of its budget still needs: its unfinished networks, the fewest
    streams one of them ran, the budget, and the core-hours the rest would take at the run's speed."""
    lines, total = [], 0.0
    for path in paths:
        doc = _doc(path)
        for r in doc["rows"]:
            left = r["reached"]
            if left["unfinished"]:
                total += left["rest_core_hours"]
                lines.append([doc["table"], r["label"], left["unfinished"], plain(left["fewest_streams"] / 1e3),
                              plain(left["budget"] / 1e3), plain(left["rest_core_hours"])])
    return md_table(["table", "row", "unfinished networks", "fewest streams run [10^3]", "budget [10^3]",
                     "core-hours more"], lines + [["all", "", "", "", "", plain(total)]])


def gen_runs(*columns):
    """Runs of one row under different settings, a line each ('TITLE=FILE', or 'TITLE=FILE#N' for
    the row numbered N alone; _ for a space): per variant the perfect networks (median streams to
    perfect), how many of them ran free for the whole long run, and the streams the others ran."""
    lines = []
    for title, path in (c.split("=", 1) for c in columns):
        path, _, number = path.partition("#")
        for r in [r for r in _doc(path)["rows"] if not number or r["row"] == int(number)]:
            ours = r["ours"]
            cells = [_perfect(ours[v]) + (f" ({_median(ours[v])})" if ours[v]["perfect"] else "") for v in VARIANTS]
            held = " / ".join(f"{ours[v]['long_held']}" for v in VARIANTS)
            lost = [m["streams_run"] for m in r["members"] if m["streams"] is None]
            lines.append([title.replace("_", " "), r["label"]] + cells + [held, _k_range(lost)])
    return md_table(["setting", "row"] + [f"{NAMES[v]} perfect (median streams)" for v in VARIANTS]
                    + ["perfect and still correct at 10^5 periods", "not learned within"], lines)


def _maps(paths):
    """Map results files joined by commas, as one (their rows together)."""
    return {"rows": [r for p in paths.split(",") for r in _doc(p)["rows"]]}


def gen_best(paths, family=None):
    """The start the rule ranks first in map results files (joined by commas), over every row or
    one task family's rows."""
    rows = [r for r in _maps(paths)["rows"] if family in (None, TASKS[r["config"]["task"]].family)]
    return start_text(start_scores({"rows": rows})[0]["start"])


def gen_score(paths):
    """How many rows the rule's first start reproduces: '5 of 11'."""
    best = start_scores(_maps(paths))[0]
    return f"{len(best['reproduced'])} of {best['rows']}"


def gen_starts(path, row):
    """Of a map's starts, from how many each variant made a row's networks perfect at least once,
    and from how many both: 'peephole 12, vanilla 14, both 11 of 29 starts'."""
    cells = map_cells(_doc(path))
    label = next(k for k in cells if k.endswith(row.replace("_", " ")))
    won = {s: {v: r["ours"][v]["perfect"] > 0 for v in VARIANTS} for s, r in cells[label].items()}
    return (f"peephole {sum(w['peep'] for w in won.values())}, vanilla {sum(w['vanilla'] for w in won.values())}, "
            f"both {sum(all(w.values()) for w in won.values())} of {len(won)} starts")


# The rows the paper's claims about peepholes rest on (run on seeds 0-29), with the claim each tests.
CLAIM_ROWS = (("GTS needs peepholes (100 % / never)", "gts", 1), ("", "gts", 2),
              ("f_tri and f_rect need peepholes (100 % / 0 %, 80 % / 0 %)", "3", 3), ("", "3", 5),
              ("no peephole advantage on NMSD and MSD", "1", 1), ("", "1", 7),
              ("without forget gates GTS is never learned (never / never)", "gtsnf", 1), ("", "gtsnf", 2),
              ("", "gtsnf", 3),
              ("without forget gates PFG never runs more than two periods (never / never)", "3nf", 1),
              ("", "3nf", 2), ("", "3nf", 3))


def gen_claims(*columns):
    """The claims rows from the online tables of several starts: 'TITLE=PREFIX' each (PREFIX +
    'online_table{t}.json' the files; _ for a space). The first start in full: per row its
    perfect networks, the paired test (marked short if the row is) and the median streams to
    perfect against the paper's mean; the others' perfect counts beside it."""
    starts = [(title.replace("_", " "), prefix) for title, prefix in (c.split("=", 1) for c in columns)]
    lines = []
    for claim, table, row in CLAIM_ROWS:
        rows = [_row(f"{prefix}online_table{table}.json", row) for _, prefix in starts]
        r = rows[0]
        medians = " / ".join(_median(r["ours"][v]) for v in VARIANTS)
        paper = r["paper"]["peep"][1]
        lines.append([claim, r["label"] + ("" if r["config"]["forget"] else ", no forget gate")]
                     + [_perfect(r["ours"][v]) for v in VARIANTS]
                     + [paired_text(r), f"{medians} (paper: {paper}{'k' * paper[0].isdigit()})"]
                     + [" / ".join(_perfect(o["ours"][v]) for v in VARIANTS) for o in rows[1:]])
    return md_table(["claim (the paper)", "row", f"peephole perfect ({starts[0][0]})", "vanilla perfect",
                     "only peep / only vanilla perfect: McNemar p (paired)",
                     "median streams to perfect, peephole / vanilla (paper: peephole)"]
                    + [f"{title}: peephole / vanilla perfect" for title, _ in starts[1:]], lines)


def gen_ratios(path, rows):
    """The range of a file's rows' (1-based 'A-B') peephole median streams to perfect over the
    paper's mean: '0.25-0.71'."""
    ratios = [reproduces(_row(path, k))[2] for k in parse_seeds(rows)]
    ratios = [r for r in ratios if r is not None]
    return f"{min(ratios):.2g}-{max(ratios):.2g}"


def gen_clock(path):
    """An online run's size and wall clock: '6,380 networks in 93 min on 2 processes'."""
    doc = _doc(path)
    n = sum(s["n"] for r in doc["rows"] for s in r["ours"].values())
    workers = doc.get("workers", 1)
    return f"{n:,} networks in {doc['seconds'] / 60:.0f} min on {workers} process{'es' * (workers != 1)}"


def gen_budget(path, row):
    return _k(_row(path, row)["config"]["budget"])


GENERATORS = {"report": gen_report, "text": gen_text, "headline-blocks": gen_headline_blocks,
              "counts": gen_counts, "map": gen_map, "perfect": gen_perfect, "median": gen_median,
              "mean": gen_mean, "paired": gen_paired, "ran": gen_ran, "msd": gen_msd,
              "msd-paired": gen_msd_paired, "msd-below": gen_msd_below, "at": gen_at, "grep": gen_grep, "total": gen_total,
              "readings": gen_readings, "weights": gen_weights, "times": gen_times, "bench": gen_bench,
              "speedups": gen_speedups, "ceiling": gen_ceiling, "floor": gen_floor,
              "remaining": gen_remaining, "runs": gen_runs, "best": gen_best, "score": gen_score, "starts": gen_starts,
              "footer": lambda path: online_footer(_doc(path)),
              "scores": lambda paths, first=None: scores_markdown(start_scores(_maps(paths))[:first and int(first)]),
              "budget": gen_budget, "clock": gen_clock, "claims": gen_claims,
              "ratios": gen_ratios}


def render_doc(text, where="a document"):
    """A document with every generated part written anew; ValueError naming a bad marker."""
    def fill(m):
        spec, old = m.group(1).split(), m.group(2)
        if not spec or spec[0] not in GENERATORS:
            raise ValueError(f"{where}: unknown generator in <!-- gen: {m.group(1)} -->; "
                             f"known: {', '.join(GENERATORS)}")
        try:
            new = GENERATORS[spec[0]](*spec[1:])
        except (ValueError, KeyError, TypeError, IndexError, OSError) as e:
            why = e if isinstance(e, ValueError) else what_is_wrong(e)
            raise ValueError(f"{where}: <!-- gen: {m.group(1)} --> failed ({why})")
        block = old.startswith("\n")
        return f"<!-- gen: {m.group(1)} -->" + (f"\n{new}\n" if block else new) + "<!-- /gen -->"
    return GEN_MARK.sub(fill, text)


def doc_paths():
    """README.md and docs/*.md, as paths inside the repository."""
    out = []
    for p in DOCS:
        full = os.path.join(HERE, p)
        out += [os.path.join(p, n) for n in sorted(os.listdir(full)) if n.endswith(".md")] if os.path.isdir(full) \
            else [p] if os.path.exists(full) else []
    return out


def write_docs(log=print):
    """Regenerate every document's generated parts from results/; returns the documents changed."""
    changed = []
    for path in doc_paths():
        with open(os.path.join(HERE, path)) as f:
            text = f.read()
        new = render_doc(text, path)
        if new != text:
            atomic_write(os.path.join(HERE, path), lambda f, new=new: f.write(new.encode()))
            changed.append(path)
            log(f"rewrote {path}")
    if not changed:
        log("every document is as its results files say")
    return changed


# ----------------------------------------------------------------------------
# Gradient check: analytic BPTT against float64 central differences.

GRADCHECK_TOL = 1e-6     # max over elements of |analytic - numeric| / (|analytic| + |numeric|)


GRADCHECK_TASKS = {"msd": dict(T=20, D_min=3, D_max=6),            # small versions of every task
                   "nmsd": dict(F=5, delays=(0, 1, 2)),
                   "cmsd": dict(F=4, delays=(0, 1, 2), periods=3),
                   "gts": dict(F=4, delays=(0, 1, 2), periods=3),
                   "pfg": dict(F=5, func="tri", periods=3)}


def gradcheck(eps=1e-4, log=print):
    """Check every parameter of both variants on every task (with its target mask), for
    both cells: the modern one with a linear readout, the paper's with the paper's output
    unit (sigmoid; linear for PFG). Returns the worst error. eps = 1e-4 balances the
    central difference's eps^2 truncation error against the 1/eps rounding error, which
    dominates on the tiny gradient elements behind a saturated sigmoid output."""
    worst = 0.0
    for kind in CELLS:
        for task, kw in GRADCHECK_TASKS.items():
            # the paper cell with the paper's output unit for the task (MSD has none: sigmoid)
            readout = getattr(TASKS[task], "readout", "sigmoid") if kind == "paper" else "linear"
            cell = Cell(kind, readout)
            cfg = Config(task=task, hidden=3, batch=4, cell=kind, readout=readout, **kw)
            for variant in VARIANTS:
                P = stack([init_member(cfg, 0, variant)])
                # move every tensor off its special init (zero biases, zero vanilla peepholes) a little
                r = np.random.default_rng(123)
                for k in P:
                    if k in SHARED or variant == "peep":
                        P[k] += 0.3 * r.standard_normal(P[k].shape)
                batch = TASKS[task].sample(cfg, rng_for(0, STREAM_TRAIN), cfg.batch)
                x, d = batch.x[:, :, None], batch.d[:, None]
                mask = None if batch.mask is None else batch.mask[:, None]
                peep = np.array([variant == "peep"])

                def loss(): return loss_and_grads(P, x, d, peep, cell=cell, mask=mask)[0][0]
                _, grads, _ = loss_and_grads(P, x, d, peep, cell=cell, mask=mask)
                errs = []
                for k in (PARAMS if variant == "peep" else SHARED):
                    if P[k].size == 0:            # PFG has no input weights
                        continue
                    num = np.zeros_like(P[k])
                    for idx in np.ndindex(P[k].shape):
                        old = P[k][idx]
                        P[k][idx] = old + eps
                        lp = loss()
                        P[k][idx] = old - eps
                        lm = loss()
                        P[k][idx] = old
                        num[idx] = (lp - lm) / (2 * eps)
                    rel = np.max(np.abs(grads[k] - num) / np.maximum(np.abs(grads[k]) + np.abs(num), 1e-8))
                    worst = max(worst, rel)
                    errs.append(f"{k} {rel:.1e}")
                log(f"{task:<5} {cell.kind:>6} cell {cell.readout:>7} {variant:<8} max rel err:  "
                    + "  ".join(errs))
                if variant == "vanilla":
                    assert all(np.all(grads[k] == 0) for k in PEEPS), "vanilla peephole gradient must be zero"
    log(f"worst relative error {worst:.2e} (tolerance {GRADCHECK_TOL:.0e}): "
        + ("PASS" if worst <= GRADCHECK_TOL else "FAIL"))
    return worst


# ----------------------------------------------------------------------------
# Command line.

class Parser(argparse.ArgumentParser):
    """argparse with every user error on one line (the usage block is long) and a pointer to --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_seeds(text):
    """'4', '0-6' or '0,3,5' -> tuple of seeds."""
    try:
        out = []
        for part in text.split(","):
            if "-" in part:
                a, b = (int(v) for v in part.split("-"))
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        if not out or min(out) < 0:
            raise ValueError
        return tuple(out)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed list; use e.g. 4, 0-6 or 0,3,5 "
                                         "(integers >= 0)")


def _number(kind, low, strict):
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}")
        if not np.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if v <= low if strict else v < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be {'>' if strict else '>='} {low}")
        return v
    return parse


positive_int, nonneg_int, positive_float = _number(int, 0, True), _number(int, 0, False), _number(float, 0, True)


def parse_floats(n):
    """A parser of n comma-separated finite numbers -> tuple of floats."""
    def parse(text):
        try:
            v = tuple(float(t) for t in text.split(","))
        except ValueError:
            v = ()
        if len(v) != n or not all(np.isfinite(v)):
            raise argparse.ArgumentTypeError(f"{text!r} is not {n} comma-separated finite numbers")
        return v
    return parse


def parse_shard(text):
    """'K/N' -> (K, N), 1 <= K <= N."""
    try:
        k, n = (int(v) for v in text.split("/"))
        if not 1 <= k <= n:
            raise ValueError
        return k, n
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shard K/N with 1 <= K <= N, e.g. 2/8")


def parse_ints(text):
    """'0,1', '0-2' or '4' -> tuple of integers >= 0 (the delay set)."""
    try:
        return parse_seeds(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers >= 0; use e.g. 0,1 or 0-2")


# Config fields the command line can set, with their flags' help. Every flag defaults
# to None: unset values come from the task's defaults (task_defaults), so that
# --task pfg alone runs the recipe of the paper's tables.
def paper_tasks(fact):
    """'nmsd 16, cmsd 8, gts 4, pfg 1': one fact of every paper task, for a flag's help."""
    return ", ".join(f"{name} {getattr(task, fact)}" for name, task in TASKS.items() if task is not MSD)


FLAGS = [
    ("task", dict(choices=list(TASKS), help="msd: the earlier reproduction's MSD variant (default); "
                  "nmsd, cmsd (continual MSD), gts, pfg: the paper's tasks, with the recipe of its tables")),
    ("F", dict(type=positive_int, help="paper tasks: shortest spike interval, or the PFG period (default {d})")),
    ("delays", dict(type=parse_ints, metavar="LIST", help="paper spike tasks: the delay set I(n), e.g. 0,1 or "
                    "0-2 (default {d})")),
    ("func", dict(choices=list(PFG.FUNCS), help="PFG target function (default {d})")),
    ("periods", dict(type=positive_int, help="paper tasks: periods per training stream (default {d}; online: "
                     f"at most {ONLINE_RECIPE['periods']}, NMSD 1)")),
    ("test_streams", dict(type=positive_int, help="paper tasks: free-running test streams per seed (default {d})")),
    ("test_periods", dict(type=positive_int, help="paper tasks: periods that make a test stream perfect "
                          "(default {d})")),
    ("stop_on_error", dict(choices=("yes", "no"), help="paper tasks: end each training stream at its first "
                           "wrong prediction, as the paper does (default {d})")),
    ("T", dict(type=positive_int, help="msd: sequence length (default {d})")),
    ("D_min", dict(type=positive_int, help="msd: shortest spike gap D (default {d})")),
    ("D_max", dict(type=positive_int, help="msd: longest spike gap D; needs 2*D_max < T (default {d})")),
    ("hidden", dict(type=positive_int, help="LSTM cells H (default {d}; paper tasks {r})")),
    ("iters", dict(type=nonneg_int, help="training iterations, one batch each (default {d}; paper tasks {r})")),
    ("batch", dict(type=positive_int, help="sequences per training batch (default {d}; paper tasks: "
                   + paper_tasks("batch") + ")")),
    ("lr", dict(type=positive_float, help="Adam learning rate (default {d}; paper tasks {r})")),
    ("lr_halve_every", dict(type=positive_int, help="halve the learning rate every N iterations (default {d}; "
                            "paper tasks: never)")),
    ("clip", dict(type=positive_float, help="per-model global gradient-norm clip (default {d})")),
    ("eval_every", dict(type=positive_int, help="evaluate on the test set every N iterations (default {d})")),
    ("n_test", dict(type=positive_int, help="msd: held-out test sequences per seed (default {d})")),
    ("cell", dict(choices=CELLS, help="modern: tanh cell input and output (default); paper: identity input "
                  "squashing, no output squashing, the paper's initialisation (its Section 4.1)")),
    ("readout", dict(choices=READOUTS, help="output unit (default {d}; paper tasks, as the paper: "
                     + paper_tasks("readout") + ")")),
    ("grad", dict(choices=GRADS, help="bptt: the full gradient (default); truncated: the paper's error "
                  "truncation (not a true gradient, so --gradcheck does not apply to it)")),
    ("tol", dict(type=nonneg_int, help="msd: also report the solve rate within +-TOL steps (default {d})")),
    ("gate_biases", dict(type=parse_floats(3), metavar="IN,FORGET,OUT", help="--cell paper: initial biases of "
                         "the input, forget and output gates (default {d}, as the paper prints them; online "
                         "tables: {o})")),
    ("forget", dict(choices=("yes", "no"), help="no: the cell without a forget gate, its activation pinned to "
                    "1.0 (default yes)")),
    ("learning", dict(choices=LEARNING, help="batch: Adam on batches of streams, BPTT (default); online: the "
                      "paper's own learning (paper tasks): truncated RTRL, a momentum step after every target, "
                      "streams cut at the first error, a test after every training stream")),
    ("alpha", dict(type=positive_float, help="online: learning rate (default {d})")),
    ("momentum", dict(type=_number(float, 0, False), help="online: momentum in [0, 1) (default: the paper's, "
                      + paper_tasks("momentum") + ")")),
    ("budget", dict(type=positive_int, help="online: training streams per network at most (default {d}; the "
                    "paper: 10^7, 10^8 for NMSD/MSD)")),
]


# Who reads each Config field the flags set, where not everyone does: a flag given where
# nothing reads it would be a silent no-op, so it is a user error instead.
SCOPE = [(("T", "D_min", "D_max", "n_test", "tol"), "--task msd", lambda c: not TASKS[c.task].paper),
         (("F", "periods", "test_streams", "test_periods"), "the paper's tasks", lambda c: TASKS[c.task].paper),
         (("delays",), "the spike tasks (nmsd, cmsd, gts)", lambda c: TASKS[c.task].paper_key == "delays"),
         (("func",), "--task pfg", lambda c: TASKS[c.task].paper_key == "func"),
         (("stop_on_error",), "batch learning of the paper's tasks (online streams always stop)",
          lambda c: TASKS[c.task].paper and c.learning == "batch"),
         (("iters", "batch", "lr", "lr_halve_every", "clip", "eval_every", "grad"), "--learning batch",
          lambda c: c.learning == "batch"),
         (("alpha", "momentum", "budget"), "--learning online", lambda c: c.learning == "online"),
         (("gate_biases",), "--cell paper", lambda c: c.cell == "paper")]


def flag(field):
    return "--" + field.replace("_", "-")


def check_scope(cfg, given):
    """ValueError if a field given on the command line is one that cfg's run never reads."""
    for fields, reader, reads in SCOPE:
        for name in fields:
            if name in given and not reads(cfg):
                raise ValueError(f"{flag(name)} has no effect with --task {cfg.task}, --learning "
                                 f"{cfg.learning}, --cell {cfg.cell}: only {reader} reads it")


def task_defaults(task, learning="batch"):
    """The Config a task starts from: Config() for msd, the tables' recipe of the learning
    mode for the paper's tasks."""
    return row_config(task=task, learning=learning) if TASKS[task].paper else Config()


# The --help sections of the Config flags, in order.
FLAG_GROUPS = {"task": ("task", "F", "delays", "func", "periods", "stop_on_error", "T", "D_min", "D_max"),
               "model": ("hidden", "cell", "readout", "forget", "gate_biases"),
               "training": ("learning", "iters", "batch", "lr", "lr_halve_every", "clip", "grad", "alpha",
                            "momentum", "budget"),
               "evaluation": ("eval_every", "n_test", "test_streams", "test_periods", "tol")}


def shown(v):
    """A Config value as its flag takes it: 0,1 for a tuple, yes/no for a bool."""
    return ",".join(map(str, v)) if isinstance(v, tuple) else ("yes" if v is True else "no" if v is False else v)


def flags_text(fields):
    """Config fields as the flags that set them: '--hidden 1 --lr 0.01'."""
    return " ".join(f"{flag(k)} {shown(v)}" for k, v in fields.items())


def add_config_args(p, variants=True, title="{}"):
    """The task/model/training flags in their --help sections (title: how a section's name
    is shown), shared with the companion scripts (which always train both variants, hence
    variants=False there)."""
    spec = dict(FLAGS)
    groups = {name: p.add_argument_group(title.format(name)) for name in FLAG_GROUPS}
    for group, names in FLAG_GROUPS.items():
        for name in names:
            kw = dict(spec[name], help=spec[name]["help"].format(d=shown(getattr(Config(), name)),
                                                                 r=shown(RECIPE.get(name)),
                                                                 o=shown(ONLINE_RECIPE.get(name))))
            groups[group].add_argument(flag(name), dest=name, default=None, **kw)
    p = groups["training"]
    p.add_argument("--seed", dest="seed", type=parse_seeds, default=None, metavar="N",
                   help=f"seed(s) to train (default {Config().seeds[0]}, the reference's headline seed; "
                        f"paper tasks {RECIPE['seeds'][0]}-{RECIPE['seeds'][-1]})")
    p.add_argument("--seeds", dest="seeds", type=parse_seeds, metavar="LIST",
                   help="seeds for a sweep: a list or range, e.g. 0-6 or 0,3,5")
    if variants:
        g = groups["model"].add_mutually_exclusive_group()
        g.add_argument("--peep", dest="variants", action="store_const", const=("peep",),
                       help="train the peephole LSTM only")
        g.add_argument("--no-peep", dest="variants", action="store_const", const=("vanilla",),
                       help="train the vanilla LSTM (no peepholes) only")
        g.add_argument("--both", dest="variants", action="store_const", const=VARIANTS,
                       help="train both variants side by side, sharing weights and data (the default)")
    p.set_defaults(variants=None)


def explicit_fields(a):
    """The Config fields given on the command line (ValueError if --seed and --seeds both are)."""
    if a.seed is not None and a.seeds is not None:
        raise ValueError(f"--seed {','.join(map(str, a.seed))} and --seeds {','.join(map(str, a.seeds))} "
                         "both set the seeds; give one")
    out = {name: getattr(a, name) for name, _ in FLAGS if getattr(a, name) is not None}
    for name in ("stop_on_error", "forget"):
        if name in out:
            out[name] = out[name] == "yes"
    for name, value in (("seeds", a.seeds if a.seed is None else a.seed), ("variants", getattr(a, "variants", None))):
        if value is not None:
            out[name] = tuple(value)
    return out


# The modes of the command line (training is the mode when none is given), and the flags
# other than the Config flags that each one reads; only training and --table read Config
# flags. Online training and --table also read ONLINE_FLAGS, and --table online --rows.
MODES = ("gradcheck", "report", "docs", "merge", "confirm", "load", "resume", "table")
MODE_FLAGS = {"train": ("json", "save", "workers"), "table": ("json", "save", "workers"),
              "resume": ("json", "save", "workers"), "report": ("compare",), "merge": ("json", "save"),
              "confirm": ("json",), "load": (), "gradcheck": (), "docs": ()}
ONLINE_FLAGS = ("budget_minutes", "checkpoint", "checkpoint_minutes")
OTHER_FLAGS = ("json", "save", "workers", "compare", "rows", "grid", "shard") + ONLINE_FLAGS


def check_flags(a, given):
    """ValueError for flags that conflict, or that the chosen mode would ignore."""
    modes = [m for m in MODES if getattr(a, m)]
    if len(modes) > 1:
        raise ValueError(f"{flag(modes[0])} and {flag(modes[1])} are different modes; give one")
    mode = modes[0] if modes else "train"
    online = mode == "resume" or (mode in ("train", "table") and given.get("learning") == "online")
    reads = MODE_FLAGS[mode] + (ONLINE_FLAGS if online else ()) + (("shard",) if online else ()) \
        + (("rows", "grid") if online and mode == "table" else ())
    where = "training" if mode == "train" else flag(mode)
    if given and mode not in ("train", "table"):
        raise ValueError(f"{where} takes no training settings; drop {', '.join(map(flag, sorted(given)))}")
    for name in OTHER_FLAGS:
        if getattr(a, name) is not None and name not in reads:
            raise ValueError(f"{flag(name)} has no effect with {where}"
                             + (" unless --learning online" if name in ONLINE_FLAGS + ("rows", "grid", "shard")
                                and not online
                                and mode in ("train", "table") else ""))
    if a.checkpoint_minutes is not None and not (a.checkpoint or a.resume):
        raise ValueError("--checkpoint-minutes needs --checkpoint PATH (or --resume)")
    paths = [(name, getattr(a, name)) for name in ("json", "save", "checkpoint") if getattr(a, name)]
    for i, (n1, p1) in enumerate(paths):
        for n2, p2 in paths[i + 1:]:
            if os.path.abspath(p1) == os.path.abspath(p2):
                raise ValueError(f"{flag(n1)} and {flag(n2)} both name {p1!r}; give each file its own path")


def table_names(text):
    """--table: a table's name, several joined by commas, or all (ONLINE_TABLES)."""
    names = list(ONLINE_TABLES) if text == "all" else text.split(",")
    if any(n not in TABLES for n in names) or len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(f"{text!r}: give one of {', '.join(TABLES)}, several of them joined by "
                                         "commas, or all")
    return names


def table_nets_from_args(name, given, rows=None, spec=None):
    """table_nets with the flags given on the command line over every row's recipe;
    ValueError for a flag that a row sets itself or that no row's run would read."""
    spec = spec or TABLES[name]
    if spec.get("online_only") and given.get("learning") != "online":
        raise ValueError(f"--table {name} runs the paper's own learning only; add --learning online")
    sets = set(ROW_FIELDS).union(*(row["config"] for row in spec["rows"]))
    fixed = sorted(set(given) & sets)
    if fixed:
        raise ValueError(f"--table {name} sets {', '.join(map(flag, sorted(sets)))} per row; "
                         f"drop {', '.join(map(flag, fixed))}")
    nets = table_nets(name, given, rows, spec)
    for cfg in {row: cfg for row, cfg, _, _ in nets}.values():
        check_scope(cfg, given)
    return nets


def config_from_args(a):
    """Flags given on the command line over the task's defaults; ValueError for a flag the
    run would not read."""
    given = explicit_fields(a)
    cfg = dataclasses.replace(task_defaults(a.task or "msd", a.learning or "batch"), **given)
    check_scope(cfg, given)
    return cfg


def build_parser():
    """The command line: every flag, its help and its check."""
    p = Parser(
        description="Peephole vs vanilla LSTM on the timing tasks of Gers et al. (2002), pure numpy: "
                    "the earlier reproduction's MSD variant and the paper's NMSD, MSD, GTS and PFG.",
        epilog=f"Defaults run the headline experiment: seed {Config().seeds[0]}, both variants, MSD with "
               f"T={Config().T}, D in [{Config().D_min}, {Config().D_max}], H={Config().hidden}, "
               f"{Config().iters} iterations of batch {Config().batch}, Adam lr {Config().lr}. "
               "--table 1 / 2 / 3 / gts reruns the paper's tables.")
    add_config_args(p)
    modes = p.add_argument_group("modes (give at most one; without one, the flags above train)")
    files = p.add_argument_group("processes and files")
    modes.add_argument("--table", type=table_names, metavar="NAME",
                       help="reproduce one of the paper's tables (1, 2, 3; gts = the table of its Figure 7; "
                            "3nf, gtsnf = their F = 10 rows without forget gate; recipe = the rows the batch "
                            "recipe was chosen on; probe = the rows the gate biases were chosen on, three "
                            "readings each, online only; map = the start map, rows of every family from a grid of "
                            "gate biases on development seeds, online only, see --grid) with the recipe of the "
                            "learning mode, ten seeds per row and "
                            "variant; other flags given (e.g. --learning online, --grad, --seeds) change the "
                            "recipe for every row; --json writes the results. With --learning online, several "
                            "joined by commas (e.g. 1,gts) or all (" + ",".join(ONLINE_TABLES) + ") run on one "
                            "axis, a results file each: put {table} in --json and --save")
    files.add_argument("--workers", type=positive_int,
                       help="processes to deal the models to; results do not depend on it "
                            f"(default: one per CPU core, here {WORKERS})")
    files.add_argument("--json", metavar="PATH", help="write config, per-member history and final metrics")
    files.add_argument("--save", metavar="PATH", help="write an .npz checkpoint (weights + config); with "
                       "--table, every row's weights (for visualize_timing_counting_spikes.py --from-table)")
    modes.add_argument("--load", metavar="PATH",
                       help="evaluate a saved checkpoint on its own test sets instead of training")
    modes.add_argument("--gradcheck", action="store_true",
                       help="check BPTT against central differences for both variants; exit 1 on failure")
    modes.add_argument("--report", metavar="JSON",
                       help="print the markdown tables of any results file this program writes (a run's, "
                            "a table's, --confirm's or --merge's --json), and exit")
    modes.add_argument("--docs", action="store_true",
                       help="write every table and generated number of README.md and docs/ anew from the "
                            "committed results files (the tests fail when a document differs from them)")
    g = p.add_argument_group("online runs (--learning online)")
    g.add_argument("--rows", type=parse_seeds, metavar="LIST",
                   help="with --table: only these rows (1-based, e.g. 1-3), to split a table into shards")
    g.add_argument("--grid", type=parse_grid, metavar="IN:FORGET:OUT",
                   help="with --table map: the starts to map, the product of lists of input, forget and output "
                        "gate biases, several products joined by ';' (default: " + MAP_GRID + ", the last the "
                        "printed start); write --grid=... when it begins with a minus sign")
    g.add_argument("--shard", type=parse_shard, metavar="K/N",
                   help="run only shard K of N of the networks (pairs of variants dealt round robin over "
                        "rows and tables, so shards cost about the same), e.g. one per cluster array task; with "
                        "--resume CKPT, the K-th share of a saved run; --merge of the N results files gives the "
                        "whole run's")
    g.add_argument("--budget-minutes", type=positive_float, metavar="MIN",
                   help="stop after this much wall clock in all (a resumed run counts its earlier time and "
                        "keeps its budget unless given a new one); the table then says how many streams "
                        "each unfinished network ran")
    g.add_argument("--checkpoint", metavar="PATH", help="save the whole run here (.npz, atomically) every "
                   "--checkpoint-minutes and at the end, for --resume")
    g.add_argument("--checkpoint-minutes", type=positive_float, metavar="MIN",
                   help=f"minutes between checkpoints (default {CHECKPOINT_MINUTES})")
    modes.add_argument("--resume", metavar="PATH", help="continue the run saved in this checkpoint, bit for bit, "
                       "and keep checkpointing to it")
    modes.add_argument("--confirm", metavar="PREFIX", help="run every network a batch --table run (PREFIX.json + "
                       f"PREFIX.npz) found perfect on {CONFIRM_STREAMS} fresh streams; --json writes the table with "
                       "the counts")
    files.add_argument("--compare", metavar="JSON", help="with --report of an online results file: show this batch "
                       "table's perfect counts beside it")
    modes.add_argument("--merge", nargs="+", metavar="JSON", help="merge the results files of shards of one "
                       "table (--rows, --seeds) into --json PATH; with --save PATH also their weights (each "
                       "shard's .npz beside its .json)")
    return p


def main(argv=None):
    p = build_parser()
    a = p.parse_args(argv)
    # user errors: one line, exit 2, before anything runs or is written
    try:
        given = explicit_fields(a)
        check_flags(a, given)
    except ValueError as e:
        p.error(e)
    a.workers = a.workers or WORKERS
    a.checkpoint_minutes = a.checkpoint_minutes or CHECKPOINT_MINUTES
    if a.gradcheck:
        return 0 if gradcheck() <= GRADCHECK_TOL else 1
    if a.report:
        return report_main(p, a)
    if a.docs:
        return docs_main(p)
    if a.merge:
        return merge_main(p, a)
    if a.confirm:
        return confirm_main(p, a)
    if a.resume or given.get("learning") == "online":
        return online_main(p, a, given)
    if a.table:
        return table_main(p, a, given)
    if a.load:
        return load_main(p, a)
    try:
        cfg = config_from_args(a)
        cfg.validate()
        check_outputs(a)
    except ValueError as e:
        p.error(e)
    return train_main(p, a, cfg)


def check_outputs(a):
    """ValueError for a --json or --save path that cannot be written."""
    for path in (a.json, a.save):
        if path:
            check_output_path(path)


def write_table(json_path, doc, save_path=None, params=None):
    """A table's results file and its rows' weights, each where a path is given, written and announced."""
    if json_path:
        write_json(json_path, doc)
        print(f"wrote {json_path}")
    if save_path:
        save_table_params(save_path, params)
        print(f"wrote {save_path}")


def report_main(p, a):
    docs = []
    for path in filter(None, (a.report, a.compare)):
        try:
            docs.append(read_json(path))
        except ValueError as e:
            p.error(e)
        if not isinstance(docs[-1], dict):
            p.error(f"{path!r} holds a JSON {JSON_KIND.get(type(docs[-1]), 'value')}, not a results file "
                    "this program writes")
    try:
        text = report_any(*docs)
    except ValueError as e:
        p.error(e)
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        p.error(f"{a.report!r} is not a results file this program writes ({what_is_wrong(e)})")
    print(text)
    return 0


def docs_main(p):
    try:
        write_docs()
    except ValueError as e:
        p.error(e)
    return 0


def confirm_main(p, a):
    try:
        if a.json:
            check_output_path(a.json)
        doc = confirm_table(a.confirm)
    except ValueError as e:
        p.error(e)
    for r in doc["rows"]:
        print(f"{r['label']:<26} " + " | ".join(f"{v}: {s['perfect']}/{s['n']} perfect, {s['confirmed']} confirmed"
                                                 for v, s in r["ours"].items()))
    write_table(a.json, doc)
    return 0


def table_main(p, a, given):
    """A batch --table run: every row with the flags given over the recipe."""
    try:
        if len(a.table) > 1:
            raise ValueError(f"--table {','.join(a.table)}: several tables run together with "
                             "--learning online only; give one")
        a.table = a.table[0]
        table_nets_from_args(a.table, given)
        check_outputs(a)
    except ValueError as e:
        p.error(e)
    print(f"table {a.table}: {TABLES[a.table]['title']}; recipe: {flags_text(RECIPE)}"
          + (f"; given: {flags_text(given)}" if given else "") + "; "
          f"{a.workers} process(es)", flush=True)
    done, code = interruptible_run(p, lambda: run_table(a.table, a.workers, given, log=print),
                                   lambda: "interrupted; nothing written")
    if code:
        return code
    doc, params = done
    print(table_markdown(doc))
    print(f"table {a.table} took {doc['seconds']:.0f}s")
    print(machine_line())
    write_table(a.json, doc, a.save, params)
    return 0


def load_main(p, a):
    """--load: a saved checkpoint evaluated on its own test sets."""
    try:
        cfg, P, members = load_checkpoint(a.load)
        check_outputs(a)
    except ValueError as e:
        p.error(e)
    metrics = evaluate(cfg, P, members, test_sets(cfg))
    print(summary_table(cfg, {"members": [{"seed": s, "variant": v, "final": m}
                                          for (s, v), m in zip(members, metrics)]}))
    return 0


def train_main(p, a, cfg):
    """Training with the flags given (by default the headline experiment)."""
    task = row_label(cfg)
    print(f"training {len(members_of(cfg))} model(s): {seeds_text(cfg.seeds)} x {' and '.join(cfg.variants)}, "
          f"{task}, {cfg.cell} cell, H={cfg.hidden}, {cfg.iters} iterations of batch {cfg.batch}, "
          f"lr {cfg.lr}, {min(a.workers, len(members_of(cfg)))} process(es)", flush=True)
    done, code = interruptible_run(p, lambda: train_parallel(cfg, a.workers, log=print),
                                   lambda: "interrupted; nothing written")
    if code:
        return code
    P, results = done
    print(summary_table(cfg, results))
    print(f"trained in {results['seconds']:.1f} s")
    print(machine_line())
    block = headline_block(cfg, results)
    if block:
        print(block)
    if a.json:
        save_json(a.json, cfg, results)
        print(f"wrote {a.json}")
    if a.save:
        save_checkpoint(a.save, cfg, P, members_of(cfg))
        print(f"wrote {a.save}")
    return 0


def interruptible(work, message):
    """(work(), None), or on Ctrl-C or SIGTERM one line message() on stderr and (None, exit
    code 130 or 143). Files are written only after work() returns, so nothing is half-written."""
    seen = []

    def on_term(signum, frame):
        seen.append(signum)
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGTERM, on_term)
    try:
        return work(), None
    except KeyboardInterrupt:
        print(message(), file=sys.stderr)
        return None, 128 + (seen[0] if seen else signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, old)


def interruptible_run(p, work, message):
    """interruptible(work, message) for a mode of the command line: batch training that
    diverged (the MSD task, which has no failed networks to count) ends the program with its
    one line and exit code 3."""
    try:
        return interruptible(work, message)
    except DivergenceError as e:
        p.exit(3, f"{p.prog}: {e}\n")


def merge_main(p, a):
    try:
        if not a.json:
            raise ValueError("--merge writes its result to --json PATH; give one")
        for path in filter(None, (a.json, a.save)):
            check_output_path(path)
        docs, params = [], [] if a.save else None
        for path in a.merge:
            docs.append(read_json(path))
            if a.save:
                params.append(load_table_params(os.path.splitext(path)[0] + ".npz", docs[-1]))
        doc, P = merge_docs(docs, params)
    except ValueError as e:
        p.error(e)
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        p.error(f"--merge: {' '.join(a.merge)} are not results files of this program ({what_is_wrong(e)})")
    print(report_any(doc))
    write_table(a.json, doc, a.save, P)
    return 0


def table_path(path, table):
    """A --json or --save path for one table of a run ({table} in it replaced by the name)."""
    return path if table is None else path.replace("{table}", table)


def online_main(p, a, given):
    """--learning online: train a row, or the rows of one table or of several on one axis,
    with the paper's algorithm."""
    try:
        if a.resume:                # check_flags: no settings given, the run continues as saved
            run = load_online_checkpoint(a.resume)
            run.minutes = a.budget_minutes or run.minutes       # a new wall-clock budget may be given
            if a.shard:             # one task's part of a saved run, e.g. a cluster's share of a checkpoint
                run = run.shard(*a.shard)
        else:
            if a.table:
                if len(a.table) > 1 and a.rows:
                    raise ValueError("--rows picks rows of one table; give one --table")
                if a.grid and a.table != ["map"]:
                    raise ValueError("--grid gives the starts of --table map; drop it or run --table map alone")
                per = [(name, table_nets_from_args(name, given, a.rows, a.grid and map_table(a.grid)))
                       for name in a.table]
            else:
                cfg = config_from_args(a)
                cfg.validate()
                per = [(None, [(0, cfg, s, v) for s, v in members_of(cfg)])]
            if a.shard:
                nets_of = dict(per)
                per = [(name, [nets_of[name][p] for p in at]) for name, at in shard_nets(per, *a.shard)]
            nets = [n for _, ns in per for n in ns]
            table = per[0][0] if len(per) == 1 else [[name, len(ns)] for name, ns in per]
            run = OnlineRun(nets, table, minutes=a.budget_minutes)
        tables = [name for name, _ in run.tables()]
        for name in ("json", "save"):
            path = getattr(a, name)
            if path and len(tables) > 1 and "{table}" not in path:
                raise ValueError(f"{flag(name)} {path!r}: a run of several tables writes a file for each; "
                                 "put {table} in the path, e.g. results/online_table{table}.json")
        for path in [table_path(x, t) for x in (a.json, a.save) if x for t in tables] + [a.checkpoint]:
            if path:
                check_output_path(path)
    except ValueError as e:
        p.error(e)
    ckpt = a.checkpoint or a.resume
    rows = {(t, r) for t, at in run.tables() for r, _, _, _ in run.nets[at]}
    budgets = sorted({c.budget for _, c, _, _ in run.nets})
    print(f"online learning: {len(run.nets)} networks ({len(rows)} row(s)"
          + (f" of tables {', '.join(tables)}" if len(tables) > 1 else "") + " x seeds x variants), budget "
          f"{budgets[0]}" + (f"-{budgets[-1]}" if len(budgets) > 1 else "") + " training streams per network"
          + (f" or {run.minutes} min" if run.minutes else "")
          + (f", shard {a.shard[0]}/{a.shard[1]}" if a.shard else "")
          + f", {min(a.workers, len(run.nets))} process(es)" + (f", resuming at step {run.steps}" if a.resume else ""),
          flush=True)
    def work():
        train_online(run, a.workers, run.minutes, ckpt, a.checkpoint_minutes, log=print)
        return [(part, online_results(part)) for part in run.split()]
    kept = (lambda: f"{ckpt} holds the run as last saved" if ckpt and os.path.exists(ckpt) else "nothing written")
    done, code = interruptible_run(p, work, lambda: f"interrupted at step {run.steps}; {kept()}")
    if code:
        return code
    for part, (members, P) in done:
        doc = online_doc(part, members)
        if len(done) > 1:
            print(f"\n{doc['title']}")
        print(report_any(doc))
        at_row = {r: [k for k, net in enumerate(part.nets) if net[0] == r] for r, _, _, _ in part.nets}
        params = a.save and [own_inputs(P, at, part.nets[at[0]][1]) for _, at in sorted(at_row.items())]
        write_table(a.json and table_path(a.json, part.table), doc, a.save and table_path(a.save, part.table), params)
    print(f"{run.steps} steps in {run.seconds:.0f}s" + ("" if run.st["done"].all() else "; some networks unfinished"))
    print(machine_line())
    if ckpt:
        save_online_checkpoint(ckpt, run)
        print(f"wrote {ckpt}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:             # e.g. `--report X | head`: the reader has gone, so stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
