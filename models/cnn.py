"""A plain CNN for studying where dropout and batch norm go: the network of the Stack Exchange
question on ordering SpatialDropout2D, BatchNormalization and pooling.

    [conv 32, conv 32] -> pool -> dropout 0.2 -> [conv 64, conv 64] -> pool -> dropout 0.2
    -> dense 512 -> dropout 0.4 -> dense classes        (3x3 convs, "same" padding, 2x2 max pool)

`order` names the sequence of operations after each convolution of a block; `pool` and `drop` act
once per block, at the block's last convolution, at the position the order gives them. E.g.
`conv-bn-act-pool-drop` (the usual one) or `conv-drop-bn-act-pool` (dropout before batch norm,
the "variance shift" arrangement of Li et al. 2019, arXiv 1801.05134). `bn` only applies with
--bn, `drop` only with a dropout kind other than none. Dropout kind `spatial` drops whole feature
maps in the conv blocks (the dense layer keeps plain dropout).

A conv keeps its bias unless batch norm comes right after it in the order (`conv-bn-...`), where
BN's beta makes the bias redundant (BN subtracts the batch mean, bias included). With anything in
between (`conv-act-bn`, `conv-drop-bn`, `conv-act-pool-bn`) the bias changes the function, so it
stays. The dense layer is always followed directly by its batch norm.
"""

import tensorflow as tf

from plumbing.errors import UserError
from models.layers import Conv2D, Dense, Dropout, SpatialDropout, max_pool
from models.network import Network, maybe_bn
from plumbing.choices import MODEL_DEFAULTS as D, MODEL_OPTIONS

O = MODEL_OPTIONS["cnn"]  # the defaults of the model options

ORDERS = ("conv-bn-act-pool-drop", "conv-bn-act-drop-pool", "conv-act-bn-pool-drop",
          "conv-drop-bn-act-pool", "conv-bn-drop-act-pool", "conv-act-pool-bn-drop")


class CNN(Network):
    """The CNN for `num_classes` classes.

    act, act_params: every activation, by name, with its own parameters only (activations.make);
    bn and bn_*: batch norm (batch_norm.BatchNorm); dropout ("none", "dropout" or "spatial"),
    dropout_rates (after conv block 1, conv block 2, the dense layer) and order: the module
    docstring; seed, data_format, compute_dtype as every network (models/network.py).
    """

    def __init__(self, num_classes, act="relu", act_params=None, bn=D["bn"],
                 bn_decay=D["bn_decay"], bn_epsilon=D["bn_epsilon"],
                 bn_test_batch_stats=D["bn_test_batch_stats"], bn_fused=D["bn_fused"],
                 dropout=O["dropout"], dropout_rates=O["dropout_rates"], order=O["order"],
                 seed=0, data_format=D["data_format"], compute_dtype="float32"):
        super().__init__("cnn", seed, data_format, compute_dtype, config=dict(
            num_classes=num_classes, act=act, act_params=dict(act_params or {}), bn=bn,
            bn_decay=bn_decay, bn_epsilon=bn_epsilon, bn_test_batch_stats=bn_test_batch_stats,
            bn_fused=bn_fused, dropout=dropout,
            dropout_rates=[float(r) for r in dropout_rates], order=order))
        df = self.data_format
        if order not in ORDERS:
            raise UserError(f"unknown layer order {order!r}; choose one of {', '.join(ORDERS)}")
        if dropout not in ("none", "dropout", "spatial"):
            raise UserError(f"unknown dropout kind {dropout!r}; use none, dropout or spatial")
        self.order = order.split("-")
        # A conv bias is redundant only where batch norm directly follows the conv.
        conv_bias = not (bn and self.order[1] == "bn")
        rates = [float(r) for r in dropout_rates]
        self.convs, self.bns, self.acts, self.drops = [], [], [], []
        width_in = 3
        for block, width in enumerate([32, 64]):
            for j in range(2):
                i = 2 * block + j
                self.convs.append(Conv2D(width_in, width, 3, self.init_rng, use_bias=conv_bias,
                                         data_format=df, name=f"conv{i + 1}"))
                self.bns.append(self.batch_norm(width, f"bn{i + 1}"))  # None without batch norm
                self.acts.append(self.act(width, f"act{i + 1}"))
                width_in = width
            rate = rates[block] if dropout != "none" else 0.0
            self.drops.append(SpatialDropout(rate, self.rng, df) if dropout == "spatial"
                              else Dropout(rate, self.rng))
        self.dense1 = Dense(8 * 8 * 64, 512, self.init_rng, use_bias=not bn, name="dense1")
        self.bn_dense = self.batch_norm(512, "bn_dense")
        self.act_dense = self.act(512, "act_dense")  # [N, 512]: features on the last axis
        self.drop_dense = Dropout(rates[2] if dropout != "none" else 0.0, self.rng)
        self.dense2 = Dense(512, num_classes, self.init_rng, name="dense2")

    def __call__(self, images, training, taps=None):
        x = self.to_input(images)  # [N, 32, 32, 3]
        for i in range(4):
            last_of_block = i % 2 == 1
            for op in self.order:
                if op == "conv":
                    x = self.convs[i](x)
                elif op == "bn":
                    x = maybe_bn(self.bns[i], x, training)
                elif op == "act":
                    x = self.acts[i](x, training)
                elif op == "pool" and last_of_block:
                    x = max_pool(x, data_format=self.data_format)  # [N, 16, 16, 32], [N, 8, 8, 64]
                elif op == "drop" and last_of_block:
                    x = self.drops[i // 2](x, training)
            if taps is not None:
                taps[f"conv{i + 1}"] = x
        if self.data_format == "NCHW":  # flatten in NHWC order, so both layouts share weights
            x = tf.transpose(x, [0, 2, 3, 1])
        x = tf.reshape(x, [-1, 8 * 8 * 64])  # [N, 4096]
        x = maybe_bn(self.bn_dense, self.dense1(x), training)  # [N, 512]
        x = self.drop_dense(self.act_dense(x, training), training)  # [N, 512]
        if taps is not None:
            taps["dense1"] = x
        return tf.cast(self.dense2(x), tf.float32)  # [N, classes]
