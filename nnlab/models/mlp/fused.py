"""Adam's update (:mod:`~nnlab.models.mlp.optim`) as one compiled pass over the flat
parameters (numba), for runs long enough to pay for it (``optim.FUSED_FROM``).

NumPy runs Adam as twelve passes over memory, each reading and writing whole arrays; here each
element is read once, updated in registers and written once. Every element still sees the
NumPy passes' operations in their order and in the parameters' dtype (the constants arrive as
numbers of that dtype), and numba compiles without ``fastmath``, so with no fused
multiply-add, and with NumPy's error model, so a division by zero gives inf or nan instead of
raising: θ, m and v end the same to the bit (tests/models/test_mlp_training.py).

The kernel is compiled in each process that uses it, on first use for each dtype (with numba's
import, about 0.5 s here: bench/mlp_update.py), and not cached on disk: numba's cache cannot be
written in a read-only install (numba raises there), and sweep workers compiling the float32
and float64 kernels at the same moment could leave its index pointing at the other dtype's
code.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, error_model="numpy")
def adam(theta, g, m, v, lr_t, eps_t, b1, c1, b2, c2):
    """m ← (m β1) + (g c1); v ← (v β2) + ((g g) c2); θ ← θ - ((m / (√v + ε_t)) lr_t), with
    c1 = 1 - β1 and c2 = 1 - β2."""
    rate, eps = lr_t[0], eps_t[0]
    for i in range(theta.size):
        gi = g[i]
        mi = m[i] * b1 + gi * c1
        vi = v[i] * b2 + (gi * gi) * c2
        m[i] = mi
        v[i] = vi
        theta[i] = theta[i] - (mi / (np.sqrt(vi) + eps)) * rate
