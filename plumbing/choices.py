"""The names and defaults of every choice the scripts offer, in one place without TensorFlow.

`python train.py --help` must be instant and quiet, so the parser cannot import the modules that
implement these choices (they import TensorFlow: seconds of start-up and its log lines). Those
modules take their names and defaults from here, and the scripts build their flags from here, so
each name and each default is written once.
"""

DATASETS = ("cifar10", "cifar100", "cifar10-sample")
MODELS = ("allcnn", "resnet", "cnn")
ACTIVATIONS = ("relu", "lrelu", "prelu", "elu", "rrelu", "dropact", "gaaf-relu", "gaaf-tanh",
               "tanh", "sigmoid", "silu", "gelu", "gelu-tanh", "mish", "selu", "softplus")
# Input normalisations (cifar_input.normalize).
NORMALIZATIONS = ("per-channel", "per-image", "per-pixel")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
SCHEDULES = ("constant", "step", "cosine", "one-cycle")
STRATEGIES = ("default", "mirrored", "multiworker")  # tf.distribute (distribute.make_strategy)

# Each activation's own parameters (the keyword arguments activations.make accepts for it, named
# as train.py's flags: --elu-alpha is elu_alpha), with their defaults. An activation gets only its
# own; those not listed here take none.
ACTIVATION_PARAMS = {
    "lrelu": dict(leak=0.2),                  # negative slope (tf.nn.leaky_relu's default)
    "prelu": dict(prelu_init=0.25),           # initial alpha (He et al. 2015)
    "elu": dict(elu_alpha=1.0),               # alpha
    "rrelu": dict(rrelu_lower=3.0,            # a ~ U(lower, upper) (Xu et al. 2015)
                  rrelu_upper=8.0),
    "dropact": dict(dropact_p=0.95),          # probability of keeping the nonlinearity (Liang
                                              # et al. 2018)
    "gaaf-relu": dict(gaaf_k=1e4,             # K of g(x) = (Kx - floor(Kx) - 0.5) / K (Hahn &
                      gaaf_shift=4.0,         # Choi 2018); s(x) = sigmoid(x + shift)
                      gaaf_variant="floor"),  # "floor" (the paper) or "round"
    "gaaf-tanh": dict(gaaf_k=1e4, gaaf_variant="floor"),
}
# Every activation parameter with its default: train.py's activation flags.
ACTIVATION_DEFAULTS = {k: v for params in ACTIVATION_PARAMS.values() for k, v in params.items()}


def own_activation_params(act, act_params):
    """act_params of a config.json's model_config, as the activation takes them: a config.json
    written before each activation got only its own parameters lists all nine; keep act's."""
    if set(act_params) == set(ACTIVATION_DEFAULTS):
        return {k: v for k, v in act_params.items() if k in ACTIVATION_PARAMS.get(act, {})}
    return dict(act_params)

# Settings every model takes (constructor arguments of every models/ class), with their defaults.
# Batch norm is off unless asked for, in the models and in train.py alike.
MODEL_DEFAULTS = dict(
    bn=False,                  # batch norm after each conv (before the activation)
    bn_decay=0.99,             # moving averages: ema = decay * ema + (1 - decay) * batch_stat
    bn_epsilon=1e-3,           # added to the variance
    bn_test_batch_stats=False,  # normalise test batches by their own statistics (a known bug)
    bn_fused=False,            # TF's fused kernel instead of the written-out formulas (speed)
    data_format="NHWC",        # NCHW is faster on GPUs
)

# Each model's own options (its constructor's own arguments), with their defaults. A train.py
# flag that sets an option of another model is refused.
MODEL_OPTIONS = {
    # All-CNN-C without the paper's dropout (0.2 on the input, 0.5 after each stride-2 conv):
    # without batch norm, that dropout keeps the loss near ln(10) for the first hundred steps or
    # so, and a short comparison would only compare networks that have not started to learn.
    # Measured on the bundled sample, relu, no batch norm, lr 0.01, 35 steps: test accuracy
    # 25.6 % without dropout; with it, the training loss was still 2.297 after 28 steps.
    # The allcnn-c recipe turns it back on.
    "allcnn": dict(dropout=False,
                   score_act=False),         # activation on the class scores, as the paper
    "resnet": dict(depth=20, version=1, shortcut="A", bottleneck=None,
                   bottleneck_stride="1x1",  # as resnet-pre-act.lua; "3x3": fb.resnet.torch
                   projection_bn=None,       # v1: False drops the BN after a B projection
                   stem_act=None,            # v1: activation after the first conv (None: --act)
                   conv_bias=False),         # keep conv biases even where batch norm follows
    "cnn": dict(dropout="dropout", dropout_rates=(0.2, 0.2, 0.4), order="conv-bn-act-pool-drop"),
}

# train.py's training settings, with their defaults.
TRAIN_DEFAULTS = dict(
    dataset="cifar10",
    model="allcnn",
    act="relu",
    epochs=30,
    batch_size=128,
    optimizer="momentum",
    momentum=0.9,
    schedule="cosine",
    weight_decay=5e-4,
)

# Training defaults that depend on the model (train.py --lr, --warmup-epochs): the peak learning
# rate and a linear warm-up over the first epochs. All-CNN-C: 0.01, the lowest of the learning
# rates Springenberg et al. 2014 (arXiv 1412.6806) tried, since without batch norm it is the
# model most sensitive to it. ResNet: 0.1 as He et al. 2015 (arXiv 1512.03385), whose deepest
# CIFAR net warms up at 0.01 for about 400 steps (one epoch at batch 128). The cnn keeps 0.05.
MODEL_TRAIN_DEFAULTS = {
    "allcnn": dict(lr=0.01, warmup_epochs=1.0),
    "resnet": dict(lr=0.1, warmup_epochs=1.0),
    "cnn": dict(lr=0.05, warmup_epochs=1.0),
}
