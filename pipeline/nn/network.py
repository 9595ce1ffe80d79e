"""Dense layers and sampled networks: the basis ``Φ(x) = σ(W x + b)`` and its derivatives.

Rows are points, columns are neurons.  One GEMM gives the pre-activations of a whole block of
points, then everything is element-wise on that block (docs/design.md §3.1).  A mixed derivative
of multi-index α of one neuron is ``σ^(|α|)(z) · Π_i w_i^{α_i}``; the Laplacian is
``σ''(z) ||w||²``.  Quadratic neurons ``σ(w·x + a ||x||² + b)`` (a ``curvature``) have
closed-form derivatives up to second order.  Blocks may be NumPy or CuPy arrays: weights are moved to the block's
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
    """One hidden layer: ``weights`` ``(width, d_in)``, ``biases`` ``(width,)``, activation.

    ``curvature`` ``(width,)`` (optional) makes the neurons quadratic,
    ``σ(w·x + a ||x||² + b)``: with ``a`` they carry isotropic (radial) structure that ridge
    functions need O(d²) neurons for in d dimensions — ``||x||²`` itself, the Gaussians of
    high-dimensional diffusion.  ``None`` (or all zeros) is the plain ridge layer.
    """

    weights: np.ndarray
    biases: np.ndarray
    activation: Activation
    curvature: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "activation", get_activation(self.activation))
        if self.weights.ndim != 2 or self.biases.shape != (self.weights.shape[0],):
            raise ValueError(
                f"weights must be (width, d_in) and biases (width,), got {self.weights.shape} "
                f"and {self.biases.shape}"
            )
        if self.curvature is not None:
            curvature = np.asarray(self.curvature, dtype=float)
            if curvature.shape != self.biases.shape:
                raise ValueError(f"curvature must have one entry per neuron {self.biases.shape}, got {curvature.shape}")
            object.__setattr__(self, "curvature", curvature if np.any(curvature) else None)

    @property
    def quadratic(self) -> bool:
        """Whether the neurons have a curvature term ``a ||x||²``."""
        return self.curvature is not None

    @property
    def width(self) -> int:
        return self.weights.shape[0]

    @property
    def input_dim(self) -> int:
        return self.weights.shape[1]

    def select(self, neurons) -> "DenseLayer":
        """The layer restricted to the given neurons (indices or a boolean mask)."""
        return DenseLayer(self.weights[neurons], self.biases[neurons], self.activation,
                          None if self.curvature is None else self.curvature[neurons])

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
        x = xp.asarray(x, dtype=COMPUTE_DTYPE)
        xp.matmul(w, x.T, out=out.T)
        out += b
        if self.curvature is not None:
            out += xp.sum(x * x, axis=1)[:, None] * xp.asarray(self.curvature, dtype=COMPUTE_DTYPE)
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
        if self.quadratic:
            return self._quadratic_derivative(x, alpha)
        z = self.preactivation(x)
        out = self.activation.derivative(z, order, out=z)
        if order:
            w = xp.asarray(self.weights, dtype=COMPUTE_DTYPE)
            out *= xp.prod(w ** xp.asarray(alpha, dtype=COMPUTE_DTYPE), axis=1)
        return out

    def gradient(self, x, coef):
        """``∇(Φ c)`` ``(n, d)`` at the points: ``(σ'(Z) ∘ c) W`` plus ``2 x (σ'(Z) (a ∘ c))`` for curvature."""
        xp = namespace_of(x)
        x = xp.asarray(x, dtype=COMPUTE_DTYPE)
        c = xp.asarray(coef, dtype=COMPUTE_DTYPE)
        slope = self.activation.derivative(self.preactivation(x), 1)
        out = (slope * c) @ xp.asarray(self.weights, dtype=COMPUTE_DTYPE)
        if self.curvature is not None:
            out += 2 * x * (slope @ (xp.asarray(self.curvature, dtype=COMPUTE_DTYPE) * c))[:, None]
        return out

    def _gradient_component(self, x, i):
        """``∂z/∂x_i = w_i + 2 a x_i`` for every point and neuron (quadratic layers)."""
        xp = namespace_of(x)
        w = xp.asarray(self.weights[:, i], dtype=COMPUTE_DTYPE)
        a = xp.asarray(self.curvature, dtype=COMPUTE_DTYPE)
        return w[None, :] + 2 * a[None, :] * xp.asarray(x[:, i : i + 1], dtype=COMPUTE_DTYPE)

    def _quadratic_derivative(self, x, alpha):
        """``∂^α σ(z)`` of quadratic neurons, orders 0–2 (∂z is affine in x, ∂²z = 2a I)."""
        order = sum(alpha)
        if order > 2:
            raise ValueError("quadratic neurons (curvature) provide derivatives up to second order, "
                             f"got the multi-index {alpha}")
        xp = namespace_of(x)
        z = self.preactivation(x)
        if order == 0:
            return self.activation(z)
        indices = [i for i, a in enumerate(alpha) for _ in range(a)]
        first = [self._gradient_component(x, i) for i in indices]
        if order == 1:
            return xp.asfortranarray(self.activation.derivative(z, 1) * first[0])
        out = self.activation.derivative(z, 2) * first[0] * first[1]
        if indices[0] == indices[1]:
            out += self.activation.derivative(z, 1) * (2 * xp.asarray(self.curvature, dtype=COMPUTE_DTYPE))
        return xp.asfortranarray(out)

    def directional_features(self, x, v):
        """``v(x)·∇σ(z)`` for a vector field ``v`` ``(n, d)`` at the points ``x``."""
        xp = namespace_of(x)
        self.activation.check_order(1)
        x = xp.asarray(x, dtype=COMPUTE_DTYPE)
        v = xp.asarray(v, dtype=COMPUTE_DTYPE)
        w = xp.asarray(self.weights, dtype=COMPUTE_DTYPE)
        along = v @ w.T
        if self.curvature is not None:
            along += 2 * xp.sum(v * x, axis=1)[:, None] * xp.asarray(self.curvature, dtype=COMPUTE_DTYPE)
        return xp.asfortranarray(self.activation.derivative(self.preactivation(x), 1) * along)

    def laplacian_features(self, x):
        """``Δ σ(w·x + b) = σ''(z) ||w||²``."""
        self.activation.check_order(2)
        xp = namespace_of(x)
        if self.quadratic:
            # Δσ(z) = σ''(z) ||∇z||² + σ'(z) Δz, ∇z = w + 2a x, Δz = 2 a d, and
            # ||∇z||² = ||w||² + 4a (x·w) + 4a² ||x||² from the one GEMM x Wᵀ
            x = xp.asarray(x, dtype=COMPUTE_DTYPE)
            w = xp.asarray(self.weights, dtype=COMPUTE_DTYPE)
            a = xp.asarray(self.curvature, dtype=COMPUTE_DTYPE)
            xw = x @ w.T
            r2 = xp.sum(x * x, axis=1)[:, None]
            z = xw + xp.asarray(self.biases, dtype=COMPUTE_DTYPE) + a * r2
            grad2 = xp.sum(w * w, axis=1) + 4 * a * xw + 4 * a * a * r2
            out = self.activation.derivative(z, 2) * grad2
            out += self.activation.derivative(z, 1) * (2 * self.input_dim * a)
            return xp.asfortranarray(out)
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
