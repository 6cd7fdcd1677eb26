"""Benchmarks of timing_counting_spikes.py, beside its tests: how fast each engine is.

    python bench/benchmark.py                                              # both engines
    python bench/benchmark.py --against ../previous/timing_counting_spikes.py   # and another copy's online engine
    python bench/benchmark.py --floor --against ../previous/timing_counting_spikes.py   # the least a stream's end costs

The batch engine: milliseconds per iteration of whole runs of the headline configuration (1 and
14 models, 1 and 2 processes; evaluation excluded). The online engine: network-steps per second
and numpy calls per step on Table 1's networks (140, 1400 and 5600 of them), on GTS F = 10
{0}'s (140 and 1400: the costliest stream ends), on the paper's online tables apart and on one
axis, and late in training (the unfinished networks of the checkpoints in results/). The
speed of a step on this problem is numpy's call overhead, so the calls per step are counted too
(every numpy call made on the engine's arrays, once however deep). Other load only slows a run:
each case reports its fastest and median of several runs. --floor: on Table 1 from the start and
late in training, the step with no stream ending plus only the zeroing and settle every stream's
end needs, against the other engine: the most any way of ending streams could give.
"""
import dataclasses
import importlib.util
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import timing_counting_spikes as tcs  # noqa: E402  (sets numpy's thread count before numpy loads)
import numpy as np  # noqa: E402


def bench(cfg, iters=200, repeats=3, log=print):
    """Wall-clock per iteration of whole runs (set-up and process start included), with the
    test set shrunk to one sequence so that evaluation costs nothing. Each case runs
    `repeats` times; the median and the fastest are reported (other load only slows a run)."""
    def run(seeds, variants, workers):
        c = dataclasses.replace(cfg, seeds=tuple(seeds), variants=tuple(variants), iters=iters,
                                eval_every=10 ** 9, n_test=1)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            tcs.train_parallel(c, workers)
            times.append((time.perf_counter() - t0) / iters * 1e3)
        return np.median(times), min(times)
    cases = [("1 model, peep", [4], ["peep"], 1), ("1 model, vanilla", [4], ["vanilla"], 1),
             ("14 models (7 seeds x 2), 1 process", range(7), tcs.VARIANTS, 1),
             ("14 models (7 seeds x 2), 2 processes", range(7), tcs.VARIANTS, 2)]
    log(f"benchmark: T={cfg.T} H={cfg.hidden} batch={cfg.batch}, {iters} iterations per run, "
        f"median and fastest of {repeats} runs")
    log(f"{'run':<38} {'ms/iter':>8} {'ms/model-iter':>14} {'fastest':>8}")
    rows = []
    for name, seeds, variants, workers in cases:
        med, best = run(seeds, variants, workers)
        m = len(seeds) * len(variants)
        rows.append((name, med, best, m))
        log(f"{name:<38} {med:>8.2f} {med / m:>14.2f} {best / m:>8.2f}")
    return rows


class _Counted(np.ndarray):
    """An array that counts the numpy calls made on it or made by numpy functions reached
    through _CountedNumpy (ufuncs, array functions, indexing), one per call however deep."""
    calls = depth = 0

    def __array_ufunc__(self, ufunc, method, *args, **kw):
        return _counted_call(getattr(ufunc, method), args, kw)

    def __array_function__(self, func, types, args, kw):
        return _counted_call(func, args, kw)

    def __getitem__(self, index):
        return _counted_call(np.ndarray.__getitem__, (self, index), {})

    def __setitem__(self, index, value):
        _counted_call(np.ndarray.__setitem__, (self, index, value), {})


def _plain(a):
    if isinstance(a, _Counted):
        return a.view(np.ndarray)
    if isinstance(a, (tuple, list)):
        return type(a)(_plain(b) for b in a)
    return {k: _plain(v) for k, v in a.items()} if isinstance(a, dict) else a


def _counted_call(f, args, kw):
    _Counted.calls += _Counted.depth == 0
    _Counted.depth += 1
    try:
        r = f(*_plain(args), **_plain(kw))
    finally:
        _Counted.depth -= 1
    if isinstance(r, tuple):
        return tuple(x.view(_Counted) if type(x) is np.ndarray else x for x in r)
    return r.view(_Counted) if type(r) is np.ndarray else r


class _CountedNumpy:
    """Stands in for a module's `np` while calls are counted: each function it hands out counts."""
    def __init__(self, f=np):
        self.f = f

    def __call__(self, *args, **kw):
        return _counted_call(self.f, args, kw)

    def __getattr__(self, name):
        obj = getattr(self.f, name)
        return _CountedNumpy(obj) if callable(obj) and not isinstance(obj, type) else obj


