"""The four comparisons of the sources, each one command: `python compare.py --study NAME`.

    python -m lab.studies                       # every study: source, arms, both scales, estimates,
                                                # the commands
    python -m lab.studies --time-steps          # measure each study model's train-step time here

A study is a set of arms (train.py settings that differ), the settings every arm shares, seeds and
a baseline arm, at three scales:

    paper    the source's own model, epochs and schedule (hours of GPU time; estimated, not run
             here)
    quick    the whole grid in about an hour on a 2-core CPU: fewer epochs and, where that is not
             enough, fewer training images (`--train-subset`) or a shallower ResNet; each study
             says what it shrinks in `shrunk`
    budgets  the grid at three training lengths, 90, 270 and 900 steps (BUDGETS), each a whole
             run with its own schedule and every other setting the same, in about 5 hours or less
             on a 2-core CPU: where the ranking is heading, and whether a claim's sign has settled
             (lab/verdicts.py)

Each study records its source's training length (`source_training`), and every verdict states
its steps as a share of it (`source_share`).

Sources:
  blog-allcnn    the blog post "激活函数(relu,prelu,elu,+BN)对比on cifar10": All-CNN on CIFAR-10,
                 relu / prelu / elu, each with and without batch norm
  dropact        Liang et al. 2018, Drop-Activation (arXiv 1811.05850), and their Keras repository
                 JGuillaumin/drop_activation_tf: ResNet-56 with relu, rrelu, dropact
  gaaf           Hahn & Choi 2018, Gradient Acceleration in Activation Functions (arXiv 1806.09783),
                 and the repository kobiso/GAAF-keras: ResNet-20, Adam, no augmentation, relu
                 against gaaf-relu over sigmoid shifts 5 ... -4, floor and round variants
  dropout-order  the Stack Exchange question on ordering SpatialDropout2D, BatchNormalization and
                 pooling: the `cnn` model with no dropout, dropout and spatial dropout, in three
                 orders of conv, batch norm, activation, pooling and dropout

Each study also states its source's claims: orderings "arm A > arm B" with the source's figures,
which lab/verdicts.py judges against the measured runs.

TensorFlow-free except `--time-steps`, so compare.py can list studies instantly.
"""

import argparse
import os
import textwrap

from plumbing import tf_logs
from plumbing.errors import UserError, run_script

# Arms are dicts of train.py flags (without the leading --) -> value; booleans are "on" / "off".
# A study's claims are dicts {"better": arm name, "worse": arm name, "source": the source's
# figures}, the arm names as arm_name() gives them; plan() keeps those whose arms a scale runs.


def product(**axes):
    """Every combination of the axes' values, in order: product(a=[1, 2], b=[3]) -> 2 arms."""
    arms = [{}]
    for flag, values in axes.items():
        arms = [dict(arm, **{flag: v}) for arm in arms for v in values]
    return arms


def arm_name(arm):
    """'act=relu,bn=on': the flags an arm sets, in the order the study gives them."""
    return ",".join(f"{k}={v}" for k, v in arm.items()) or "all"


def ranking_claims(ranking, source):
    """Every pairwise ordering of a ranking (arm names, best first): 5 arms give 10 claims."""
    return [{"better": better, "worse": worse,
             "source": f"{source}: rank {i + 1} above rank {j + 1}"}
            for i, better in enumerate(ranking) for j, worse in enumerate(ranking) if i < j]


# Test accuracy (%) of kobiso/GAAF-keras's table (its README, "Test Results"; quoted in
# docs/STUDIES.md, study 3): ResNet-20 v1, 200 epochs, relu and gaaf-relu (floor variant) at each
# sigmoid shift; its round variant was run at shift -1 only.
GAAF_RELU_TEST = "80.84"
GAAF_FLOOR_TEST = {"5": "65.17", "4": "69.24", "3": "70.42", "2": "74.41", "1": "78.00",
                   "0": "78.86", "-0.5": "79.45", "-1": "79.48", "-2": "78.00", "-3": "77.68",
                   "-4": "77.33"}
GAAF_ROUND_TEST = {"-1": "80.54"}
GAAF_ARMS = ([{"act": "relu"}]
             + [{"act": "gaaf-relu", "gaaf-shift": s} for s in GAAF_FLOOR_TEST]
             + [{"act": "gaaf-relu", "gaaf-variant": "round", "gaaf-shift": s}
                for s in GAAF_ROUND_TEST])


