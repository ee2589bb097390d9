"""The networks, built by one factory: `models.build(name, num_classes, ...)`.

    allcnn   All-CNN-C (Springenberg et al. 2014)              models/allcnn.py
    resnet   ResNet v1 / v2, basic or bottleneck, shortcut A/B  models/resnet.py
    cnn      a plain CNN for studying dropout / BN placement    models/cnn.py

The returned module has `__call__(images, training) -> logits`, `init_rng`, `rng` and `config`;
`models.build(**model.config)` rebuilds the same network (same initial weights for the same seed).
Defaults come from `plumbing/choices.py`: MODEL_DEFAULTS (settings every model takes) and
MODEL_OPTIONS[name] (each model's own options).
"""

from plumbing.choices import MODEL_DEFAULTS, MODEL_OPTIONS, MODELS
from plumbing.errors import UserError

NAMES = MODELS
DTYPES = ("float32", "bfloat16", "float16")


def build(model, num_classes, act="relu", act_params=None, seed=0, compute_dtype="float32",
          **settings):
    """Build network `model`.

    settings: any key of choices.MODEL_DEFAULTS (bn, bn_decay, bn_epsilon, bn_test_batch_stats,
    bn_fused, data_format) and of choices.MODEL_OPTIONS[model]; the others take their defaults.
    """
    if model not in MODEL_OPTIONS:
        raise UserError(f"unknown model {model!r}; choose one of {', '.join(NAMES)}")
    unknown = set(settings) - set(MODEL_DEFAULTS) - set(MODEL_OPTIONS[model])
    if unknown:
        raise UserError(f"{model} has no option(s) {', '.join(sorted(unknown))}")
    config = dict(model=model, num_classes=num_classes, act=act, act_params=act_params or {},
                  seed=seed, compute_dtype=compute_dtype, **MODEL_DEFAULTS)
    config.update(MODEL_OPTIONS[model])
    config.update(settings)
    if config["data_format"] not in ("NHWC", "NCHW"):
        raise UserError(f"data_format must be NHWC or NCHW, got {config['data_format']!r}")
    if compute_dtype not in DTYPES:
        raise UserError(f"compute_dtype must be float32, bfloat16 or float16, got "
                        f"{compute_dtype!r}")
    if "dropout_rates" in config:
        config["dropout_rates"] = [float(r) for r in config["dropout_rates"]]
    if model == "resnet":
        from models.resnet import ResNet
        return ResNet(config)
    if model == "cnn":
        from models.cnn import CNN
        return CNN(config)
    from models.allcnn import AllCNN
    return AllCNN(config)