def engine_nets(engine, run):
    """The OnlineNets of a run of `engine`; copies of this file from before several tables
    could share an axis take the run's one task family as arguments."""
    if hasattr(run, "online_nets"):
        return run.online_nets()
    return engine.OnlineNets(run.st, run.layout, run.cell, run.H, run.n_in)


def late_run(engine, paths):
    """The unfinished networks of the online runs saved at checkpoint `paths`, all on one axis,
    as a run of `engine`: the step late in training (joined by this module, for either engine)."""
    runs = [engine.load_online_checkpoint(p) for p in paths]
    parts = [tcs.take(r.st, np.flatnonzero(~r.st["done"])) for r in runs]
    run = max(runs, key=lambda r: r.n_in)
    run.st = parts[0] if len(parts) == 1 else tcs.join_states(parts, run.H)
    return run


def bench_source(engine, source, endless):
    """A fresh online run of `engine` (this module or another version of it) for the benchmark:
    of networks (a list), or late in training (a tuple of checkpoint paths: late_run); endless:
    no stream ever ends (tolerance and stream length raised), so that a step is the step itself."""
    run = late_run(engine, source) if isinstance(source, tuple) else engine.OnlineRun(source)
    if endless:
        run.st["tol"][:], run.st["maxp"][:] = 10.0, 10 ** 9
    return run


def bench_seconds(engine, source, steps, endless):
    """Seconds of `steps` steps of an online run of `engine` (bench_source)."""
    net = engine_nets(engine, bench_source(engine, source, endless))
    with np.errstate(over="ignore", invalid="ignore"):
        t0 = time.perf_counter()
        net.run(steps)
        return time.perf_counter() - t0


def online_calls(engine, source, steps, endless):
    """numpy calls per step of `engine` (this module or another version of it) on networks or
    checkpoints (bench_source)."""
    run = bench_source(engine, source, endless)
    saved, engine.np = engine.np, _CountedNumpy()
    try:
        for k in run.st:
            run.st[k] = run.st[k].view(_Counted)
        net = engine_nets(engine, run)
        _Counted.calls = 0
        net.run(steps)
        return _Counted.calls / steps
    finally:
        engine.np = saved


BENCH_WIDTHS = (140, 1400, 5600)      # Table 1's 7 rows x 2 variants x 10, 100 and 400 seeds


def load_engine(path):
    """Another copy of timing_counting_spikes.py, as a module whose online engine the benchmark can run."""
    if not os.path.isfile(path):
        raise ValueError(f"--against {path!r}: no such file")
    spec = importlib.util.spec_from_file_location("tcs_against", path)
    if spec is None:
        raise ValueError(f"--against {path!r}: not a Python file")
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as e:        # any file at all may be named here: say what it is not
        raise ValueError(f"--against {path!r}: not a copy of timing_counting_spikes.py (importing it failed: {e})") from None
    if not all(hasattr(module, k) for k in ("OnlineRun", "OnlineNets", "table_nets")):
        raise ValueError(f"--against {path!r}: not a copy of timing_counting_spikes.py (it has no online engine)")
    return module


def late_paths():
    """The checkpoints in results/ of online runs with unfinished networks."""
    where = os.path.join(ROOT, "results")
    paths = sorted(os.path.join(where, f) for f in (os.listdir(where) if os.path.isdir(where) else ())
                   if f.startswith("ckpt_") and f.endswith(".npz"))
    return [p for p in paths if np.any(~tcs.load_online_checkpoint(p).st["done"])]


