"""Built-in image backbones: a small CNN trained from scratch, and raw pixels.

Both are registered in :data:`skmm.registry.image_encoders`; pretrained families
(torchvision, timm, Hugging Face, CLIP) live in their own modules.
"""

import torch
from torch import nn

from ..utils.seeding import seeded
from ..registry import image_encoders
from ._backbone import ImageBackbone
from ._utils import check_no_spec

__all__ = ["SmallCNN", "cnn", "pixels"]


class SmallCNN(nn.Module):
    """The classic image branch: blocks of Conv -> BatchNorm -> ReLU -> MaxPool.

    Global average pooling after the last block makes the output size independent
    of the image size.

    Parameters
    ----------
    channels : sequence of int
        Output channels of each block; its length is the number of blocks.
    """

    def __init__(self, channels=(32, 64, 128, 128)):
        super().__init__()
        layers, c_in = [], 3
        for c_out in channels:
            layers.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2, ceil_mode=True),  # small images shrink to 1x1, never to 0x0
                )
            )
            c_in = c_out
        self.blocks = nn.ModuleList(layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = c_in

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.pool(x).flatten(1)


@image_encoders.register("cnn")
def cnn(spec=None, *, image_size=None, random_state=None, weights=None, channels=(32, 64, 128, 128)):
    """A small CNN (:class:`SmallCNN`), randomly initialised from ``random_state``.

    Trained end to end inside FusionClassifier; used alone it is a fixed random
    feature extractor.  ``weights`` may name a state-dict file saved from an earlier
    run.
    """
    check_no_spec("cnn", spec)
    channels = tuple(int(c) for c in channels)
    if not channels or min(channels) < 1:
        raise ValueError(f"cnn channels must be positive integers, got {channels!r}")
    with seeded(random_state) as tag:  # "seed=<n>", or unique when unseeded: never cached
        module = SmallCNN(channels)
    if weights is not None:
        module.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        tag = f"weights={weights}"
    size = 64 if image_size is None else int(image_size)
    backbone = ImageBackbone(
        module=module,
        out_dim=module.out_dim,
        image_size=size,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        trainable=True,
        fingerprint=f"cnn|channels={channels}|size={size}|{tag}",
    )
    backbone.blocks = list(module.blocks)
    return backbone


class _Flatten(nn.Module):
    def forward(self, x):
        return x.flatten(1)


@image_encoders.register("pixels")
def pixels(spec=None, *, image_size=None, random_state=None, weights=None):
    """Resized RGB pixels in [0, 1], flattened: the baseline every model must beat."""
    check_no_spec("pixels", spec)
    if weights is not None:
        raise ValueError("the 'pixels' backbone has no weights; got weights=%r" % (weights,))
    size = 16 if image_size is None else int(image_size)
    backbone = ImageBackbone(
        module=_Flatten(),
        out_dim=3 * size * size,
        image_size=size,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        trainable=False,
        fingerprint=f"pixels|size={size}",
    )
    backbone.blocks = []
    return backbone
