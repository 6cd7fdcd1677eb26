"""Training animation for timing_counting_spikes -> timing_counting_spikes.gif.

    python make_timing_counting_spikes_gif.py --seed 4 --snapshot-every 150 --fps 5

Trains both variants of one seed in one ensemble run (shared weights and data),
keeping their parameters every --snapshot-every iterations. Each frame shows one
fixed held-out sequence with both networks' outputs at that point of training,
and the test-MSE / solve-rate curves so far with a marker at the current iteration.
"""
import json
import os
import sys
import time

import imageio.v3 as iio
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import timing_counting_spikes as tcs  # noqa: E402
from visualize_timing_counting_spikes import (COLORS, INPUT_COLOR, NAMES, ZERO_COLOR, longest_gap,  # noqa: E402
                                              mark_events, member_index, on_sequences)

SIZE = (8.0, 5.2)   # inches; at FRAME_DPI a frame is 640 x 416 pixels
FRAME_DPI = 80


def snapshot_arrays(results):
    """Per-member snapshot lists -> {param: (S, M, ...)}, S evaluation points."""
    S = len(results[0]["snapshots"])
    return {name: np.stack([np.concatenate([r["snapshots"][s][name] for r in results]) for s in range(S)])
            for name in tcs.PARAMS}


def save_snapshots(path, cfg, results, snaps):
    meta = json.dumps({"config": tcs.config_dict(cfg),
                       "members": [{k: v for k, v in r.items() if k != "snapshots"} for r in results]})
    tcs.atomic_write(path, lambda f: np.savez(f, meta=np.array(meta), **snaps))


def load_snapshots(path, cfg):
    """-> (results, snaps) saved by an earlier run with the same config; ValueError otherwise."""
    meta, snaps = tcs.read_npz(path, "the snapshots", "a snapshot file of this script",
                               lambda z: (json.loads(str(z["meta"])), {name: z[name] for name in tcs.PARAMS}))
    if tcs.config_from_dict(meta["config"]) != cfg:          # as Configs: older files lack newer fields
        raise ValueError(f"snapshots {path!r} come from another configuration; delete the file or "
                         "pass the flags it was made with")
    return meta["members"], snaps


def render(cfg, seed, members, results, snap, outputs, batch, j):
    """One frame (H, W, 3 uint8) for evaluation point `snap`."""
    it = results[0]["history"]["iter"][snap]
    fig = plt.figure(figsize=SIZE, dpi=FRAME_DPI)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.25, 1])
    ax = fig.add_subplot(grid[0, :])
    t = np.arange(cfg.T)
    ax.vlines(np.flatnonzero(batch.x[:, 0, j]), 0, 1, color=INPUT_COLOR, lw=2.5, label="input spikes")
    mark_events(ax, batch.info, j)
    for v in cfg.variants:
        k = member_index(members, seed, v)
        ax.plot(t, outputs[snap][:, k], color=COLORS[v], lw=1.6, ls="-" if v == "peep" else "--", label=NAMES[v])
    ax.set_ylim(-0.4, 1.3)
    ax.set_xlim(0, cfg.T - 1)
    ax.set_xlabel("time step")
    ax.set_ylabel("output")
    D = batch.info["t2"][j] - batch.info["t1"][j]
    ax.set_title(f"Iteration {it} of {cfg.iters}: held-out sequence with D = {D}, target at step "
                 f"{batch.info['target'][j]}", fontsize=10)
    ax.legend(loc="upper left", fontsize=9, ncol=4)
    ax.grid(alpha=0.25)
    zero = results[0]["final"]["zero_mse"]
    for col, (key, label) in enumerate((("test_mse", "test MSE (log)"), ("solve", "exact solve rate"))):
        a = fig.add_subplot(grid[1, col])
        for r in results:
            h = r["history"]
            a.plot(h["iter"][:snap + 1], h[key][:snap + 1], color=COLORS[r["variant"]], lw=1.4)
            a.plot(h["iter"][snap], h[key][snap], "o", color=COLORS[r["variant"]], ms=5)
        a.set_xlim(0, cfg.iters)
        if key == "test_mse":
            a.set_yscale("log")
            lo = min(min(r["history"][key]) for r in results)
            a.set_ylim(lo * 0.8, zero * 1.3)
            a.axhline(zero, color=ZERO_COLOR, ls="--", lw=1)
        else:
            a.set_ylim(-0.02, 1.02)
        a.set_xlabel("training iteration")
        a.set_ylabel(label)
        a.grid(alpha=0.25)
    fig.tight_layout()
    fig.canvas.draw()
    frame = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return frame


