"""Named presets that reproduce a source: `python train.py --recipe NAME`.

Each recipe is a dict of train.py settings (argparse destinations); flags given on the command line
override it. `DESCRIPTIONS` gives one line per recipe for `--help`: the source, the model and what
a full run costs. TensorFlow-free, so `--help` stays instant.
"""

# Named presets. Each reproduces a source; every flag given on the command line overrides it.
RECIPES = {
    # Liang et al., Drop-Activation (arXiv 1811.05850), its seed repository: ResNet-56 with
    # DropActivation, 200 epochs, batch 128, momentum 0.9, lr 0.1 -> 0.01 -> 0.001 -> 0.0001 at
    # epochs 91, 136, 182, L2 2e-4 on kernels, random crop with padding 5, horizontal flip,
    # per-image standardisation, an 80/20 stratified train/validation split.
    "dropact-resnet56": dict(model="resnet", depth=56, resnet_version=1, act="dropact", bn=True,
                             epochs=200, batch_size=128, optimizer="momentum", lr=0.1,
                             schedule="step", lr_steps="91,136,182", weight_decay=2e-4, padding=5,
                             flip=True, normalization="per-image", val_fraction=0.2),
    # Hahn & Choi, Gradient Acceleration in Activation Functions (arXiv 1806.09783): ResNet-20 v1,
    # Adam 1e-3, batch 128, 200 epochs, no data augmentation.
    "gaaf-resnet20": dict(model="resnet", depth=20, resnet_version=1, act="gaaf-relu", bn=True,
                          epochs=200, batch_size=128, optimizer="adam", lr=1e-3,
                          schedule="constant", weight_decay=0.0, augment=False),
    # The seed blog post: All-CNN with relu / prelu / elu, with and without batch norm (decay 0.99,
    # epsilon 1e-3). Pick the activation and --bn/--no-bn on the command line.
    "blog-allcnn": dict(model="allcnn", act="elu", bn=True, bn_decay=0.99, bn_epsilon=1e-3),
    # He et al. 2016, Identity Mappings in Deep Residual Networks (arXiv 1603.05027), CIFAR setup
    # (as in He et al. 2015): pre-activation ResNet-164, batch 128, momentum 0.9, lr 0.1 divided by
    # 10 at 32k and 48k iterations, stop at 64k, wd 1e-4, pad-4 crop + flip, 45k/5k split.
    "he2016-resnet": dict(model="resnet", depth=164, resnet_version=2, act="relu", bn=True,
                          batch_size=128, optimizer="momentum", lr=0.1, schedule="step",
                          lr_steps="32000,48000", lr_steps_unit="steps", max_steps=64000,
                          epochs=183, weight_decay=1e-4, padding=4, flip=True, val_fraction=0.1),
    # Springenberg et al., Striving for Simplicity (arXiv 1412.6806), All-CNN-C: momentum 0.9,
    # lr 0.05 (best of their grid), x0.1 at epochs 200, 250, 300, 350 epochs, wd 1e-3. (The paper
    # used ZCA-whitened data; this project uses per-channel normalisation.)
    "allcnn-c": dict(model="allcnn", act="relu", bn=False, epochs=350, batch_size=128,
                     optimizer="momentum", lr=0.05, schedule="step", lr_steps="200,250,300",
                     weight_decay=1e-3),
}


DESCRIPTIONS = {
    "dropact-resnet56": "Liang et al. 2018 Drop-Activation: ResNet-56, dropact, BN, 200 epochs",
    "gaaf-resnet20": "Hahn & Choi 2018 GAAF: ResNet-20, gaaf-relu, Adam, no augmentation, 200 epochs",
    "blog-allcnn": "the blog post's All-CNN (relu/prelu/elu +- BN); pick --act and --bn/--no-bn",
    "he2016-resnet": "He et al. 2016 pre-activation ResNet-164, 64k iterations",
    "allcnn-c": "Springenberg et al. 2014 All-CNN-C, no BN, 350 epochs",
}
