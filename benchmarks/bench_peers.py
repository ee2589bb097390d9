"""The peers this project is compared against: the same networks in stock Keras and in PyTorch.

Used only by bench.py (and the tests that check the peers have this project's parameter counts):
the project's own code never uses Keras layers. Each peer is the architecture of `models/`:
ResNet v1 with basic blocks and the zero-padded identity shortcut (option A) of He et al. 2015
(arXiv 1512.03385), and All-CNN-C of Springenberg et al. 2014 (arXiv 1412.6806). `bn=True` puts
batch norm after every conv and drops the convs' biases (train.py --bn); `bn=False` keeps the biases
and has no batch norm (train.py's default). All-CNN-C's `dropout` is the paper's (0.2 on the input,
0.5 after each stride-2 conv; train.py turns it on with --dropout dropout, off by default).
"""


def keras_resnet_v1(depth, num_classes=10, bn=True):
    """Stock Keras ResNet v1 (post-activation), 6n+2 layers, shortcut A."""
    import keras
    from keras import layers, ops

    n = (depth - 2) // 6
    inputs = keras.Input([32, 32, 3])

    def conv_bn(x, filters, stride):
        x = layers.Conv2D(filters, 3, stride, padding="same", use_bias=not bn,
                          kernel_initializer="he_normal")(x)
        return layers.BatchNormalization(momentum=0.99, epsilon=1e-3)(x) if bn else x

    x = layers.ReLU()(conv_bn(inputs, 16, 1))
    for stage, filters in enumerate([16, 32, 64]):
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            y = layers.ReLU()(conv_bn(x, filters, stride))
            y = conv_bn(y, filters, 1)
            if stride == 2:  # option A: subsample, zero-pad the new channels
                pad = filters // 4
                x = layers.Lambda(lambda t, p=pad: ops.pad(t[:, ::2, ::2, :],
                                                           [[0, 0], [0, 0], [0, 0], [p, p]]))(x)
            x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs)


def keras_allcnn(num_classes=10, bn=True, score_act=False, dropout=True):
    """Stock Keras All-CNN-C (with batch norm after each conv when `bn`); the class-score conv
    keeps its bias and has no batch norm or ReLU unless `score_act`, as models/allcnn.py."""
    import keras
    from keras import layers

    inputs = keras.Input([32, 32, 3])
    x = layers.Dropout(0.2)(inputs) if dropout else inputs
    spec = [(96, 3, 1), (96, 3, 1), (96, 3, 2), "drop", (192, 3, 1), (192, 3, 1), (192, 3, 2),
            "drop", (192, 3, "valid"), (192, 1, 1), (num_classes, 1, 1)]
    for s in spec:
        if s == "drop":
            x = layers.Dropout(0.5)(x) if dropout else x
            continue
        filters, k, stride = s
        padding = "valid" if stride == "valid" else "same"
        plain = filters == num_classes and not score_act
        x = layers.Conv2D(filters, k, 1 if stride == "valid" else stride, padding=padding,
                          use_bias=plain or not bn, kernel_initializer="he_normal")(x)
        if plain:
            continue
        if bn:
            x = layers.BatchNormalization(momentum=0.99, epsilon=1e-3)(x)
        x = layers.ReLU()(x)
    outputs = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs)


def torch_resnet_v1(depth, num_classes=10, bn=True):
    """PyTorch ResNet v1, 6n+2 layers, shortcut A (NCHW, as PyTorch wants)."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    def norm(channels):  # batch norm, or nothing (train.py's default)
        return nn.BatchNorm2d(channels, momentum=0.01, eps=1e-3) if bn else nn.Identity()

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=not bn)
            self.b1 = norm(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=not bn)
            self.b2 = norm(cout)
            self.pad = (cout - cin) // 2 if stride == 2 else 0

        def forward(self, x):
            y = F.relu(self.b1(self.c1(x)))
            y = self.b2(self.c2(y))
            if self.pad:
                x = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
            return F.relu(x + y)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            n = (depth - 2) // 6
            self.c = nn.Conv2d(3, 16, 3, 1, 1, bias=not bn)
            self.b = norm(16)
            blocks, cin = [], 16
            for stage, cout in enumerate([16, 32, 64]):
                for i in range(n):
                    blocks.append(Block(cin, cout, 2 if stage > 0 and i == 0 else 1))
                    cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(64, num_classes)

        def forward(self, x):
            x = self.blocks(F.relu(self.b(self.c(x))))
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    return Net()


def torch_allcnn(num_classes=10, bn=True, score_act=False, dropout=True):
    """PyTorch All-CNN-C with batch norm after each conv when `bn` (NCHW); raw class scores
    unless `score_act`, as models/allcnn.py."""
    from torch import nn

    spec = [(3, 96, 3, 1, 1), (96, 96, 3, 1, 1), (96, 96, 3, 2, 1), "drop",
            (96, 192, 3, 1, 1), (192, 192, 3, 1, 1), (192, 192, 3, 2, 1), "drop",
            (192, 192, 3, 1, 0), (192, 192, 1, 1, 0), (192, num_classes, 1, 1, 0)]
    mods = [nn.Dropout(0.2)] if dropout else []
    for s in spec:
        if s == "drop":
            mods += [nn.Dropout(0.5)] if dropout else []
            continue
        cin, cout, k, stride, pad = s
        plain = cout == num_classes and not score_act
        mods.append(nn.Conv2d(cin, cout, k, stride, pad, bias=plain or not bn))
        if plain:
            continue
        if bn:
            mods.append(nn.BatchNorm2d(cout, momentum=0.01, eps=1e-3))
        mods.append(nn.ReLU())
    mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*mods)