# The four arms the shorter scales run: relu, gaaf-relu's floor variant at shift 4 (the shift its
# README expected to be best, its sigmoid being closest to the paper's shape function) and at -1
# (the best floor shift of its table), and the round variant at -1 (the table's best gaaf-relu).
GAAF_QUICK_ARMS = [{"act": "relu"}, {"act": "gaaf-relu", "gaaf-shift": "4"},
                   {"act": "gaaf-relu", "gaaf-shift": "-1"},
                   {"act": "gaaf-relu", "gaaf-variant": "round", "gaaf-shift": "-1"}]


def gaaf_claims():
    """relu above each gaaf-relu arm of GAAF_ARMS, with the repository's two figures."""
    claims = []
    for arm in GAAF_ARMS[1:]:
        shift = arm["gaaf-shift"]
        if arm.get("gaaf-variant") == "round":
            figure = f"gaaf-relu round, shift {shift} {GAAF_ROUND_TEST[shift]}"
        else:
            figure = f"gaaf-relu shift {shift} {GAAF_FLOOR_TEST[shift]}"
        claims.append({"better": "act=relu", "worse": arm_name(arm),
                       "source": f"the repository's table, test %: relu {GAAF_RELU_TEST}, "
                                 f"{figure}"})
    return claims


def budget_lr_steps(source_steps, source_epochs, budgets):
    """flags_when entries that give each budget the source's step schedule, scaled to its length.

    A step boundary at epoch b of the source's E epochs is at b / E of every budget:
    budget_lr_steps("91,136,182", 200, ["10"]) -> [({"epochs": "10"}, {"lr-steps":
    "4.55,6.8,9.1"})] (train.py takes fractional epochs; boundary b epochs is step round(b *
    steps per epoch)). So each budget is a whole run with the source's schedule shape.
    """
    return [({"epochs": e}, {"lr-steps": ",".join(
        f"{float(b) * int(e) / source_epochs:g}" for b in source_steps.split(","))})
        for e in budgets]


# The training lengths of the budgets scales: 1, 3 and 10 epochs of 90 steps, 90 to 900 steps,
# the same three lengths in every study so that their rankings can be set side by side.
BUDGETS = ["1", "3", "10"]
# Batch-norm decay of every budgets scale: 0.9^90 = 0.008 % of the moving averages' initial
# values remain after the shortest budget (at the recipes' 0.99, 40 %).
BUDGETS_BN_DECAY = "0.9"

DROPOUT_ORDERS = ["conv-bn-act-pool-drop", "conv-drop-bn-act-pool", "conv-act-bn-pool-drop"]

