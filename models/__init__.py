"""The networks, built by one factory: `models.build(name, num_classes, ...)`.

    allcnn   All-CNN-C (Springenberg et al. 2014)              models/allcnn.py
    resnet   ResNet v1 / v2, basic or bottleneck, shortcut A/B  models/resnet.py
    cnn      the seed Q&A network for dropout / BN placement    models/cnn.py

The returned module has `__call__(images, training) -> logits`, `init_rng`, `rng` and `config`;
`models.build(**model.config)` rebuilds the same network (same initial weights for the same seed).
"""

from errors import UserError

NAMES = ("allcnn", "resnet", "cnn")


def build(model, num_classes, act="relu", act_params=None, bn=True, bn_decay=0.99,
          bn_epsilon=1e-3, bn_test_batch_stats=False, bn_fused=False, seed=0, data_format="NHWC",
          compute_dtype="float32", **specific):
    """Build network `model`; `specific` holds the model's own options (see DESIGN.md)."""
    defaults = {"resnet": dict(depth=20, version=1, shortcut="A", bottleneck=None),
                "cnn": dict(dropout="dropout", dropout_rates=[0.2, 0.2, 0.4],
                            order="conv-bn-act-pool-drop"),
                "allcnn": dict(dropout=True)}
    if model not in defaults:
        raise UserError(f"unknown model {model!r}; choose one of {', '.join(NAMES)}")
    unknown = set(specific) - set(defaults[model])
    if unknown:
        raise UserError(f"{model} has no option(s) {', '.join(sorted(unknown))}")
    if data_format not in ("NHWC", "NCHW"):
        raise UserError(f"data_format must be NHWC or NCHW, got {data_format!r}")
    if compute_dtype not in ("float32", "bfloat16", "float16"):
        raise UserError(f"compute_dtype must be float32, bfloat16 or float16, got "
                        f"{compute_dtype!r}")
    config = dict(model=model, num_classes=num_classes, act=act, act_params=act_params or {},
                  bn=bn, bn_decay=bn_decay, bn_epsilon=bn_epsilon,
                  bn_test_batch_stats=bn_test_batch_stats, bn_fused=bn_fused, seed=seed,
                  data_format=data_format, compute_dtype=compute_dtype,
                  **dict(defaults[model], **specific))
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
