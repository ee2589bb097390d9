"""Recipes: each builds the network of its source, with the paper's parameter count."""

import numpy as np
import pytest

from plumbing import choices
import models
import schedules
from plumbing.recipes import DESCRIPTIONS, RECIPES

# train.py destinations -> models.build arguments (train.py's model_options does the same).
TO_BUILD = {"resnet_version": "version"}
MODEL_KEYS = set(choices.MODEL_DEFAULTS) | {k for o in choices.MODEL_OPTIONS.values() for k in o}


def build(recipe):
    r = RECIPES[recipe]
    settings = {TO_BUILD.get(k, k): v for k, v in r.items()
                if TO_BUILD.get(k, k) in MODEL_KEYS and TO_BUILD.get(k, k) in
                set(choices.MODEL_DEFAULTS) | set(choices.MODEL_OPTIONS[r["model"]])}
    return models.build(r["model"], 10, act=r["act"], **settings)


def count(net):
    return sum(int(np.prod(v.shape)) for v in net.trainable_variables)


def keras_gaaf_resnet20():
    """kobiso/GAAF-keras models/resnet_v1.py, layer for layer (relu in place of GAAF, which has
    no parameters): Conv2D with its default bias, BN, 1x1 projection without BN."""
    keras = pytest.importorskip("keras")
    L = keras.layers

    def resnet_layer(x, filters=16, kernel_size=3, strides=1, activation="relu", bn=True):
        x = L.Conv2D(filters, kernel_size, strides=strides, padding="same")(x)
        if bn:
            x = L.BatchNormalization()(x)
        return L.Activation(activation)(x) if activation is not None else x

    inputs = keras.Input((32, 32, 3))
    x = resnet_layer(inputs)
    filters = 16
    for stack in range(3):
        for block in range(3):
            strides = 2 if stack > 0 and block == 0 else 1
            y = resnet_layer(x, filters, strides=strides)
            y = resnet_layer(y, filters, activation=None)
            if stack > 0 and block == 0:
                x = resnet_layer(x, filters, 1, strides, activation=None, bn=False)
            x = L.Activation("relu")(L.add([x, y]))
        filters *= 2
    x = L.Flatten()(L.AveragePooling2D(8)(x))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x))


def test_every_recipe_has_a_test_and_a_description():
    assert set(RECIPES) == set(DESCRIPTIONS) == {"dropact-resnet56", "gaaf-resnet20",
                                                 "blog-allcnn", "he2016-resnet", "allcnn-c"}


def test_gaaf_resnet20_is_the_keras_network_of_its_source():
    net = build("gaaf-resnet20")
    twin = keras_gaaf_resnet20()
    assert count(net) == sum(int(np.prod(w.shape)) for w in twin.trainable_weights) == 273066
    assert count(net) / 1e6 == pytest.approx(0.27, abs=0.005)  # He et al. 2015, table 6
    assert net.act_in.fn.__name__ == "relu" and net.config["act"] == "gaaf-relu"


def test_gaaf_resnet20_schedule_normalisation_and_decay():
    r = RECIPES["gaaf-resnet20"]
    lr = schedules.build(r["schedule"], r["lr"], 200 * 390, 390,
                         boundaries=[float(b) for b in r["lr_steps"].split(",")],
                         factors=[float(f) for f in r["lr_factors"].split(",")])
    # kobiso/GAAF-keras utils.lr_schedule at the 0-based epochs either side of each drop
    for epoch, expected in [(80, 1e-3), (81, 1e-4), (120, 1e-4), (121, 1e-5), (160, 1e-5),
                            (161, 1e-6), (180, 1e-6), (181, 5e-7), (199, 5e-7)]:
        assert lr(epoch * 390) == pytest.approx(expected, rel=1e-12)
    assert r["normalization"] in choices.NORMALIZATIONS and r["normalization"] == "per-pixel"
    assert r["weight_decay"] == 2 * 1e-4 and r["augment"] is False  # Keras l2(1e-4)


def test_dropact_resnet56_is_pre_activation_with_the_sources_count():
    net = build("dropact-resnet56")
    assert net.version == 2 and net.config["shortcut"] == "B"
    # The source's model.summary(): 855,834 trainable, which includes a 1x1 projection
    # 16 -> 16 (256 weights) at the start of stage 1 that this network replaces by the identity.
    assert count(net) == 855834 - 256
    assert count(net) / 1e6 == pytest.approx(0.85, abs=0.01)  # He et al. 2015, table 6
    assert RECIPES["dropact-resnet56"]["weight_decay"] == 2 * 2e-4  # Keras l2(2e-4)


def test_he2016_resnet164_has_1_7_million_and_trains_on_all_images():
    net = build("he2016-resnet")
    assert net.bottleneck and len(net.blocks) == 54
    assert count(net) / 1e6 == pytest.approx(1.7, abs=0.01)  # He et al. 2016: 1.7M
    assert net.blocks[18].conv1.stride == 2  # stage 2 starts: stride on the first 1x1 conv
    assert RECIPES["he2016-resnet"]["val_fraction"] == 0.0


@pytest.mark.parametrize("recipe", ["allcnn-c", "blog-allcnn"])
def test_allcnn_recipes_have_nine_convolutions_and_1_37_million(recipe):
    net = build(recipe)
    assert len(net.convs) == 9
    assert count(net) / 1e6 == pytest.approx(1.37, abs=0.005)  # conv kernels + biases: 1.37 M


def test_allcnn_c_is_the_c10_setting_without_augmentation():
    assert RECIPES["allcnn-c"]["augment"] is False
    assert "C10" in DESCRIPTIONS["allcnn-c"]
