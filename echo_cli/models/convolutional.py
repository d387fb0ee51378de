"""The convolutional kinds: causal dilated convolutions (conv1d) and a temporal convolutional
network (tcn, Bai, Kolter & Koltun 2018). Each sees a bounded number of steps back, its
receptive field, which grows with the levels added until it covers the sequence.

    features = TCN.build(h, cfg.model, sig)
    TCN.receptive_field(cfg.model, 70)           # 85 with kernel 8: 1 + 2·7·(1 + 2 + 4)
"""

from __future__ import annotations

from pydantic import Field

from echo_cli.models.base import Kind, Signature, Size, last_step

KERNEL_SIZE = (int, Field(8, ge=2, description="tcn: the convolution kernel; levels are added "
                                               "until the receptive field covers the sequence"))


def conv_dilations(steps: int) -> list[int]:
    """Dilations 1, 2, 4, ... of kernel-2 causal convolutions until the receptive field
    (1 + sum of dilations) covers the window."""
    dilations = [1]
    while 1 + sum(dilations) < steps:
        dilations.append(dilations[-1] * 2)
    return dilations


def tcn_dilations(steps: int, kernel: int) -> list[int]:
    """Dilations 1, 2, 4, ... of TCN blocks (two convolutions each) until the receptive field,
    1 + 2·(kernel - 1)·(sum of dilations), covers every step."""
    dilations = [1]
    while 1 + 2 * (kernel - 1) * sum(dilations) < steps:
        dilations.append(dilations[-1] * 2)
    return dilations


def _conv1d(h, model, sig: Signature):
    """Causal dilated convolutions whose receptive field covers the window; the last step
    (or every step, for outputs per step) feeds the output."""
    from keras import layers

    for i, dilation in enumerate(conv_dilations(sig.steps), start=1):
        h = layers.Conv1D(model.units, 2, dilation_rate=dilation, padding="causal",
                          activation="relu", name=f"conv{i}")(h)
    return last_step(h, sig)


def _conv1d_size(model, width: int, steps: int) -> Size:
    u, levels = model.units, len(conv_dilations(steps))
    return Size(input_kernels=2 * width * u, hidden_kernels=u + (levels - 1) * (2 * u * u + u),
                layers=levels)


def _tcn(h, model, sig: Signature):
    """Residual blocks, each two dilated causal convolutions with ReLU, the block's input added
    back (through a 1x1 convolution where the channels differ). No weight normalization and no
    dropout: the tasks here are noise-free."""
    from keras import layers

    c, k = model.units, model.kernel_size
    for i, dilation in enumerate(tcn_dilations(sig.steps, k), start=1):
        skip = h if h.shape[-1] == c else layers.Conv1D(c, 1, name=f"tcn{i}_skip")(h)
        y = layers.Conv1D(c, k, dilation_rate=dilation, padding="causal", activation="relu",
                          name=f"tcn{i}a")(h)
        y = layers.Conv1D(c, k, dilation_rate=dilation, padding="causal", activation="relu",
                          name=f"tcn{i}b")(y)
        h = layers.Activation("relu", name=f"tcn{i}")(layers.Add(name=f"tcn{i}_add")([y, skip]))
    return last_step(h, sig)


def _tcn_size(model, width: int, steps: int) -> Size:
    u, k = model.units, model.kernel_size
    levels = len(tcn_dilations(steps, k))
    return Size(input_kernels=k * width * u + width * u,
                hidden_kernels=levels * (2 * k * u * u) - k * u * u, layers=2 * levels)


CONV1D = Kind(name="conv1d", summary="causal dilated convolutions (kernel 2) whose receptive "
                                     "field covers the window", build=_conv1d, size=_conv1d_size,
              body="conv1", receptive_field=lambda model, steps: 1 + sum(conv_dilations(steps)))
TCN = Kind(name="tcn", summary="a temporal convolutional network: residual blocks of dilated "
                               "causal convolutions (Bai et al. 2018)", build=_tcn, size=_tcn_size,
           body="tcn1a", keys={"kernel_size": KERNEL_SIZE},
           receptive_field=lambda model, steps: 1 + 2 * (model.kernel_size - 1) * sum(
               tcn_dilations(steps, model.kernel_size)))
