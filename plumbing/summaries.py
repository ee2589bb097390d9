"""What a run writes after each epoch: a line of metrics.jsonl and TensorBoard summaries.

metrics.jsonl holds one JSON object per finished epoch (eval.py --plot and compare.py read it);
TensorBoard gets the same scalars, each variable's mean gradient norm, and every few epochs
histograms of every weight and of the activations of one batch.
"""

import json


# TensorBoard names of the metrics.jsonl keys: train and test curves of a kind share a chart.
SCALAR_NAMES = {"train_loss": "loss/train", "val_loss": "loss/val", "test_loss": "loss/test",
                "train_accuracy": "accuracy/train", "val_accuracy": "accuracy/val",
                "test_accuracy": "accuracy/test", "lr": "optimizer/lr",
                "images_per_second": "speed/train_images_per_second"}


def log_epoch(writer, step, record, metrics_path, grad_norms=None, model=None,
              histogram_images=None):
    """One JSON line in metrics.jsonl; TensorBoard scalars, gradient norms and histograms.

    grad_norms: {variable path: mean gradient norm over the epoch}; model and histogram_images
    ([B, 32, 32, 3]): histograms of every variable and of the activations of one batch.
    """
    import tensorflow as tf

    with open(metrics_path, "a") as f:
        f.write(json.dumps(record) + "\n")
    with writer.as_default(step=step):
        for key, name in SCALAR_NAMES.items():
            if key in record:
                tf.summary.scalar(name, record[key])
        for path, value in (grad_norms or {}).items():
            tf.summary.scalar("grad_norm/" + path, value)
        if model is not None:
            # Named by their path in the model, e.g. weights/blocks/0/conv1/kernel.
            for path, v in model._flatten(predicate=lambda v: isinstance(v, tf.Variable),
                                          with_path=True):
                tf.summary.histogram("weights/" + "/".join(map(str, path)), v)
            for name, value in model.activation_outputs(histogram_images).items():
                tf.summary.histogram("activations/" + name, value)
    writer.flush()


def variable_paths(model):
    """The path of each trainable variable in the model, e.g. blocks/0/conv1/kernel, in the
    order of model.trainable_variables."""
    import tensorflow as tf
    paths = {v.ref(): "/".join(map(str, path)) for path, v in model._flatten(
        predicate=lambda v: isinstance(v, tf.Variable), with_path=True)}
    return [paths[v.ref()] for v in model.trainable_variables]
