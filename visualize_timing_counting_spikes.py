"""Static figures for timing_counting_spikes, written to viz/.

    python visualize_timing_counting_spikes.py --from-run results/headline   # saved run, seconds
    python visualize_timing_counting_spikes.py --seed 4                      # retrain both variants
    python visualize_timing_counting_spikes.py --task gts --F 10 --delays 0   # a paper task (its Fig. 8)
    python visualize_timing_counting_spikes.py --from-table results/table3    # every row of a table run

Both variants come from ONE ensemble run (shared initial weights, batches and
test set), loaded from a checkpoint + history written by
`timing_counting_spikes.py --json PREFIX.json --save PREFIX.npz`, or trained here.
The multi-seed figure reads a sweep's results JSON (--sweep), or the run itself if it has several seeds.
"""
import os
import sys
import time

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import timing_counting_spikes as tcs  # noqa: E402

# One colour and one name per variant, in every figure and in the GIF.
COLORS = {"peep": "#1f6fb4", "vanilla": "#d2452b"}
NAMES = {"peep": "peephole LSTM", "vanilla": "vanilla LSTM"}
INPUT_COLOR, TARGET_COLOR, ZERO_COLOR = "0.45", "#2a9d3f", "0.55"
DPI = 120


def save(fig, path):
    """PNG written atomically (temporary file, then rename)."""
    tcs.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
    plt.close(fig)


# ----------------------------------------------------------------------------
# Getting a run: both variants of one seed, with their training history.

def load_run(prefix):
    """PREFIX.npz (checkpoint) + PREFIX.json (history) -> cfg, P, members, member results."""
    cfg, P, members = tcs.load_checkpoint(prefix + ".npz")
    try:
        doc = tcs.read_json(prefix + ".json")
    except ValueError as e:
        raise ValueError(f"the history of {prefix!r}: {e}")
    if tcs.config_from_dict(doc.get("config", {})) != cfg:    # (older files lack newer fields)
        raise ValueError(f"{prefix + '.json'!r} and {prefix + '.npz'!r} come from different runs")
    return cfg, P, members, doc["members"]


def member_index(members, seed, variant):
    try:
        return members.index((seed, variant))
    except ValueError:
        raise ValueError(f"the run has no {variant} model for seed {seed}; it has {members}")


def pick_examples(batch, n):
    """n test sequences whose gaps D spread evenly over the range found in the test set."""
    D = batch.info["t2"] - batch.info["t1"]
    want = np.linspace(D.min(), D.max(), n)
    return [int(np.argmin(np.abs(D - w) + 1e-3 * np.arange(len(D)))) for w in want]


def on_sequences(batch, idx, M):
    """Test sequences idx as an input for all M models: x (T, I, M, len(idx))."""
    x = batch.x[:, :, idx]
    return np.repeat(x[:, :, None, :], M, axis=2)


def mark_events(ax, info, j, label=True):
    """Dotted lines at the two input spikes and a green band at the target step."""
    t1, t2, tt = info["t1"][j], info["t2"][j], info["target"][j]
    for t in (t1, t2):
        ax.axvline(t, color=INPUT_COLOR, lw=0.8, ls=":")
    ax.axvspan(tt - 0.5, tt + 0.5, color=TARGET_COLOR, alpha=0.25, lw=0,
               label="target step" if label else None)


# ----------------------------------------------------------------------------
# Figures. Each takes what it needs and returns a matplotlib figure.

def fig_training_curves(cfg, results, seed):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    for r in results:
        if r["seed"] != seed:
            continue
        h, v = r["history"], r["variant"]
        axes[0].semilogy(h["iter"], h["test_mse"], color=COLORS[v], lw=1.6, label=NAMES[v])
        axes[1].plot(h["iter"], h["solve"], color=COLORS[v], lw=1.6, label=NAMES[v])
    zero = [r for r in results if r["seed"] == seed][0]["final"]["zero_mse"]
    axes[0].axhline(zero, color=ZERO_COLOR, ls="--", lw=1, label=f"all-zero output ({zero:.4f})")
    axes[0].set_ylabel("test MSE per step (log scale)")
    axes[1].set_ylabel("exact-timing solve rate")
    axes[1].set_ylim(-0.02, 1.02)
    for ax, title in zip(axes, ("Test error", "Spikes placed at exactly the right step")):
        ax.set_xlabel("training iteration")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        top = ax.secondary_xaxis("top", functions=(lambda i: i * cfg.batch / 1e3, lambda s: s * 1e3 / cfg.batch))
        top.set_xlabel("sequences seen (thousands)")
        ax.legend(loc="best", fontsize=9)
    fig.suptitle(f"Training on MSD (T={cfg.T}, D in [{cfg.D_min}, {cfg.D_max}], seed {seed}): "
                 f"{cfg.n_test} held-out sequences, evaluated every {cfg.eval_every} iterations", fontsize=10)
    fig.tight_layout()
    return fig


