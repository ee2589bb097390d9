"""The four comparisons of the sources, each one command: `python compare.py --study NAME`.

    python -m lab.studies                       # every study: source, arms, both scales, the command
    python -m lab.studies --time-steps          # measure each study model's train-step time here

A study is a set of arms (train.py settings that differ), the settings every arm shares, seeds and
a baseline arm, at two scales:

    paper   the source's own model, epochs and schedule (hours of GPU time; estimated, not run here)
    quick   the whole grid in about an hour on a 2-core CPU: fewer epochs and, where that is not
            enough, fewer training images (`--train-subset`) or a shallower ResNet; each study
            says what it shrinks in `shrunk`

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

TensorFlow-free except `--time-steps`, so compare.py can list studies instantly.
"""

import argparse

from plumbing.errors import UserError, run_script

# Arms are dicts of train.py flags (without the leading --) -> value; booleans are "on" / "off".


def product(**axes):
    """Every combination of the axes' values, in order: product(a=[1, 2], b=[3]) -> 2 arms."""
    arms = [{}]
    for flag, values in axes.items():
        arms = [dict(arm, **{flag: v}) for arm in arms for v in values]
    return arms


# The shifts of the GAAF-Keras table (floor variant); its round variant was run at shift -1 only.
GAAF_SHIFTS = ["5", "4", "3", "2", "1", "0", "-0.5", "-1", "-2", "-3", "-4"]

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
                   shrunk="nothing: the blog's All-CNN, batch 128, about 50k steps"),
        # bn-decay 0.9: at the recipe's 0.99, 0.99^78 = 46 % of the moving averages' initial
        # values would remain after 78 steps and the batch-norm arms would be judged on them.
        quick=dict(flags={"recipe": "blog-allcnn", "epochs": "2", "train-subset": "5000",
                          "histograms": "off"},
                   flags_when=[({"bn": "on"}, {"bn-decay": "0.9"})],
                   shrunk="2 epochs on 5,000 of the 45,000 training images (78 steps instead of "
                          "50,000), batch-norm decay 0.9 instead of 0.99 so that the moving "
                          "averages forget their initial values in 78 steps; the model, batch "
                          "size and validation split are the paper scale's"),
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
                   shrunk="nothing: ResNet-56, 200 epochs, lr 0.1 / 10 at epochs 91, 136, 182"),
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
        val_fraction="0.2",  # the repository's own 80/20 split
    ),
    "gaaf": dict(
        source="Hahn & Choi 2018, GAAF (arXiv 1806.09783), repository kobiso/GAAF-keras "
               "(ResNet-20 on CIFAR-10, Adam, no augmentation)",
        arms=[{"act": "relu"}]
        + [{"act": "gaaf-relu", "gaaf-shift": s} for s in GAAF_SHIFTS]
        + [{"act": "gaaf-relu", "gaaf-variant": "round", "gaaf-shift": "-1"}],
        baseline="act=relu",
        seeds=[0, 1, 2],
        paper=dict(flags={"recipe": "gaaf-resnet20"},
                   shrunk="nothing: the repository's ResNet-20, Adam 1e-3 with its step "
                          "schedule, 200 epochs, no augmentation"),
        # bn-decay 0.97: at the recipe's 0.99, 0.99^390 = 2 % of the moving averages' initial
        # values would remain after the 390 steps; at 0.97, 0.0007 %.
        quick=dict(flags={"recipe": "gaaf-resnet20", "epochs": "5", "train-subset": "10000",
                          "bn-decay": "0.97", "histograms": "off"},
                   arms=[{"act": "relu"}, {"act": "gaaf-relu", "gaaf-shift": "4"},
                         {"act": "gaaf-relu", "gaaf-shift": "-1"},
                         {"act": "gaaf-relu", "gaaf-variant": "round", "gaaf-shift": "-1"}],
                   shrunk="5 epochs on 10,000 of the 45,000 training images (390 steps) at "
                          "a constant lr, batch-norm decay 0.97 instead of 0.99; 4 arms (relu, "
                          "gaaf-relu floor with shift 4, the paper's choice, and -1, the "
                          "repository's best, and round with shift -1) instead of 13"),
    ),
    "dropout-order": dict(
        source="the Stack Exchange question on ordering SpatialDropout2D, BatchNormalization "
               "and pooling (the `cnn` model)",
        arms=[{"dropout": "none", "order": "conv-bn-act-pool-drop"}]
        + product(dropout=["dropout", "spatial"], order=DROPOUT_ORDERS),
        baseline="dropout=none,order=conv-bn-act-pool-drop",
        seeds=[0, 1, 2],
        # The question gives no schedule; the paper scale is this project's: 30 epochs of
        # momentum SGD with a cosine schedule (train.py's defaults).
        paper=dict(flags={"model": "cnn", "bn": "on", "epochs": "30"},
                   shrunk="nothing: the question's network with batch norm, 30 epochs"),
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
                            "warmup-epochs": "0", "train-subset": "2880", "bn-decay": "0.9",
                            "histograms": "off"},
                     budgets=["1", "3", "10"],
                     shrunk="1, 3 and 10 epochs (90, 270 and 900 steps of batch 32, lr 0.0125, "
                            "cosine, no warm-up) on 2,880 of the 45,000 training images, "
                            "batch-norm decay 0.9 so that the moving "
                            "averages forget their initial values in 90 steps; every other "
                            "setting the same at every length"),
    ),
}
# Every study has a quick and a paper scale; some also a budgets scale: the quick grid at several
# training lengths (compare.py reports the ranking at each length).
SCALES = ("quick", "paper", "budgets")


