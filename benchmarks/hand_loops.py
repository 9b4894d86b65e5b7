"""Tight hand-written NumPy training loops: the yardsticks `bench_framework.py` holds the framework against.

Each loop trains the network the framework builds, with the framework's math, from the framework's
initial weights and in the framework's shuffling order (`shuffle_orders`), so that its final weights
double as a correctness check. Every op runs in place into preallocated float32 buffers. Tricks,
beyond `out=`: parameters, gradients and velocity each live in one flat buffer (the SGD update is a
few whole-buffer calls, not one per array); bias gradients, column and row sums are matrix-vector
products with a ones vector (faster than numpy's axis reductions on small arrays); ReLU takes the
maximum with a zeros array (numpy's maximum with a scalar 0 misses its SIMD loop); `take(mode="clip")`
gathers without buffering; label entries are addressed through flat indices; ufunc and array methods
rather than numpy's Python-level wrapper functions.

  hand_loop            Dense - ReLU or Sigmoid - [Dropout] - Dense, softmax cross-entropy (optionally
                       label-smoothed), SGD with torch-style momentum, an lr per epoch, optional
                       global gradient-norm clipping
  hand_batchnorm_loop  Dense - BatchNorm - ReLU - Dense, the same loss and optimizer
"""

from __future__ import annotations

import math

import numpy as np


def shuffle_orders(seed: int, n: int):
    """The framework's shuffling stream: `fit(seed=seed)` draws one permutation per epoch from it."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
    while True:
        yield rng.permutation(n)


def dropout_generator(seed: int) -> np.random.Generator:
    """The generator `fit(seed=seed)` gives its Dropout layers (see `Model._seed_fit`)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])


def warmup_cosine_lrs(base_lr: float, epochs: int, warmup: int, start_factor: float = 1 / 3) -> list[float]:
    """Per-epoch lr of LinearWarmup(warmup, then=CosineAnnealingLR(epochs - warmup)), in closed form
    (the framework, as torch, steps a recurrence: the same values up to the last bits)."""
    T = max(epochs - warmup, 1)
    return [base_lr * (start_factor + (1 - start_factor) * e / warmup) if e < warmup
            else base_lr * (1 + math.cos(math.pi * (e - warmup) / T)) / 2 for e in range(epochs)]


