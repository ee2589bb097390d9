"""Named presets that reproduce a source: `python train.py --recipe NAME`.

Each recipe is a dict of train.py settings (argparse destinations); flags given on the command line
override it. `DESCRIPTIONS` gives one line per recipe for `--help`: the source, the model and what
a full run costs. TensorFlow-free, so `--help` stays instant.

Weight decay: train.py adds wd/2 * ||k||^2 (gradient + wd * k, the Caffe / Torch convention), so
Keras' `kernel_regularizer=l2(c)`, which adds c * ||k||^2, is `weight_decay=2c` here. Keras'
LearningRateScheduler calls its function with the 0-based epoch index, so a test `epoch > 80` first
holds in epoch index 81: the boundary is 81 here (it takes effect once 81 epochs are complete).
Each recipe's comment lists what still differs from its source.
"""

RECIPES = {
    # Liang et al. 2018, Drop-Activation (arXiv 1811.05850), as run by
    # JGuillaumin/drop_activation_tf (resnet.py, ResNet-56_CIFAR10_DropActivation.ipynb): a
    # pre-activation ResNet-56 with 1x1 projection shortcuts (no BN, no bias) where a stage
    # starts, BN momentum 0.997 and epsilon 1e-5, DropActivation p = 0.95 at every activation,
    # SGD momentum 0.9, batch 128, 200 epochs, lr 0.1 x0.1 from epoch index 91, 136, 182, Keras
    # l2(2e-4) on conv and dense kernels (= weight_decay 4e-4), shifts of up to 5 pixels with zero
    # fill and horizontal flips, per-image standardisation, an 80/20 stratified train/validation
    # split; the test accuracy is that of the best-validation epoch (`eval.py --best`).
    # Still different: its first conv is 'valid' (30x30 maps, so its stages run at 30, 15 and 8
    # pixels; here 'same': 32, 16, 8); its first stage also starts with a 1x1 projection (16 -> 16
    # channels; here the identity); its projections take the raw block input (here the
    # pre-activated one, as the ResNet authors); Keras' random shifts vs this zero-padded random
    # crop; Keras' per-image std + 1e-7 vs tf.image.per_image_standardization's
    # max(std, 1/sqrt(3072)); its last partial batch of each epoch (313 steps; here 312).
    "dropact-resnet56": dict(model="resnet", depth=56, resnet_version=2, shortcut="B",
                             act="dropact", bn=True, bn_decay=0.997, bn_epsilon=1e-5,
                             epochs=200, batch_size=128, optimizer="momentum", lr=0.1,
                             schedule="step", lr_steps="91,136,182", weight_decay=4e-4,
                             padding=5, flip=True, normalization="per-image", val_fraction=0.2),
    # Hahn & Choi 2018, Gradient Acceleration in Activation Functions (arXiv 1806.09783), as run by
    # kobiso/GAAF-keras (main.py, utils.py, models/resnet_v1.py): ResNet-20 v1 with GAAF-ReLU in
    # the blocks and plain ReLU after the first conv, 1x1 projection shortcuts without BN where
    # the dimensions increase, conv biases kept (Keras' default), Keras BN (momentum 0.99,
    # epsilon 1e-3), Adam 1e-3 (epsilon 1e-7) x0.1 / x0.01 / x0.001 / x0.0005 from epoch index
    # 81 / 121 / 161 / 181 (`epoch > 80` ...), batch 128, 200 epochs, no augmentation, x/255 minus
    # the training set's mean image, Keras l2(1e-4) on conv kernels (= weight_decay 2e-4), all 50k
    # training images. Its ReduceLROnPlateau(factor sqrt(0.1), patience 5) is not reproduced: the
    # LearningRateScheduler sets the rate again at the start of every epoch, so a reduction never
    # lasts. Still different: weight decay here also reaches the dense kernel (there: conv kernels
    # only); it validates on the test set and keeps the best epoch (ModelCheckpoint on val_acc),
    # here the final weights are reported; its last partial batch (391 steps; here 390).
    "gaaf-resnet20": dict(model="resnet", depth=20, resnet_version=1, shortcut="B",
                          projection_bn=False, stem_act="relu", conv_bias=True, act="gaaf-relu",
                          bn=True, bn_decay=0.99, bn_epsilon=1e-3, epochs=200, batch_size=128,
                          optimizer="adam", lr=1e-3, schedule="step", lr_steps="81,121,161,181",
                          lr_factors="0.1,0.01,0.001,0.0005", weight_decay=2e-4, augment=False,
                          normalization="per-pixel", val_fraction=0.0),
    # The blog post "激活函数(relu,prelu,elu,+BN)对比on cifar10": All-CNN with relu / prelu / elu,
    # with and without batch norm (decay 0.99, epsilon 1e-3). Pick the activation and
    # --bn/--no-bn on the command line. What the post shows does not state its dropout, optimiser
    # or schedule; the recipe keeps this project's All-CNN defaults (no dropout, momentum 0.9,
    # lr 0.01, cosine).
    "blog-allcnn": dict(model="allcnn", act="elu", bn=True, bn_decay=0.99, bn_epsilon=1e-3),
    # He et al. 2016, Identity Mappings in Deep Residual Networks (arXiv 1603.05027), CIFAR-10 with
    # the CIFAR setup of He et al. 2015 (arXiv 1512.03385, section 4.2): pre-activation
    # ResNet-164 (bottleneck units, stride on the first 1x1 conv as in the authors'
    # resnet-pre-act.lua), 1x1 projection shortcuts where the dimensions increase (1.7M
    # parameters), batch 128, momentum 0.9, lr 0.1 divided by 10 at 32k and 48k iterations, stop
    # at 64k, weight decay 1e-4, 4-pixel zero padding + random 32x32 crop + horizontal flip, the
    # per-pixel mean subtracted. The 45k/5k split only chose that schedule; the reported numbers
    # train on all 50k images, and so does this recipe (final weights; --val-fraction 0.1 gives the
    # split back). BN momentum 0.1 and epsilon 1e-5 are Torch's nn.SpatialBatchNormalization
    # defaults, used by the authors' code. Still different: the authors' Torch code (built on
    # fb.resnet.torch) normalises per channel (mean and std) rather than per pixel.
    "he2016-resnet": dict(model="resnet", depth=164, resnet_version=2, shortcut="B",
                          bottleneck_stride="1x1", act="relu", bn=True, bn_decay=0.9,
                          bn_epsilon=1e-5, batch_size=128, optimizer="momentum", lr=0.1,
                          schedule="step", lr_steps="32000,48000", lr_steps_unit="steps",
                          max_steps=64000, epochs=165, weight_decay=1e-4, padding=4, flip=True,
                          normalization="per-pixel", val_fraction=0.0),
    # Springenberg et al. 2014, Striving for Simplicity (arXiv 1412.6806), All-CNN-C on C10, the
    # paper's CIFAR-10 result without data augmentation (C10+ adds flips and translations): no
    # augmentation, dropout 0.2 on the input and 0.5 after each stride-2 conv, momentum 0.9,
    # lr 0.05 (from the paper's grid 0.25, 0.1, 0.05, 0.01) x0.1 at epochs 200, 250, 300,
    # 350 epochs, weight decay 1e-3, a ReLU on the class scores as in its table 2 (score_act).
    # Still different: the paper whitened the images (ZCA, with global contrast normalisation);
    # this project normalises per channel.
    "allcnn-c": dict(model="allcnn", act="relu", bn=False, dropout=True, score_act=True,
                     epochs=350, batch_size=128, optimizer="momentum", lr=0.05, schedule="step",
                     lr_steps="200,250,300", weight_decay=1e-3, augment=False),
}


DESCRIPTIONS = {
    "dropact-resnet56": "Liang et al. 2018 Drop-Activation: pre-activation ResNet-56, dropact, "
                        "BN, 200 epochs",
    "gaaf-resnet20": "Hahn & Choi 2018 GAAF: ResNet-20, gaaf-relu, Adam, no augmentation, "
                     "200 epochs",
    "blog-allcnn": "the blog post's All-CNN (relu/prelu/elu +- BN); pick --act and --bn/--no-bn",
    "he2016-resnet": "He et al. 2016 pre-activation ResNet-164, 64k iterations on all 50k images",
    "allcnn-c": "Springenberg et al. 2014 All-CNN-C on C10 (no augmentation), no BN, 350 epochs",
}
