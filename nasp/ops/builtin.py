"""Every op of DARTS's space, of the paper's 12-op space (appendix B.3) and of NAS-Bench-201's."""

from __future__ import annotations

from torch import nn

from nasp.ops.layers import DilConv, FactorizedReduce, Identity, ReLUConvBN, SepConv, Zero
from nasp.ops.registry import register_op


@register_op("none")
def none(C: int, stride: int, affine: bool) -> nn.Module:
    """No connection (zeros)."""
    return Zero(stride)


@register_op("skip_connect")
def skip_connect(C: int, stride: int, affine: bool) -> nn.Module:
    """Identity; a factorized reduce at stride 2."""
    return Identity() if stride == 1 else FactorizedReduce(C, C, affine)


def _pool(kind: str, k: int):
    def factory(C: int, stride: int, affine: bool) -> nn.Module:
        if kind == "avg":
            return nn.AvgPool2d(k, stride=stride, padding=k // 2, count_include_pad=False)
        return nn.MaxPool2d(k, stride=stride, padding=k // 2)

    factory.__doc__ = f"{k}x{k} {kind} pooling."
    return factory


register_op("avg_pool_3x3", pool=True)(_pool("avg", 3))
for _k in (3, 5, 7):
    register_op(f"max_pool_{_k}x{_k}", pool=True)(_pool("max", _k))


def _sep(k: int):
    def factory(C: int, stride: int, affine: bool) -> nn.Module:
        return SepConv(C, C, k, stride, k // 2, affine)

    factory.__doc__ = f"{k}x{k} depthwise-separable conv, twice."
    return factory


for _k in (3, 5, 7):
    register_op(f"sep_conv_{_k}x{_k}")(_sep(_k))


@register_op("dil_conv_3x3")
def dil_conv_3x3(C: int, stride: int, affine: bool) -> nn.Module:
    """3x3 depthwise-separable conv, dilation 2."""
    return DilConv(C, C, 3, stride, 2, 2, affine)


@register_op("dil_conv_5x5")
def dil_conv_5x5(C: int, stride: int, affine: bool) -> nn.Module:
    """5x5 depthwise-separable conv, dilation 2."""
    return DilConv(C, C, 5, stride, 4, 2, affine)


@register_op("conv_1x1")
def conv_1x1(C: int, stride: int, affine: bool) -> nn.Module:
    """1x1 convolution."""
    return ReLUConvBN(C, C, 1, stride, 0, affine)


@register_op("conv_3x3")
def conv_3x3(C: int, stride: int, affine: bool) -> nn.Module:
    """3x3 convolution."""
    return ReLUConvBN(C, C, 3, stride, 1, affine)


@register_op("conv_1x3_3x1")
def conv_1x3_3x1(C: int, stride: int, affine: bool) -> nn.Module:
    """1x3 then 3x1 convolution."""
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(C, C, (1, 3), stride=(1, stride), padding=(0, 1), bias=False),
        nn.Conv2d(C, C, (3, 1), stride=(stride, 1), padding=(1, 0), bias=False),
        nn.BatchNorm2d(C, affine=affine),
    )


@register_op("nor_conv_1x1")
def nor_conv_1x1(C: int, stride: int, affine: bool) -> nn.Module:
    """NAS-Bench-201's 1x1 ReLU-conv-BN."""
    return ReLUConvBN(C, C, 1, stride, 0, affine)


@register_op("nor_conv_3x3")
def nor_conv_3x3(C: int, stride: int, affine: bool) -> nn.Module:
    """NAS-Bench-201's 3x3 ReLU-conv-BN."""
    return ReLUConvBN(C, C, 3, stride, 1, affine)
