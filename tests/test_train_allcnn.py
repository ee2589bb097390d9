"""train.py with All-CNN-C at its defaults (the blog's arms) on the bundled sample.

In a file of its own: 28 All-CNN-C steps take about 90 s on two cores, and `pytest -n 2 --dist
loadfile` hands out whole files, so a second worker can run test_train.py's tiny ResNet runs meanwhile.
"""

import math

import eval as evaluate
import train


def test_the_default_allcnn_relu_without_batch_norm_learns_on_the_sample(tmp_path):
    """The blog's arms without batch norm must learn with the defaults: with the paper's dropout
    the training loss was still 2.297 (ln 10 = 2.303) after these 28 steps."""
    logdir = str(tmp_path / "run")
    assert train.main(["--dataset", "cifar10-sample", "--epochs", "4", "--no-histograms",
                       "--logdir", logdir]) == 0
    rows = evaluate.read_metrics(logdir)
    assert rows[-1]["train_loss"] < math.log(10) - 0.05
