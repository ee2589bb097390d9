"""lab/studies.py: the listing, the time estimates, the sources' claims, `--time-steps`."""

import contextlib
import io
import os
import subprocess
import sys

import pytest

from lab import studies

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def listing(argv=()):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert studies.main(list(argv)) == 0
    return out.getvalue()


def scales(name):
    """The scales a study has: every study a quick and a paper scale, some a budgets scale."""
    return [scale for scale in studies.SCALES if scale in studies.STUDIES[name]]


def test_the_listing_shows_arms_estimates_and_both_commands_of_every_scale():
    sections = dict(part.split("\n", 1) for part in listing().split("## ")[1:])
    assert sorted(sections) == sorted(studies.STUDIES)
    for name, section in sections.items():
        lines = [line.strip() for line in section.splitlines()]  # the commands are whole lines
        text = " ".join(section.split())  # the prose is wrapped: compare it word by word
        for scale in scales(name):
            for arm in studies.plan(name, scale)["arms"]:
                assert f"`{studies.arm_name(arm)}`" in text, (name, arm)
            estimate = studies.duration(studies.estimate_seconds(name, scale))
            assert f"{scale.capitalize()} scale: " in text
            assert f"Estimated time: {estimate}," in text, (name, scale, estimate)
            run = f"python compare.py --study {name} --scale {scale} --data-dir DATA"
            assert run in lines and f"{run} --collect" in lines, (name, scale)


def test_the_estimates_take_the_documented_step_time_of_the_study_model():
    assert {(name, scale): studies.step_model(name, scale)
            for name in studies.STUDIES for scale in scales(name)} == {
        ("blog-allcnn", "quick"): "All-CNN-C", ("blog-allcnn", "paper"): "All-CNN-C",
        ("dropact", "quick"): "ResNet-20", ("dropact", "paper"): "ResNet-56",
        ("gaaf", "quick"): "ResNet-20", ("gaaf", "paper"): "ResNet-20",
        ("dropout-order", "quick"): "cnn", ("dropout-order", "paper"): "cnn",
        ("blog-allcnn", "budgets"): "All-CNN-C", ("dropact", "budgets"): "ResNet-20",
        ("gaaf", "budgets"): "ResNet-20", ("dropout-order", "budgets"): "cnn"}
    # gaaf quick by hand: 4 arms x 3 seeds, each 15 s of start-up, 5 epochs of 10,000 // 128 =
    # 78 steps at ResNet-20's documented step time, 5 validations of 5,000 images and one test of
    # 10,000 images at a third of a step's time per image.
    step = studies.STEP_SECONDS["ResNet-20"]
    per_run = 15 + 5 * 78 * step + (5 * 5000 + 10000) * step / 128 / 3
    assert studies.estimate_seconds("gaaf", "quick") == pytest.approx(12 * per_run)
    assert studies.estimate_seconds("gaaf", "quick", 2 * step) == pytest.approx(
        12 * (2 * per_run - 15))
    assert [studies.duration(s) for s in (1980, 7200, 30240, 1026000)] == [
        "33 min", "2.0 h", "8.4 h", "285 h"]


def test_every_claim_names_two_arms_of_its_scale_and_the_source_figures():
    for name, study in studies.STUDIES.items():
        kept = []
        for scale in scales(name):
            p = studies.plan(name, scale)
            names = [studies.arm_name(arm) for arm in p["arms"]]
            for claim in p["claims"]:
                assert claim["better"] in names and claim["worse"] in names, (name, scale, claim)
                assert claim["better"] != claim["worse"] and claim["source"]
            kept += [c for c in study["claims"] if c in p["claims"]]
        # A claim that names an arm of no scale (a typo) is dropped everywhere: none is.
        assert all(c in kept for c in study["claims"]), name
    counts = {(name, scale): len(studies.plan(name, scale)["claims"])
              for name in studies.STUDIES for scale in scales(name)}
    assert counts == {("blog-allcnn", "quick"): 10, ("blog-allcnn", "paper"): 10,
                      ("dropact", "quick"): 3, ("dropact", "paper"): 3,
                      ("gaaf", "quick"): 3, ("gaaf", "paper"): 12,
                      ("dropout-order", "quick"): 0, ("dropout-order", "paper"): 0,
                      ("blog-allcnn", "budgets"): 10, ("dropact", "budgets"): 3,
                      ("gaaf", "budgets"): 3, ("dropout-order", "budgets"): 0}


# --------------------------------------------------------------------------------------------------
# The budgets scales: where each ranking is heading
# --------------------------------------------------------------------------------------------------

