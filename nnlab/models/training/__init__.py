"""What every trainer's loop shares (docs/design.md, 'Training').

- :mod:`~nnlab.models.training.callbacks`: the one callback protocol a loop reports through
  (``Callback``), the list that runs them (``Callbacks``), the caller's ``Hooks`` and
  ``StopRun``;
- :mod:`~nnlab.models.training.early_stopping`: ``train.early_stopping`` as a callback;
- :mod:`~nnlab.models.training.schedule`: the learning-rate schedule (``train.lr_decay``).

All plain Python, so the NumPy MLP needs no PyTorch for them. This package imports nothing
itself: the trainer interface (nnlab.models.base) imports its callbacks module alone.
"""
