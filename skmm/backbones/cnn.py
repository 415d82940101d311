"""Built-in image backbones: a small CNN trained from scratch, and raw pixels.

Both are registered in :data:`skmm.registry.image_backbones` as ``"cnn"`` and
``"pixels"``; the pretrained families (torchvision, timm, Hugging Face, CLIP) live
in their own modules.

Examples
--------
>>> from skmm.backbones.cnn import cnn
>>> bb = cnn(image_size=32, random_state=0, channels=(8, 16))
>>> bb.out_dim, bb.image_size, bb.trainable, len(bb.blocks)
(16, 32, True, 2)
"""

from torch import nn

from ..registry import image_backbones
from ._common import check_no_spec
from .base import ImageBackbone
from .optional import load_state_dict_file, seeded_weights, weights_path_token

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


@image_backbones.register("cnn")
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
    with seeded_weights(random_state) as token:  # None when unseeded: never cached
        module = SmallCNN(channels)
    if weights is not None:
        module.load_state_dict(load_state_dict_file(weights))
        token = weights_path_token(weights)
    return ImageBackbone.from_model(
        module, family="cnn", name=None, weights=token, image_size=64 if image_size is None else int(image_size),
        mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), out_dim=module.out_dim, trainable=True,
        options={"channels": channels}, blocks=list(module.blocks), channels_last=False,
    )


@image_backbones.register("pixels")
def pixels(spec=None, *, image_size=None, random_state=None, weights=None):
    """Resized RGB pixels in [0, 1], flattened: the baseline every model must beat."""
    check_no_spec("pixels", spec)
    if weights is not None:
        raise ValueError(f"the 'pixels' backbone has no weights; got weights={weights!r}")
    size = 16 if image_size is None else int(image_size)
    return ImageBackbone.from_model(
        nn.Flatten(), family="pixels", name=None, weights="none", image_size=size, mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0), out_dim=3 * size * size, trainable=False,
    )
