"""ResNet for CIFAR: v1 (He et al. 2015, arXiv 1512.03385) and v2 (He et al. 2016, arXiv 1603.05027).

v1 is post-activation (conv -> BN -> act, the activation after the addition); v2 is pre-activation
(BN -> act -> conv, nothing after the addition, so the identity path is clean from end to end).

CIFAR layout (section 4.2 of the 2015 paper): a 3x3 conv with 16 filters, then three stages of n
blocks on 32x32, 16x16 and 8x8 maps with 16, 32 and 64 filters (the first block of stages 2 and 3
has stride 2), global average pooling, a dense layer. Basic blocks have two 3x3 convs:
depth = 6n + 2 (20, 32, 44, 56, 110). v2 bottleneck blocks (1x1 c, 3x3 c, 1x1 4c) have three:
depth = 9n + 2 (164, 1001; from 164 on, v2 picks them by default).

Shortcuts where the shape changes: option A (the CIFAR paper) subsamples with stride 2 and pads the
new channels with zeros, no parameters; option B is a 1x1 convolution (with BN in v1).
"""

import tensorflow as tf

from batch_norm import BatchNorm
from errors import UserError
from layers import Conv2D, Dense, global_avg_pool
from models.network import Network


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
        valid = ("9n+2 with bottleneck blocks: 29, 56, 110, 164, 1001" if bottleneck else
                 "6n+2: 20, 32, 44, 56, 110" + (" (or 9n+2 from 164 on: 164, 1001, which use "
                                                "bottleneck blocks)" if version == 2 else ""))
        raise UserError(f"ResNet depth {depth} is not valid for v{version}: use {valid}")
    return bottleneck, n


class ResNet(Network):
    def __init__(self, config):
        super().__init__(config, name="resnet")
        c = config
        depth, version, shortcut = c["depth"], c["version"], c["shortcut"]
        if shortcut not in ("A", "B"):
            raise UserError(f"ResNet shortcut must be A or B, got {shortcut!r}")
        bottleneck, n = layout(depth, version, c["bottleneck"])
        self.version, self.bottleneck = version, bottleneck
        self.bn_on = c["bn"]
        df = self.data_format

        self.conv = Conv2D(3, 16, 3, self.init_rng, use_bias=not self.bn_on, data_format=df,
                           name="conv")
        if version == 1:  # v1: BN + act after the first conv; v2: straight into the first block
            self.bn = self._bn(16, "bn")
            self.act_in = self.act(16, "act")
        width_in, self.blocks = 16, []
        for stage, width in enumerate([16, 32, 64]):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                block_name = f"stage{stage + 1}_block{i + 1}"
                if bottleneck:
                    block = BottleneckV2(self, width_in, width, stride, shortcut, block_name)
                    width_out = 4 * width
                elif version == 1:
                    block = BasicV1(self, width_in, width, stride, shortcut, block_name)
                    width_out = width
                else:
                    block = BasicV2(self, width_in, width, stride, shortcut, block_name)
                    width_out = width
                self.blocks.append(block)
                width_in = width_out
        if version == 2:  # v2: the last block's output has not been normalised yet
            self.bn_out = self._bn(width_in, "bn_out")
            self.act_out = self.act(width_in, "act_out")
        self.dense = Dense(width_in, c["num_classes"], self.init_rng, name="dense")

    def _bn(self, channels, name):
        if not self.bn_on:
            return None
        c = self.config
        return BatchNorm(channels, c["bn_decay"], c["bn_epsilon"], c["bn_test_batch_stats"],
                         self.data_format, c["bn_fused"], name=name)

    def __call__(self, images, training, taps=None):
        x = self.to_input(images)  # [N, 32, 32, 3] (or NCHW) in the compute dtype
        x = self.conv(x)  # [N, 32, 32, 16]
        if self.version == 1:
            x = self.act_in(maybe_bn(self.bn, x, training), training)
        for block in self.blocks:
            x = block(x, training)
            if taps is not None:
                taps[block.name] = x
        if self.version == 2:
            x = self.act_out(maybe_bn(self.bn_out, x, training), training)
        logits = self.dense(global_avg_pool(x, self.data_format))  # [N, classes]
        return tf.cast(logits, tf.float32)


def maybe_bn(bn, x, training):
    return x if bn is None else bn(x, training)


