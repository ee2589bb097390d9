"""ResNet for CIFAR: v1 (He et al. 2015, arXiv 1512.03385), v2 (He et al. 2016, arXiv 1603.05027).

v1 is post-activation (conv -> BN -> act, the activation after the addition); v2 is pre-activation
(BN -> act -> conv, nothing after the addition, so the identity path is clean from end to end).

CIFAR layout (section 4.2 of the 2015 paper): a 3x3 conv with 16 filters, then three stages of n
blocks on 32x32, 16x16 and 8x8 maps with 16, 32 and 64 filters (the first block of stages 2 and 3
has stride 2), global average pooling, a dense layer. Basic blocks have two 3x3 convs:
depth = 6n + 2 (20, 32, 44, 56, 110). v2 bottleneck blocks (1x1 c, 3x3 c, 1x1 4c) have three:
depth = 9n + 2 (164, 1001; from 164 on, v2 picks them by default).

Shortcuts where the shape changes: option A (the 2015 paper's CIFAR nets) subsamples with stride 2
and pads the new channels with zeros, no parameters; option B is a 1x1 convolution with the
block's stride (followed by batch norm in v1 unless `projection_bn=False`).

v2 follows the authors' code, KaimingHe/resnet-1k-layers `resnet-pre-act.lua` (as does
tensorflow/models `official/r1/resnet/resnet_model.py`, v2): a unit that changes the shape applies
its first BN + act once, before the split, and its projection shortcut takes that pre-activated
tensor; a unit that keeps the shape adds its raw input. Option A (in neither reference) subsamples
the raw input: option A stands in for the identity, and the v2 paper's point is a shortcut path
with no BN or activation on it. In bottleneck units the authors put the stride on the first 1x1
conv (`bottleneck_stride="1x1"`, the default); fb.resnet.torch and TF's official ResNet put it on
the 3x3 conv (`"3x3"`).

Model options (choices.MODEL_OPTIONS["resnet"]): depth, version, shortcut, bottleneck,
bottleneck_stride, projection_bn (v1), stem_act (v1: the activation after the first conv, e.g.
"relu" as kobiso/GAAF-keras), conv_bias (keep every conv's bias even where batch norm follows,
Keras' default `use_bias=True`).
"""

import tensorflow as tf

from plumbing.choices import ACTIVATIONS, MODEL_DEFAULTS as D, MODEL_OPTIONS
from plumbing.errors import UserError
from models.layers import Conv2D, Dense, global_avg_pool
from models.network import Network, maybe_bn

O = MODEL_OPTIONS["resnet"]  # the defaults of the model options


def layout(depth, version, bottleneck=None):
    """(bottleneck, n blocks per stage) for a depth, or a UserError naming the valid depths.

    bottleneck=None chooses as the papers do: v2 depths 9n+2 from 164 on (164, 1001) are bottleneck
    nets; everything else uses basic blocks (110 is 6n+2 with basic blocks in both papers).
    """
    if version not in (1, 2):
        raise UserError(f"ResNet version must be 1 or 2, got {version!r}")
    if bottleneck is None:
        bottleneck = version == 2 and depth >= 164 and (depth - 2) % 9 == 0
    if bottleneck and version == 1:
        raise UserError("bottleneck blocks are a ResNet v2 option here; use --resnet-version 2")
    per_block = 3 if bottleneck else 2
    n = (depth - 2) // (3 * per_block)
    if n < 1 or 3 * per_block * n + 2 != depth:
        valid = ("9n+2 with bottleneck blocks (n >= 1): 11, 20, 29, 56, 110, 164, 1001, ..."
                 if bottleneck else
                 "6n+2 (n >= 1): 8, 14, 20, 32, 44, 56, 110, ..." + (
                     " (or 9n+2 from 164 on: 164, 1001, which use bottleneck blocks)"
                     if version == 2 else ""))
        raise UserError(f"ResNet depth {depth} is not valid for v{version}: use {valid}")
    return bottleneck, n


def check_options(c, bottleneck):
    """One-line errors for option values and combinations the model does not have."""
    if c["shortcut"] not in ("A", "B"):
        raise UserError(f"ResNet shortcut must be A or B, got {c['shortcut']!r}")
    if c["bottleneck_stride"] not in ("1x1", "3x3"):
        raise UserError(f"bottleneck stride goes on the 1x1 or the 3x3 conv, got "
                        f"{c['bottleneck_stride']!r}")
    if c["bottleneck_stride"] != "1x1" and not bottleneck:
        raise UserError("bottleneck_stride applies to bottleneck blocks only")
    if c["version"] == 2 and c["projection_bn"] is not None:
        raise UserError("projection_bn is a ResNet v1 option: a v2 projection takes the "
                        "pre-activated input and has no batch norm of its own")
    if c["projection_bn"] is not None and c["shortcut"] != "B":
        raise UserError("projection_bn needs the projection shortcut B")
    if c["stem_act"] is not None:
        if c["version"] == 2:
            raise UserError("stem_act is a ResNet v1 option: v2 has no activation after its "
                            "first conv")
        if c["stem_act"] not in ACTIVATIONS:
            raise UserError(f"unknown stem activation {c['stem_act']!r}; choose one of "
                            f"{', '.join(ACTIVATIONS)}")


