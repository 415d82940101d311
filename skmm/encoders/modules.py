"""A backbone's module taken out and put back (encoders pickle and hand over modules)."""

import copy

__all__ = ["set_module", "without_module"]


def without_module(backbone):
    """A shallow copy of ``backbone`` without its module (blocks kept by name)."""
    clone = copy.copy(backbone)
    # Blocks are sub-modules of the module; they are kept by name and restored from it.
    blocks = getattr(backbone, "blocks", None)
    if blocks and not isinstance(blocks[0], str):
        ids = {id(m): name for name, m in backbone.module.named_modules()}
        clone.blocks = [ids[id(b)] for b in blocks]
    clone.module = None
    return clone


def set_module(backbone, module):
    """Give ``backbone`` its ``module`` back (and its blocks, from their names)."""
    backbone.module = module
    blocks = getattr(backbone, "blocks", None)
    if blocks and isinstance(blocks[0], str):
        named = dict(module.named_modules())
        backbone.blocks = [named[name] for name in blocks]