def main(argv=None):
    p = tcs.Parser(description="Render the training animation of timing_counting_spikes.")
    p.add_argument("--snapshot-every", type=tcs.positive_int, default=150,
                   help="iterations between frames (default 150)")
    p.add_argument("--fps", type=tcs.positive_float, default=5.0, help="frames per second (default 5)")
    p.add_argument("--out", default=os.path.join(tcs.SCRATCH, "timing_counting_spikes.gif"),
                   help=f"GIF path (default {os.path.join(tcs.SCRATCH, 'timing_counting_spikes.gif')}, which git "
                        "ignores; the committed GIF is timing_counting_spikes.gif)")
    p.add_argument("--workers", type=tcs.positive_int, default=tcs.WORKERS,
                   help="processes for training (default: one per CPU core)")
    p.add_argument("--snapshots", metavar="NPZ",
                   help="reuse the snapshots in NPZ if it exists (same flags), else train and save them there")
    tcs.add_config_args(p, variants=False, title="{} (of the networks the animation trains)")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        if a.learning == "online":
            raise ValueError("the animation shows batch learning; --learning online is not drawn")
        cfg = tcs.config_from_args(a)
        cfg.eval_every = a.snapshot_every
        cfg.validate()
        if len(cfg.seeds) != 1:
            raise ValueError(f"give one seed, not {list(cfg.seeds)}")
        if not a.out.lower().endswith(".gif"):
            raise ValueError(f"--out {a.out!r} must end in .gif")
        tcs.check_output_path(a.out)
        results = snaps = None             # trained by animate() unless read from --snapshots
        if a.snapshots and os.path.exists(a.snapshots):
            results, snaps = load_snapshots(a.snapshots, cfg)
        elif a.snapshots:
            tcs.check_output_path(a.snapshots)
    except ValueError as e:
        p.error(e)
    _, code = tcs.interruptible(lambda: animate(a, cfg, results, snaps, t0), lambda: "interrupted; nothing written")
    return code or 0


def animate(a, cfg, results, snaps, t0):
    """Train with snapshots unless given them, then render the frames and write the GIF."""
    seed, members = cfg.seeds[0], tcs.members_of(cfg)
    if snaps is not None:
        print(f"reusing the snapshots in {a.snapshots}", flush=True)
    else:
        print(f"training both variants of seed {seed}, a frame every {a.snapshot_every} iterations...", flush=True)
        _, res = tcs.train_parallel(cfg, a.workers, log=print, snapshots=True)
        results = res["members"]
        snaps = snapshot_arrays(results)
        if a.snapshots:
            save_snapshots(a.snapshots, cfg, results, snaps)
    batch = tcs.test_sets(cfg)[seed]
    j, _ = longest_gap(batch)                # every frame shows the hardest held-out sequence
    x = on_sequences(batch, [j], len(members))
    outputs = [tcs.predict({name: snaps[name][s] for name in tcs.PARAMS}, x, tcs.cell_of(cfg))[:, :, 0]
               for s in range(len(snaps["Wx"]))]
    frames = [render(cfg, seed, members, results, s, outputs, batch, j) for s in range(len(outputs))]
    shown = [1000.0 / a.fps] * (len(frames) - 1) + [1000.0 / a.fps + 1000.0]    # the last frame held 1 s more
    tcs.atomic_write(a.out, lambda f: iio.imwrite(f, np.stack(frames), extension=".gif", duration=shown, loop=0))
    print(f"wrote {a.out}: {len(frames)} frames, {os.path.getsize(a.out) / 1e6:.2f} MB, "
          f"{time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:             # e.g. piped into `head`: the reader has gone, so stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
