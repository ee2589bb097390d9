"""What every network shares: the two random generators, the input cast / layout, the config."""

import copy
import types

import tensorflow as tf

import activations
from batch_norm import BatchNorm
from plumbing.errors import UserError

DTYPES = ("float32", "bfloat16", "float16")


class Network(tf.Module):
    """Base of every model: `init_rng` draws the weights, `rng` the run-time randomness.

    init_rng = Generator(seed)      initial weights, drawn in construction order
    rng      = Generator(seed + 1)  dropout masks, rrelu slopes, drop-activation masks; it is an
                                    attribute, so its state is in every checkpoint

    `config` holds the model's constructor arguments (name="allcnn" becomes model="allcnn"), so
    that models.build(**model.config) rebuilds the same network; train.py writes it into
    config.json ("model_config") and eval.py rebuilds the model from there.
    """

    def __init__(self, name, seed, data_format, compute_dtype, config):
        super().__init__(name=name)
        if data_format not in ("NHWC", "NCHW"):
            raise UserError(f"data_format must be NHWC or NCHW, got {data_format!r}")
        if compute_dtype not in DTYPES:
            raise UserError(f"compute_dtype must be float32, bfloat16 or float16, got "
                            f"{compute_dtype!r}")
        # A read-only mapping: tf.Module does not track it (a dict attribute would become a node
        # of the checkpoint).
        self._config = types.MappingProxyType(dict(
            model=name, seed=seed, data_format=data_format, compute_dtype=compute_dtype, **config))
        self.init_rng = tf.random.Generator.from_seed(seed)
        self.rng = tf.random.Generator.from_seed(seed + 1)
        self.data_format = data_format
        self.channel_axis = 1 if self.data_format == "NCHW" else -1
        self.compute_dtype = tf.as_dtype(compute_dtype)

    @property
    def config(self):
        """The keyword arguments of models.build that rebuild this network (a copy)."""
        return copy.deepcopy(dict(self._config))

    def act(self, channels, name, kind=None):
        """A new activation for a layer of `channels` channels (PReLU gets its own alpha): the
        network's `act` with its `act_params`, or activation `kind` (e.g. the v1 stem's "relu")
        with its own defaults. (AllCNN makes its layers' activations and batch norms itself.)"""
        c = self._config
        params = c["act_params"] if kind in (None, c["act"]) else {}
        return activations.Activation(activations.make(
            kind or c["act"], channels, self.rng, channel_axis=self.channel_axis, name_scope=name,
            **params))

    def batch_norm(self, channels, name):
        """A new batch norm over `channels` channels with this network's bn_* arguments, or None
        when the network has no batch norm (`maybe_bn` passes the input through then)."""
        c = self._config
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
    """bn(x) for a batch norm layer, x itself when there is none (None: the network has no batch
    norm there)."""
    return x if bn is None else bn(x, training)
