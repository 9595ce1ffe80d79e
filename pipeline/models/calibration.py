"""Class probabilities of the classifier: a softmax of scaled, shifted least-squares scores
fitted to held-out scores (docs/design.md §3.2.1).

The least-squares scores ``s`` (ridge regression on one-hot targets) estimate the class
probabilities linearly and are neither bounded nor sharp.  They are mapped by

    p(c | x) = softmax(a · s(x) + b)_c,      a > 0,  b ∈ R^C  (b_0 = 0),

fitted by Newton's method on the multinomial log-loss of the classifier's *leave-one-out*
scores of the training rows (which the λ selection computes anyway, so the map is fitted on
held-out scores, as Platt recommends, for free).  For two classes this is Platt scaling of
``s_1 - s_0``; the C + 1 parameters cannot overfit the way a logistic regression on the
features would.  Targets are smoothed as in Platt's method, ``t = (m · onehot + 1) / (m + C)``,
so that separable folds do not drive ``a`` to infinity.  With ``a`` held positive the map is
monotone in each score.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, softmax

__all__ = ["fit_softmax_calibration", "calibrated_logits"]

#: smallest scale kept: scores that carry no (or inverted) information give the class priors
MIN_SCALE = 1e-6
MAX_ITERATIONS = 50


def _loss_grad_hess(theta, scores, targets):
    a, b = theta[0], np.concatenate([[0.0], theta[1:]])
    z = a * scores + b
    log_p = log_softmax(z, axis=1)
    p = np.exp(log_p)
    loss = -np.sum(targets * log_p)
    diff = p - targets
    grad = np.concatenate([[np.sum(diff * scores)], diff[:, 1:].sum(axis=0)])
    ps = np.sum(p * scores, axis=1, keepdims=True)
    ms = p * scores - p * ps  # (diag p - p pᵀ) s per row
    n_classes = scores.shape[1]
    hess = np.empty((n_classes, n_classes))
    hess[0, 0] = np.sum(scores * ms)
    hess[0, 1:] = hess[1:, 0] = ms[:, 1:].sum(axis=0)
    hess[1:, 1:] = np.diag(p[:, 1:].sum(axis=0)) - p[:, 1:].T @ p[:, 1:]
    return loss, grad, hess


def _newton(theta, scores, targets, free):
    """Minimise the log-loss over the parameters ``free`` (a boolean mask) from ``theta``."""
    loss, grad, hess = _loss_grad_hess(theta, scores, targets)
    for _ in range(MAX_ITERATIONS):
        g, h = grad[free], hess[np.ix_(free, free)]
        try:
            step = -np.linalg.solve(h + 1e-12 * np.trace(h) * np.eye(len(g)), g)
        except np.linalg.LinAlgError:
            step = -g
        decrease = -g @ step
        if not np.isfinite(decrease) or decrease <= 1e-12 * max(1.0, abs(loss)):
            break
        t = 1.0
        while t > 1e-10:  # backtracking (Armijo) line search
            trial = theta.copy()
            trial[free] += t * step
            trial_loss, trial_grad, trial_hess = _loss_grad_hess(trial, scores, targets)
            if trial_loss <= loss - 1e-4 * t * decrease:
                break
            t *= 0.5
        else:
            break
        theta, loss, grad, hess = trial, trial_loss, trial_grad, trial_hess
    return theta


def fit_softmax_calibration(scores, labels, n_classes: int) -> tuple[float, np.ndarray]:
    """``(a, b)`` minimising the smoothed log-loss of ``softmax(a · scores + b)``.

    ``scores`` ``(m, C)`` held-out class scores, ``labels`` integer classes in ``[0, C)``.
    """
    scores = np.asarray(scores, dtype=float)
    m = len(labels)
    if n_classes < 2 or m == 0:
        return 1.0, np.zeros(max(n_classes, 1))
    onehot = np.zeros((m, n_classes))
    onehot[np.arange(m), labels] = 1.0
    targets = (m * onehot + 1.0) / (m + n_classes)
    prior = np.log(targets.mean(axis=0))
    theta = np.concatenate([[1.0], prior[1:] - prior[0]])
    theta = _newton(theta, scores, targets, np.ones(n_classes, bool))
    if not theta[0] > MIN_SCALE:  # no positive scale fits: keep it minimal, refit the shifts
        theta[0] = MIN_SCALE
        free = np.ones(n_classes, bool)
        free[0] = False
        theta = _newton(theta, scores, targets, free) if n_classes > 1 else theta
    return float(theta[0]), np.concatenate([[0.0], theta[1:]])


def calibrated_logits(scores, scale: float, bias):
    """``a · scores + b`` (NumPy or Dask)."""
    return scores * scale + bias


def probabilities(logits, log: bool = False):
    """Row-wise (log-)softmax of NumPy logits."""
    return log_softmax(logits, axis=1) if log else softmax(logits, axis=1)