class ResNet(Network):
    """ResNet for `num_classes` classes.

    act, act_params: every activation, by name, with its own parameters only (activations.make);
    bn and bn_*: batch norm (batch_norm.BatchNorm); depth, version, shortcut, bottleneck,
    bottleneck_stride, projection_bn, stem_act, conv_bias: the model options of the module
    docstring; seed, data_format, compute_dtype as every network (models/network.py).
    """

    def __init__(self, num_classes, act="relu", act_params=None, bn=D["bn"],
                 bn_decay=D["bn_decay"], bn_epsilon=D["bn_epsilon"],
                 bn_test_batch_stats=D["bn_test_batch_stats"], bn_fused=D["bn_fused"],
                 depth=O["depth"], version=O["version"], shortcut=O["shortcut"],
                 bottleneck=O["bottleneck"], bottleneck_stride=O["bottleneck_stride"],
                 projection_bn=O["projection_bn"], stem_act=O["stem_act"],
                 conv_bias=O["conv_bias"], seed=0, data_format=D["data_format"],
                 compute_dtype="float32"):
        super().__init__("resnet", seed, data_format, compute_dtype, config=dict(
            num_classes=num_classes, act=act, act_params=dict(act_params or {}), bn=bn,
            bn_decay=bn_decay, bn_epsilon=bn_epsilon, bn_test_batch_stats=bn_test_batch_stats,
            bn_fused=bn_fused, depth=depth, version=version, shortcut=shortcut,
            bottleneck=bottleneck, bottleneck_stride=bottleneck_stride,
            projection_bn=projection_bn, stem_act=stem_act, conv_bias=conv_bias))
        bottleneck, n = layout(depth, version, bottleneck)  # bottleneck=None: chosen by depth
        check_options(self._config, bottleneck)
        self.version, self.bottleneck = version, bottleneck
        self.shortcut_kind, self.bottleneck_stride = shortcut, bottleneck_stride  # for the blocks
        # A conv's bias is redundant where batch norm follows (BN subtracts the batch mean, bias
        # included); `conv_bias` keeps it anyway (Keras' default).
        self.conv_bias = conv_bias or not bn
        # v1 projection: batch norm after it unless projection_bn=False (then it keeps its bias).
        self.projection_bn = bn and projection_bn is not False

        self.conv = self.conv2d(3, 16, 3, name="conv")  # [N, 32, 32, 16]
        if self.version == 1:  # v1: BN + act after the first conv; v2: straight into block 1
            self.bn = self.batch_norm(16, "bn")
            self.act_in = self.act(16, "act", kind=stem_act)
        width_in, self.blocks = 16, []
        for stage, width in enumerate([16, 32, 64]):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                kind = BottleneckV2 if bottleneck else BasicV1 if self.version == 1 else BasicV2
                block = kind(self, width_in=width_in, width=width, stride=stride,
                             name=f"stage{stage + 1}_block{i + 1}")
                self.blocks.append(block)
                width_in = block.width_out
        if self.version == 2:  # v2: the last block's output has not been normalised yet
            self.bn_out = self.batch_norm(width_in, "bn_out")
            self.act_out = self.act(width_in, "act_out")
        self.dense = Dense(width_in, num_classes, self.init_rng, name="dense")

    def conv2d(self, width_in, width_out, kernel_size, stride=1, use_bias=None, name=None):
        """A conv of this network: He-normal weights from init_rng, its layout, its bias rule."""
        return Conv2D(width_in, width_out, kernel_size, self.init_rng, stride=stride,
                      use_bias=self.conv_bias if use_bias is None else use_bias,
                      data_format=self.data_format, name=name)

    def __call__(self, images, training, taps=None):
        x = self.to_input(images)  # [N, 32, 32, 3] (or NCHW) in the compute dtype
        x = self.conv(x)  # [N, 32, 32, 16]
        if self.version == 1:
            x = self.act_in(maybe_bn(self.bn, x, training), training)
        for block in self.blocks:
            x = block(x, training)  # [N, 32, 32, 16] -> [N, 16, 16, 32] -> [N, 8, 8, 64]
            if taps is not None:
                taps[block.name] = x
        if self.version == 2:
            x = self.act_out(maybe_bn(self.bn_out, x, training), training)
        logits = self.dense(global_avg_pool(x, self.data_format))  # [N, classes]
        return tf.cast(logits, tf.float32)


