"""The NumPy multilayer perceptron with hand-derived backpropagation.

- :mod:`~nnlab.models.mlp.math`: the equations (forward, loss, backprop, init), pure functions;
- :mod:`~nnlab.models.mlp.engine`: the same arithmetic as a fast, allocation-free plan;
- :mod:`~nnlab.models.mlp.data`: scikit-learn's generated sets and tables, split and scaled;
- :mod:`~nnlab.models.mlp.trainer`: the trainer (full-batch gradient descent) and its figures;
- :mod:`~nnlab.models.mlp.gradcheck`: backprop against finite differences.

This module declares the kind and its config keys only, so validating a config imports no
NumPy.
"""

import json
from typing import Any

from nnlab.config import EPSILON, LOG_EVERY, REG_LAMBDA, TEST_SIZE, Option
from nnlab.models.base import Kind

DATASETS = ("moons", "circles", "blobs", "breast_cancer", "digits")
ACTIVATIONS = ("sigmoid", "tanh", "relu")
INITS = ("classic", "xavier", "he")

# fmt: off
SCHEMA = {
    "data.name": Option("moons", "str", "data set", choices=DATASETS),
    "data.n_samples": Option(200, "int", "number of points (moons, circles, blobs)", low=2),
    "data.noise": Option(0.2, "float", "noise of moons / circles", low=0),
    "data.test_size": TEST_SIZE,
    "data.standardize": Option(False, "bool",
                               "z-score features with statistics of the training split"),
    "model.layers": Option([2, 3, 2], "int_list", "layer sizes: input, hidden..., output",
                           low=1, min_len=2),
    "model.activation": Option("tanh", "str", "hidden-layer activation", choices=ACTIVATIONS),
    "model.init": Option("classic", "str", "classic randn/sqrt(fan_in), xavier (Glorot normal), "
                         "he; biases zero", choices=INITS),
    "train.epsilon": EPSILON,
    "train.reg_lambda": REG_LAMBDA,
    "train.iterations": Option(20000, "int", "full-batch gradient-descent steps", low=1),
    "train.log_every": LOG_EVERY,
}
# fmt: on


class MLPKind(Kind):
    def describe(self, cfg: dict[str, Any]) -> str:
        model = cfg["model"]
        return f"a NumPy MLP {model['layers']} with {model['activation']} hidden units"

    def precheck(self, cfg: dict[str, Any], cache: dict[str, Any]) -> None:
        """Layer sizes against the data (cheap: each distinct data set is loaded once per
        sweep, in ``cache``), so that a wrong size stops a sweep before it starts."""
        from nnlab.models.mlp.data import check_fits, load_data

        key = json.dumps([cfg["data"], cfg["seed"]], sort_keys=True)
        if key not in cache:
            cache[key] = load_data(cfg)
        check_fits(cfg, cache[key])


KIND = MLPKind("mlp", SCHEMA, "nnlab.models.mlp.trainer:MLPTrainer", "NumPy MLP, backprop by hand")