def _flat_views(params: list[np.ndarray]) -> tuple[list[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Flat float32 parameter, gradient and velocity buffers and views of each shaped like `params`."""
    sizes = [p.size for p in params]
    flats = tuple(np.zeros(sum(sizes), np.float32) for _ in range(3))
    ends = np.cumsum(sizes)
    views = [[flat[end - size:end].reshape(p.shape) for p, size, end in zip(params, sizes, ends)] for flat in flats]
    for mine, given in zip(views[0], params):
        mine[...] = given
    return views, flats


class _Softmax:
    """Fused softmax cross-entropy on logits z, in place: z becomes the gradient (p - target) / m."""

    def __init__(self, batch_size: int, k: int, label_smoothing: float) -> None:
        self.ones_k = np.ones((k, 1), np.float32)
        self.smooth, self.k = label_smoothing, k
        self.buffers: dict[int, tuple] = {}
        self._buffers(batch_size)

    def _buffers(self, m: int) -> tuple:
        b = self.buffers.get(m)
        if b is None:
            b = self.buffers[m] = (np.empty((m, 1), np.float32), np.empty((m, 1), np.float32),
                                   np.empty((m, 1), np.float32), np.arange(m) * self.k, np.empty(m, np.intp),
                                   np.empty(m, np.bool_))
        return b

    def __call__(self, z: np.ndarray, yb: np.ndarray) -> tuple[float, int]:
        """Turns z into the gradient; returns the summed loss and the number of hits."""
        m = len(z)
        zmax, s, zsum, row_offsets, flat, hit = self._buffers(m)
        correct = np.count_nonzero(np.equal(z.argmax(1), yb, out=hit))
        np.maximum.reduce(z, axis=1, keepdims=True, out=zmax)
        z -= zmax
        np.add(row_offsets, yb, out=flat)
        zflat = z.reshape(-1)
        picked = zflat[flat]
        smooth = self.smooth
        if smooth:
            np.matmul(z, self.ones_k, out=zsum)  # sum of the shifted logits, for the smoothed loss
        np.exp(z, out=z)
        np.matmul(z, self.ones_k, out=s)
        z /= s
        log_sum = np.add.reduce(np.log(s, out=s), axis=None)
        if smooth:  # torch: (1 - eps) nll + eps/k sum_c -log p_c; gradient p - ((1 - eps) onehot + eps/k)
            smoothed = (smooth / self.k) * np.add.reduce(zsum, axis=None)
            loss = float(log_sum - (1 - smooth) * np.add.reduce(picked) - smoothed)
            z -= smooth / self.k
            zflat[flat] -= 1 - smooth
        else:
            loss = float(log_sum - np.add.reduce(picked))
            zflat[flat] -= 1
        z /= m
        return loss, correct


def _sgd(flat_p, flat_g, flat_v, scratch, lr: np.float32, momentum: float, clip_norm: float | None,
         first: bool) -> None:
    """torch's clip_grad_norm_ (if clip_norm) then SGD with torch-style momentum: v = m v + g (v = g at first)."""
    if clip_norm is not None:
        coef = clip_norm / (np.sqrt(np.dot(flat_g, flat_g)) + 1e-6)
        if coef < 1:
            flat_g *= coef
    if first:
        flat_v[...] = flat_g
    else:
        np.multiply(flat_v, momentum, out=flat_v)
        flat_v += flat_g
    np.multiply(flat_v, lr, out=scratch)
    flat_p -= scratch


def hand_loop(X, y, params, epochs: int, batch_size: int, orders, *, lr: float | list[float], momentum: float,
              activation: str = "relu", dropout: float = 0.0, dropout_rng: np.random.Generator | None = None,
              clip_norm: float | None = None, label_smoothing: float = 0.0) -> tuple[float, float]:
    """Dense - activation - [Dropout(dropout)] - Dense, as the framework trains it.

    `params` = [W1, b1, W2, b2] are updated in place; `lr` is one value or one per epoch. Dropout
    masks are drawn from `dropout_rng` as the framework's Dropout draws them (one float32 uniform
    per hidden unit and row, kept where >= rate, scaled by 1/(1 - rate)). Sigmoid is the framework's
    overflow-free form. Returns the last epoch's mean loss and accuracy.
    """
    if activation not in ("relu", "sigmoid"):
        raise ValueError(f"hand_loop: activation must be relu or sigmoid, got {activation!r}")
    n, d = X.shape
    h, k = params[2].shape
    ((W1, b1, W2, b2), (gW1, gb1, gW2, gb2), _), (flat_p, flat_g, flat_v) = _flat_views(params)
    scratch = np.empty_like(flat_p)
    sigmoid, drop = activation == "sigmoid", bool(dropout)
    keep_share = np.float32(1 - dropout)  # kept units are divided by it

    def batch_buffers(m: int) -> tuple:
        f32 = np.float32
        return (np.empty((m, d), f32), np.empty(m, np.int64), np.empty((m, h), f32), np.empty((m, k), f32),
                np.empty((m, h), f32), np.ones(m, f32), np.zeros((m, h), f32), np.empty((m, h), np.bool_),
                np.empty((m, h), f32), np.empty((m, h), f32), np.empty((m, h), f32))

    full = batch_buffers(batch_size)
    last = batch_buffers(n % batch_size) if n % batch_size else None
    loss_fn = _Softmax(batch_size, k, label_smoothing)
    lrs = [lr] * epochs if isinstance(lr, (int, float)) else list(lr)
    matmul, dot, multiply = np.matmul, np.dot, np.multiply
    first = True
    for epoch in range(epochs):
        order = next(orders)
        step_lr = np.float32(lrs[epoch])
        total_loss, correct = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            m = len(idx)
            xb, yb, a, z, dh, ones_m, zeros, mask_b, t1, t2, mask = full if m == batch_size else last
            X.take(idx, axis=0, out=xb, mode="clip")
            y.take(idx, out=yb, mode="clip")
            # forward: a = act(x W1 + b1) [* dropout mask], z = a W2 + b2
            matmul(xb, W1, out=a)
            a += b1
            if sigmoid:  # e = exp(-|x|); 1 / (1 + e) where x >= 0, e / (1 + e) elsewhere: max(e, [x >= 0]) / (1 + e)
                np.abs(a, out=t1)
                np.negative(t1, out=t1)
                np.exp(t1, out=t1)
                np.add(t1, 1, out=t2)
                np.greater_equal(a, 0, out=mask)
                np.maximum(t1, mask, out=t1)
                np.divide(t1, t2, out=a)
            else:  # in place: a > 0 is its own mask
                np.maximum(a, zeros, out=a)
            if drop:
                dropout_rng.random(dtype=np.float32, out=mask)
                np.greater_equal(mask, dropout, out=mask)  # 1.0 where kept
                np.divide(mask, keep_share, out=mask)
                below = multiply(a, mask, out=t2)
            else:
                below = a
            matmul(below, W2, out=z)
            z += b2
            batch_loss, hits = loss_fn(z, yb)
            total_loss += batch_loss
            correct += hits
            # backward (no input gradient for the first layer)
            matmul(below.T, z, out=gW2)
            dot(ones_m, z, out=gb2)
            matmul(z, W2.T, out=dh)
            if drop:
                dh *= mask
            if sigmoid:  # grad * y * (1 - y)
                dh *= a
                np.subtract(1, a, out=t1)
                dh *= t1
            else:
                multiply(dh, np.greater(a, 0, out=mask_b), out=dh)
            matmul(xb.T, dh, out=gW1)
            dot(ones_m, dh, out=gb1)
            _sgd(flat_p, flat_g, flat_v, scratch, step_lr, momentum, clip_norm, first)
            first = False
    for given, mine in zip(params, (W1, b1, W2, b2)):
        given[...] = mine
    return total_loss / n, correct / n


def hand_batchnorm_loop(X, y, params, epochs: int, batch_size: int, orders, *, lr: float, momentum: float,
                        bn_momentum: float = 0.1, eps: float = 1e-5) -> tuple[float, float]:
    """Dense - BatchNorm - ReLU - Dense, as the framework (and torch's BatchNorm1d) trains it.

    `params` = [W1, b1, gamma, beta, running_mean, running_var, W2, b2] (get_weights' order) are
    updated in place. Batch mean and biased variance normalise; the running statistics move by
    `bn_momentum` towards the mean and the unbiased variance. Batches of one row are not handled.
    """
    n, d = X.shape
    h, k = params[6].shape
    running_mean, running_var = (p.copy() for p in params[4:6])
    trained = params[:4] + params[6:]
    ((W1, b1, gamma, beta, W2, b2), (gW1, gb1, ggamma, gbeta, gW2, gb2), _), (flat_p, flat_g, flat_v) = \
        _flat_views(trained)
    scratch = np.empty_like(flat_p)
    keep, f32 = 1 - bn_momentum, np.float32
    vectors = [np.empty(h, f32) for _ in range(6)]  # mean, var, inv_std, scale, d_gamma_raw, coefficient

    def batch_buffers(m: int) -> tuple:
        return (np.empty((m, d), f32), np.empty(m, np.int64), np.empty((m, h), f32), np.empty((m, k), f32),
                np.empty((m, h), f32), np.ones(m, f32), np.zeros((m, h), f32), np.empty((m, h), np.bool_),
                np.empty((m, h), f32), np.empty((m, h), f32))

    full = batch_buffers(batch_size)
    last = batch_buffers(n % batch_size) if n % batch_size else None
    loss_fn = _Softmax(batch_size, k, 0.0)
    matmul, dot, multiply = np.matmul, np.dot, np.multiply
    mean, var, inv_std, scale, d_gamma_raw, coef = vectors
    step_lr, first = np.float32(lr), True
    for _ in range(epochs):
        order = next(orders)
        total_loss, correct = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            m = len(idx)
            xb, yb, a, z, dh, ones_m, zeros, positive, centred, t = full if m == batch_size else last
            X.take(idx, axis=0, out=xb, mode="clip")
            y.take(idx, out=yb, mode="clip")
            # forward: u = x W1 + b1, a = relu(BN(u)), z = a W2 + b2
            matmul(xb, W1, out=a)
            a += b1
            dot(ones_m, a, out=mean)
            mean /= m
            np.subtract(a, mean, out=centred)
            multiply(centred, centred, out=t)
            dot(ones_m, t, out=var)
            var /= m
            running_mean *= keep
            running_mean += bn_momentum * mean
            running_var *= keep
            running_var += (bn_momentum * m / (m - 1)) * var
            var += eps
            np.sqrt(var, out=inv_std)
            np.divide(1, inv_std, out=inv_std)
            multiply(gamma, inv_std, out=scale)
            multiply(centred, scale, out=a)
            a += beta
            np.maximum(a, zeros, out=a)
            matmul(a, W2, out=z)
            z += b2
            batch_loss, hits = loss_fn(z, yb)
            total_loss += batch_loss
            correct += hits
            # backward
            matmul(a.T, z, out=gW2)
            dot(ones_m, z, out=gb2)
            matmul(z, W2.T, out=dh)
            multiply(dh, np.greater(a, 0, out=positive), out=dh)
            dot(ones_m, dh, out=gbeta)
            multiply(dh, centred, out=t)
            dot(ones_m, t, out=d_gamma_raw)
            multiply(d_gamma_raw, inv_std, out=ggamma)
            # dx = dh * scale - centred * (scale inv_std^2 d_gamma_raw / m) - scale d_beta / m
            multiply(scale, inv_std, out=coef)
            coef *= inv_std
            coef *= d_gamma_raw
            coef /= m
            multiply(centred, coef, out=t)
            multiply(scale, gbeta, out=coef)
            coef /= m
            multiply(dh, scale, out=dh)
            dh -= t
            dh -= coef
            matmul(xb.T, dh, out=gW1)
            dot(ones_m, dh, out=gb1)
            _sgd(flat_p, flat_g, flat_v, scratch, step_lr, momentum, None, first)
            first = False
    for given, mine in zip(params, (W1, b1, gamma, beta, running_mean, running_var, W2, b2)):
        given[...] = mine
    return total_loss / n, correct / n