def test_every_study_has_a_budgets_scale_that_spans_10x_up_to_900_steps_in_5_hours():
    for name in studies.STUDIES:
        p = studies.plan(name, "budgets")
        steps = studies.budget_steps(name, "budgets")
        assert len(p["budgets"]) >= 3 and steps == sorted(steps), (name, steps)
        assert steps[-1] >= 900 and steps[-1] >= 10 * steps[0], (name, steps)
        assert len(p["seeds"]) == 3, name
        # The whole grid, one run at a time on a 2-core CPU at the documented step times (`--jobs
        # 2` gains about 9 % on this machine): at most 5 h.
        assert studies.estimate_seconds(name, "budgets") <= 5 * 3600, name
        # The source's claims keep both their arms: the budgets scale can judge every claim its
        # quick scale judges.
        assert p["claims"] == studies.plan(name, "quick")["claims"], name


def budget_runs(name, capsys):
    """{(arm without epochs, seed): {epochs: train.py's parsed settings}} of a budgets scale,
    from the commands compare.py would run."""
    import shlex

    import train
    from lab import compare

    assert compare.main(["--study", name, "--scale", "budgets", "--print-commands"]) == 0
    runs = {}
    for line in capsys.readouterr().out.splitlines():
        args = train.parse_args(shlex.split(line)[2:])
        arm = os.path.basename(os.path.dirname(args.logdir)).rsplit("_epochs-", 1)[0]
        runs.setdefault((arm, args.seed), {})[args.epochs] = args
    return runs


@pytest.mark.parametrize("name", sorted(studies.STUDIES))
def test_the_budgets_of_a_scale_differ_in_their_length_and_nothing_else(name, capsys):
    """Each budget is a whole run: the same settings at every length but --epochs, and a step
    schedule whose boundaries are the same fractions of every run; batch norm forgets its initial
    statistics within the shortest budget."""
    runs = budget_runs(name, capsys)
    p = studies.plan(name, "budgets")
    assert len(runs) == len(p["arms"]) * len(p["seeds"])
    shortest = studies.budget_steps(name, "budgets")[0]
    for (arm, seed), by_epochs in runs.items():
        assert sorted(by_epochs) == sorted(int(b) for b in p["budgets"]), (arm, seed)
        fractions = set()
        for epochs, args in by_epochs.items():
            settings = {k: v for k, v in vars(args).items()
                        if k not in ("epochs", "logdir", "lr_steps")}
            first = {k: v for k, v in vars(by_epochs[min(by_epochs)]).items()
                     if k not in ("epochs", "logdir", "lr_steps")}
            assert settings == first, (arm, seed, epochs)
            if args.schedule == "step":  # boundaries in epochs, as fractions of the run
                fractions.add(tuple(round(b / epochs, 9) for b in args.lr_steps))
            if args.bn:
                assert args.bn_decay ** shortest < 1e-3, (arm, args.bn_decay, shortest)
        assert len(fractions) <= 1, (arm, fractions)
    if name in ("dropact", "gaaf"):  # the source's boundaries, 200 epochs, scaled to each run
        from plumbing import recipes
        recipe = recipes.RECIPES[studies.plan(name, "paper")["fixed"]["recipe"]]
        source = tuple(round(float(b) / recipe["epochs"], 9)
                       for b in recipe["lr_steps"].split(","))
        assert fractions == {source}, (fractions, source)


def test_each_source_s_training_length_is_recorded_and_verdicts_state_their_share():
    import math

    from plumbing import recipes
    # The post: about 50,000 steps of batch 128, its paper scale's --max-steps.
    assert studies.STUDIES["blog-allcnn"]["source_training"]["steps"] == \
        studies.budget_steps("blog-allcnn", "paper")[0] == 50000
    # The repositories: 200 epochs of their training images in batches of 128, the last one of
    # each epoch partial (Keras' fit): 40,000 images for Drop-Activation (its 80/20 split), all
    # 50,000 for GAAF.
    for name, images in (("dropact", 40000), ("gaaf", 50000)):
        recipe = recipes.RECIPES[studies.plan(name, "paper")["fixed"]["recipe"]]
        source = studies.STUDIES[name]["source_training"]
        assert source["batch"] == recipe["batch_size"] == 128
        assert source["steps"] == recipe["epochs"] * math.ceil(images / recipe["batch_size"])
    assert studies.STUDIES["dropout-order"]["source_training"] is None
    # The committed quick studies' shares, as docs/STUDIES.md states them.
    assert studies.source_share("blog-allcnn", 78, 128).startswith("0.16 % of ")
    assert studies.source_share("dropact", 468, 128).startswith("0.75 % of ")
    assert studies.source_share("gaaf", 390, 128).startswith("0.5 % of ")
    # Another batch size: the share of the training images too (900 x 24 / (50,000 x 128)).
    assert studies.source_share("blog-allcnn", 900, 24).endswith(
        "batch 24: 0.34 % of its training images")
    assert studies.source_share("dropout-order", 900, 32) is None


