"""README.md and docs/: every table and generated number equals what the committed results files
give now (python timing_counting_spikes.py --docs writes them), and every link inside them leads
somewhere."""
import json
import os
import re

import pytest

import timing_counting_spikes as tcs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("path", tcs.doc_paths())
def test_a_committed_document_is_what_its_results_files_generate(path):
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    assert tcs.GEN_MARK.search(text) or path == "docs/figures.md", f"{path} generates nothing"
    new = tcs.render_doc(text, path)
    stale = [k + 1 for k, (a, b) in enumerate(zip(text.splitlines(), new.splitlines())) if a != b]
    assert new == text, f"{path} differs from its results files at lines {stale[:10]}: run --docs"


def test_the_documents_are_the_readme_and_every_page_under_docs():
    paths = tcs.doc_paths()
    assert paths[0] == "README.md" and {"docs/msd.md", "docs/online.md", "docs/batch-tables.md"} <= set(paths)
    assert sum(1 for _ in open(os.path.join(ROOT, "README.md"))) <= 350


@pytest.mark.parametrize("path", tcs.doc_paths())
def test_every_relative_link_of_a_document_leads_to_a_file_or_heading(path):
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith("http"):
            continue
        file, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(ROOT, os.path.dirname(path), file)) if file else os.path.join(ROOT, path)
        assert os.path.exists(full), f"{path}: {target} leads nowhere"
        if anchor and full.endswith(".md"):
            with open(full) as g:
                heads = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                         for h in re.findall(r"^#+ (.*)$", g.read(), re.M)}
            assert anchor in heads, f"{path}: no heading #{anchor} in {file or path}"


def test_a_stale_number_or_a_bad_marker_is_found(tmp_path):
    good = "<!-- gen: perfect results/online_tablegts.json 1 peep -->27/30<!-- /gen -->"
    assert tcs.render_doc(good) == good
    assert tcs.render_doc(good.replace("27/30", "28/30")) == good
    with pytest.raises(ValueError, match="unknown generator in <!-- gen: nothing here -->"):
        tcs.render_doc("<!-- gen: nothing here -->x<!-- /gen -->", "x.md")
    with pytest.raises(ValueError, match="x.md: <!-- gen: perfect results/missing.json 1 peep --> failed"):
        tcs.render_doc("<!-- gen: perfect results/missing.json 1 peep -->x<!-- /gen -->", "x.md")


def test_a_runs_clock_counts_every_network_of_every_row_and_its_minutes(tmp_path):
    doc = {"seconds": 5572.4, "workers": 2, "rows": [{"ours": {"peep": {"n": 10}, "vanilla": {"n": 10}}}] * 319}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    assert tcs.gen_clock(str(path)) == "6,380 networks in 93 min on 2 processes"
    path.write_text(json.dumps({**doc, "workers": 1, "seconds": 59.0}))
    assert tcs.gen_clock(str(path)) == "6,380 networks in 1 min on 1 process"


def test_the_claims_table_reads_each_claim_row_of_each_starts_tables():
    lines = tcs.gen_claims("swapped=results/", "printed=results/printed_").splitlines()
    assert len(lines) == 2 + len(tcs.CLAIM_ROWS)
    for line, (_, table, row) in zip(lines[2:], tcs.CLAIM_ROWS):
        cells = [c.strip() for c in line.strip("|").split("|")]
        ours, printed = f"results/online_table{table}.json", f"results/printed_online_table{table}.json"
        assert cells[2:4] == [tcs.gen_perfect(ours, row, v) for v in tcs.VARIANTS]
        assert cells[-1] == " / ".join(tcs.gen_perfect(printed, row, v) for v in tcs.VARIANTS)
        assert cells[5].startswith(" / ".join(tcs.gen_median(ours, row, v) for v in tcs.VARIANTS) + " (paper: ")
        assert cells[1].endswith(", no forget gate") == table.endswith("nf")


def test_ratios_give_the_range_of_median_streams_over_the_papers_mean(tmp_path):
    def row(median, mean):
        return {"ours": {"peep": {"perfect": 1, "n": 1, "streams_quartiles": [0, median, 0]}},
                "paper": {"peep": (100, f"{mean} ± 1", "-")}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"rows": [row(5e3, 20), row(30e3, 20), row(9e3, 10), {
        "ours": {"peep": {"perfect": 0, "n": 1, "streams_quartiles": None}}, "paper": {"peep": (100, "5 ± 1", "-")}}]}))
    assert tcs.gen_ratios(str(path), "1-4") == "0.25-1.5"
    assert tcs.gen_ratios(str(path), "3") == "0.9-0.9"


def test_speedups_and_their_ceiling_read_each_run_of_a_benchmark_file(tmp_path):
    """speedups: a case's speed-up in each run; ceiling: this engine with no stream ending over
    the other engine from the start, run by run; a pattern that finds no case or two is an error."""
    head = "engine   networks case   us/step  M net-steps/s  median calls/step  speed-up\n"
    runs = [("2.00", "1.00", "1.50", "1.25"), ("2.20", "1.10", "1.60", "1.30")]
    text = "".join(head + f"this         1400 T, no stream ending   1.0  {a}  {a}  80.0\n"
                   f"against      1400 T, no stream ending   1.0  {b}  {b}  80.0  9.99x\n"
                   f"this         1400 T, from the start of training   1.0  {c}  {c}  99.0\n"
                   f"against      1400 T, from the start of training   1.0  {d}  {d}  99.0  1.20x\n"
                   for a, b, c, d in runs)
    path = tmp_path / "bench.txt"
    path.write_text(text)
    assert tcs.gen_speedups(str(path), r"T,\sfrom") == "1.20x, 1.20x"
    assert tcs.gen_ceiling(str(path), r"T,\sno", r"T,\sfrom") == "1.60x, 1.69x"
    for bad in (r"nothing", r"1400\sT"):
        with pytest.raises(ValueError, match="not one"):
            tcs.gen_speedups(str(path), bad)
