"""Atienza's ResNet v2 (the Keras example `cifar10_resnet.py`) for any depth 9n+2.

The layout follows the example exactly (see shared/reference.md): a conv-BN-ReLU stem,
three stages of n pre-activation bottleneck blocks (1×1, 3×3, 1×1) with a projection
shortcut in each stage's first block, then BN-ReLU, average pooling and a softmax
Dense. Depth 56 is the post's ResNet56v2.

Two departures that keep the layout: the final average pooling covers the whole final
feature map (8×8 for 32×32 inputs, as in the example), so any input whose height and
width are divisible by 4 works; and the head Dense runs in float32 under mixed
precision, so that the softmax and the loss are computed in full precision (Keras'
mixed-precision advice).
"""

from __future__ import annotations

import keras

from sweeps.resnet import blocks_per_stage, check_input_shape


def _resnet_layer(
    inputs: keras.KerasTensor,
    num_filters: int = 16,
    kernel_size: int = 3,
    strides: int = 1,
    activation: str | None = "relu",
    batch_normalization: bool = True,
    conv_first: bool = True,
    *,
    l2: float,
    dtype: str,
    name: str,
) -> keras.KerasTensor:
    """Atienza's `resnet_layer`: conv→BN→act, or with `conv_first=False` BN→act→conv.

    The conv is named `name` (see `conv_name`), so that the kernels' statistics can
    tell the stages and the scale-invariant kernels apart.
    """
    conv = keras.layers.Conv2D(
        num_filters,
        kernel_size=kernel_size,
        strides=strides,
        padding="same",
        kernel_initializer="he_normal",
        # No regularizer at l2 = 0 (the post): the same model without a zero penalty term.
        kernel_regularizer=keras.regularizers.L2(l2) if l2 > 0 else None,
        dtype=dtype,
        name=name,
    )
    x = inputs
    if conv_first:
        x = conv(x)
    if batch_normalization:
        x = keras.layers.BatchNormalization(dtype=dtype)(x)
    if activation is not None:
        x = keras.layers.Activation(activation, dtype=dtype)(x)
    if not conv_first:
        x = conv(x)
    return x


def conv_name(stage: int, block: int, role: str) -> str:
    """The name of a block's conv: `stage2_block1_conv3`, `stage1_block1_shortcut`.

    Args:
        stage: 1, 2 or 3.
        block: 1-based within the stage.
        role: `conv1` (1×1), `conv2` (3×3), `conv3` (1×1) or `shortcut` (projection).
    """
    return f"stage{stage}_block{block}_{role}"


#: The convs of a block: 1×1, 3×3, 1×1, and the first block's projection shortcut.
CONV_ROLES = ("conv1", "conv2", "conv3", "shortcut")
#: The stem's conv (conv→BN→ReLU before the stages).
STEM_CONV = "stem_conv"


def build_resnet_v2(
    depth: int,
    input_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    *,
    l2: float = 0.0,
    dtype_policy: str = "float32",
    preprocessing: keras.layers.Layer | None = None,
    name: str | None = None,
) -> keras.Model:
    """Atienza's ResNet v2 of depth 9n+2.

    Args:
        depth: 11, 20, 29, …, 56 (the post's ResNet56v2), ….
        input_shape: (height, width, channels), height and width divisible by 4.
        num_classes: outputs of the softmax.
        l2: L2 factor on the conv kernels (the example's 1e-4; the post's 0).
        dtype_policy: `float32`, `mixed_float16` or `mixed_bfloat16`, set on each
            layer so that one run's precision does not leak into the next.
        preprocessing: a layer applied to the inputs first (the augmentation).
        name: the model's name, default `resnet{depth}v2`.
    """
    num_res_blocks = blocks_per_stage(depth)
    height, width, channels = check_input_shape(input_shape)
    layer = dict(l2=l2, dtype=dtype_policy)

    inputs = keras.Input(shape=(height, width, channels))
    x = preprocessing(inputs) if preprocessing is not None else inputs
    num_filters_in = 16
    x = _resnet_layer(x, num_filters_in, conv_first=True, name=STEM_CONV, **layer)
    for stage in range(3):
        for res_block in range(num_res_blocks):
            activation: str | None = "relu"
            batch_normalization = True
            strides = 1
            if stage == 0:
                num_filters_out = num_filters_in * 4
                if res_block == 0:  # the stem already ends with BN-ReLU
                    activation = None
                    batch_normalization = False
            else:
                num_filters_out = num_filters_in * 2
                if res_block == 0:
                    strides = 2  # downsample
            names = {role: conv_name(stage + 1, res_block + 1, role) for role in CONV_ROLES}
            y = _resnet_layer(
                x, num_filters_in, kernel_size=1, strides=strides, activation=activation,
                batch_normalization=batch_normalization, conv_first=False, name=names["conv1"],
                **layer,
            )
            y = _resnet_layer(y, num_filters_in, conv_first=False, name=names["conv2"], **layer)
            y = _resnet_layer(
                y, num_filters_out, kernel_size=1, conv_first=False, name=names["conv3"], **layer
            )
            if res_block == 0:
                # Projection shortcut to the new width (and stride).
                x = _resnet_layer(
                    x, num_filters_out, kernel_size=1, strides=strides, activation=None,
                    batch_normalization=False, name=names["shortcut"], **layer,
                )
            x = keras.layers.Add(dtype=dtype_policy)([x, y])
        num_filters_in = num_filters_out

    x = keras.layers.BatchNormalization(dtype=dtype_policy)(x)
    x = keras.layers.Activation("relu", dtype=dtype_policy)(x)
    # Pool over the whole final map: 8×8 for 32×32 inputs, as the example's pool_size=8.
    x = keras.layers.AveragePooling2D(pool_size=(height // 4, width // 4), dtype=dtype_policy)(x)
    x = keras.layers.Flatten(dtype=dtype_policy)(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", kernel_initializer="he_normal", dtype="float32"
    )(x)
    return keras.Model(inputs=inputs, outputs=outputs, name=name or f"resnet{depth}v2")