STUDIES = {
    "blog-allcnn": dict(
        source='the blog post "激活函数(relu,prelu,elu,+BN)对比on cifar10" (All-CNN on CIFAR-10)',
        arms=product(act=["relu", "prelu", "elu"], bn=["on", "off"]),
        baseline="act=relu,bn=off",
        seeds=[0, 1, 2],
        # The blog reports its curves up to about 50k steps of batch 128: 50,000 steps over
        # 45,000 training images is 143 epochs (352 steps each).
        paper=dict(flags={"recipe": "blog-allcnn", "epochs": "143", "max-steps": "50000"},
                   shrunk="nothing: the `blog-allcnn` recipe (the blog's All-CNN), 50,000 steps "
                          "of batch 128 (143 epochs of the 45,000 training images)"),
        # bn-decay 0.9: at the recipe's 0.99, 0.99^78 = 46 % of the moving averages' initial
        # values would remain after 78 steps and the batch-norm arms would be judged on them.
        quick=dict(flags={"recipe": "blog-allcnn", "epochs": "2", "train-subset": "5000",
                          "histograms": "off"},
                   flags_when=[({"bn": "on"}, {"bn-decay": "0.9"})],
                   shrunk="2 epochs on 5,000 of the 45,000 training images (78 steps instead of "
                          "50,000), batch-norm decay 0.9 instead of 0.99 so that the moving "
                          "averages forget their initial values in 78 steps; the model, batch "
                          "size and validation split are the paper scale's"),
        # The ranking at three training lengths (BUDGETS), each a whole run with the recipe's
        # cosine schedule. An All-CNN-C step of batch 128 took 2.26 s on the 2-core CPU this scale
        # was sized on (2026-12-01): 1,260 such steps for each of 18 runs would be 14 h. So batch
        # 24 (2,160 training images give 90 steps an epoch), lr 0.01 x 24 / 128 = 0.001875 (the
        # recipe's rate scaled linearly with the batch, Goyal et al. 2017, arXiv 1706.02677), and
        # the five arms the post ranks (prelu + BN, which it does not rank, is left out).
        budgets=dict(flags={"recipe": "blog-allcnn", "batch-size": "24", "lr": "0.001875",
                            "train-subset": "2160", "histograms": "off"},
                     arms=[{"act": "relu", "bn": "on"}, {"act": "relu", "bn": "off"},
                           {"act": "prelu", "bn": "off"}, {"act": "elu", "bn": "on"},
                           {"act": "elu", "bn": "off"}],
                     budgets=BUDGETS,
                     flags_when=[({"bn": "on"}, {"bn-decay": BUDGETS_BN_DECAY})],
                     shrunk="batch 24 instead of 128 on 2,160 of the 45,000 training images, lr "
                            "0.001875 (the recipe's 0.01 scaled with the batch), the recipe's "
                            "cosine schedule over each whole run; the five arms the post ranks; "
                            "every other setting the same at every length"),
        # The post's training: its curves run to about 50,000 steps of batch 128 (the paper
        # scale's 50,000 steps); every verdict states its steps as a share of it.
        source_training=dict(steps=50000, batch=128,
                             text="the post's about 50,000 steps of batch 128"),
        # The post's test-accuracy ranking on CIFAR-10 (docs/STUDIES.md, study 1: "source
        # rank"); it does not rank prelu + BN.
        claims=ranking_claims(["act=relu,bn=on", "act=elu,bn=off", "act=prelu,bn=off",
                               "act=elu,bn=on", "act=relu,bn=off"],
                              "the post's CIFAR-10 test-accuracy ranking"),
    ),
    "dropact": dict(
        source="Liang et al. 2018, Drop-Activation (arXiv 1811.05850), repository "
               "JGuillaumin/drop_activation_tf (ResNet-56 on CIFAR-10)",
        # The repository's "relu + dropout" row has no counterpart: the project's ResNet has no
        # dropout layer.
        arms=product(act=["relu", "rrelu", "dropact"]),
        baseline="act=relu",
        seeds=[0, 1, 2],
        paper=dict(flags={"recipe": "dropact-resnet56"},
                   shrunk="nothing: the `dropact-resnet56` recipe (the repository's "
                          "pre-activation ResNet-56, 200 epochs, lr 0.1 / 10 at epochs 91, 136, "
                          "182; the recipe's comment lists what still differs)"),
        # bn-decay 0.97: at the recipe's 0.997, 0.997^468 = 25 % of the moving averages'
        # initial values would remain after the 468 steps (63 % after epoch 2, when validation
        # sat at chance while training reached 39 %); at 0.97, 0.00006 %.
        quick=dict(flags={"recipe": "dropact-resnet56", "depth": "20", "epochs": "6",
                          "lr-steps": "3,5", "train-subset": "10000", "bn-decay": "0.97",
                          "histograms": "off"},
                   shrunk="ResNet-20 instead of ResNet-56, 6 epochs (lr / 10 after epochs 3 and "
                          "5) on 10,000 of the 40,000 training images (468 steps), batch-norm "
                          "decay 0.97 instead of 0.997 so that the moving averages forget their "
                          "initial values in 468 steps"),
        # The ranking at three training lengths (BUDGETS), each a whole run with the repository's
        # step schedule scaled to it (lr / 10 at 91/200, 136/200 and 182/200 of the run): the
        # quick scale's ResNet-20 at the repository's batch 128 and lr 0.1, on 11,520 training
        # images (90 steps an epoch).
        budgets=dict(flags={"recipe": "dropact-resnet56", "depth": "20", "train-subset": "11520",
                            "bn-decay": BUDGETS_BN_DECAY, "histograms": "off"},
                     budgets=BUDGETS,
                     flags_when=budget_lr_steps("91,136,182", 200, BUDGETS),
                     shrunk="ResNet-20 instead of ResNet-56 on 11,520 of the 40,000 training "
                            "images, the repository's schedule scaled to each whole run (lr / 10 "
                            "at 45.5 %, 68 % and 91 % of its steps); the repository's batch 128 "
                            "and lr 0.1; every other setting the same at every length"),
        # The repository's training: 200 epochs of 313 steps of batch 128 (its 40,000 training
        # images, the last batch of each epoch partial; plumbing/recipes.py, dropact-resnet56).
        source_training=dict(steps=62600, batch=128,
                             text="the repository's 62,600 steps of batch 128"
                                  ", 200 epochs of 313"),
        val_fraction="0.2",  # the repository's own 80/20 split
        # The repository's table, test % (docs/STUDIES.md, study 2): dropact 93.27, relu 92.58,
        # rrelu 90.65; the paper's claim, Drop-Activation above both, and the table's relu above
        # rrelu.
        claims=[
            {"better": "act=dropact", "worse": "act=relu",
             "source": "the repository's table, test %: dropact 93.27, relu 92.58 (+0.69)"},
            {"better": "act=dropact", "worse": "act=rrelu",
             "source": "the repository's table, test %: dropact 93.27, rrelu 90.65 (+2.62)"},
            {"better": "act=relu", "worse": "act=rrelu",
             "source": "the repository's table, test %: relu 92.58, rrelu 90.65 (+1.93)"},
        ],
    ),
    "gaaf": dict(
        source="Hahn & Choi 2018, GAAF (arXiv 1806.09783), repository kobiso/GAAF-keras "
               "(ResNet-20 on CIFAR-10, Adam, no augmentation)",
        arms=GAAF_ARMS,
        baseline="act=relu",
        seeds=[0, 1, 2],
        paper=dict(flags={"recipe": "gaaf-resnet20"},
                   shrunk="nothing: the `gaaf-resnet20` recipe (the repository's ResNet-20, "
                          "Adam 1e-3 x0.1, x0.01, x0.001, x0.0005 from epochs 81, 121, 161, 181, "
                          "200 epochs, no augmentation; the recipe's comment lists what still "
                          "differs)"),
        # bn-decay 0.97: at the recipe's 0.99, 0.99^390 = 2 % of the moving averages' initial
        # values would remain after the 390 steps; at 0.97, 0.0007 %.
        quick=dict(flags={"recipe": "gaaf-resnet20", "epochs": "5", "train-subset": "10000",
                          "bn-decay": "0.97", "histograms": "off"},
                   arms=GAAF_QUICK_ARMS,
                   shrunk="5 epochs on 10,000 of the 45,000 training images (390 steps) at "
                          "a constant lr, batch-norm decay 0.97 instead of 0.99; 4 of the 13 "
                          "arms: beside relu, gaaf-relu's floor variant at shift 4 (the shift "
                          "the repository's README expected to be best) and at -1 (its table's "
                          "best floor shift), and its round variant at -1 (its table's best "
                          "gaaf-relu run)"),
        # The ranking at three training lengths (BUDGETS), each a whole run with the repository's
        # schedule scaled to it (its factors from 81/200, 121/200, 161/200 and 181/200 of the
        # run): the quick scale's four arms at the repository's batch 128 and Adam 1e-3, on
        # 11,520 training images (90 steps an epoch).
        budgets=dict(flags={"recipe": "gaaf-resnet20", "train-subset": "11520",
                            "bn-decay": BUDGETS_BN_DECAY, "histograms": "off"},
                     arms=GAAF_QUICK_ARMS,
                     budgets=BUDGETS,
                     flags_when=budget_lr_steps("81,121,161,181", 200, BUDGETS),
                     shrunk="11,520 of the 45,000 training images, the repository's schedule "
                            "scaled to each whole run (x0.1, x0.01, x0.001, x0.0005 from 40.5 %, "
                            "60.5 %, 80.5 % and 90.5 % of its steps); the repository's batch 128 "
                            "and Adam 1e-3; the quick scale's 4 of the 13 arms; every other "
                            "setting the same at every length"),
        # The repository's training: 200 epochs of 391 steps of batch 128 (all 50,000 training
        # images, the last batch of each epoch partial; plumbing/recipes.py, gaaf-resnet20).
        source_training=dict(steps=78200, batch=128,
                             text="the repository's 78,200 steps of batch 128"
                                  ", 200 epochs of 391"),
        # The repository's table (GAAF_*_TEST; docs/STUDIES.md, study 3): relu above every
        # gaaf-relu arm, "gaaf-relu improved on relu in none of its runs". These are the orderings
        # its figures show, the ones this study reruns; the paper's general claim that GAAF
        # improves performance comes with no ResNet-20 figure in docs/STUDIES.md.
        claims=gaaf_claims(),
    ),
    "dropout-order": dict(
        source="the Stack Exchange question on ordering SpatialDropout2D, BatchNormalization "
               "and pooling (the `cnn` model)",
        arms=[{"dropout": "none", "order": "conv-bn-act-pool-drop"}]
        + product(dropout=["dropout", "spatial"], order=DROPOUT_ORDERS),
        baseline="dropout=none,order=conv-bn-act-pool-drop",
        seeds=[0, 1, 2],
        paper=dict(flags={"model": "cnn", "bn": "on", "epochs": "30"},
                   shrunk="nothing: the question's network with batch norm; the question gives "
                          "no schedule, so this is the project's: 30 epochs, momentum 0.9, "
                          "cosine schedule from 0.05 after a one-epoch warm-up, batch 128 "
                          "(train.py's defaults)"),
        # 3 epochs of 78 steps: 0.99^234 = 9.5 % of the moving averages' initial values would
        # remain at the end; at 0.97, 0.08 %.
        quick=dict(flags={"model": "cnn", "bn": "on", "epochs": "3", "train-subset": "10000",
                          "bn-decay": "0.97", "histograms": "off"},
                   shrunk="3 epochs on 10,000 of the 45,000 training images (234 steps), "
                          "batch-norm decay 0.97 instead of 0.99 so that the moving averages "
                          "forget their initial values in 234 steps"),
        # Where is the ranking going? The same grid at three training lengths, each a whole run
        # with its own cosine schedule: 1, 3 and 10 epochs of 90 steps (batch 32 on 2,880
        # training images), 90 to 900 steps. Batch 32 keeps the longest run's images (28,800)
        # near the quick scale's (29,952), and lr 0.0125 is the cnn's 0.05 at batch 128 scaled
        # linearly with the batch (Goyal et al. 2017, arXiv 1706.02677); no warm-up, so every
        # length runs one plain cosine schedule. bn-decay 0.9: 0.9^90 = 0.008 % of the moving
        # averages' initial values remain after the shortest run.
        budgets=dict(flags={"model": "cnn", "bn": "on", "batch-size": "32", "lr": "0.0125",
                            "warmup-epochs": "0", "train-subset": "2880",
                            "bn-decay": BUDGETS_BN_DECAY, "histograms": "off"},
                     budgets=BUDGETS,
                     shrunk="1, 3 and 10 epochs (90, 270 and 900 steps of batch 32, lr 0.0125, "
                            "cosine, no warm-up) on 2,880 of the 45,000 training images, "
                            "batch-norm decay 0.9; every other setting the same at every "
                            "length"),
        # The question gives no training length of its own: its claims (none) need no share.
        source_training=None,
        # The question asks which arrangement is right and states no ordering of its own
        # (docs/STUDIES.md, study 4: "The question reports no measurements"): no claims.
        claims=[],
    ),
}
# Every study has a quick and a paper scale; some also a budgets scale: the quick grid at several
# training lengths (compare.py reports the ranking at each length).
SCALES = ("quick", "paper", "budgets")