class Shortcut(tf.Module):
    """Identity, or where the shape changes: A = subsample + zero-pad channels, B = 1x1 conv."""

    def __init__(self, net, width_in, width_out, stride, kind, with_bn, name):
        super().__init__(name=name)
        self.stride, self.kind, self.df = stride, kind, net.data_format
        self.identity = stride == 1 and width_in == width_out
        self.pad = width_out - width_in
        if not self.identity and kind == "B":
            self.conv = Conv2D(width_in, width_out, 1, net.init_rng, stride=stride,
                               use_bias=not net.bn_on, data_format=self.df, name="conv")
            self.bn = net._bn(width_out, "bn") if with_bn else None

    def __call__(self, x, training):
        if self.identity:
            return x
        if self.kind == "B":
            return maybe_bn(getattr(self, "bn", None), self.conv(x), training)
        if self.df == "NCHW":
            x = x[:, :, ::self.stride, ::self.stride]
            return tf.pad(x, [[0, 0], [self.pad // 2, self.pad - self.pad // 2], [0, 0], [0, 0]])
        x = x[:, ::self.stride, ::self.stride, :]  # option A: parameter-free
        return tf.pad(x, [[0, 0], [0, 0], [0, 0], [self.pad // 2, self.pad - self.pad // 2]])


class BasicV1(tf.Module):
    """v1 basic block: act(x' + F(x)), F = conv3x3 -> BN -> act -> conv3x3 -> BN."""

    def __init__(self, net, width_in, width, stride, shortcut, name):
        super().__init__(name=name)
        rng, df, bias = net.init_rng, net.data_format, not net.bn_on
        self.conv1 = Conv2D(width_in, width, 3, rng, stride, use_bias=bias, data_format=df,
                            name="conv1")
        self.bn1 = net._bn(width, "bn1")
        self.act1 = net.act(width, "act1")
        self.conv2 = Conv2D(width, width, 3, rng, use_bias=bias, data_format=df, name="conv2")
        self.bn2 = net._bn(width, "bn2")
        self.shortcut = Shortcut(net, width_in, width, stride, shortcut, True, "shortcut")
        self.act2 = net.act(width, "act2")  # v1: the activation comes after the addition

    def __call__(self, x, training):
        y = self.act1(maybe_bn(self.bn1, self.conv1(x), training), training)
        y = maybe_bn(self.bn2, self.conv2(y), training)
        return self.act2(self.shortcut(x, training) + y, training)


class BasicV2(tf.Module):
    """v2 basic block: x' + F(x), F = BN -> act -> conv3x3 -> BN -> act -> conv3x3."""

    def __init__(self, net, width_in, width, stride, shortcut, name):
        super().__init__(name=name)
        rng, df, bias = net.init_rng, net.data_format, not net.bn_on
        self.bn1 = net._bn(width_in, "bn1")
        self.act1 = net.act(width_in, "act1")
        self.conv1 = Conv2D(width_in, width, 3, rng, stride, use_bias=bias, data_format=df,
                            name="conv1")
        self.bn2 = net._bn(width, "bn2")
        self.act2 = net.act(width, "act2")
        self.conv2 = Conv2D(width, width, 3, rng, use_bias=bias, data_format=df, name="conv2")
        # v2: no BN on the projection, so the shortcut stays a plain linear path.
        self.shortcut = Shortcut(net, width_in, width, stride, shortcut, False, "shortcut")

    def __call__(self, x, training):
        y = self.conv1(self.act1(maybe_bn(self.bn1, x, training), training))
        y = self.conv2(self.act2(maybe_bn(self.bn2, y, training), training))
        return self.shortcut(x, training) + y  # v2: nothing after the addition


class BottleneckV2(tf.Module):
    """v2 bottleneck: x' + F(x), F = BN-act-conv1x1(c) -> BN-act-conv3x3(c) -> BN-act-conv1x1(4c)."""

    def __init__(self, net, width_in, width, stride, shortcut, name):
        super().__init__(name=name)
        rng, df, bias = net.init_rng, net.data_format, not net.bn_on
        self.bn1 = net._bn(width_in, "bn1")
        self.act1 = net.act(width_in, "act1")
        self.conv1 = Conv2D(width_in, width, 1, rng, use_bias=bias, data_format=df, name="conv1")
        self.bn2 = net._bn(width, "bn2")
        self.act2 = net.act(width, "act2")
        # The stride sits on the 3x3 conv (as in the authors' Torch code).
        self.conv2 = Conv2D(width, width, 3, rng, stride, use_bias=bias, data_format=df,
                            name="conv2")
        self.bn3 = net._bn(width, "bn3")
        self.act3 = net.act(width, "act3")
        self.conv3 = Conv2D(width, 4 * width, 1, rng, use_bias=bias, data_format=df, name="conv3")
        self.shortcut = Shortcut(net, width_in, 4 * width, stride, shortcut, False, "shortcut")

    def __call__(self, x, training):
        y = self.conv1(self.act1(maybe_bn(self.bn1, x, training), training))
        y = self.conv2(self.act2(maybe_bn(self.bn2, y, training), training))
        y = self.conv3(self.act3(maybe_bn(self.bn3, y, training), training))
        return self.shortcut(x, training) + y