def fig_predictions(cfg, P, members, batch, seed, n=4):
    idx = pick_examples(batch, n)
    y = tcs.predict(P, on_sequences(batch, idx, len(members)), tcs.cell_of(cfg))   # (T, M, n)
    fig, axes = plt.subplots(n, 1, figsize=(11, 2.0 * n), sharex=True)
    t = np.arange(cfg.T)
    for row, (ax, j) in enumerate(zip(axes, idx)):
        info = batch.info
        spikes = np.flatnonzero(batch.x[:, 0, j])
        ax.vlines(spikes, 0, 1, color=INPUT_COLOR, lw=2.5, label="input spikes")
        mark_events(ax, info, j, label=True)
        notes = []
        for v in cfg.variants:
            k = member_index(members, seed, v)
            ax.plot(t, y[:, k, row], color=COLORS[v], lw=1.5, ls="-" if v == "peep" else "--", label=NAMES[v])
            after = t > info["t2"][j]
            peak = int(t[after][np.argmax(y[after, k, row])])
            miss = peak - info["target"][j]
            notes.append(f"{v}: peak at {peak} ({'hit' if miss == 0 else f'{miss:+d} steps'})")
        D = info["t2"][j] - info["t1"][j]
        ax.set_title(f"D = {D}: spikes at {info['t1'][j]} and {info['t2'][j]}, target at {info['target'][j]}"
                     f"  |  " + ", ".join(notes), fontsize=9, loc="left")
        ax.set_ylabel("output")
        ax.set_ylim(-0.35, 1.25)
        ax.grid(alpha=0.25)
        if row == 0:
            ax.legend(loc="upper left", fontsize=8, ncol=4)
    axes[-1].set_xlabel("time step")
    fig.suptitle(f"Held-out test sequences (seed {seed}); the peak after the second spike is the network's answer",
                 fontsize=10)
    fig.tight_layout()
    return fig


def timer_cell(c, info, j):
    """The cell whose state changes most between the second spike and the target."""
    t2, tt = info["t2"][j], info["target"][j]
    return int(np.argmax(np.abs(c[tt, :] - c[t2, :])))


def longest_gap(batch):
    """The test sequence with the longest gap D, the hardest to time: (its index, D)."""
    D = batch.info["t2"] - batch.info["t1"]
    j = int(np.argmax(D))
    return j, int(D[j])


def fig_cell_state(cfg, P, members, batch, seed):
    j, D = longest_gap(batch)
    k = member_index(members, seed, "peep")
    tr = tcs.trace(P, on_sequences(batch, [j], len(members)), tcs.cell_of(cfg))
    c, y = tr["c"][:, :, k, 0], tr["y"][:, k, 0]                           # (T, H), (T,)
    cell = timer_cell(c, batch.info, j)
    t = np.arange(cfg.T)
    fig, axes = plt.subplots(3, 1, figsize=(11, 7.2), sharex=True, gridspec_kw={"height_ratios": [1, 3, 1.4]})
    axes[0].vlines(np.flatnonzero(batch.x[:, 0, j]), 0, 1, color=INPUT_COLOR, lw=2.5, label="input spikes")
    mark_events(axes[0], batch.info, j)
    axes[0].set_yticks([])
    axes[0].set_title(f"Input: spikes at t1={batch.info['t1'][j]} and t2={batch.info['t2'][j]} (D={D}); "
                      f"target at t1+2D={batch.info['target'][j]}", fontsize=10, loc="left")
    axes[0].legend(loc="upper right", fontsize=8)
    cmap = plt.get_cmap("tab10")
    for h in range(c.shape[1]):
        axes[1].plot(t, c[:, h], lw=2.8 if h == cell else 1.0, alpha=1.0 if h == cell else 0.6,
                     color=cmap(h % 10), label=f"cell {h}" + ("  (largest change t2 -> target)" if h == cell else ""))
    mark_events(axes[1], batch.info, j, label=False)
    axes[1].set_ylabel("cell state c_t")
    axes[1].set_title("Peephole LSTM cell states c_t (thick: the cell whose state changes most from t2 to the "
                      "target)", fontsize=10, loc="left")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    axes[1].grid(alpha=0.25)
    axes[2].plot(t, y, color=COLORS["peep"], lw=1.6, label=NAMES["peep"] + " output")
    mark_events(axes[2], batch.info, j, label=False)
    axes[2].set_ylabel("output y_t")
    axes[2].set_xlabel("time step")
    axes[2].legend(loc="upper left", fontsize=8)
    axes[2].grid(alpha=0.25)
    fig.tight_layout()
    return fig


