"""The command line a newcomer meets: flags that conflict or would be ignored, and what the
summaries print. Every rejected command must fail in one line with exit 2 before it runs
or writes anything."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import timing_counting_spikes as tcs  # noqa: E402

TINY = ["--T", "40", "--D-min", "5", "--D-max", "12", "--hidden", "2", "--n-test", "16", "--batch", "4"]


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, os.path.join(ROOT, "timing_counting_spikes.py"), *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd)



# ---------------------------------------------------------------- conflicting and ignored flags

@pytest.mark.parametrize("args,needle", [
    (["--load", "s.npz", "--table", "1"], "--load and --table are different modes"),
    (["--json", "X", "--save", "X"], "--json and --save both name 'X'"),
    (["--seed", "4", "--seeds", "0-2"], "--seed 4 and --seeds 0,1,2 both set the seeds"),
    (["--task", "pfg", "--T", "100"], "--T has no effect with --task pfg"),
    (["--load", "s.npz", "--hidden", "4", "--iters", "5"], "--load takes no training settings; drop --hidden, --iters"),
    (["--gradcheck", "--docs"], "--gradcheck and --docs are different modes"),
    (["--task", "gts", "--func", "tri"], "--func has no effect with --task gts"),
    (["--task", "nmsd", "--learning", "online", "--lr", "0.1"], "--lr has no effect with --task nmsd, --learning online"),
    (["--task", "nmsd", "--alpha", "0.1"], "--alpha has no effect with --task nmsd, --learning batch"),
    (["--task", "pfg", "--gate-biases", "0,2,-2"], "--gate-biases has no effect"),
    (["--table", "1", "--rows", "2"], "--rows has no effect with --table unless --learning online"),
    (["--budget-minutes", "2"], "--budget-minutes has no effect with training unless --learning online"),
    (["--task", "gts", "--learning", "online", "--checkpoint-minutes", "2"], "--checkpoint-minutes needs --checkpoint"),
    (["--compare", "a.json"], "--compare has no effect with training"),
    (["--report", "results/table1.json", "--json", "out.json"], "--json has no effect with --report"),
    (["--confirm", "results/table1", "--save", "out.npz"], "--save has no effect with --confirm"),
    (["--docs", "--hidden", "3"], "--docs takes no training settings"),
    (["--bench"], "unrecognized arguments: --bench"),
    (["--gradcheck", "--workers", "1"], "--workers has no effect with --gradcheck"),
    (["--task", "gts", "--learning", "online", "--json", "X", "--checkpoint", "X"],
     "--json and --checkpoint both name 'X'"),
])
def test_conflicting_or_ignored_flags_are_one_line_and_exit_2(args, needle, tmp_path, rejected):
    code, out, err = rejected(args, tmp_path)
    assert code == 2 and out == "", out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert os.listdir(tmp_path) == [], "a rejected command wrote a file"


def test_every_config_flag_is_in_one_help_section_and_has_a_scope_if_not_read_everywhere():
    names = [n for n, _ in tcs.FLAGS]
    grouped = [n for group in tcs.FLAG_GROUPS.values() for n in group]
    assert sorted(names) == sorted(grouped) and len(set(grouped)) == len(grouped)
    scoped = [n for fields, _, _ in tcs.SCOPE for n in fields]
    assert set(scoped) <= set(names) and len(set(scoped)) == len(scoped)


def test_help_shows_its_sections():
    r = cli("--help")
    assert r.returncode == 0
    for title in ("task:", "model:", "training:", "evaluation:", "modes (give at most one",
                  "processes and files:", "online runs (--learning online):"):
        assert title in r.stdout, title


# ---------------------------------------------------------------- what the summaries print

def fake_results(perfect, periods, train=None):
    return {"members": [{"seed": k, "variant": "peep", "streams": 10 if p else None,
                         "final": {"periods": q, "perfect": float(p), "rmse": 0.1}}
                        for k, (p, q) in enumerate(zip(perfect, periods))]}


def test_summary_counts_perfect_networks_instead_of_rounding_a_fraction():
    cfg = tcs.row_config(task="pfg", seeds=tuple(range(10)), variants=("peep",))
    text = tcs.summary_table(cfg, fake_results([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], [1000] * 4 + [3] * 6))
    mean = next(line for line in text.splitlines() if line.startswith("mean"))
    std = next(line for line in text.splitlines() if line.startswith(" std"))
    assert mean.split()[2:4] == ["401.8", "4/10"], mean
    assert std.split()[2:3] == [f"{np.std([1000] * 4 + [3] * 6, ddof=1):.1f}"] and len(std.split()) == 4, std


def test_progress_line_averages_the_networks_still_training():
    cfg = tcs.row_config(task="pfg", seeds=(0, 1, 2), variants=("peep",))
    members = tcs.members_of(cfg)
    metrics = [{"periods": 1.0, "perfect": 0.0, "rmse": 0.5}] * 3
    line = tcs.progress_line(cfg, members, 100, [np.nan, 2e-3, 4e-3], metrics, 1.0)
    assert "peep: train 3.00e-03" in line, line
    line = tcs.progress_line(cfg, members, 100, [np.nan] * 3, metrics, 1.0)
    assert "peep: train        -" in line, line


def test_zero_iterations_print_dashes_not_nan():
    r = cli(*TINY, "--iters", "0", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert "nan" not in r.stdout.lower()
    row = next(line for line in r.stdout.splitlines() if line.split()[:2] == ["4", "peep"])
    assert row.split()[-2:] == ["-", "-"], row
    assert r.stdout.splitlines()[-1] == tcs.machine_line()   # the summary ends with where its numbers came from
    env = tcs.environment()
    for key in ("cpu", "cpu_id", "numpy_simd", "blas_core"):   # what tells machines apart
        assert env[key] in tcs.machine_line()


def test_the_machine_record_follows_the_simd_code_and_blas_kernel_the_run_uses():
    """numpy's SIMD targets and OpenBLAS's kernel decide how exp and BLAS round: switched off by
    their environment variables, the record says so."""
    code = "import timing_counting_spikes as t; e = t.environment(); print(e['numpy_simd'], '|', e['blas_core'])"
    wide = [f for f in tcs.numpy_simd().split() if f.startswith(("X86_V4", "AVX512"))]   # found on this CPU
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell", **({"NPY_DISABLE_CPU_FEATURES": " ".join(wide)} if wide else {}))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    simd, core = (part.strip() for part in r.stdout.split("|"))
    assert "X86_V4" not in simd and "AVX512" not in simd, r.stdout + r.stderr
    assert core in ("Haswell", "unknown"), r.stdout      # unknown: a BLAS other than OpenBLAS


def test_table_median_periods_keeps_fractions():
    doc = {"rows": [{"label": "NMSD F=10 I in {0,1}", "config": {"task": "nmsd"},
                     "paper": tcs.TABLES["1"]["rows"][0]["paper"],
                     "ours": {v: {"percent": 0.0, "streams_mean": None, "streams_std": None,
                                  "periods_median": 0.25} for v in ("peep", "vanilla")}}]}
    rows = tcs.table_markdown(doc).splitlines()[2:]
    assert all(r.endswith("| 0.25 |") for r in rows), rows


def test_a_loss_beyond_any_sane_bound_is_divergence():
    r = cli(*TINY, "--iters", "20", "--lr", "1e30", "--clip", "1e300", "--workers", "1")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "diverged at iteration" in r.stderr and "Traceback" not in r.stderr


def test_loss_and_gradient_agree_for_a_mask_that_is_not_binary():
    """0.5 sum mask (y - d)^2 and its gradient: a central difference on every parameter."""
    cfg = tcs.Config(task="cmsd", F=3, delays=(0, 1), periods=2, hidden=2)
    b = tcs.CMSD.sample(cfg, np.random.default_rng(1), 2)
    mask = np.random.default_rng(2).uniform(0.2, 1.7, b.d.shape)[:, None]
    P = tcs.stack([tcs.init_member(cfg, 0, "peep")])
    x, d, peep = b.x[:, :, None], b.d[:, None], np.array([True])
    loss, g, y = tcs.loss_and_grads(P, x, d, peep, mask=mask)
    assert loss[0] == pytest.approx(0.5 * np.sum(mask * (y - d) ** 2) / 2, rel=1e-12)
    eps = 1e-6
    for name in tcs.PARAMS:
        flat = P[name].reshape(-1)
        for k in range(0, flat.size, max(1, flat.size // 5)):
            old = flat[k]
            flat[k] = old + eps
            up = tcs.loss_and_grads(P, x, d, peep, mask=mask)[0][0]
            flat[k] = old - eps
            down = tcs.loss_and_grads(P, x, d, peep, mask=mask)[0][0]
            flat[k] = old
            num = (up - down) / (2 * eps)
            assert abs(num - g[name].reshape(-1)[k]) <= 1e-7 * max(1.0, abs(num)), (name, k, num)


def test_a_results_file_from_a_newer_version_says_so(tmp_path):
    with open(os.path.join(ROOT, "results", "headline.json")) as f:
        doc = json.load(f)
    doc["config"]["newer_field"] = 1
    path = tmp_path / "newer.json"
    path.write_text(json.dumps(doc))
    r = cli("--report", str(path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "unknown field(s) newer_field: written by a newer version" in r.stderr.strip().splitlines()[-1]


ONLINE = ["--task", "gts", "--learning", "online"]


@pytest.mark.parametrize("args,needle", [
    (["--learning", "sometimes"], "invalid choice: 'sometimes'"),
    (ONLINE + ["--alpha", "0"], "'0' must be > 0"),
    (ONLINE + ["--alpha", "inf"], "'inf' is not a finite number"),
    (ONLINE + ["--momentum", "-0.5"], "'-0.5' must be >= 0"),
    (ONLINE + ["--budget", "0"], "'0' must be > 0"),
    (ONLINE + ["--budget-minutes", "-1"], "'-1' must be > 0"),
    (ONLINE + ["--checkpoint", "c.npz", "--checkpoint-minutes", "0"], "'0' must be > 0"),
    (ONLINE + ["--forget", "maybe"], "invalid choice: 'maybe'"),
    (ONLINE + ["--gate-biases", "0,nan,1"], "'0,nan,1' is not 3 comma-separated finite numbers"),
    (ONLINE + ["--gate-biases", "0,2"], "'0,2' is not 3 comma-separated finite numbers"),
    (ONLINE + ["--gate-biases", "0,2,-2,1"], "is not 3 comma-separated finite numbers"),
    (ONLINE + ["--gate-biases", "a,b,c"], "'a,b,c' is not 3 comma-separated finite numbers"),
    (["--table", "probe", "--seeds", "100"], "--table probe runs the paper's own learning only"),
    (["--table", "probe", "--learning", "online", "--gate-biases", "0,2,-2"], "--table probe sets"),
    (["--table", "gts", "--learning", "online", "--rows", "0-x"], "is not a seed list"),
    (["--resume", "missing.npz"], "missing.npz"),
    (["--report", "missing.json"], "missing.json"),
    (["--report", "../results/headline.json", "--compare", "missing.json"], "missing.json"),
    (["--merge", "missing.json", "--json", "out.json"], "missing.json"),
    (["--confirm", "missing"], "missing"),
    (["--load", "../results/table3.npz"], "is a table's weights (written by --table --save"),
    (["--resume", "../results/headline.npz"], "is a run's weights (written by --save; --load reads it)"),
    (["--iters", "1", "--json", "/proc/x.json"], "the folder '/proc' takes no new files"),
])
def test_bad_values_of_the_online_and_file_flags_are_one_line_and_exit_2(args, needle, tmp_path, rejected):
    work = tmp_path / "w"
    work.mkdir()
    code, out, err = rejected([a.replace("../results", os.path.join(ROOT, "results")) for a in args], work)
    assert code == 2, out + err
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert os.listdir(work) == [], "a rejected command wrote a file"


@pytest.mark.parametrize("task", [["--task", "pfg"], ["--task", "nmsd", "--F", "5"]])
def test_report_of_a_batch_run_of_a_paper_task_prints_the_table_the_run_printed(tmp_path, task):
    out = str(tmp_path / "r.json")
    r = cli(*task, "--iters", "2", "--seeds", "0", "--workers", "1", "--json", out)
    assert r.returncode == 0, r.stderr
    table = r.stdout[r.stdout.index("seed variant"):r.stdout.index("trained in")].strip()
    rep = cli("--report", out)
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout.strip() == table


@pytest.mark.parametrize("content,needle", [("[1, 2, 3]", "holds a JSON list"), ('"text"', "holds a JSON string"),
                                            ('{"rows": 5}', "is not a results file"),
                                            ('{"config": {}}', "(it has no entry 'members')")])
def test_report_of_json_that_is_no_results_file_is_one_line(tmp_path, content, needle):
    path = tmp_path / "x.json"
    path.write_text(content)
    r = cli("--report", str(path))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert needle in r.stderr and str(path) in r.stderr
    assert not any(name in r.stderr for name in ("KeyError", "TypeError", "AttributeError", "ValueError"))


@pytest.mark.parametrize("args,needle", [
    (["--report", "../results/online_table1.json", "--compare", "../results/online_table2.json"],
     "--compare shows the results file of a batch --table run beside an online one"),
    (["--report", "../results/table1.json", "--compare", "../results/table3.json"],
     "--report ONLINE.json --compare BATCH.json"),
    (["--merge", "list.json", "--json", "out.json"], "merge takes online results files of one table"),
    (["--merge", "../results/online_table1.json", "../results/online_table2.json", "--json", "out.json"],
     "merge takes online results files of one table"),
])
def test_report_and_merge_refuse_the_wrong_kind_of_file_in_one_line(args, needle, tmp_path, rejected):
    (tmp_path / "list.json").write_text("[1, 2]")
    code, out, err = rejected([a.replace("../results", os.path.join(ROOT, "results")) for a in args], tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not os.path.exists(tmp_path / "out.json")


def test_report_of_an_online_table_names_it_and_where_it_ran():
    r = cli("--report", os.path.join(ROOT, "results", "online_tablegts.json"))
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0] == "Figure 7 (table): GTS, sigmoid output"
    assert "s of wall clock in 2 shards; some networks unfinished" in r.stdout
    assert lines[-1].startswith("machine: Intel(R) Xeon(R) Processor (family/model/stepping 6/207/2)")
    assert "| GTS F=30 I in {0} | vanilla | 0 | not learned | 9/10" in r.stdout
    assert "| 0 / 9: p = 0.0039 (short) | 0.00012 | 1091: 448 at least (0.449 core-h more) |" in r.stdout


def test_the_headline_run_names_the_committed_block_of_its_machine(tmp_path):
    """The block is chosen by numpy's version, SIMD code and OpenBLAS kernel; a match is checked
    to the last bit of every final metric."""
    cfg = tcs.Config()
    members = [{"seed": 4, "variant": v, "final": {"solve": 0.5, "test_mse": 0.001}} for v in tcs.VARIANTS]
    doc = {"config": tcs.config_dict(cfg), "members": members, "env": tcs.environment()}
    (tmp_path / "headline_mine.json").write_text(json.dumps(doc))
    (tmp_path / "headline_other.json").write_text(json.dumps({**doc, "env": {**doc["env"], "blas_core": "Zen"}}))
    line = tcs.headline_block(cfg, {"members": members}, str(tmp_path))
    assert line.endswith("results/headline_mine.json; reproduced bit for bit") and tcs.blas_core() in line
    moved = [{**m, "final": {**m["final"], "solve": 0.5 + 2 ** -40}} for m in members]
    assert tcs.headline_block(cfg, {"members": moved}, str(tmp_path)).endswith("NOT reproduced (the final metrics differ)")
    os.remove(tmp_path / "headline_mine.json")
    assert tcs.headline_block(cfg, {"members": members}, str(tmp_path)).startswith("no committed block was made with")
    assert tcs.headline_block(tcs.Config(seeds=(5,)), {"members": members}, str(tmp_path)) is None
