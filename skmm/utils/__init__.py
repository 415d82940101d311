"""Helpers every part of skmm shares, one home each.

- :mod:`skmm.utils.validation`: checks of parameters (options, numbers) and of
  cells (:func:`~skmm.utils.validation.is_missing`), with errors naming the parameter.
- :mod:`skmm.utils.seeding`: integer seeds from scikit-learn ``random_state`` values
  and a context that seeds torch without touching the caller's RNG.
- :mod:`skmm.utils.device`: devices and arithmetic precision (bf16 autocast).
- :mod:`skmm.utils.serialization`: torch modules inside pickles, their tensors read
  with ``torch.load(weights_only=True)``; CUDA-trained models loading on the CPU.
"""
