"""End-to-end runs of the two companion scripts on a tiny config, into a temporary folder."""
import json
import os
import signal
import struct
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import make_timing_counting_spikes_gif as gif  # noqa: E402
import timing_counting_spikes as tcs  # noqa: E402
import visualize_timing_counting_spikes as viz  # noqa: E402
from visualize_timing_counting_spikes import COLORS  # noqa: E402

TINY = ["--T", "40", "--D-min", "5", "--D-max", "12", "--hidden", "4", "--iters", "40",
        "--eval-every", "10", "--n-test", "16", "--batch", "8"]
FIGURES = ["training_curves.png", "predictions.png", "cell_state.png", "gates.png",
           "peephole_weights.png", "weights.png", "sweep.png"]


def run(script, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny run saved the way README's commands save theirs: PREFIX.json + PREFIX.npz, two seeds."""
    d = tmp_path_factory.mktemp("run")
    prefix = str(d / "tiny")
    r = run("timing_counting_spikes.py", *TINY, "--seeds", "0-1", "--json", prefix + ".json", "--save", prefix + ".npz")
    assert r.returncode == 0, r.stderr
    return prefix


def color_pixels(path, color):
    """Pixels of a PNG within 10 levels of a '#rrggbb' color in every channel."""
    img = iio.imread(path)[..., :3].astype(int)
    rgb = np.array([int(color[k:k + 2], 16) for k in (1, 3, 5)])
    return int(np.sum(np.all(np.abs(img - rgb) <= 10, axis=-1)))


# the figures that draw both variants, each in its color
BOTH_VARIANTS = ("training_curves.png", "predictions.png", "sweep.png")


def check_figures(outdir, names=FIGURES):
    for name in names:
        w, h = png_size(os.path.join(outdir, name))
        assert 600 <= w <= 2400 and 300 <= h <= 1600, f"{name}: {w}x{h}"
        if name in BOTH_VARIANTS:
            for v, color in COLORS.items():
                assert color_pixels(os.path.join(outdir, name), color) >= 50, f"{name} does not draw {v}"
    assert not [n for n in os.listdir(outdir) if n.startswith(".tmp-")], "temporary file left behind"


def test_visualize_trains_and_writes_every_figure(tmp_path, tiny_run):
    out = tmp_path / "viz"
    r = run("visualize_timing_counting_spikes.py", *TINY, "--seed", "0", "--outdir", str(out),
            "--sweep", tiny_run + ".json")
    assert r.returncode == 0, r.stderr
    check_figures(out)


def test_visualize_from_a_saved_run(tmp_path, tiny_run):
    """Every figure says where it came from; the paired figure of a multi-seed run is drawn
    from that run, and a one-seed run without --sweep skips it and says so."""
    out = tmp_path / "viz"
    r = run("visualize_timing_counting_spikes.py", "--from-run", tiny_run, "--outdir", str(out))
    assert r.returncode == 0, r.stderr
    assert "training both variants" not in r.stdout
    assert "sweep.png (every seed of this run)" in r.stdout and "predictions.png (seed 0 of this run)" in r.stdout
    check_figures(out)
    one = str(tmp_path / "one")
    r = run("timing_counting_spikes.py", *TINY, "--seed", "1", "--json", one + ".json", "--save", one + ".npz")
    assert r.returncode == 0, r.stderr
    r = run("visualize_timing_counting_spikes.py", "--from-run", one, "--outdir", str(tmp_path / "v1"))
    assert r.returncode == 0, r.stderr
    assert "sweep.png skipped: the run has one seed" in r.stdout
    check_figures(tmp_path / "v1", [n for n in FIGURES if n != "sweep.png"])
    assert not (tmp_path / "v1" / "sweep.png").exists()
    r = run("visualize_timing_counting_spikes.py", "--from-run", one, "--sweep", tiny_run + ".json",
            "--outdir", str(tmp_path / "v2"))
    assert r.returncode == 0, r.stderr
    assert f"sweep.png (every seed of {tiny_run}.json)" in r.stdout


def test_table_run_and_its_figures(tmp_path):
    """--table with a tiny budget writes JSON + weights; --from-table draws one figure per row;
    --task draws one after training."""
    prefix = str(tmp_path / "t3")
    r = run("timing_counting_spikes.py", "--table", "3", "--seeds", "0", "--iters", "100",
            "--test-periods", "20", "--json", prefix + ".json", "--save", prefix + ".npz")
    assert r.returncode == 0, r.stderr
    doc = json.loads(open(prefix + ".json").read())
    table = [line for line in r.stdout.splitlines() if line.startswith("| PFG")]
    assert len(table) == 12 and len(doc["rows"]) == 6
    for k, row in enumerate(doc["rows"]):
        assert row["paper"] == {v: list(p) for v, p in tcs.TABLES["3"]["rows"][k]["paper"].items()}
        for v, line in zip(("vanilla", "peep"), table[2 * k:2 * k + 2]):
            ms = [m for m in row["members"] if m["variant"] == v]
            won = sum(m["streams"] is not None for m in ms)
            assert len(ms) == 1 and row["ours"][v]["perfect"] == won and all(
                (m["streams"] is not None) == (m["final"]["periods"] >= 20) for m in ms)
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert cells[:5] == [row["label"], v, str(row["paper"][v][0]), row["paper"][v][1], row["paper"][v][2]]
            assert cells[5] == f"{100 * won:.0f}" and cells[-1] == f"{ms[0]['final']['periods']:g}"
    r = run("visualize_timing_counting_spikes.py", "--from-table", prefix, "--outdir", str(tmp_path / "v"))
    assert r.returncode == 0, r.stderr
    for f in ("cos", "tri", "rect"):
        for F in (10, 25):
            path = str(tmp_path / "v" / f"pfg_{f}_F{F}.png")
            assert png_size(path) == (1824, 864)
            assert all(color_pixels(path, color) >= 50 for color in COLORS.values()), path
    r = run("visualize_timing_counting_spikes.py", "--task", "nmsd", "--F", "6", "--seeds", "0-1",
            "--iters", "50", "--outdir", str(tmp_path / "w"))
    assert r.returncode == 0, r.stderr
    assert png_size(str(tmp_path / "w" / "nmsd_F6_I01.png")) == (1824, 864)


def test_gif_has_one_frame_per_snapshot_and_reuses_them(tmp_path):
    gif, snaps = tmp_path / "a.gif", tmp_path / "snaps.npz"
    r = run("make_timing_counting_spikes_gif.py", *TINY, "--snapshot-every", "10", "--fps", "4",
            "--out", str(gif), "--snapshots", str(snaps))
    assert r.returncode == 0, r.stderr
    with open(gif, "rb") as f:
        assert f.read(6) in (b"GIF87a", b"GIF89a")
    frames = iio.imread(gif, index=None)
    # one frame per snapshot (iterations 0, 10, 20, 30, 40), then the last one held for ~1 s,
    # which the GIF writer may store as one longer frame
    assert frames.shape[0] in (5, 5 + 4) and frames.shape[1:] == (416, 640, 3)
    assert len({f.tobytes() for f in frames}) == 5
    assert frames[0].std() > 0 and not (frames[0] == frames[-1]).all()
    assert os.path.getsize(gif) < 2e6
    again = tmp_path / "b.gif"
    r2 = run("make_timing_counting_spikes_gif.py", *TINY, "--snapshot-every", "10", "--fps", "4",
             "--out", str(again), "--snapshots", str(snaps))
    assert r2.returncode == 0 and "reusing" in r2.stdout, r2.stderr
    assert gif.read_bytes() == again.read_bytes()


@pytest.mark.parametrize("script,args,needle", [
    ("visualize_timing_counting_spikes.py", ["--from-run", "/nonexistent/run"], "/nonexistent/run"),
    ("visualize_timing_counting_spikes.py", ["--D-max", "80"], "D_max = 80"),
    ("visualize_timing_counting_spikes.py", ["--from-table", "/nonexistent/t"], "/nonexistent/t"),
    ("visualize_timing_counting_spikes.py", ["--task", "pfg", "--func", "tri", "--F", "1"], "F = 1"),
    ("make_timing_counting_spikes_gif.py", ["--out", "anim.png"], "anim.png"),
    ("make_timing_counting_spikes_gif.py", ["--fps", "0"], "'0'"),
    ("make_timing_counting_spikes_gif.py", ["--seeds", "0-2"], "[0, 1, 2]"),
])
def test_script_bad_input(script, args, needle):
    r = run(script, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert needle in r.stderr and "--help" in r.stderr


@pytest.mark.parametrize("script,args", [
    ("timing_counting_spikes.py", ["--lr", "0"]), ("timing_counting_spikes.py", ["--task", "foo"]),
    ("timing_counting_spikes.py", ["--seeds", "5-2"]), ("timing_counting_spikes.py", ["--workers", "0"]),
    ("timing_counting_spikes.py", ["--task", "nmsd", "--F", "0"]), ("timing_counting_spikes.py", ["--peep", "--no-peep"]),
    ("visualize_timing_counting_spikes.py", ["--lr", "0"]), ("make_timing_counting_spikes_gif.py", ["--fps", "0"]),
])
def test_every_argument_error_is_one_line_with_a_pointer_to_help(script, args, capsys):
    main = {"timing_counting_spikes.py": tcs.main, "visualize_timing_counting_spikes.py": viz.main,
            "make_timing_counting_spikes_gif.py": gif.main}[script]
    with pytest.raises(SystemExit) as e:                  # in-process: the parser exits before any work
        main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "usage:" not in err, err
    assert len(err.strip().splitlines()) == 1 and err.rstrip().endswith("--help)"), err


@pytest.mark.parametrize("path,needle", [
    ("list.json", "is a JSON list"), ("garbage.json", "is not JSON"),
    (os.path.join(ROOT, "results", "table3.json"), "is a table's results"), ("missing.json", "cannot read"),
])
def test_sweep_file_errors_name_the_file(tmp_path, path, needle, capsys):
    (tmp_path / "list.json").write_text("[1, 2, 3]")
    (tmp_path / "garbage.json").write_text("{not json")
    path = path if os.path.isabs(path) else str(tmp_path / path)
    with pytest.raises(SystemExit) as e:
        viz.main(["--from-run", os.path.join(ROOT, "results", "headline"), "--sweep", path,
                  "--outdir", str(tmp_path / "v")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert path in err and needle in err
    assert not os.path.exists(tmp_path / "v")


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("script,args", [
    ("visualize_timing_counting_spikes.py", ["--seed", "4", "--outdir", "v"]),
    ("make_timing_counting_spikes_gif.py", ["--seed", "4", "--out", "a.gif"]),
])
def test_a_signal_ends_a_script_and_its_training_workers(tmp_path, sig, code, script, args):
    """Mid-training: both worker processes end (checked by PID), one line, exit 130/143, no file."""
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, script), *args, "--workers", "2"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers = []
    for _ in range(100):                         # until both workers are up
        time.sleep(0.1)
        ps = subprocess.run(["ps", "-eo", "ppid,pid"], capture_output=True, text=True).stdout.split("\n")[1:]
        workers = [int(line.split()[1]) for line in ps if line.split() and line.split()[0] == str(p.pid)]
        if len(workers) >= 2:
            break
    assert len(workers) >= 2, "the workers did not start"
    time.sleep(1.0)
    p.send_signal(sig)
    _, stderr = p.communicate(timeout=30)
    assert p.returncode == code, stderr
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("interrupted"), stderr
    time.sleep(0.5)
    for pid in workers:
        state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
        assert state in ("", "Z"), f"worker {pid} still runs ({state})"
    assert [f for _, _, files in os.walk(tmp_path) for f in files] == [], "a file was written"


@pytest.mark.parametrize("script,flag,stem", [
    ("visualize_timing_counting_spikes.py", "--from-run", "headline"),
    ("visualize_timing_counting_spikes.py", "--from-table", "table3"),
    ("make_timing_counting_spikes_gif.py", "--snapshots", "gif_snapshots"),
    ("timing_counting_spikes.py", "--load", "headline"),
])
def test_a_damaged_file_is_one_line_and_exit_2(tmp_path, script, flag, stem):
    """The first 3000 bytes of a real file: one line naming it, exit 2, no traceback."""
    src = os.path.join(ROOT, "results", stem)
    with open(src + ".npz", "rb") as f:
        (tmp_path / (stem + ".npz")).write_bytes(f.read()[:3000])
    if os.path.exists(src + ".json"):
        (tmp_path / (stem + ".json")).write_bytes(open(src + ".json", "rb").read())
    arg = str(tmp_path / stem) + (".npz" if flag in ("--snapshots", "--load") else "")
    extra = ["--seed", "4", "--snapshot-every", "150", "--out", str(tmp_path / "a.gif")] if flag == "--snapshots" else []
    r = run(script, flag, arg, *extra, "--outdir", str(tmp_path / "v")) if "visualize" in script else run(script, flag, arg, *extra)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert stem in r.stderr and "damaged" in r.stderr


def test_online_summary_draws_every_row_and_reading(tmp_path):
    """--online-summary of the probe's files: one PNG; rows of Tables 1 and 2 with the same label
    stay apart; a file that is not an online result is one line naming it."""
    files = [os.path.join(ROOT, "results", f"probe_table{t}.json") for t in ("2", "1")]
    r = run("visualize_timing_counting_spikes.py", "--online-summary", *files, "--outdir", str(tmp_path / "s"))
    assert r.returncode == 0, r.stderr
    w, h = png_size(tmp_path / "s" / "online_summary.png")
    assert w > 800 and h > 500
    docs = [viz.load_online_doc(f) for f in files]
    fig = viz.fig_online_summary(docs, files)
    labels = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert labels == ["NMSD F=10 I in {0,1}\nlinear output", "NMSD F=10 I in {0,10}", "NMSD F=10 I in {0,1}\nsigmoid output"]
    assert len(fig.axes[0].patches) == 3 * 3 * 2          # rows x readings x variants
    r = run("visualize_timing_counting_spikes.py", "--online-summary", os.path.join(ROOT, "results", "table3.json"),
            "--outdir", str(tmp_path / "t"))
    assert r.returncode == 2 and "is not an online results file" in r.stderr and "Traceback" not in r.stderr


def test_the_scripts_write_to_the_scratch_folder_unless_given_a_path():
    """Run with no output flag, neither script overwrites the committed figures or GIF."""
    for script, needle in (("visualize_timing_counting_spikes.py", "(default scratch/viz, which git ignores"),
                           ("make_timing_counting_spikes_gif.py", "(default scratch/timing_counting_spikes.gif,")):
        r = run(script, "--help")
        assert r.returncode == 0 and needle in " ".join(r.stdout.split()), r.stdout
    assert "/scratch/" in open(os.path.join(ROOT, ".gitignore")).read().split()


def test_the_online_summary_of_a_long_table_stays_within_2000_pixels_and_shows_the_paper_above_ours(tmp_path):
    r = run("visualize_timing_counting_spikes.py", "--online-summary", os.path.join(ROOT, "results", "online_table2.json"),
            "--outdir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    w, h = png_size(tmp_path / "online_summary.png")
    assert w <= 2000 and h > w / 2                   # 19 rows: several rows of panels, not one wide strip
    fig = viz.fig_online_summary([viz.load_online_doc(os.path.join(ROOT, "results", "online_table2.json"))], ["x"])
    marks = [line for line in fig.axes[0].lines if line.get_marker() == "D" and len(line.get_xdata())]
    assert marks and min(m.get_zorder() for m in marks) > max(p.get_zorder() for p in fig.axes[0].patches)


def test_the_start_map_draws_a_heat_map_per_row_and_variant(tmp_path):
    """A map of two starts on two rows, run for a few streams: four heat maps whose cells say
    k/n; a results file of another table is one line."""
    out = str(tmp_path / "m.json")
    r = run("timing_counting_spikes.py", "--table", "map", "--learning", "online", "--grid=0:2:-2,1",
            "--rows", "1-2,13-14", "--seeds", "100", "--budget", "2", "--workers", "1", "--json", out)
    assert r.returncode == 0, r.stderr
    r = run("visualize_timing_counting_spikes.py", "--start-map", out, "--outdir", str(tmp_path / "f"))
    assert r.returncode == 0 and os.path.exists(tmp_path / "f" / "start_map.png"), r.stderr
    fig = viz.fig_start_map(viz.load_online_doc(out), out)
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == 4 and all(ax.images[0].get_array().shape == (1, 2) for ax in maps)
    assert all(t.get_text().startswith("0/1") for ax in maps for t in ax.texts)
    r = run("visualize_timing_counting_spikes.py", "--start-map", os.path.join(ROOT, "results", "online_table2.json"),
            "--outdir", str(tmp_path / "g"))
    assert r.returncode == 2 and "not of --table map" in r.stderr and "Traceback" not in r.stderr
