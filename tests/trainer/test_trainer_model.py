"""Atienza's ResNet v2 layout, and `sweep model`."""

from __future__ import annotations

import pytest

from sweeps.errors import InputError

pytestmark = pytest.mark.backend


def _layers_of(model, kind: str) -> list:
    return [layer for layer in model.layers if type(layer).__name__ == kind]


def test_resnet56v2_matches_the_reference_layout() -> None:
    from trainer.model import build_resnet_v2
    from trainer.summary import parameter_counts

    model = build_resnet_v2(56, (32, 32, 3))
    # The Keras example's ResNet56v2: about 1.7 M trainable parameters.
    assert parameter_counts(model) == (1_673_738, 1_663_338, 10_400)
    conv = _layers_of(model, "Conv2D")
    # Stem, 3 stages × 6 blocks × 3 convs, and one projection shortcut per stage.
    assert len(conv) == 1 + 3 * 6 * 3 + 3
    assert len(_layers_of(model, "BatchNormalization")) == 1 + (3 * 6 * 3 - 1) + 1
    assert len(_layers_of(model, "Add")) == 18
    assert all(layer.padding == "same" for layer in conv)
    assert all(layer.kernel_regularizer is None for layer in conv)  # l2 = 0, as the post
    assert [layer.filters for layer in conv[:5]] == [16, 16, 16, 64, 64]  # stem, block 1, shortcut
    # Bottleneck widths 16, 64, 128; stage outputs 64, 128, 256.
    assert sorted({layer.filters for layer in conv}) == [16, 64, 128, 256]
    assert [layer.strides for layer in conv if layer.strides != (1, 1)] == [(2, 2)] * 4
    pooling = _layers_of(model, "AveragePooling2D")[0]
    assert pooling.pool_size == (8, 8)
    dense = _layers_of(model, "Dense")[0]
    assert dense.units == 10 and dense.kernel_regularizer is None
    assert model.output_shape == (None, 10)


def test_any_depth_9n_plus_2_and_small_inputs() -> None:
    import keras

    from trainer.model import build_resnet_v2

    model = build_resnet_v2(11, (16, 16, 1), l2=1e-4)
    assert len(_layers_of(model, "Conv2D")) == 1 + 3 * 3 + 3
    assert _layers_of(model, "AveragePooling2D")[0].pool_size == (4, 4)
    assert all(
        isinstance(layer.kernel_regularizer, keras.regularizers.L2)
        for layer in _layers_of(model, "Conv2D")
    )
    assert build_resnet_v2(20, (28, 28, 1)).output_shape == (None, 10)


def test_mixed_precision_is_per_model() -> None:
    import keras

    from trainer.model import build_resnet_v2

    model = build_resnet_v2(11, (16, 16, 3), dtype_policy="mixed_bfloat16")
    assert _layers_of(model, "Conv2D")[0].compute_dtype == "bfloat16"
    assert _layers_of(model, "Conv2D")[0].variable_dtype == "float32"
    assert _layers_of(model, "Dense")[0].compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # nothing leaked


@pytest.mark.parametrize("depth", [10, 12, 2, 57])
def test_invalid_depth(depth: int) -> None:
    from trainer.summary import model_command

    with pytest.raises(InputError, match=r"--depth: must be 9n\+2"):
        model_command(depth, "32,32,3")


def test_invalid_input_shape() -> None:
    from trainer.summary import model_command

    with pytest.raises(InputError, match="--input-shape"):
        model_command(11, "30,30,3")
    with pytest.raises(InputError, match="--input-shape"):
        model_command(11, "32,32")


def test_model_command_prints_summary_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    from trainer.summary import model_command

    assert model_command(56, "32,32,3") == 0
    out = capsys.readouterr().out
    assert "stem_conv (Conv2D)" in out and "stage3_block6_conv3" in out and "average_pooling2d" in out
    assert "1,673,738 parameters, 1,663,338 trainable, 10,400 non-trainable" in out