# Seconds per train step (batch 128) of each study model on an idle 2-core x86-64 CPU, the figures
# of docs/STUDIES.md, "Time per step on this machine": the median over the arms timed with
# `--time-steps` (2026-12-02, nothing else running). Every estimate of the listing and of
# docs/STUDIES.md is estimate_seconds() at these times.
STEP_SECONDS = {"ResNet-20": 0.20, "cnn": 0.087, "ResNet-56": 0.76, "All-CNN-C": 0.66}


def plan(name, scale):
    """{fixed: flags shared by every arm, arms: [flags], seeds, baseline, shrunk, val_fraction,
    flags_when: [(condition, flags)]: flags added to the arms whose settings match condition,
    budgets: training lengths (--epochs) every arm runs at, source, claims: the source's claims
    whose two arms this scale runs}."""
    if scale not in STUDIES[name]:
        raise UserError(f"study {name} has no {scale} scale; it has: "
                        + ", ".join(s for s in SCALES if s in STUDIES[name]))
    study, at = STUDIES[name], STUDIES[name][scale]
    arms = at.get("arms", study["arms"])
    names = {arm_name(arm) for arm in arms}
    return dict(fixed=dict(at["flags"]), arms=arms, budgets=list(at.get("budgets", [])),
                flags_when=list(at.get("flags_when", [])),
                seeds=list(study["seeds"]), baseline=study["baseline"], shrunk=at["shrunk"],
                val_fraction=study.get("val_fraction", "0.1"), source=study["source"],
                claims=[dict(c) for c in study["claims"]
                        if c["better"] in names and c["worse"] in names])


