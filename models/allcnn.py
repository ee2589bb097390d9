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

import activations
from batch_norm import BatchNorm
from models.layers import Conv2D, Dropout, global_avg_pool
from models.network import Network, maybe_bn
from plumbing.choices import MODEL_DEFAULTS as D, MODEL_OPTIONS

# (out channels, kernel size, stride, padding); "drop" marks a dropout 0.5 position.
LAYOUT = [(96, 3, 1, "SAME"), (96, 3, 1, "SAME"), (96, 3, 2, "SAME"), "drop",
          (192, 3, 1, "SAME"), (192, 3, 1, "SAME"), (192, 3, 2, "SAME"), "drop",
          (192, 3, 1, "VALID"), (192, 1, 1, "VALID"), ("classes", 1, 1, "VALID")]


class AllCNN(Network):
    """All-CNN-C for `num_classes` classes.

    act, act_params: every layer's activation, by name, with its own parameters only
        (activations.make: "elu", {"elu_alpha": 1.0}).
    bn: batch norm after every conv (batch_norm.BatchNorm, with bn_decay, bn_epsilon,
        bn_test_batch_stats, bn_fused).
    dropout: the paper's dropout (0.2 on the input, 0.5 after each stride-2 conv);
    score_act: batch norm and activation on the class scores too.
    seed: initial weights and run-time randomness; data_format NHWC or NCHW; compute_dtype
        float32, bfloat16 or float16 (the variables stay float32).
    """

    def __init__(self, num_classes, act="relu", act_params=None, bn=D["bn"],
                 bn_decay=D["bn_decay"], bn_epsilon=D["bn_epsilon"],
                 bn_test_batch_stats=D["bn_test_batch_stats"], bn_fused=D["bn_fused"],
                 dropout=MODEL_OPTIONS["allcnn"]["dropout"],
                 score_act=MODEL_OPTIONS["allcnn"]["score_act"], seed=0,
                 data_format=D["data_format"], compute_dtype="float32"):
        act_params = dict(act_params or {})
        super().__init__("allcnn", seed, data_format, compute_dtype, config=dict(
            num_classes=num_classes, act=act, act_params=act_params, bn=bn, bn_decay=bn_decay,
            bn_epsilon=bn_epsilon, bn_test_batch_stats=bn_test_batch_stats, bn_fused=bn_fused,
            dropout=dropout, score_act=score_act))
        self.dropout = dropout
        self.score_act = score_act  # activation (and batch norm) on the class scores
        self.input_drop = Dropout(0.2 if self.dropout else 0.0, self.rng)
        self.convs, self.bns, self.acts = [], [], []
        width_in = 3
        for i, spec in enumerate(s for s in LAYOUT if s != "drop"):
            width, k, stride, padding = spec
            scores = width == "classes"  # the last conv: one map per class
            width = num_classes if scores else width
            plain = scores and not self.score_act  # raw class scores: bias, no BN, no activation
            # Batch norm follows the conv directly: its beta replaces the conv's bias.
            self.convs.append(Conv2D(width_in, width, k, self.init_rng, stride=stride,
                                     padding=padding, use_bias=plain or not bn,
                                     data_format=data_format, name=f"conv{i + 1}"))
            self.bns.append(None if plain or not bn else BatchNorm(
                width, decay=bn_decay, epsilon=bn_epsilon, test_batch_stats=bn_test_batch_stats,
                data_format=data_format, fused=bn_fused, name=f"bn{i + 1}"))
            self.acts.append(None if plain else activations.Activation(activations.make(
                act, width, self.rng, channel_axis=self.channel_axis, name_scope=f"act{i + 1}",
                **act_params)))
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
