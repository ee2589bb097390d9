"""The networks, one class each, built from explicit constructor arguments.

    allcnn   AllCNN   All-CNN-C (Springenberg et al. 2014)               models/allcnn.py
    resnet   ResNet   ResNet v1 / v2, basic or bottleneck, shortcut A/B  models/resnet.py
    cnn      CNN      a plain CNN for studying dropout / BN placement    models/cnn.py

train.py calls the class that --model names, CLASSES[args.model](num_classes, act=..., bn=...,
...). Every network has `__call__(images, training) -> logits`, `init_rng`, `rng` and `config`,
its constructor arguments: `build(**model.config)` rebuilds the same network (same initial
weights for the same seed), which is how eval.py rebuilds a model from a log directory's
config.json. Defaults come from `plumbing/choices.py`: MODEL_DEFAULTS (settings every model
takes) and MODEL_OPTIONS[name] (each model's own options).
"""

import inspect

from models.allcnn import AllCNN
from models.cnn import CNN
from models.resnet import ResNet
from plumbing.choices import MODELS, own_activation_params
from plumbing.errors import UserError

NAMES = MODELS
CLASSES = {"allcnn": AllCNN, "resnet": ResNet, "cnn": CNN}


def build(model, num_classes, act="relu", act_params=None, **settings):
    """The network `model` (a name of CLASSES) from keyword arguments: a config.json's
    "model_config", or a test's few settings (the others take the constructor's defaults).

    A config.json written before the activations took only their own parameters lists all nine
    in act_params: then the chosen activation's are kept.
    """
    if model not in CLASSES:
        raise UserError(f"unknown model {model!r}; choose one of {', '.join(NAMES)}")
    unknown = set(settings) - set(inspect.signature(CLASSES[model]).parameters)
    if unknown:
        raise UserError(f"{model} has no option(s) {', '.join(sorted(unknown))}")
    act_params = own_activation_params(act, act_params or {})  # an older config.json: all nine
    return CLASSES[model](num_classes, act=act, act_params=act_params, **settings)