def budget_steps(name, scale):
    """Training steps of each budget of a scale (one entry, the run's steps, without budgets):
    epochs x (training images // batch), at most --max-steps."""
    p, s = plan(name, scale), settings(name, scale)
    val = int(round(50000 * float(p["val_fraction"])))
    train_images = min(int(s.get("train_subset", 50000 - val)), 50000 - val)
    steps_per_epoch = train_images // int(s.get("batch_size", 128))
    steps = [int(e) * steps_per_epoch for e in p["budgets"] or [s.get("epochs", 30)]]
    cap = int(s.get("max_steps", 0) or 0)
    return [min(n, cap) if cap else n for n in steps]


def bn_decays(name, scale):
    """The batch-norm decays a scale's arms train with (none when no arm has batch norm)."""
    from plumbing import recipes

    p = plan(name, scale)
    recipe = recipes.RECIPES.get(p["fixed"].get("recipe"), {})
    out = set()
    for arm in p["arms"]:
        flags = dict(p["fixed"], **arm)
        for condition, extra in p["flags_when"]:
            if all(flags.get(k) == v for k, v in condition.items()):
                flags.update(extra)
        bn = flags.get("bn", "on" if recipe.get("bn", True) else "off")
        if bn == "on":
            out.add(float(flags.get("bn-decay", recipe.get("bn_decay", 0.99))))
    return sorted(out)


