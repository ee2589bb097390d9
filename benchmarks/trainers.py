"""One training step of each benchmark row, on the same random batches: this project's, stock
Keras's and PyTorch's, for the benchmarks (bench.py times them, bench_profile.py profiles them).

A row is a dict (JSON, so that a measuring subprocess receives it on its command line):

    kind       "ours" (train.build, the step train.py runs), "keras" (train_on_batch, one step per
               call) or "torch" (eager: forward, backward, optimizer.step)
    model      "resnet20", "resnet56" or "allcnn"
    bn         True: batch norm after every conv, convs without bias (train.py --bn);
               False: no batch norm, every conv keeps its bias (train.py's default)
    precision  "fp32" or "bf16" (ours --precision bf16; Keras' mixed_bfloat16 policy; PyTorch's
               autocast to bfloat16)
    fused      ours only: batch norm's fused kernel (--bn-fused)
    tf         TensorFlow settings applied before anything runs, to try them against each other:
               {"inter": n, "intra": n} (tf.config.threading), {"grappler": {...}}
               (tf.config.optimizer.set_experimental_options)

Every row trains with momentum SGD (0.9) and weight decay on the conv and dense kernels (train.py's
default 5e-4; PyTorch's per-parameter-group weight_decay on the same tensors, Keras' decoupled
`weight_decay` of its optimizer), on 8 pre-made batches of N(0, 1) images and random labels: the
input pipeline is measured on its own.
"""

import json
import os
import subprocess
import sys

import numpy as np

MODELS = {"resnet20": dict(model="resnet", depth=20), "resnet56": dict(model="resnet", depth=56),
          "allcnn": dict(model="allcnn")}
NAMES = {"resnet20": "ResNet-20", "resnet56": "ResNet-56", "allcnn": "All-CNN-C"}
CONFIGS = {"default": "train.py's default: no batch norm, convs with biases",
           "bn": "--bn: batch norm after every conv, convs without biases"}
WEIGHT_DECAY = 5e-4  # train.py's default
MOMENTUM = 0.9


def batches(n, batch_size, seed=0):
    """n batches: images [B, 32, 32, 3] float32 ~ N(0, 1), labels [B] int32 in 0..9."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=[batch_size, 32, 32, 3]).astype(np.float32),
             rng.integers(0, 10, batch_size).astype(np.int32)) for _ in range(n)]


def ours(model, batch_size, bn=False, fused=False, precision="fp32", strategy=None):
    """This project's model and steps, built by train.build from train.py's own flags: train.py's
    defaults, plus --bn / --bn-fused / --precision as the row says."""
    import train

    argv = [f"--{k}={v}" for k, v in MODELS[model].items()] + [
        "--batch-size", str(batch_size), "--logdir", "unused", "--precision", precision]
    argv += ["--bn"] if bn else []
    argv += ["--bn-fused"] if fused else []
    return train.build(train.parse_args(argv), 10, strategy)


def apply_tf_settings(settings):
    """A row's TensorFlow settings (threads, grappler), before TensorFlow runs its first op."""
    import tensorflow as tf

    if "inter" in settings:
        tf.config.threading.set_inter_op_parallelism_threads(settings["inter"])
    if "intra" in settings:
        tf.config.threading.set_intra_op_parallelism_threads(settings["intra"])
    if "grappler" in settings:
        tf.config.optimizer.set_experimental_options(settings["grappler"])


def make(row, batch_size):
    """(run, parameter count) for `row`; run(n) trains n steps and returns when the last ended."""
    return {"ours": _ours, "keras": _keras, "torch": _torch}[row["kind"]](row, batch_size)


def _ours(row, batch_size):
    import tensorflow as tf

    apply_tf_settings(row.get("tf", {}))
    t = ours(row["model"], batch_size, row.get("bn", False), row.get("fused", False),
             row.get("precision", "fp32"))
    data = [(tf.constant(x), tf.constant(y)) for x, y in batches(8, batch_size)]
    lr = tf.constant(0.01, tf.float32)

    def run(n):
        for i in range(n):
            loss, _ = t.train_step(*data[i % len(data)], lr)
        float(loss)  # the steps run asynchronously: wait for the last one

    return run, sum(int(np.prod(v.shape)) for v in t.model.trainable_variables)


def _keras(row, batch_size):
    import keras
    import tensorflow as tf

    from benchmarks import bench_peers

    apply_tf_settings(row.get("tf", {}))
    if row.get("precision") == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    spec, bn = MODELS[row["model"]], row.get("bn", False)
    model = bench_peers.keras_resnet_v1(spec["depth"], bn=bn) if spec["model"] == "resnet" else \
        bench_peers.keras_allcnn(bn=bn, dropout=False)
    optimizer = keras.optimizers.SGD(0.01, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    # Decay the kernels only, as ours (Keras would decay biases and batch norm's gamma and beta).
    optimizer.exclude_from_weight_decay(
        var_list=[w for w in model.trainable_weights if len(w.shape) <= 1])
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = [(tf.constant(x), tf.constant(y)) for x, y in batches(8, batch_size)]

    def run(n):
        for i in range(n):
            model.train_on_batch(*data[i % len(data)])  # returns the loss as a float: synchronous

    return run, sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _torch(row, batch_size):
    import torch

    from benchmarks import bench_peers

    torch.set_num_threads(os.cpu_count())
    spec, bn = MODELS[row["model"]], row.get("bn", False)
    model = bench_peers.torch_resnet_v1(spec["depth"], bn=bn) if spec["model"] == "resnet" else \
        bench_peers.torch_allcnn(bn=bn, dropout=False)
    # Weight decay on the conv and dense kernels only, as ours.
    kernels = [p for p in model.parameters() if p.dim() > 1]
    others = [p for p in model.parameters() if p.dim() <= 1]
    optimizer = torch.optim.SGD([{"params": kernels, "weight_decay": WEIGHT_DECAY},
                                 {"params": others, "weight_decay": 0.0}],
                                lr=0.01, momentum=MOMENTUM)
    data = [(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y).long())
            for x, y in batches(8, batch_size)]  # NCHW, PyTorch's layout
    bf16 = row.get("precision") == "bf16"
    model.train()

    def run(n):
        for i in range(n):
            x, y = data[i % len(data)]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()

    return run, sum(p.numel() for p in model.parameters())


def run_json(cmd):
    """Run a measuring worker (`python -m benchmarks...` arguments in `cmd`) from the repository
    root with TensorFlow's log quiet; its last JSON line, or {"skipped": the reason it failed}."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, env=env,
                          cwd=root)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return {"skipped": "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:100]}
    return json.loads(lines[-1])