def fig_gates(cfg, P, members, batch, seed):
    j, D = longest_gap(batch)
    tr = tcs.trace(P, on_sequences(batch, [j], len(members)), tcs.cell_of(cfg))
    fig, axes = plt.subplots(3, 2, figsize=(12, 7.0), sharex=True, sharey=True, layout="constrained")
    for col, v in enumerate(cfg.variants):
        k = member_index(members, seed, v)
        for row, (g, name) in enumerate((("i", "input gate i_t"), ("f", "forget gate f_t"), ("o", "output gate o_t"))):
            ax = axes[row, col]
            im = ax.imshow(tr[g][:, :, k, 0].T, aspect="auto", cmap="viridis", vmin=0, vmax=1,
                           interpolation="nearest", extent=(-0.5, cfg.T - 0.5, cfg.hidden - 0.5, -0.5))
            # events as ticks above the map, so that no line hides the one-step gate changes they mark
            info = batch.info
            ax.plot([info["t1"][j], info["t2"][j]], [1.0, 1.0], "v", color=INPUT_COLOR, ms=7,
                    transform=ax.get_xaxis_transform(), clip_on=False)
            ax.plot([info["target"][j]], [1.0], "v", color=TARGET_COLOR, ms=8,
                    transform=ax.get_xaxis_transform(), clip_on=False)
            ax.set_title(f"{NAMES[v]}: {name}", fontsize=10, color=COLORS[v], pad=9)
            if col == 0:
                ax.set_ylabel("cell")
        axes[-1, col].set_xlabel("time step")
    fig.colorbar(im, ax=axes, shrink=0.8, label="gate activation")
    fig.suptitle(f"Gate activations on one held-out sequence (D={D}; triangles above each map: input spikes "
                 "in grey, the target step in green)",
                 fontsize=10)
    return fig


