"""Dense layers and sampled networks: the basis ``Φ(x) = σ(W x + b)`` and its derivatives.

Rows are points, columns are neurons.  One GEMM gives the pre-activations of a whole block of
points, then everything is element-wise on that block (DESIGN.md §3.1).  A mixed derivative
of multi-index α of one neuron is ``σ^(|α|)(z) · Π_i w_i^{α_i}``; the Laplacian is
``σ''(z) ||w||²``.  Blocks may be NumPy or CuPy arrays: weights are moved to the block's
device, the result stays there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.backend import COMPUTE_DTYPE, namespace_of
from pipeline.nn.activations import Activation, get_activation

__all__ = ["DenseLayer", "SampledNetwork"]


@dataclass(frozen=True, eq=False)
class DenseLayer:
    """One hidden layer: ``weights`` ``(width, d_in)``, ``biases`` ``(width,)``, activation."""

    weights: np.ndarray
    biases: np.ndarray
    activation: Activation

    def __post_init__(self):
        object.__setattr__(self, "activation", get_activation(self.activation))
        if self.weights.ndim != 2 or self.biases.shape != (self.weights.shape[0],):
            raise ValueError(
                f"weights must be (width, d_in) and biases (width,), got {self.weights.shape} "
                f"and {self.biases.shape}"
            )

    @property
    def width(self) -> int:
        return self.weights.shape[0]

    @property
    def input_dim(self) -> int:
        return self.weights.shape[1]

    def select(self, neurons) -> "DenseLayer":
        """The layer restricted to the given neurons (indices or a boolean mask)."""
        return DenseLayer(self.weights[neurons], self.biases[neurons], self.activation)

    def _check_input(self, x):
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(
                f"X must have shape (n_points, {self.input_dim}) for this layer, got {x.shape}"
            )

    def preactivation(self, x, out=None):
        """``z = x Wᵀ + b`` as a Fortran-ordered ``(n_points, width)`` block.

        Computed as ``(W xᵀ)ᵀ`` so the block comes out column-major, the layout LAPACK's QR
        consumes without a copy.  ``out`` (Fortran-ordered) receives the result.
        """
        self._check_input(x)
        xp = namespace_of(x)
        w = xp.asarray(self.weights, dtype=COMPUTE_DTYPE)
        b = xp.asarray(self.biases, dtype=COMPUTE_DTYPE)
        if out is None:
            out = xp.empty((x.shape[0], self.width), dtype=COMPUTE_DTYPE, order="F")
        xp.matmul(w, xp.asarray(x, dtype=COMPUTE_DTYPE).T, out=out.T)
        out += b
        return out

    def __call__(self, x, out=None):
        """``σ(x Wᵀ + b)``, evaluated in place in ``out`` when given."""
        z = self.preactivation(x, out=out)
        return self.activation(z, out=z)

    def derivative_features(self, x, alpha):
        """``∂^α σ(w·x + b)`` for a multi-index ``alpha`` (one entry per input dimension)."""
        alpha = tuple(int(a) for a in alpha)
        if len(alpha) != self.input_dim or any(a < 0 for a in alpha):
            raise ValueError(
                f"alpha must be {self.input_dim} non-negative integers (one per input "
                f"dimension), got {alpha}"
            )
        order = sum(alpha)
        self.activation.check_order(order)
        xp = namespace_of(x)
        z = self.preactivation(x)
        out = self.activation.derivative(z, order, out=z)
        if order:
            w = xp.asarray(self.weights, dtype=COMPUTE_DTYPE)
            out *= xp.prod(w ** xp.asarray(alpha, dtype=COMPUTE_DTYPE), axis=1)
        return out

    def laplacian_features(self, x):
        """``Δ σ(w·x + b) = σ''(z) ||w||²``."""
        self.activation.check_order(2)
        xp = namespace_of(x)
        w = xp.asarray(self.weights, dtype=COMPUTE_DTYPE)
        z = self.preactivation(x)
        out = self.activation.derivative(z, 2, out=z)
        out *= xp.sum(w * w, axis=1)
        return out


@dataclass(frozen=True, eq=False)
class SampledNetwork:
    """The hidden layers of a sampled network (the linear output layer lives with its solver)."""

    layers: tuple[DenseLayer, ...]

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ValueError("a SampledNetwork needs at least one hidden layer")
        for i, (a, b) in enumerate(zip(self.layers, self.layers[1:])):
            if b.input_dim != a.width:
                raise ValueError(f"layer {i + 1} expects {b.input_dim} inputs but layer {i} has width {a.width}")

    @property
    def input_dim(self) -> int:
        return self.layers[0].input_dim

    @property
    def width(self) -> int:
        """Number of features: the width of the last hidden layer."""
        return self.layers[-1].width

    def __call__(self, x, out=None):
        """The last hidden layer's features; ``out`` receives them when given."""
        for layer in self.layers[:-1]:
            x = layer(x)
        return self.layers[-1](x, out=out)

    def select_features(self, neurons) -> "SampledNetwork":
        """The network with its last hidden layer restricted to ``neurons``."""
        return SampledNetwork(self.layers[:-1] + (self.layers[-1].select(neurons),))

    def derivative_features(self, x, alpha):
        """Derivative features of a one-layer network (the basis of the PDE solvers)."""
        if len(self.layers) != 1:
            raise ValueError(
                "derivative features are available for one-hidden-layer networks only "
                f"(this one has {len(self.layers)} layers)"
            )
        return self.layers[0].derivative_features(x, alpha)