def test_a_scale_drops_the_claims_whose_arms_it_does_not_run():
    quick = studies.plan("gaaf", "quick")["claims"]
    assert [c["worse"] for c in quick] == [
        "act=gaaf-relu,gaaf-shift=4", "act=gaaf-relu,gaaf-shift=-1",
        "act=gaaf-relu,gaaf-variant=round,gaaf-shift=-1"]
    assert quick[0]["source"] == ("the repository's table, test %: relu 80.84, gaaf-relu shift 4 "
                                  "69.24")


def test_time_steps_prints_no_tensorflow_log_lines():
    # The environment of a user who has not set TF_CPP_MIN_LOG_LEVEL: studies.py must set it
    # before TensorFlow's first import.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    p = subprocess.run([sys.executable, "-m", "lab.studies", "--time-steps", "--study",
                        "dropout-order", "--scale", "quick"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    noise = [line for line in p.stderr.splitlines()
             if "tensorflow/" in line or line.startswith(("I0000", "W0000", "E0000"))
             or "absl::InitializeLog" in line]
    assert not noise, noise
    assert "with the measured step time" in p.stdout
    documented = studies.duration(studies.estimate_seconds("dropout-order", "quick"))
    step = studies.STEP_SECONDS["cnn"]
    assert f"~{documented} with the documented one ({step} s/step, cnn)" in p.stdout, p.stdout


def test_docs_studies_md_is_what_write_docs_writes():
    # Fails whenever docs/STUDIES.md differs from `python -m lab.studies_doc`: a hand
    # edit inside a generated block, or a change of lab/studies.py without rewriting the docs.
    from lab import studies_doc
    with open(studies_doc.DOC, encoding="utf-8") as f:
        committed = f.read()
    for key in studies_doc.blocks():
        assert f"<!-- generated: {key} -->" in committed, key  # every block has its place
    assert studies_doc.render(committed) == committed, \
        "docs/STUDIES.md is out of date: run python -m lab.studies_doc"
    # The gaaf estimates of the docs are the listing's: both are studies.describe("gaaf").
    section = committed.split("<!-- generated: study-gaaf -->")[1].split("<!-- end generated")[0]
    assert section.strip() == "\n".join(studies.describe("gaaf"))
    for scale in scales("gaaf"):
        estimate = studies.duration(studies.estimate_seconds("gaaf", scale))
        assert f"Estimated time: {estimate}," in " ".join(section.split())


def test_render_replaces_the_blocks_and_keeps_the_hand_written_text():
    from lab import studies_doc
    text = ("# Title\nhand\n<!-- generated: a -->\nold\nlines\n<!-- end generated: a -->\n"
            "more hand\n<!-- generated: b -->\n<!-- end generated: b -->\n")
    out = studies_doc.render(text, {"a": "new A", "b": "new B"})
    assert out == ("# Title\nhand\n<!-- generated: a -->\n\nnew A\n\n<!-- end generated: a -->\n"
                   "more hand\n<!-- generated: b -->\n\nnew B\n\n<!-- end generated: b -->\n")
    assert studies_doc.render(out, {"a": "new A", "b": "new B"}) == out


@pytest.mark.parametrize("text, message", [
    ("<!-- generated: nope -->\n<!-- end generated: nope -->\n", "no generated block"),
    ("x\n<!-- generated: a -->\nhand text\n", "not closed"),
    ("<!-- generated: a -->\n<!-- generated: b -->\n<!-- end generated: b -->\n", "inside"),
    ("<!-- generated: a -->\n<!-- end generated: b -->\n", "inside"),
    ("<!-- end generated: a -->\n", "without its start"),
    ("<!-- generated:a -->\n<!-- end generated: a -->\n", "not a marker"),
])
def test_render_refuses_unknown_unclosed_and_malformed_markers(text, message):
    from lab import studies_doc
    with pytest.raises(ValueError, match=message):
        studies_doc.render(text, {"a": "A", "b": "B"})


def wrote_docs(path):
    """What `python -m lab.studies_doc PATH` prints."""
    from lab import studies_doc
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert studies_doc.main([str(path)]) == 0
    return out.getvalue()


def test_write_docs_rewrites_the_given_file(tmp_path):
    from lab import studies_doc
    path = tmp_path / "STUDIES.md"
    path.write_text("hand\n<!-- generated: study-gaaf -->\nstale\n"
                    "<!-- end generated: study-gaaf -->\n", encoding="utf-8")
    assert "rewritten" in wrote_docs(path)
    assert path.read_text(encoding="utf-8") == studies_doc.render(
        "hand\n<!-- generated: study-gaaf -->\n<!-- end generated: study-gaaf -->\n")
    assert "stale" not in path.read_text(encoding="utf-8")
    assert "up to date" in wrote_docs(path)


