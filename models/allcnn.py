"""All-CNN-C (Springenberg et al. 2014, "Striving for Simplicity", arXiv 1412.6806).

Only convolutions: max pooling is replaced by 3x3 convolutions with stride 2, the dense layers by
1x1 convolutions and a global average over the last 6x6 maps (table 2 of the paper, model C):

    input 32x32x3, dropout 0.2
    3x3 conv 96, 3x3 conv 96, 3x3 conv 96 stride 2      -> 16x16x96
    dropout 0.5
    3x3 conv 192, 3x3 conv 192, 3x3 conv 192 stride 2   -> 8x8x192
    dropout 0.5
    3x3 conv 192 (valid)                                -> 6x6x192
    1x1 conv 192, 1x1 conv classes                      -> 6x6xclasses
    global average pool                                 -> classes

Every conv is followed by the activation (batch norm in between when `bn`). The last conv gives
the class scores: the paper's table puts a ReLU on them too (`score_act=True`, the allcnn-c
recipe), but by default they stay raw (conv with bias, no batch norm, no activation). Without
batch norm, a ReLU on the scores lets training push every score below zero, after which all
scores are 0, the prediction is uniform and the loss sits at ln(classes) with no gradient to leave
it: measured on the bundled sample with relu and no batch norm at lr 0.05, 0.01 and 0.002.
"""

import tensorflow as tf

from models.layers import Conv2D, Dropout, global_avg_pool
from models.network import Network, maybe_bn

# (out channels, kernel size, stride, padding); "drop" marks a dropout 0.5 position.
LAYOUT = [(96, 3, 1, "SAME"), (96, 3, 1, "SAME"), (96, 3, 2, "SAME"), "drop",
          (192, 3, 1, "SAME"), (192, 3, 1, "SAME"), (192, 3, 2, "SAME"), "drop",
          (192, 3, 1, "VALID"), (192, 1, 1, "VALID"), ("classes", 1, 1, "VALID")]


class AllCNN(Network):
    def __init__(self, config):
        super().__init__(config, name="allcnn")
        self.dropout = config["dropout"]
        self.score_act = config["score_act"]  # activation (and batch norm) on the class scores
        self.input_drop = Dropout(0.2 if self.dropout else 0.0, self.rng)
        self.convs, self.bns, self.acts = [], [], []
        width_in = 3
        for i, spec in enumerate(s for s in LAYOUT if s != "drop"):
            width, k, stride, padding = spec
            scores = width == "classes"  # the last conv: one map per class
            width = config["num_classes"] if scores else width
            plain = scores and not self.score_act  # raw class scores: bias, no BN, no activation
            # Batch norm follows the conv directly: its beta replaces the conv's bias.
            self.convs.append(Conv2D(width_in, width, k, self.init_rng, stride=stride,
                                     padding=padding, use_bias=plain or not config["bn"],
                                     data_format=self.data_format, name=f"conv{i + 1}"))
            # None without batch norm, or on raw class scores
            self.bns.append(None if plain else self.batch_norm(width, f"bn{i + 1}"))
            self.acts.append(None if plain else self.act(width, f"act{i + 1}"))
            width_in = width
        self.drop = Dropout(0.5 if self.dropout else 0.0, self.rng)

    def __call__(self, images, training, taps=None):
        x = self.input_drop(self.to_input(images), training)  # [N, 32, 32, 3]
        i = 0
        for spec in LAYOUT:
            if spec == "drop":
                x = self.drop(x, training)
                continue
            x = maybe_bn(self.bns[i], self.convs[i](x), training)
            if self.acts[i] is not None:
                x = self.acts[i](x, training)
            if taps is not None:
                taps[f"conv{i + 1}"] = x
            i += 1
        return tf.cast(global_avg_pool(x, self.data_format), tf.float32)  # [N, classes]