def bench_online(against=None, rounds=5, log=print):
    """Network-steps per second of the online step in one process: on Table 1's networks, 140,
    1400 and 5600 of them, on GTS F = 10 {0}'s, 140 and 1400, and on the paper's online tables
    at ten seeds (ONLINE_TABLES, 900 networks), each table on an axis of its own one after
    another, or all on one axis (--table all; on the other engine too where it has it). Each
    case runs with no stream ending (tolerance and stream length raised: the step itself) and
    from the start of training (streams a few steps long, some ending at every step). Then late in training: the unfinished networks of the online runs
    whose checkpoints are in results/, each run's apart or all on one axis. Each run takes
    about the same number of network-steps. The fastest of `rounds` runs is reported (other
    load only slows a run), with the median, and numpy calls per step. With `against`, another
    copy of this file as a module (load_engine), its engine runs the same cases, interleaved
    round by round with this one; the last column is this engine's speed-up."""
    engines = [("this", tcs)] + ([("against", against)] if against else [])
    joins = [(name, engine) for name, engine in engines if hasattr(engine, "join_states")]   # (several tables on one axis)
    log(f"online benchmark: one process, fastest and median of {rounds} runs"
        + (f", interleaved with the engine of {against.__file__}" if against else ""))
    log(f"{'engine':<8} {'networks':>8} {'case':<46} {'us/step':>8} {'M net-steps/s':>14} {'median':>7} "
        f"{'calls/step':>10}" + ("  speed-up" if against else ""))
    # per setup: its networks, its runs (engine, label, groups of networks or checkpoints, each group
    # on an axis of its own; interleaved round by round) and its cases
    fresh = (("no stream ending", True), ("from the start of training", False))
    setups = [(width, [(name, engine, "Table 1", [engine.table_nets("1", {"learning": "online",
                                                                         "seeds": tuple(range(width // 14))})])
                       for name, engine in engines], fresh) for width in BENCH_WIDTHS]
    # GTS F = 10, I in {0}: from the start its streams end every few steps, the costliest case
    setups += [(width, [(name, engine, "GTS F=10 {0}", [engine.table_nets("gts", {"learning": "online",
                                                                                 "seeds": tuple(range(width // 2))},
                                                                          [1])])
                        for name, engine in engines], fresh) for width in BENCH_WIDTHS[:2]]
    apart = {name: [engine.table_nets(t, {"learning": "online"}) for t in tcs.ONLINE_TABLES] for name, engine in engines}
    setups.append((sum(map(len, apart["this"])),
                   [(name, engine, "tables apart", apart[name]) for name, engine in engines]
                   + [(name, engine, "tables on one axis", [sum(apart[name], [])]) for name, engine in joins], fresh))
    # late in training: the unfinished networks of the online runs committed in results/
    paths = late_paths()
    if paths:
        setups.append((sum(int(np.count_nonzero(~tcs.load_online_checkpoint(p).st["done"])) for p in paths),
                       [(name, engine, "shards apart", [(p,) for p in paths]) for name, engine in engines]
                       + [(name, engine, "shards on one axis", [tuple(paths)]) for name, engine in joins],
                       (("late in training", None),)))
    rows, best = [], {}
    for width, runs, cases in setups:
        steps = max(160, 600_000 // width)
        for case, endless in cases:
            times = [[] for _ in runs]
            for _ in range(rounds):
                for (name, engine, label, groups), t in zip(runs, times):
                    t.append(sum(bench_seconds(engine, g, steps, endless) for g in groups))
            for (name, engine, label, groups), t in zip(runs, times):
                with np.errstate(over="ignore", invalid="ignore"):
                    calls = sum(online_calls(engine, g, min(steps, 320), endless) for g in groups)
                b, med = min(t) / steps, float(np.median(t)) / steps
                best[label, case, name] = b
                rows.append(dict(engine=name, networks=width, case=f"{label}, {case}", us_per_step=b * 1e6,
                                 net_steps_per_s=width / b, median_net_steps_per_s=width / med, calls_per_step=calls))
                log(f"{name:<8} {width:>8} {label + ', ' + case:<46} {b * 1e6:>8.1f} {width / b / 1e6:>14.2f} "
                    f"{width / med / 1e6:>7.2f} {calls:>10.1f}"
                    + (f"  {b / best[label, case, 'this']:7.2f}x" if name == "against" else ""))
    for what, case in [("tables", c) for c, _ in fresh] + ([("shards", "late in training")] if paths else []):
        one = best[f"{what} on one axis", case, "this"]
        log(f"{what} on one axis, {case}: {best[f'{what} apart', case, 'this'] / one:.2f}x the network-steps/s of "
            f"this engine's {what} apart" + (f", {best[f'{what} apart', case, 'against'] / one:.2f}x the other "
                                             f"engine's {what} apart" if against else ""))
    return rows


def stream_end_floor(against, source, label, rounds=5, steps=None, log=print):
    """The least a stream's end can cost, whatever its bookkeeping, on networks or checkpoints
    (bench_source; the checkpoints' networks sorted by lay-out, as run sorts them): this
    engine's step with no stream ending, plus the two writes that zero the state and RTRL
    partials of the networks whose streams end (timed alone, as this engine makes them, for
    the networks that ended at each step of a run as it goes), plus the time that run spends in
    settle (what follows each ended stream). The next streams' lay-out, keys and first steps
    come on top. The other engine's speed as it goes over this floor is the most any other
    bookkeeping of a stream's end could give this step, with settle as it is. Each part is the fastest of `rounds` runs, interleaved round by
    round."""
    def fresh(engine, endless):
        run = bench_source(engine, source, endless)
        if isinstance(source, tuple) and engine is tcs:
            run.st = tcs.take(run.st, np.argsort(run.st["lay"], kind="stable"))
        return engine_nets(engine, run)
    net = fresh(tcs, False)
    H, M, shape = net.H, len(net.ended), net.st["dS"].shape
    steps = steps or max(160, 600_000 // M)
    ended = []                                  # which networks' streams end at each step, as it goes
    step = net.step_at
    net.step_at = lambda r: (step(r), ended.append(np.flatnonzero(net.ended)))
    with np.errstate(over="ignore", invalid="ignore"):
        net.run(steps)
    masks = []                                  # per step with an end: who, and putmask's masks of [h | s_c] and dS
    for E in ended:
        on = np.isin(np.arange(M), E)
        if len(E):
            masks.append((E, np.broadcast_to(on, (2 * H, M)), np.broadcast_to(on, shape)))
    hc, dS = np.ones((2 * H, M)), np.ones(shape)

    def zeroing():                              # the writes of end_streams, on arrays of the same shapes
        t0 = time.perf_counter()
        for E, hcm, dSm in masks:
            if 16 * len(E) <= M:                # few: on their columns
                hc[:, E] = 0.0
                dS[..., E] = 0.0
            else:
                np.putmask(hc, hcm, 0.0)
                np.putmask(dS, dSm, 0.0)
        return time.perf_counter() - t0

    def as_it_goes(engine, spent):
        net = fresh(engine, False)
        if spent is not None:
            settle = net.settle

            def timed(*a, **kw):
                t0 = time.perf_counter()
                settle(*a, **kw)
                spent.append(time.perf_counter() - t0)
            net.settle = timed
        return net
    cases = {"no stream ending": lambda s: fresh(tcs, True),
             "streams ending": lambda s: as_it_goes(tcs, s),
             "against, streams ending": lambda s: as_it_goes(against, None)}
    times, settles, zeros = {c: [] for c in cases}, [], []
    for _ in range(rounds):
        for case, make in cases.items():
            spent = []
            net = make(spent)
            with np.errstate(over="ignore", invalid="ignore"):
                t0 = time.perf_counter()
                net.run(steps)
                times[case].append((time.perf_counter() - t0) / steps * 1e6)
            if case == "streams ending":
                settles.append(sum(spent) / steps * 1e6)
        zeros.append(zeroing() / steps * 1e6)
    t, zero, settle = {c: min(v) for c, v in times.items()}, min(zeros), min(settles)
    floor = t["no stream ending"] + zero + settle
    log(f"floor of a stream's end: {label}, {M} networks, fastest of {rounds} runs, interleaved with the "
        f"engine of {against.__file__}")
    for case, v in t.items():
        log(f"  {case:<26} {v:8.1f} us/step" + (f", of which settle {settle:.1f}" if case == "streams ending" else ""))
    log(f"  {'zeroing the ended streams':<26} {zero:8.1f} us/step")
    log(f"floor: {floor:.1f} us/step (no stream ending {t['no stream ending']:.1f} + zeroing {zero:.1f} + settle "
        f"{settle:.1f}): {t['against, streams ending'] / floor:.2f}x the other engine at most; this engine "
        f"{t['against, streams ending'] / t['streams ending']:.2f}x")
    return floor


def floors(against, rounds=5, log=print):
    """stream_end_floor on Table 1's 1400 networks from the start of training, and late in
    training on the unfinished networks of the committed checkpoints on one axis."""
    stream_end_floor(against, tcs.table_nets("1", {"learning": "online", "seeds": tuple(range(100))}),
                     "Table 1 from the start of training", rounds, log=log)
    paths = late_paths()
    if paths:
        stream_end_floor(against, tuple(paths), "late in training, on one axis", rounds, log=log)


def main(argv=None):
    p = tcs.Parser(description="Time both engines of timing_counting_spikes.py on fixed workloads "
                               "(results/bench.txt holds a committed run).")
    p.add_argument("--against", metavar="PY", help="also run the online cases on the engine of another copy of "
                   "timing_counting_spikes.py (e.g. from a git worktree of an earlier commit), interleaved with "
                   "this one; the last column is this engine's speed-up")
    p.add_argument("--rounds", type=tcs.positive_int, default=5, metavar="N",
                   help="runs of each online case; the fastest and the median are reported (default 5)")
    p.add_argument("--online-only", action="store_true", help="skip the batch engine's cases")
    p.add_argument("--floor", action="store_true", help="measure instead the least a stream's end can cost, on "
                   "Table 1's 1400 networks from the start of training and late in training, against the engine "
                   "--against names (needed)")
    a = p.parse_args(argv)
    try:
        against = a.against and load_engine(a.against)
    except ValueError as e:
        p.error(e)
    if a.floor and not against:
        p.error("--floor needs --against: the engine whose speed the floor bounds")

    def work():
        print(tcs.machine_line())            # every results file names the machine it was made on
        if a.floor:
            return floors(against, a.rounds)
        if not a.online_only:
            bench(tcs.Config())
        bench_online(against, a.rounds)
    _, code = tcs.interruptible(work, lambda: "benchmark interrupted")
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