def source_share(name, steps, batch):
    """'0.16 % of the post's about 50,000 steps of batch 128': a run's steps as a share of its
    source's training (STUDIES[name]["source_training"]); with another batch size, also the share
    of the training images. None for a study whose source states no training."""
    source = STUDIES[name].get("source_training")
    if not source or not steps:
        return None

    def share(x):  # no more digits than the figure needs
        return f"{100 * x:.2g}" if x < 0.1 else f"{100 * x:.0f}"

    text = f"{share(steps / source['steps'])} % of {source['text']}"
    if batch and int(batch) != source["batch"]:
        text += (f"; batch {batch}: {share(steps * int(batch) / (source['steps'] * source['batch']))}"
                 " % of its training images")
    return text


def command(name, scale):
    """The command that runs a study; its runs go to compare.py's default experiments/NAME-SCALE."""
    return f"python compare.py --study {name} --scale {scale} --data-dir DATA"


def collect_command(name, scale):
    """The command that evaluates a study's chosen checkpoints and writes the report, for runs
    made by other means (the train.py commands of `compare.py --print-commands`, a job array)."""
    return command(name, scale) + " --collect"


# --------------------------------------------------------------------------------------------------
# --time-steps: the train-step time of each study's model on this machine
# --------------------------------------------------------------------------------------------------

def time_steps(name, scale, steps=3, warmup=1, batch_size=128):
    """Median seconds per train step (batch 128, random images) of each distinct model of a study.

    Uses train.py's own step function on random data, so it measures the network's compute, not
    data loading; the first `warmup` steps (tracing) are not counted. Arms that differ only in a
    number (a gaaf shift) or in the dropout kind / order are timed once.
    """
    import statistics
    import time

    # As train.py does: before TensorFlow's first import, or its C++ start-up log lines (CPU
    # features, oneDNN) go to stderr; a user who sets the level keeps it (plumbing/tf_logs.py).
    tf_logs.quiet()
    import numpy as np
    import tensorflow as tf

    import train

    p = plan(name, scale)
    out, timed = {}, set()
    for arm in p["arms"]:
        flags = dict(p["fixed"], **arm)
        flags.pop("train-subset", None)  # a data option: no effect on the step
        for same_ops in ("gaaf-shift", "gaaf-variant", "order", "dropout"):
            flags.pop(same_ops, None)  # (nearly) the same ops whatever their value
        key = tuple(sorted(flags.items()))
        if key in timed:
            continue
        timed.add(key)
        argv = []
        for k, v in flags.items():
            argv += [f"--{k}"] if v == "on" else [f"--no-{k}"] if v == "off" else [f"--{k}", v]
        args = train.parse_args(argv + ["--logdir", "unused"])
        train_step = train.build(args, 10).train_step  # train.py's own step
        rng = np.random.default_rng(0)
        images = tf.constant(rng.normal(size=[batch_size, 32, 32, 3]).astype(np.float32))
        labels = tf.constant(rng.integers(0, 10, batch_size).astype(np.int32))
        lr = tf.constant(1e-3, tf.float32)
        times = []
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            float(train_step(images, labels, lr)[0])  # waits for the step to finish
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        out[arm_name(arm)] = statistics.median(times)
        print(f"{name} {scale} {arm_name(arm)}: {out[arm_name(arm)]:.3f} s/step", flush=True)
    return out