def fig_peepholes(cfg, P, members, seed):
    k = member_index(members, seed, "peep")
    init = tcs.init_member(cfg, seed, "peep")
    H = cfg.hidden
    fig, ax = plt.subplots(figsize=(10, 3.8))
    w = 0.26
    shades = {"p_i": "#7fb2de", "p_f": "#2f7dc4", "p_o": "#0b3d6e"}
    for n, name in enumerate(tcs.PEEPS):
        x = np.arange(H) + (n - 1) * w
        ax.bar(x, P[name][k], w, color=shades[name], label=f"{name} trained")
        ax.scatter(x, init[name], marker="_", s=120, color="black", zorder=3,
                   label="initial value" if n == 0 else None)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(np.arange(H))
    ax.set_xticklabels([f"cell {h}" for h in range(H)])
    ax.set_ylabel("peephole weight")
    ax.set_title("Trained peephole weights: p_i, p_f read c_{t-1}; p_o reads the new c_t "
                 f"(seed {seed})", fontsize=10)
    ax.legend(fontsize=8, ncol=4)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def fig_weights(cfg, P, members, seed):
    H = cfg.hidden
    fig, axes = plt.subplots(2, 2, figsize=(12, 5.6), gridspec_kw={"height_ratios": [1, H]},
                             layout="constrained")
    lim = max(np.abs(P[n][member_index(members, seed, v)]).max() for n in ("Wx", "Wh") for v in cfg.variants)
    for col, v in enumerate(cfg.variants):
        k = member_index(members, seed, v)
        for row, name in enumerate(("Wx", "Wh")):
            ax = axes[row, col]
            im = ax.imshow(P[name][k], cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
            for g in range(1, 4):
                ax.axvline(g * H - 0.5, color="black", lw=1)
            ax.set_yticks(range(P[name].shape[1]))
            ax.set_yticklabels(["x"] if name == "Wx" else [f"h{h}" for h in range(H)], fontsize=7)
            if row == 0:
                ax.set_title(f"{NAMES[v]}\n{name}: input -> gates", fontsize=10, color=COLORS[v])
                ax.set_xticks([g * H + (H - 1) / 2 for g in range(4)])
                ax.set_xticklabels([f"{gname} gate" if gname != "g" else "g (cell input)" for gname in tcs.GATES])
                ax.xaxis.set_ticks_position("top")
            else:
                ax.set_title(f"{name}: hidden -> gates", fontsize=10)
                ax.set_xlabel("gate column (i | f | g | o, H each)")
    fig.colorbar(im, ax=axes, shrink=0.8, label="weight")
    fig.suptitle(f"Trained gate weight matrices (seed {seed}); same colour scale for both variants", fontsize=10)
    return fig


SWEEP_LABELS = 8         # seeds labelled in the multi-seed figure (those whose pair differs most)


def fig_sweep(doc):
    cfg = tcs.config_from_dict(doc["config"])
    rows = {}
    for m in doc["members"]:
        rows.setdefault(m["seed"], {})[m["variant"]] = m
    seeds = sorted(rows)
    panels = [("final", "solve", "final exact solve rate"), ("final", "test_mse", "final test MSE"),
              ("tail", "solve", f"solve rate, mean of last {cfg.tail_evals} evaluations"),
              ("tail", "test_mse", f"test MSE, mean of last {cfg.tail_evals} evaluations")]
    fig, axes = plt.subplots(1, 4, figsize=(14, 4.3))
    zero = doc["members"][0]["final"]["zero_mse"]
    for ax, (part, key, title) in zip(axes, panels):
        vals = {v: np.array([rows[s][v][part][key] for s in seeds]) for v in tcs.VARIANTS}
        for n, s in enumerate(seeds):
            ax.plot([0, 1], [vals["peep"][n], vals["vanilla"][n]], color="0.6", lw=0.9, zorder=1)
        for x, v in enumerate(tcs.VARIANTS):
            ax.scatter(np.full(len(seeds), x), vals[v], color=COLORS[v], s=28, zorder=2)
            ax.errorbar(x - 0.12, vals[v].mean(), yerr=vals[v].std(ddof=1), fmt="D", color=COLORS[v],
                        ms=7, capsize=4, zorder=3)
        if key == "test_mse":
            ax.axhline(zero, color=ZERO_COLOR, ls="--", lw=1, label="all-zero output")
            ax.legend(fontsize=8, loc="upper left")
        # seed labels beside the vanilla points, nudged apart (in axis height) where points crowd; of
        # many seeds only the pairs that differ most, or the labels would outgrow the axes
        ax.autoscale_view()
        lo, hi = ax.get_ylim()
        step = 0.045 * (hi - lo)
        y_prev = -np.inf
        shown = np.argsort(-np.abs(vals["peep"] - vals["vanilla"]))[:SWEEP_LABELS]
        for n in [n for n in np.argsort(vals["vanilla"]) if n in shown]:
            y_lab = max(vals["vanilla"][n], y_prev + step)
            ax.annotate(str(seeds[n]), xy=(1.0, vals["vanilla"][n]), xytext=(1.1, y_lab), fontsize=7,
                        va="center", color="0.35", arrowprops=dict(arrowstyle="-", lw=0.5, color="0.7"))
            y_prev = y_lab
        ax.set_ylim(lo, max(hi, y_prev + step))
        ax.set_xticks([0, 1])
        ax.set_xticklabels([NAMES[v] for v in tcs.VARIANTS], fontsize=9)
        ax.set_xlim(-0.4, 1.3)  # room for the seed labels
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("solve rate (exact step)")
    axes[1].set_ylabel("MSE per step")
    fig.suptitle(f"{len(seeds)} seeds, both variants per seed sharing weights and data (grey lines pair them; "
                 f"diamonds: mean +- std over seeds"
                 + (f"; labelled: the {SWEEP_LABELS} seeds whose pair differs most" if len(seeds) > SWEEP_LABELS
                    else "") + ")", fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------
# Online results at a glance: perfect fraction and training streams per row, variant and
# initial gate biases (the probe compares readings; a table has one).

READING_COLORS = ["#6c757d", "#1f6fb4", "#e0a100", "#2a9d3f"]


SUMMARY_PER_ROW = 7       # table rows per row of panels in the online summary (keeps it under 2000 px wide)


def fig_online_summary(docs, sources):
    """Per table row (x), per reading of the gate biases and variant (bars): the fraction of
    networks perfect with its 95 % Wilson interval, and the training streams to perfect (median,
    quartiles as the bar); the paper's numbers as black diamonds on top (filled: peephole,
    open: vanilla; on the streams, with its std). Several rows of panels for a long table."""
    rows, readings = {}, []
    outputs = {(r["label"], r["config"]["readout"]) for d in docs for r in d["rows"]}
    for doc in docs:
        for r in doc["rows"]:
            gb = tuple(r["config"].get("gate_biases", ()))
            if gb not in readings:
                readings.append(gb)
            twin = any(o != r["config"]["readout"] for lab, o in outputs if lab == r["label"])
            label = r["label"] + (f"\n{r['config']['readout']} output" if twin else "")   # Table 1 vs Table 2
            rows.setdefault(label, {})[gb] = r
    labels = list(rows)
    chunks = [labels[k:k + SUMMARY_PER_ROW] for k in range(0, len(labels), SUMMARY_PER_ROW)]
    bars = [(gb, v) for gb in readings for v in ("peep", "vanilla")]
    width = 0.7 / len(bars)                   # the bars of a row span +-0.35; the paper's marks sit outside
    fig, axes = plt.subplots(2 * len(chunks), 1, figsize=(1.5 * len(chunks[0]) + 4.5, 5.2 * len(chunks)),
                             squeeze=False)
    axes = axes[:, 0]
    streams = []                              # every count drawn on the stream axes, for one shared range
    for c, chunk in enumerate(chunks):
        top, low = axes[2 * c], axes[2 * c + 1]
        for b, (gb, v) in enumerate(bars):
            color = READING_COLORS[readings.index(gb) % len(READING_COLORS)] if len(readings) > 1 else COLORS[v]
            name = (f"biases {'/'.join(f'{x:+g}' for x in gb)}, " if len(readings) > 1 else "") + NAMES[v]
            for x, label in enumerate(chunk):
                r = rows[label].get(gb)
                if r is None or v not in r["ours"]:
                    continue
                s = r["ours"][v]
                at = x - 0.35 + (b + 0.5) * width
                style = dict(color=color, hatch="//" if v == "vanilla" else None,
                             edgecolor="white" if v == "peep" else color, fill=v == "peep", lw=0.8)
                frac = s["perfect"] / s["n"]
                lo, hi = s.get("wilson95") or (frac, frac)
                top.bar(at, frac, width, label=name if x == 0 else None, **style)
                top.errorbar(at, frac, yerr=[[frac - lo], [hi - frac]], color="0.2", lw=0.8, capsize=2)
                q = s.get("streams_quartiles")
                if q:
                    streams += [q[0] / 1e3, q[2] / 1e3]
                    low.bar(at, q[2] / 1e3 - q[0] / 1e3, width, bottom=q[0] / 1e3, **style)
                    low.plot([at - width / 2, at + width / 2], [q[1] / 1e3] * 2, color="0.1", lw=1.2)
        # the paper's numbers once per row and variant, drawn over our bars so none hides them
        for x, label in enumerate(chunk):
            paper = next(iter(rows[label].values()))["paper"]
            if not paper:
                continue
            for v, dx, face in (("peep", -0.42, "black"), ("vanilla", 0.42, "white")):
                mark = dict(marker="D", ms=6, mfc=face, mec="black", mew=1.2, ls="none", zorder=6, clip_on=False)
                if isinstance(paper[v][0], (int, float)):
                    top.plot(x + dx, paper[v][0] / 100, **mark)
                ms = tcs.paper_mean_std(paper[v][1])
                if ms is not None:
                    m, sd = ms
                    streams += [m - sd if m > sd else m, m + sd]
                    low.errorbar(x + dx, m, yerr=sd, color="black", capsize=3, lw=1.0, **mark)
        top.set_ylabel("fraction perfect\n(95 % Wilson)")
        top.set_ylim(0, 1.05)
        low.set_ylabel("training streams to\nperfect [10^3]")
        for ax in (top, low):
            ax.set_xticks(range(len(chunk)))
            ax.set_xlim(-0.5, len(chunk) - 0.5)
            ax.grid(axis="y", alpha=0.3)
            for x in range(1, len(chunk)):          # a table row's bars and the paper's marks between two lines
                ax.axvline(x - 0.5, color="0.8", lw=0.8)
        top.set_xticklabels([])
        low.set_xticklabels(chunk, rotation=15, ha="right", fontsize=8)
    for v, face in (("peep", "black"), ("vanilla", "white")):
        axes[0].plot([], [], marker="D", mfc=face, mec="black", ls="none", label=f"the paper, {NAMES[v]}")
    axes[1].plot([], [], marker="D", mfc="black", mec="black", ls="none", label="the paper: mean +- std")
    axes[1].plot([], [], "-", color="0.1", lw=2.5, label="ours: median (bar: quartiles)")
    for k, ax in enumerate(axes[1::2]):
        if streams:
            ax.set_yscale("log")
            ax.set_ylim(min(streams) / 1.6, max(streams) * 1.6)
        else:                                 # no network perfect and no count from the paper
            ax.text(0.5, 0.5, "no network perfect", transform=ax.transAxes, ha="center", color="0.4")
            ax.set_yticks([])
    outside_legend(axes[0])
    outside_legend(axes[1])
    seeds = sorted({m["seed"] for d in docs for r in d["rows"] for m in r["members"]})
    counts = "/".join(sorted({str(r["ours"][v]["n"]) for d in docs for r in d["rows"] for v in r["ours"]}))
    starts = sorted({tcs.start_of(r) for d in docs for r in d["rows"]})
    start = f", initial gate biases {tcs.start_text(starts[0])}" if len(starts) == 1 else ""
    fig.suptitle(f"The paper's own learning algorithm{start}, {tcs.seeds_text(seeds)} (networks per row and variant: "
                 f"{counts})\nfrom {', '.join(sources)}", fontsize=9)
    fig.tight_layout()
    return fig


MAP_COLUMNS = 4           # heat maps per row of the start map's figure: two task rows, each both variants


def fig_start_map(doc, source):
    """The start map: per task row, for the peephole and the vanilla networks, a heat map of
    forget-gate bias (rows) by output-gate bias (columns), input bias 0: the fraction perfect
    as colour, 'k/n' and the median streams to perfect relative to the paper's peephole mean
    as text; a thick frame where the start reproduces the row for the peephole networks by the
    rule (docs/online.md). Starts off the grid (the printed one) are named in each title."""
    cells = tcs.map_cells(doc)
    n = 2 * len(cells)
    nrows = -(-n // MAP_COLUMNS)
    fig, axes = plt.subplots(nrows, MAP_COLUMNS, figsize=(4.0 * MAP_COLUMNS, 3.0 * nrows), squeeze=False,
                             layout="constrained")
    image = None
    for k, (label, starts) in enumerate(cells.items()):
        outs = {f: {s[2] for s in starts if s[0] == 0.0 and s[1] == f} for f in {s[1] for s in starts}}
        grid = [s for s in starts if s[0] == 0.0 and len(outs[s[1]]) > 1]     # a lone start: named in the title
        forget, output = sorted({s[1] for s in grid}), sorted({s[2] for s in grid})
        off = [s for s in starts if s not in grid]
        for j, v in enumerate(tcs.VARIANTS):
            ax = axes.flat[2 * k + j]
            frac = np.full((len(forget), len(output)), np.nan)
            for s in grid:
                r, o = forget.index(s[1]), output.index(s[2])
                row = starts[s]
                ours = row["ours"][v]
                frac[r, o] = ours["perfect"] / ours["n"]
                ok, _, ratio = tcs.reproduces(row, v) if v == "peep" else (False, None, tcs.reproduces(row, "peep")[2])
                q = ours.get("streams_quartiles")
                mean = tcs.paper_mean_std(row["paper"]["peep"][1])
                rel = "" if q is None or mean is None else f"\n{q[1] / (1e3 * mean[0]):.2g}x"
                ax.text(o, r, f"{ours['perfect']}/{ours['n']}{rel}", ha="center", va="center", fontsize=6.5,
                        color="white" if frac[r, o] < 0.55 else "black")
                if ok:
                    ax.add_patch(plt.Rectangle((o - 0.47, r - 0.47), 0.94, 0.94, fill=False, lw=2.2, ec="#e0a100"))
            image = ax.imshow(frac, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
            ax.set_xticks(range(len(output)))
            ax.set_xticklabels([f"{o:+g}" for o in output], fontsize=7)
            ax.set_yticks(range(len(forget)))
            ax.set_yticklabels([f"{f:+g}" for f in forget], fontsize=7)
            ax.set_xlabel("output-gate bias", fontsize=7)
            ax.set_ylabel("forget-gate bias", fontsize=7)
            extra = "; ".join(f"{tcs.start_text(s)}: {starts[s]['ours'][v]['perfect']}/{starts[s]['ours'][v]['n']}"
                              for s in off)
            ax.set_title(f"{label}\n{NAMES[v]}" + (f" (start {extra})" if extra else ""), fontsize=7.5)
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, shrink=0.5, label="fraction perfect")
    seeds = sorted({m["seed"] for r in doc["rows"] for m in r["members"]})
    fig.suptitle(f"The start map under the paper's algorithm, {tcs.seeds_text(seeds)} (input-gate bias 0; text: "
                 "perfect networks and median streams / the paper's peephole mean; gold frame: the start "
                 f"reproduces the row for peephole networks)\nfrom {source}", fontsize=9)
    return fig


# ----------------------------------------------------------------------------
# The paper's tasks: test runs like its Figures 5, 6, 8 and 10-12.

def paper_figure(cfg, P, results, tests, periods=4):
    """Per variant, the lowest seed found perfect (else the lowest seed, and the title says so)
    on its test streams. Rows: target and output; cell state s_c and cell output y_c; gates."""
    chosen = []
    for v in cfg.variants:
        ms = [(k, m) for k, m in enumerate(results) if m["variant"] == v]
        won = [(k, m) for k, m in ms if m["streams"] is not None]
        chosen.append((won or ms)[0] + (bool(won),))
    # what to show: the first periods of the first test stream; for NMSD, whose streams are
    # one period each, every test stream one after the other (each from the zero state)
    ends = tests[cfg.seeds[0]].info["ends"]
    if cfg.task == "nmsd":
        segments = [(j, int(np.flatnonzero(ends[:, j])[0]) + 1) for j in range(ends.shape[1])]
    else:
        e0 = np.flatnonzero(ends[:, 0])
        segments = [(0, int(e0[min(periods, len(e0)) - 1]) + 1)]
    L = sum(n for _, n in segments)
    fig, axes = plt.subplots(3, len(chosen), figsize=(7.6 * len(chosen), 7.2), sharex=True, squeeze=False)
    t = np.arange(L)
    for col, (k, m, perfect) in enumerate(chosen):
        sub = tcs.member(P, k)
        parts = []
        for j, n in segments:
            x, d, mask = tcs.stack_inputs(tests, [(m["seed"], m["variant"])], 0, n)
            tr = tcs.trace(sub, x[:, :, :, j:j + 1], tcs.cell_of(cfg))
            parts.append((x[:, 0, 0, j] if x.shape[1] else np.zeros(n), d[:, 0, j],
                          np.ones(n, bool) if mask is None else mask[:, 0, j] > 0, tr))
        xin = np.concatenate([p[0] for p in parts])
        dd = np.concatenate([p[1] for p in parts])
        has = np.concatenate([p[2] for p in parts])
        tr = {key: np.concatenate([p[3][key][:, 0, 0, 0] for p in parts]) for key in ("c", "h", "i", "f", "o")}
        y = np.concatenate([p[3]["y"][:, 0, 0] for p in parts])
        for row in range(3):
            for start in np.cumsum([n for _, n in segments])[:-1]:
                axes[row, col].axvline(start - 0.5, color=ZERO_COLOR, ls=":", lw=1)
        ax = axes[0, col]
        if cfg.task in ("nmsd", "cmsd"):
            ax.vlines(t[xin > 0], 0, 1, color=INPUT_COLOR, lw=1, label="input spike")
        if cfg.task == "gts":
            ax.step(t, xin / max(max(cfg.delays), 1), where="mid", color=INPUT_COLOR, lw=1,
                    label="input I(n) (scaled)")
        ax.plot(t[has], dd[has], "o" if cfg.task in ("nmsd", "cmsd") else "-", color=TARGET_COLOR,
                ms=5, lw=1.5, label="target")
        ax.plot(t, y, color=COLORS[m["variant"]], lw=1.5, label="output y")
        ax.set_title(f"{NAMES[m['variant']]}, seed {m['seed']}: "
                     + (f"perfect after {m['streams']} streams" if perfect else
                        f"not perfect ({m['final']['periods']:.0f} test periods)" if "final" in m else
                        f"not perfect (best test stream: {m['test_best']} period{'' if m['test_best'] == 1 else 's'})"), fontsize=10)
        ax.set_ylabel("target / output")
        outside_legend(ax)
        ax = axes[1, col]
        ax.plot(t, tr["c"], color="0.2", lw=1.5, label="cell state s_c")
        ax.plot(t, tr["h"], color=COLORS[m["variant"]], lw=1.5, ls="--", label="cell output y_c")
        ax.axhline(0, color=ZERO_COLOR, lw=0.5)
        ax.set_ylabel("cell")
        outside_legend(ax)
        ax = axes[2, col]
        for gate, color in (("i", "#2a9d3f"), ("f", "#8c564b"), ("o", "#9467bd")):
            ax.plot(t, tr[gate], color=color, lw=1.3,
                    label={"i": "input gate", "f": "forget gate", "o": "output gate"}[gate])
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel("gate activation")
        ax.set_xlabel("time step (streams one after another)" if cfg.task == "nmsd" else
                      "time step of the test stream")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        outside_legend(ax)
    shown = ("every test stream, each from the zero state" if cfg.task == "nmsd" else
             f"the first {periods} periods of the first test stream")
    how = (f"{cfg.grad}" if cfg.learning == "batch" else "online RTRL") + ("" if cfg.forget else ", no forget gate") \
        + (f", gate biases {tcs.start_text(cfg.gate_biases)}" if cfg.cell == "paper" else "")
    fig.suptitle(f"{tcs.row_label(cfg)}: test run of trained networks ({cfg.cell} cell, H={cfg.hidden}, "
                 f"{how}); {shown}", fontsize=11)
    fig.tight_layout()
    return fig


def outside_legend(ax):
    """A legend right of the axes, where it hides no data."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def load_table(prefix):
    """PREFIX.json + PREFIX.npz written by timing_counting_spikes.py --table --json --save
    -> [(cfg, P, member results)] per row."""
    doc, params = tcs.read_table_run(prefix)
    try:
        return [(tcs.config_from_dict(r["config"]), P, r["members"]) for r, P in zip(doc["rows"], params)]
    except (KeyError, TypeError) as e:
        raise ValueError(f"the table run {prefix!r} is damaged ({tcs.what_is_wrong(e)})")


def write_paper_figure(outdir, cfg, P, results):
    """The test-run figure of one paper-task row, named after the row."""
    name = (f"pfg_{cfg.func}_F{cfg.F}.png" if cfg.task == "pfg" else
            f"{cfg.task}_F{cfg.F}_I{''.join(map(str, cfg.delays))}.png")
    path = os.path.join(outdir, name)
    save(paper_figure(cfg, P, results, tcs.test_sets(cfg)), path)
    print(f"wrote {path}")


# ----------------------------------------------------------------------------

def main(argv=None):
    p = tcs.Parser(description="Write the static figures of timing_counting_spikes into a folder.",
                                epilog="Without --from-run it trains both variants of --seed in one ensemble run.")
    p.add_argument("--from-run", metavar="PREFIX",
                   help="reuse PREFIX.npz + PREFIX.json written by timing_counting_spikes.py --save/--json "
                        "(e.g. results/headline) instead of training")
    p.add_argument("--from-table", metavar="PREFIX",
                   help="one test-run figure per row of a saved table run (PREFIX.json + PREFIX.npz from "
                        "timing_counting_spikes.py --table N --json PREFIX.json --save PREFIX.npz)")
    p.add_argument("--online-summary", nargs="+", metavar="JSON",
                   help="one figure, OUTDIR/online_summary.png, of online results files (tables, shards, the "
                        "gate-bias probe): fraction perfect and training streams per row, variant and gate biases")
    p.add_argument("--start-map", metavar="JSON",
                   help="one figure, OUTDIR/start_map.png, of a start map's results file (--table map --json): "
                        "per task row and variant a heat map of forget by output gate bias")
    p.add_argument("--sweep", metavar="JSON",
                   help="draw the paired multi-seed figure from this results file (e.g. results/sweep.json); "
                        "without it, from the run itself if it has several seeds")
    p.add_argument("--outdir", default=os.path.join(tcs.SCRATCH, "viz"),
                   help=f"folder for the PNGs (default {os.path.join(tcs.SCRATCH, 'viz')}, which git ignores; "
                        "the committed figures are in viz/)")
    p.add_argument("--workers", type=tcs.positive_int, default=tcs.WORKERS,
                   help="processes when training (default: one per CPU core)")
    tcs.add_config_args(p, variants=False, title="when training (without --from-run or --from-table): {}")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        given = tcs.explicit_fields(a)
        if a.from_run and a.from_table:
            raise ValueError("--from-run and --from-table draw different things; give one")
        if given and (a.from_run or a.from_table):
            raise ValueError(f"{'--from-run' if a.from_run else '--from-table'} draws a saved run; drop "
                             + ", ".join(map(tcs.flag, sorted(given))))
        if given.get("learning") == "online":
            raise ValueError("this script trains with batch learning; draw an online table with "
                             "--from-table PREFIX of a --learning online --table run")
    except ValueError as e:
        p.error(e)
    if a.start_map:
        try:
            if a.from_run or a.from_table or a.online_summary or given:
                raise ValueError("--start-map draws a saved map; give no other source or settings")
            doc = load_online_doc(a.start_map)
            if doc["table"] != "map":
                raise ValueError(f"--start-map {a.start_map!r} is the results file of table {doc['table']}, "
                                 "not of --table map")
            path = os.path.join(a.outdir, "start_map.png")
            tcs.check_output_path(path)
        except ValueError as e:
            p.error(e)
        return finish(lambda: (save(fig_start_map(doc, a.start_map), path), print(f"wrote {path}")), t0)
    if a.online_summary:
        try:
            if a.from_run or a.from_table or given:
                raise ValueError("--online-summary draws saved online results; give no other source or settings")
            docs = [load_online_doc(path) for path in a.online_summary]
            tcs.check_output_path(os.path.join(a.outdir, "online_summary.png"))
        except ValueError as e:
            p.error(e)
        path = os.path.join(a.outdir, "online_summary.png")
        return finish(lambda: (save(fig_online_summary(docs, a.online_summary), path), print(f"wrote {path}")), t0)
    if a.from_table:
        try:
            rows = load_table(a.from_table)
            tcs.check_output_path(os.path.join(a.outdir, "x.png"))
        except ValueError as e:
            p.error(e)
        def draw_rows():
            for cfg, P, results in rows:
                write_paper_figure(a.outdir, cfg, P, results)
        return finish(draw_rows, t0)
    try:
        P = results = None                 # trained by draw() unless read from a run
        if a.from_run:
            cfg, P, _, results = load_run(a.from_run)
        else:
            cfg = tcs.config_from_args(a)
            cfg.validate()
        if os.path.exists(a.outdir) and not os.path.isdir(a.outdir):
            raise ValueError(f"--outdir {a.outdir!r} exists and is not a folder")
        tcs.check_output_path(os.path.join(a.outdir, "training_curves.png"))
        sweep = load_sweep(a.sweep) if a.sweep else None
    except ValueError as e:
        p.error(e)
    return finish(lambda: draw(a, cfg, P, results, sweep), t0)


def load_online_doc(path):
    """An online results file (--learning online --json, or --merge); ValueError naming it otherwise."""
    doc = tcs.read_json(path)
    if not isinstance(doc, dict) or doc.get("learning") != "online":
        raise ValueError(f"{path!r} is not an online results file (--learning online --json)")
    return doc


def load_sweep(path):
    """The results file of a multi-seed MSD run (--seeds ... --json); ValueError naming the
    file and what it is instead."""
    try:
        doc = tcs.read_json(path)
    except ValueError as e:
        raise ValueError(f"--sweep: {e}")
    what = ("a table's results" if isinstance(doc, dict) and "rows" in doc else
            f"a JSON {tcs.JSON_KIND.get(type(doc), 'value')}" if not isinstance(doc, dict) else
            None if {"config", "members"} <= set(doc) else "a JSON object of another kind")
    if what is None:
        cfg = tcs.config_from_dict(doc["config"])
        what = None if cfg.task == "msd" else f"a run of the paper's task {cfg.task}"
    if what:
        raise ValueError(f"--sweep {path!r} is {what}, not the results of a multi-seed MSD run (--seeds ... --json)")
    return doc


def finish(work, t0):
    """Run work() as the main CLI runs training: Ctrl-C or SIGTERM ends every worker and prints
    one line (exit 130/143); each figure is written whole or not at all."""
    _, code = tcs.interruptible(work, lambda: "interrupted; every figure written so far is complete, "
                                              "none half-written")
    if not code:
        print(f"done in {time.perf_counter() - t0:.1f}s")
    return code or 0


def draw(a, cfg, P, results, sweep):
    """Train both variants unless given their weights and results, then write the figures."""
    if P is None:
        print(f"training both variants of seed(s) {list(cfg.seeds)} ({cfg.iters} iterations)...", flush=True)
        P, res = tcs.train_parallel(cfg, a.workers, log=print if cfg.task == "msd" else tcs.quiet)
        results = res["members"]
    members = tcs.members_of(cfg)
    if cfg.task != "msd":
        write_paper_figure(a.outdir, cfg, P, results)
        return
    seed = cfg.seeds[0]
    tests = tcs.test_sets(cfg)
    figures = {
        "training_curves.png": lambda: fig_training_curves(cfg, results, seed),
        "predictions.png": lambda: fig_predictions(cfg, P, members, tests[seed], seed),
        "cell_state.png": lambda: fig_cell_state(cfg, P, members, tests[seed], seed),
        "gates.png": lambda: fig_gates(cfg, P, members, tests[seed], seed),
        "peephole_weights.png": lambda: fig_peepholes(cfg, P, members, seed),
        "weights.png": lambda: fig_weights(cfg, P, members, seed),
    }
    source = {name: f"seed {seed} of this run" for name in figures}
    if sweep is None and len(cfg.seeds) > 1:
        sweep, a.sweep = {"config": tcs.config_dict(cfg), "members": results}, "this run"
    if sweep is not None:
        figures["sweep.png"], source["sweep.png"] = (lambda: fig_sweep(sweep)), f"every seed of {a.sweep}"
    else:
        print("sweep.png skipped: the run has one seed; --sweep JSON draws it from a multi-seed run "
              "(e.g. results/sweep.json)")
    for name, make in figures.items():
        path = os.path.join(a.outdir, name)
        save(make(), path)
        print(f"wrote {path} ({source[name]})")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:             # e.g. piped into `head`: the reader has gone, so stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
