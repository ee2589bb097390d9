"""What every network shares: the two random generators, the input cast / layout, the config."""

import json

import tensorflow as tf

import activations
from batch_norm import BatchNorm


class Network(tf.Module):
    """Base of every model: `init_rng` draws the weights, `rng` the run-time randomness.

    init_rng = Generator(seed)      initial weights, drawn in construction order
    rng      = Generator(seed + 1)  dropout masks, rrelu slopes, drop-activation masks; it is an
                                    attribute, so its state is in every checkpoint
    """

    def __init__(self, config, name=None):
        super().__init__(name=name)
        # Kept as JSON text: a plain string is not tracked by tf.Module / tf.train.Checkpoint.
        self._config_json = json.dumps(config)
        self.init_rng = tf.random.Generator.from_seed(config["seed"])
        self.rng = tf.random.Generator.from_seed(config["seed"] + 1)
        self.data_format = config["data_format"]
        self.channel_axis = 1 if self.data_format == "NCHW" else -1
        self.compute_dtype = tf.as_dtype(config["compute_dtype"])

    @property
    def config(self):
        """The arguments of models.build that rebuild this network: models.build(**config)."""
        return json.loads(self._config_json)

    def act(self, channels, name, kind=None):
        """A new activation for a layer of `channels` channels (PReLU gets its own alpha): the
        network's activation, or activation `kind` (e.g. "relu") where a model option asks."""
        c = self.config
        return Activation(activations.make(kind or c["act"], channels, self.rng,
                                           channel_axis=self.channel_axis, name_scope=name,
                                           **(c["act_params"] or {})))

    def batch_norm(self, channels, name):
        """A new batch norm over `channels` channels with this network's settings, or None when
        the network has no batch norm (`maybe_bn` passes the input through then)."""
        c = self.config
        if not c["bn"]:
            return None
        return BatchNorm(channels, decay=c["bn_decay"], epsilon=c["bn_epsilon"],
                         test_batch_stats=c["bn_test_batch_stats"], data_format=self.data_format,
                         fused=c["bn_fused"], name=name)

    def to_input(self, images):
        """float32 NHWC images -> the compute dtype and layout of the network."""
        x = tf.cast(images, self.compute_dtype)
        return tf.transpose(x, [0, 3, 1, 2]) if self.data_format == "NCHW" else x

    def activation_outputs(self, images):
        """{name: tensor} of the activations after each stage, in inference mode (histograms)."""
        taps = {}
        self(images, training=False, taps=taps)
        return taps


def maybe_bn(bn, x, training):
    """bn(x) for a batch norm from `Network.batch_norm`, x itself when there is none."""
    return x if bn is None else bn(x, training)


class Activation(tf.Module):
    """An activation called under the name scope `activation`, so a profile can attribute its ops
    (forward and gradient) to activations. `fn` is tracked: PReLU's alpha is in checkpoints."""

    def __init__(self, fn):
        super().__init__(name="activation")
        self.fn = fn

    def __call__(self, x, training):
        with tf.name_scope("activation"):
            return self.fn(x, training)