def settings(name, scale):
    """The train.py settings (argparse names) every arm of a study shares: recipe, then flags."""
    from plumbing import recipes

    flags = plan(name, scale)["fixed"]
    out = dict(recipes.RECIPES.get(flags.get("recipe"), {}))
    out.update({k.replace("-", "_"): v for k, v in flags.items()})
    return out


def step_model(name, scale):
    """The STEP_SECONDS key of a study's model: 'ResNet-20', 'ResNet-56', 'cnn' or 'All-CNN-C'."""
    s = settings(name, scale)
    return {"resnet": f"ResNet-{s.get('depth')}", "allcnn": "All-CNN-C"}.get(s["model"], s["model"])


def estimate_seconds(name, scale, step_seconds=None, startup=15.0, test_images=10000):
    """Estimated seconds of a study's whole grid, one run at a time, from a train-step time.

    `step_seconds`: seconds per train step; by default the documented time of the study's model,
    STEP_SECONDS[step_model(name, scale)]. Per run: start-up (TensorFlow, data), the training
    steps, the validation split once per epoch and the test split once at the end (compare.py
    runs --no-test-every-epoch), each image evaluated at 1/3 of a training step's time per image
    (a forward pass without the backward one); CIFAR-10's 50,000 training images.
    """
    if step_seconds is None:
        step_seconds = STEP_SECONDS[step_model(name, scale)]
    p, s = plan(name, scale), settings(name, scale)
    val = int(round(50000 * float(p["val_fraction"])))
    train_images = min(int(s.get("train_subset", 50000 - val)), 50000 - val)
    batch = int(s.get("batch_size", 128))
    # The step times are of batch 128; on a CPU a step's time is close to proportional to the
    # batch (a batch-32 step: about a quarter).
    step_seconds *= batch / 128
    steps_per_epoch = train_images // batch
    image_seconds = step_seconds / batch / 3  # one image's forward pass
    total = 0.0
    for epochs in [int(b) for b in p["budgets"]] or [int(s.get("epochs", 30))]:
        steps = epochs * steps_per_epoch
        if int(s.get("max_steps", 0) or 0):
            steps = min(steps, int(s["max_steps"]))
            epochs = -(-steps // steps_per_epoch)
        total += startup + steps * step_seconds + (epochs * val + test_images) * image_seconds
    return len(p["arms"]) * len(p["seeds"]) * total


def duration(seconds):
    """'47 min' under two hours, else '8.4 h' or '285 h': no more digits than an estimate has."""
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"


# --------------------------------------------------------------------------------------------------
# The listing: `python -m lab.studies`, and the study blocks of docs/STUDIES.md (lab/studies_doc.py)
# --------------------------------------------------------------------------------------------------

def wrap(text):
    """A paragraph or a '- ' bullet at 100 columns; arm names, flags and the words joined by a
    no-break space ('33\\xa0min') are never split, and the no-break spaces become plain ones."""
    lines = textwrap.wrap(text, 100, subsequent_indent="  " if text.startswith("- ") else "",
                          break_on_hyphens=False, break_long_words=False)
    return [line.replace("\xa0", " ") for line in lines]


def describe(name):
    """A study as text lines that are also Markdown: the listing prints them and
    docs/STUDIES.md holds them as the generated block `study-NAME` (lab/studies_doc.py), so the
    two cannot disagree. Source, arms, baseline, seeds, validation split; per scale what it
    shrinks and the estimated time (estimate_seconds at the documented STEP_SECONDS); the
    commands as an indented code block, with the `--collect` step for runs made elsewhere."""
    def code(flags):  # {"bn": "on"} -> "`bn=on`"
        return ", ".join(f"`{k}={v}`" for k, v in flags.items())

    study = STUDIES[name]
    arms = [arm_name(arm) for arm in study["arms"]]
    val = float(study.get("val_fraction", "0.1"))
    lines = wrap(f"Source: {study['source']}.") + [""]
    lines += wrap(f"- Arms ({len(arms)}): " + ", ".join(f"`{a}`" for a in arms)
                  + f"; baseline `{study['baseline']}`; seeds "
                  + ", ".join(str(s) for s in study["seeds"])
                  + f"; validation split {val:g} of the training images ({50000 * val:,.0f}"
                    " of CIFAR-10's 50,000), on which each run's checkpoint is chosen.")
    scales = [scale for scale in SCALES if scale in study]
    for scale in scales:
        p = plan(name, scale)
        runs = len(p["arms"]) * len(p["seeds"]) * max(len(p["budgets"]), 1)
        if p["arms"] == study["arms"]:
            arms_here = f"{len(p['arms'])} arms"
        else:
            arms_here = (f"{len(p['arms'])} of the {len(arms)} arms ("
                         + ", ".join(f"`{arm_name(a)}`" for a in p["arms"]) + ")")
        model = step_model(name, scale)
        only = "".join(f" For the arms with {code(condition)}: {code(flags)}."
                       for condition, flags in p["flags_when"])
        at = forget = ""
        if p["budgets"]:
            steps = budget_steps(name, scale)
            batch = settings(name, scale).get("batch_size", 128)
            at = (f" x {len(p['budgets'])} budgets (epochs {', '.join(p['budgets'])}: "
                  + ", ".join(f"{n:,}" for n in steps) + f" steps of batch {batch})")
            # Each budget is judged on its own moving averages: decay^steps of their initial
            # values must be negligible after the shortest.
            forget = "".join(f" Batch-norm decay {d:g}: {d:g}^{steps[0]} = "
                             f"{100 * d ** steps[0]:.2g} % of the moving averages' initial "
                             "values remain after the shortest budget."
                             for d in bn_decays(name, scale))
        lines += wrap(f"- {scale.capitalize()} scale: {arms_here}{at} x {len(p['seeds'])} seeds = "
                      f"{runs} runs. Shrinks {p['shrunk']}.{only}{forget} Estimated time: "
                      + duration(estimate_seconds(name, scale)).replace(" ", "\xa0")
                      + f", one run at a time on a 2-core CPU at {STEP_SECONDS[model]}\xa0s per "
                        f"batch-128 train step ({model}).")
    lines += [""] + wrap("Commands (DATA: the dataset folder, as train.py's `--data-dir`; the "
                         f"runs and the report go to `experiments/{name}-SCALE`):")
    lines += [""] + [f"    {command(name, scale)}" for scale in scales] + [""]
    lines += wrap("When the runs are made elsewhere (the train.py commands of `--print-commands`, "
                  "e.g. in a job array), the test evaluation of the chosen checkpoints and the "
                  "report come afterwards from:")
    lines += [""] + [f"    {collect_command(name, scale)}" for scale in scales]
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(
        description="List the studies, or time their models' steps. (The generated blocks of "
                    "docs/STUDIES.md: python -m lab.studies_doc.)")
    p.add_argument("--time-steps", action="store_true",
                   help="measure the train-step time of each study's models (a few steps each)")
    p.add_argument("--study", choices=sorted(STUDIES), nargs="*", default=sorted(STUDIES))
    p.add_argument("--scale", choices=SCALES, default="paper")
    args = p.parse_args(argv)
    for name in args.study:
        if args.time_steps:
            times = time_steps(name, args.scale)
            slowest = max(times.values())
            model = step_model(name, args.scale)
            print(f"{name} {args.scale}: the whole grid, one run at a time: "
                  f"~{duration(estimate_seconds(name, args.scale, slowest))} with the measured "
                  f"step time ({slowest:.3f} s/step, the slowest model timed); "
                  f"~{duration(estimate_seconds(name, args.scale))} with the documented one "
                  f"({STEP_SECONDS[model]} s/step, {model})")
            continue
        print(f"## {name}\n")
        print("\n".join(describe(name)) + "\n")
    return 0


if __name__ == "__main__":
    run_script(main)