class Shortcut(tf.Module):
    """Identity where the shape stays; where it changes, A = subsample + zero-pad the channels,
    B = 1x1 conv with the block's stride (+ batch norm if `with_bn`; bias: the net's rule unless
    `use_bias` says)."""

    def __init__(self, net, width_in, width_out, stride, with_bn, use_bias=None,
                 name="shortcut"):
        super().__init__(name=name)
        self.stride, self.kind, self.df = stride, net.shortcut_kind, net.data_format
        self.identity = stride == 1 and width_in == width_out
        self.pad = width_out - width_in
        self.projects = not self.identity and self.kind == "B"
        if self.projects:
            self.conv = net.conv2d(width_in, width_out, 1, stride=stride, use_bias=use_bias,
                                   name="conv")
            self.bn = net.batch_norm(width_out, "bn") if with_bn else None

    def __call__(self, x, training):
        if self.identity:
            return x
        if self.projects:
            return maybe_bn(self.bn, self.conv(x), training)
        if self.df == "NCHW":  # option A: parameter-free
            x = x[:, :, ::self.stride, ::self.stride]
            return tf.pad(x, [[0, 0], [self.pad // 2, self.pad - self.pad // 2], [0, 0], [0, 0]])
        x = x[:, ::self.stride, ::self.stride, :]
        return tf.pad(x, [[0, 0], [0, 0], [0, 0], [self.pad // 2, self.pad - self.pad // 2]])


class BasicV1(tf.Module):
    """v1 basic block: act(x' + F(x)), F = conv3x3 -> BN -> act -> conv3x3 -> BN."""

    def __init__(self, net, width_in, width, stride, name):
        super().__init__(name=name)
        self.width_out = width
        self.conv1 = net.conv2d(width_in, width, 3, stride=stride, name="conv1")
        self.bn1 = net.batch_norm(width, "bn1")
        self.act1 = net.act(width, "act1")
        self.conv2 = net.conv2d(width, width, 3, name="conv2")
        self.bn2 = net.batch_norm(width, "bn2")
        # A v1 projection without its batch norm goes straight into the sum: it keeps its bias.
        self.shortcut = Shortcut(net, width_in, width, stride, with_bn=net.projection_bn,
                                 use_bias=net.conv_bias or not net.projection_bn)
        self.act2 = net.act(width, "act2")  # v1: the activation comes after the addition

    def __call__(self, x, training):
        y = self.act1(maybe_bn(self.bn1, self.conv1(x), training), training)
        y = maybe_bn(self.bn2, self.conv2(y), training)
        return self.act2(self.shortcut(x, training) + y, training)


class BasicV2(tf.Module):
    """v2 basic unit: s(x) + F(x), F = BN -> act -> conv3x3 -> BN -> act -> conv3x3.

    s(x) = x where the shape stays; where it changes, the projection (B) takes act(BN(x)), the
    first BN + act shared with F (the authors' code), and option A subsamples the raw x.
    """

    def __init__(self, net, width_in, width, stride, name):
        super().__init__(name=name)
        self.width_out = width
        self.bn1 = net.batch_norm(width_in, "bn1")
        self.act1 = net.act(width_in, "act1")
        self.conv1 = net.conv2d(width_in, width, 3, stride=stride, name="conv1")
        self.bn2 = net.batch_norm(width, "bn2")
        self.act2 = net.act(width, "act2")
        self.conv2 = net.conv2d(width, width, 3, name="conv2")
        # v2: no BN on the projection; every consumer of the sum is a batch norm, so no bias either
        self.shortcut = Shortcut(net, width_in, width, stride, with_bn=False)

    def __call__(self, x, training):
        pre = self.act1(maybe_bn(self.bn1, x, training), training)  # the pre-activation
        y = self.conv1(pre)
        y = self.conv2(self.act2(maybe_bn(self.bn2, y, training), training))
        shortcut = self.shortcut(pre if self.shortcut.projects else x, training)
        return shortcut + y  # v2: nothing after the addition


class BottleneckV2(tf.Module):
    """v2 bottleneck unit: s(x) + F(x),
    F = BN-act-conv1x1(c) -> BN-act-conv3x3(c) -> BN-act-conv1x1(4c); s(x) as in BasicV2.

    The stride sits on the first 1x1 conv, as in the authors' `resnet-pre-act.lua`
    (net option bottleneck_stride="3x3": on the 3x3 conv, as fb.resnet.torch and TF's official
    ResNet do).
    """

    def __init__(self, net, width_in, width, stride, name):
        super().__init__(name=name)
        self.width_out = 4 * width
        on_1x1 = net.bottleneck_stride == "1x1"
        self.bn1 = net.batch_norm(width_in, "bn1")
        self.act1 = net.act(width_in, "act1")
        self.conv1 = net.conv2d(width_in, width, 1, stride=stride if on_1x1 else 1, name="conv1")
        self.bn2 = net.batch_norm(width, "bn2")
        self.act2 = net.act(width, "act2")
        self.conv2 = net.conv2d(width, width, 3, stride=1 if on_1x1 else stride, name="conv2")
        self.bn3 = net.batch_norm(width, "bn3")
        self.act3 = net.act(width, "act3")
        self.conv3 = net.conv2d(width, 4 * width, 1, name="conv3")
        self.shortcut = Shortcut(net, width_in, 4 * width, stride, with_bn=False)

    def __call__(self, x, training):
        pre = self.act1(maybe_bn(self.bn1, x, training), training)  # the pre-activation
        y = self.conv1(pre)
        y = self.conv2(self.act2(maybe_bn(self.bn2, y, training), training))
        y = self.conv3(self.act3(maybe_bn(self.bn3, y, training), training))
        return self.shortcut(pre if self.shortcut.projects else x, training) + y