def arm_name(arm):
    """'act=relu,bn=on': the flags an arm sets, in the order the study gives them."""
    return ",".join(f"{k}={v}" for k, v in arm.items()) or "all"


def plan(name, scale):
    """{fixed: flags shared by every arm, arms: [flags], seeds, baseline, shrunk, val_fraction,
    flags_when: [(condition, flags)]: flags added to the arms whose settings match condition}."""
    if scale not in STUDIES[name]:
        raise UserError(f"study {name} has no {scale} scale; it has: "
                        + ", ".join(s for s in SCALES if s in STUDIES[name]))
    study, at = STUDIES[name], STUDIES[name][scale]
    return dict(fixed=dict(at["flags"]), arms=at.get("arms", study["arms"]),
                budgets=list(at.get("budgets", [])),
                flags_when=list(at.get("flags_when", [])),
                seeds=list(study["seeds"]), baseline=study["baseline"], shrunk=at["shrunk"],
                val_fraction=study.get("val_fraction", "0.1"), source=study["source"])


def command(name, scale):
    return f"python compare.py --study {name} --scale {scale} --out experiments/{name}-{scale}"


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


def estimate_seconds(name, scale, step_seconds, startup=15.0, test_images=10000):
    """Estimated seconds of a study's whole grid, one run at a time, from a train-step time.

    Per run: start-up (TensorFlow, data), the training steps, the validation split once per
    epoch and the test split once at the end (compare.py runs --no-test-every-epoch), each image
    evaluated at 1/3 of a training step's time per image (a forward pass without the backward
    one); CIFAR-10's 50,000 training images.
    """
    from plumbing import recipes

    p = plan(name, scale)
    flags = dict(p["fixed"])
    settings = dict(recipes.RECIPES.get(flags.get("recipe"), {}))
    settings.update({k.replace("-", "_"): v for k, v in flags.items()})
    val = int(round(50000 * float(p["val_fraction"])))
    train_images = min(int(settings.get("train_subset", 50000 - val)), 50000 - val)
    batch = int(settings.get("batch_size", 128))
    steps_per_epoch = train_images // batch
    epochs = int(settings.get("epochs", 30))
    steps = epochs * steps_per_epoch
    if int(settings.get("max_steps", 0) or 0):
        steps = min(steps, int(settings["max_steps"]))
        epochs = -(-steps // steps_per_epoch)
    image_seconds = step_seconds / batch / 3  # one image's forward pass
    per_run = startup + steps * step_seconds + (epochs * val + test_images) * image_seconds
    return len(p["arms"]) * len(p["seeds"]) * per_run


def main(argv=None):
    p = argparse.ArgumentParser(description="List the studies, or time their models' steps.")
    p.add_argument("--time-steps", action="store_true",
                   help="measure the train-step time of each study's models (a few steps each)")
    p.add_argument("--study", choices=sorted(STUDIES), nargs="*", default=sorted(STUDIES))
    p.add_argument("--scale", choices=SCALES, default="paper")
    args = p.parse_args(argv)
    for name in args.study:
        if args.time_steps:
            times = time_steps(name, args.scale)
            slowest = max(times.values())
            print(f"{name} {args.scale}: the whole grid, one run at a time at {slowest:.3f} "
                  f"s/step: ~{estimate_seconds(name, args.scale, slowest) / 3600:.1f} h")
            continue
        for scale in [s for s in SCALES if s in STUDIES[name]]:
            q = plan(name, scale)
            print(f"{name} [{scale}]: {len(q['arms'])} arms x {len(q['seeds'])} seeds; "
                  f"shrinks {q['shrunk']}\n    {command(name, scale)}")
    return 0


if __name__ == "__main__":
    run_script(main)