def test_a_committed_study_rebuilds_its_report_from_the_files_kept_beside_it(tmp_path):
    """docs/studies/NAME/ keeps each run's config.json, metrics.jsonl and eval json (never a
    checkpoint): `compare.py --collect --out` on a copy gives the committed results.json again."""
    import glob
    import json
    import shutil

    from lab import compare

    def without_paths(value):  # the runs' folders are named by where the copy is
        if isinstance(value, dict):
            return {k: without_paths(v) for k, v in value.items() if k != "logdir"}
        return [without_paths(v) for v in value] if isinstance(value, list) else value

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folders = sorted(os.path.dirname(p) for p in glob.glob(
        os.path.join(root, "docs", "studies", "*", compare.GRID_JSON)))
    assert folders, "no committed study keeps its runs' files"
    for folder in folders:
        copy = str(tmp_path / os.path.basename(folder))
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("hparams", "events.*"))
        os.remove(os.path.join(copy, "results.json"))
        with contextlib.redirect_stdout(io.StringIO()):
            assert compare.main(["--collect", "--out", copy]) == 0
        with open(os.path.join(folder, "results.json")) as f:
            committed = json.load(f)
        with open(os.path.join(copy, "results.json")) as f:
            rebuilt = json.load(f)
        assert without_paths(rebuilt) == without_paths(committed), folder


# --------------------------------------------------------------------------------------------------
# The figure of every study (lab/studies_figure.py)
# --------------------------------------------------------------------------------------------------

def constructed_results(study, scale, means_by_steps, baseline):
    """A results.json's fields the figure reads: per budget and arm, its steps and mean."""
    arms = [{"base": base, "steps": steps, "test": {"mean": mean}}
            for steps, means in means_by_steps.items() for base, mean in means.items()]
    return {"study": study, "scale": scale, "baseline": baseline, "arms": arms,
            "budgets": ["1", "3", "10"] if len(means_by_steps) > 1 else [], "ranking": None}


def test_the_figure_is_drawn_from_the_results(tmp_path):
    from lab import studies_figure

    budgets = constructed_results("gaaf", "budgets", {
        90: {"a": 0.30, "b": 0.35, "c": 0.20},
        270: {"a": 0.40, "b": 0.40, "c": 0.45},   # a and b tied: both rank 2.5
        900: {"a": 0.60, "b": 0.50, "c": None}}, "a")  # c has no counted run at 900 steps
    one = constructed_results("dropact", "quick", {468: {"x": 0.53, "y": 0.52}}, "x")
    data = studies_figure.figure_data(budgets)
    assert data["steps"] == [90, 270, 900]
    assert data["arms"] == {"a": [(90, 2.0, 0.30), (270, 2.5, 0.40), (900, 1.0, 0.60)],
                            "b": [(90, 1.0, 0.35), (270, 2.5, 0.40), (900, 2.0, 0.50)],
                            "c": [(90, 3.0, 0.20), (270, 1.0, 0.45)]}
    assert studies_figure.figure_data(one) == {
        "steps": [468], "arms": {"x": [(468, 1.0, 0.53)], "y": [(468, 2.0, 0.52)]}}
    found = {"dropact": ("dropact-quick", one), "gaaf": ("gaaf-budgets", budgets)}
    path = tmp_path / "figure.png"
    studies_figure.plot(found, str(path))
    assert path.stat().st_size > 10000
    text = studies_figure.caption(found)
    assert "dropact-quick" in text and "one budget, 468 steps" in text
    assert "budgets of 90, 270, 900 steps" in text


def test_the_figure_shows_every_committed_study_and_its_budgets_first():
    import json

    from lab import studies_figure

    found = studies_figure.committed_results()
    assert list(found) == list(studies.STUDIES)  # all four, in order
    # A study with a committed budgets grid is drawn from it, not from its quick scale.
    assert found["dropout-order"][0] == "dropout-order-budgets"
    for study, (folder, results) in found.items():
        with open(os.path.join(studies_figure.FOLDER, folder, "results.json")) as f:
            assert json.load(f) == results
        data = studies_figure.figure_data(results)
        if results.get("ranking"):  # the report's own ranks at each budget
            assert [(steps, {a: r for a, points in data["arms"].items()
                             for s, r, _ in points if s == steps})
                    for steps in data["steps"]] == [
                (steps, ranks) for steps, ranks in results["ranking"]["ranks"]]
        means = {a["base"]: a["test"]["mean"] for a in results["arms"]
                 if a["steps"] == data["steps"][-1]}
        assert {a: points[-1][2] for a, points in data["arms"].items()} == means
