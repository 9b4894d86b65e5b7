"""Model: a stack of layers with Keras-like compile / fit / evaluate / predict."""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence

import numpy as np

from .activations import get_activation
from .callbacks import Callback, EpochLogger, History
from .layers import Dense, Dropout, Layer
from .losses import Loss, get_loss
from .metrics import PassMetrics, accuracy_counter, compiled_metrics
from .normalization import BatchNorm
from .optimizers import SGD, Optimizer, get_optimizer
from .storage import share_storage

DTYPES = ("float32", "float64")
# Rows handled at a time where a whole-array temporary (a NaN mask, a float64 copy) would double memory.
ROW_CHUNK = 8192


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or inf; weights and optimizer state were restored to the last finite epoch."""

    def __init__(self, message: str, epoch: int, batch: int, loss: float) -> None:
        super().__init__(message)
        self.epoch, self.batch, self.loss = epoch, batch, loss


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"fit: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_widths(layers: list[Layer]) -> None:
    """Each Dense and BatchNorm must take the width of the layer with a width below it."""
    below = None
    for layer in layers:
        takes = layer.n_in if isinstance(layer, Dense) else layer.n if isinstance(layer, BatchNorm) else None
        if takes is None:
            continue
        gives = below.n_out if isinstance(below, Dense) else getattr(below, "n", None)
        if below is not None and gives != takes:
            raise ValueError(f"Model: {below!r} outputs {gives} features but the next layer {layer!r} expects {takes}")
        below = layer


def _one_row_batches(n: int, batch_size: int) -> str | None:
    """How a training pass over n rows gets batches of one row, if it does."""
    if batch_size == 1 or n == 1:
        return "every batch has one row"
    return f"the last batch of every epoch has one row ({n} rows, batch_size {batch_size})" \
        if n % batch_size == 1 else None


class Model:
    """A feed-forward network: `Model([Dense(64, 32), ReLU(), Dense(32, 10)], seed=0)`.

    Weights are drawn from `seed` (a `numpy.random.SeedSequence` per layer), so the same
    seed gives bit-identical weights; `dtype` is float32 (default) or float64.
    """

    def __init__(self, layers: Sequence[Layer], seed: int | None = None, dtype: str = "float32") -> None:
        layers = list(layers)
        if not layers:
            raise ValueError("Model: expected a non-empty list of layers, got none")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Model: layer {i} must be a Layer (Dense, ReLU, ...), got {type(layer).__name__}")
        dense = [layer for layer in layers if isinstance(layer, Dense)]
        if not dense:
            raise ValueError("Model: expected at least one Dense layer, got none")
        _check_widths(layers)
        if str(dtype) not in DTYPES:
            raise ValueError(f"Model: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"Model: seed must be a non-negative integer or None, got {seed!r}")

        self.layers = layers
        self.seed = None if seed is None else int(seed)
        self.dtype = np.dtype(str(dtype))
        seeds = np.random.SeedSequence(seed)
        *layer_seeds, self._fit_seeds = seeds.spawn(len(layers) + 1)
        for layer, layer_seed in zip(layers, layer_seeds):
            layer.build(np.random.default_rng(layer_seed), self.dtype)
        share_storage(layers, self.dtype)
        self.n_in, self.n_out = dense[0].n_in, dense[-1].n_out
        # Layers up to the first one with weights need no input gradient: backward stops there.
        self._first_trainable = next(i for i, layer in enumerate(layers) if layer.params)
        self._params = [p for layer in layers for p in layer.params.values()]
        self._grads = [g for layer in layers for g in layer.grads.values()]
        # get_weights: each layer's parameters, then its buffers (BatchNorm's running statistics), as Keras
        self._weights = [a for layer in layers for a in (*layer.params.values(), *layer.buffers.values())]
        self.loss: Loss | None = None
        self.optimizer: Optimizer | None = None
        self.metrics: list[str] = []
        self.stop_training = False
        self.history: History | None = None
        self.metadata: dict = {}  # free-form, saved with the model (the runner keeps preprocessing here)
        self.raw_input_warning: str | None = None  # said once by predict (see load_model)

    # ------------------------------------------------------------------ set-up
    def compile(self, loss: Loss | str, optimizer: Optimizer | str | None = None,
                metrics: Sequence[str] | None = None) -> Model:
        """Choose the loss, the optimizer (default SGD(lr=0.01)) and metrics (default: accuracy for classifiers).

        `metrics` are names from `framework.metrics.METRICS`. Logs and `evaluate` hold `loss`, then
        `accuracy` if compiled, then the other metrics in the order given here (see `fit`).
        """
        self.loss = get_loss(loss)
        self.optimizer = SGD() if optimizer is None else get_optimizer(optimizer)
        self.metrics = compiled_metrics(metrics, self.loss)
        self.optimizer.bind(self._params, self._grads)
        return self

    def _require_compiled(self, what: str) -> None:
        if self.loss is None:
            raise ValueError(f"{what}: the model is not compiled; call model.compile(loss, optimizer) first")

    # ------------------------------------------------------------------ checks
    def _check_X(self, X, name: str = "X") -> np.ndarray:
        X = np.asarray(X)
        if X.dtype.kind not in "iubf":
            raise TypeError(f"{name}: expected a numeric array, got dtype {X.dtype}")
        if X.ndim != 2:
            raise ValueError(f"{name}: expected a 2-D array of shape (n_samples, {self.n_in}), got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one sample, got an empty array of shape {X.shape}")
        if X.shape[1] != self.n_in:
            first = next(layer for layer in self.layers if isinstance(layer, Dense))
            raise ValueError(f"{name}: the first layer {first!r} expects {self.n_in} features, "
                             f"got {X.shape[1]} (shape {X.shape})")
        X = np.asarray(X, dtype=self.dtype)
        for start in range(0, len(X), ROW_CHUNK):
            if not np.isfinite(X[start:start + ROW_CHUNK]).all():
                raise ValueError(f"{name}: expected finite values, got NaN or inf")
        return X

    def _check_Xy(self, X, y, name: str = "") -> tuple[np.ndarray, np.ndarray]:
        X = self._check_X(X, f"{name}X")
        y = self.loss.prepare_targets(y, self.n_out, self.dtype)
        if len(y) != len(X):
            raise ValueError(f"{name}y: expected {len(X)} targets (one per row of {name}X), got {len(y)}")
        return X, y

    # ------------------------------------------------------------------ passes
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Raw network output for a batch (logits for SoftmaxCrossEntropy)."""
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, grad: np.ndarray) -> None:
        """Back-propagate d loss / d output, filling every layer's `grads`."""
        layers, first = self.layers, self._first_trainable
        for i in range(len(layers) - 1, first - 1, -1):
            grad = layers[i].backward(grad, i > first)

    def train_on_batch(self, x, y) -> float:
        """One forward, backward and optimizer step on a batch; returns the batch loss."""
        self._require_compiled("train_on_batch")
        x, y = self._check_Xy(x, y)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a non-finite loss is caught below
            loss = self.loss.batch_loss(self.forward(x, training=True), y)
            if not math.isfinite(loss):
                raise TrainingDiverged(f"train_on_batch: loss is {loss}; weights left unchanged", 0, 0, loss)
            self.backward(self.loss.backward())
            self.optimizer.step()
        return loss

    # ------------------------------------------------------------------ training
    def fit(self, X, y, epochs: int = 1, batch_size: int = 32, validation_data: tuple | None = None,
            shuffle: bool = True, seed: int | None = None, callbacks: Sequence[Callback] | None = None,
            verbose: int = 0) -> History:
        """Train for `epochs` passes over (X, y) in mini-batches; returns the `History`.

        `seed` fixes shuffling and dropout masks (default: drawn from the model's seed).
        Each epoch logs, in this order, `loss` and `accuracy` (counted over the training batches),
        then with validation data `val_loss`, `val_accuracy` and `val_<name>` for the other compiled
        metrics in compile's order (they need a whole pass, so they are computed on validation data only),
        and last `lr`, the learning rate the epoch trained with (set by a schedule, if any, at its start).
        The optimizer's lr is put back when training ends: a schedule (`framework.schedules`) acts for
        one fit, and the saved model keeps the lr it was given.
        A NaN/inf loss raises `TrainingDiverged` with the weights and optimizer state of the last
        finite epoch, unless a callback (`TerminateOnNaN`) asks to stop quietly.
        """
        self._require_compiled("fit")
        epochs = _check_positive_int("epochs", epochs, minimum=0)
        batch_size = _check_positive_int("batch_size", batch_size)
        X, y = self._check_Xy(X, y)
        whole_pass = PassMetrics(self.metrics, self.loss, self.n_out, "fit")  # checked with or without validation
        validation = self._validation(validation_data, whole_pass)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"fit: seed must be a non-negative integer or None, got {seed!r}")
        self._warn_one_row_batches(len(X), batch_size)

        shuffle_rng = self._seed_fit(seed)
        history, callbacks = self._begin_training(callbacks, epochs, verbose)
        accuracy = accuracy_counter(self.loss, y) if "accuracy" in self.metrics else None
        batches = X, y, accuracy, batch_size, shuffle_rng if shuffle else None
        base_lr = self.optimizer.lr
        try:
            for epoch in range(epochs):
                if not self._fit_epoch(epoch, epochs, batches, validation, callbacks, history):
                    break
            for callback in callbacks:
                callback.on_train_end()
        finally:
            self.optimizer.lr = base_lr
        return history

    def _fit_epoch(self, epoch: int, epochs: int, batches: tuple, validation, callbacks, history: History) -> bool:
        """One epoch of `fit` with its callbacks and logs; False when training stops."""
        for callback in callbacks:
            callback.on_epoch_begin(epoch)
        lr = float(self.optimizer.lr)  # after a schedule's on_epoch_begin: what this epoch trains with
        # Divergence is detected from the loss and the weights; NumPy's overflow warnings would only be noise.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            logs = self._train_epoch(*batches, epoch, epochs, callbacks)
        if logs is None:  # diverged and a callback asked to stop quietly
            history.diverged_epoch = epoch
            return False
        if validation is not None:
            logs.update({f"val_{k}": v for k, v in self._evaluate(*validation).items()})
        logs["lr"] = lr
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
        if self.stop_training:
            history.stopped_epoch = epoch
            return False
        return True

    def _warn_one_row_batches(self, n: int, batch_size: int) -> None:
        """Say when BatchNorm will meet a training batch of one row (it cannot take its statistics)."""
        how = _one_row_batches(n, batch_size)
        if how and any(isinstance(layer, BatchNorm) for layer in self.layers):
            warnings.warn(f"fit: {how}; BatchNorm normalises such a batch with its running statistics and leaves "
                          f"them unchanged (a batch_size that leaves no single row avoids it)", UserWarning,
                          stacklevel=3)

    def _validation(self, validation_data, whole_pass: PassMetrics) -> tuple | None:
        """Checked validation data as `_evaluate` takes it, its targets read once for every epoch."""
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("fit: validation_data must be a tuple (X_val, y_val)")
        X_val, y_val = self._check_Xy(*validation_data, name="val_")
        return X_val, y_val, whole_pass, whole_pass.prepare(y_val, "val_y")

    def _seed_fit(self, seed: int | None) -> np.random.Generator:
        """Give Dropout layers this fit's mask generator; return its shuffling generator."""
        fit_seeds = (np.random.SeedSequence(seed) if seed is not None else self._fit_seeds).spawn(2)
        dropout_rng = np.random.default_rng(fit_seeds[1])
        for layer in self.layers:
            if isinstance(layer, Dropout):
                layer.rng = dropout_rng
        return np.random.default_rng(fit_seeds[0])

    def _begin_training(self, callbacks, epochs: int, verbose: int) -> tuple[History, list[Callback]]:
        """A new History first, then the user's callbacks (and the epoch logger), all told training begins."""
        history = History()
        callbacks = [history, *(callbacks or [])]
        if verbose:
            callbacks.append(EpochLogger(epochs, sys.stdout))
        self.history, self.stop_training = history, False
        for callback in callbacks:
            callback.model = self
            callback.on_train_begin()
        return history, callbacks

    def _train_epoch(self, X, y, accuracy, batch_size, shuffle_rng, epoch, epochs, callbacks) -> dict | None:
        """One pass over the data; returns the epoch's logs, or None when a callback stopped a divergence."""
        n = len(X)
        order = shuffle_rng.permutation(n) if shuffle_rng is not None else None
        # Undoing a divergence restores both, so that training can go on as if this epoch never ran.
        snapshot = self.get_weights(), self.optimizer.snapshot()
        loss_fn, optimizer = self.loss, self.optimizer
        count, labels = accuracy or (None, None)
        # Integer labels (n,) and binary targets are what accuracy counts against: use yb instead of gathering twice.
        labels_are_y = labels is not None and labels.shape == y.shape and labels.dtype == y.dtype
        # self.forward / self.backward, unrolled over bound methods looked up once per epoch rather than per batch
        forwards = [layer.forward for layer in self.layers]
        first = self._first_trainable
        backwards = [(layer.backward, i > first) for i, layer in enumerate(self.layers) if i >= first][::-1]
        total_loss, correct = 0.0, 0
        for batch, start in enumerate(range(0, n, batch_size)):
            if order is None:  # slices are views: no copy
                rows = slice(start, start + batch_size)
                xb, yb = X[rows], y[rows]
            else:  # take: the same gather as X[rows], with less overhead per call
                rows = order[start:start + batch_size]
                xb, yb = X.take(rows, axis=0), y.take(rows, axis=0)
            output = xb
            for forward in forwards:
                output = forward(output, True)
            loss = loss_fn.batch_loss(output, yb)
            if not math.isfinite(loss):
                return self._diverged(f"loss became {loss}", snapshot, callbacks, epoch, epochs, batch, loss)
            if labels is not None:
                correct += count(output, yb if labels_are_y else labels[rows])
            grad = loss_fn.backward()
            for backward, need_input_grad in backwards:
                grad = backward(grad, need_input_grad)
            optimizer.step()
            total_loss += loss * len(xb)
        if not all(np.isfinite(p).all() for p in self._weights):
            # The epoch's last step overflowed the weights although its loss was finite: without this
            # check fit would return (or the next epoch would snapshot) an inf/NaN model.
            return self._diverged("weights became non-finite", snapshot, callbacks, epoch, epochs, batch, loss)
        logs = {"loss": total_loss / n}
        if labels is not None:
            logs["accuracy"] = correct / labels.size
        return logs

    def _diverged(self, what: str, snapshot, callbacks, epoch: int, epochs: int, batch: int, loss: float) -> None:
        """Restore the epoch's starting weights and optimizer state; None if a callback stops quietly, else raise."""
        weights, optimizer_state = snapshot
        self.set_weights(weights)
        self.optimizer.restore(optimizer_state)
        if any(callback.on_nonfinite_loss(epoch, batch) for callback in callbacks):
            return None
        where = f"end of epoch {epoch}" if epoch else "initial weights"
        raise TrainingDiverged(f"fit: {what} at epoch {epoch + 1} of {epochs}, batch {batch + 1}; "
                               f"weights restored to the {where} (try a lower learning rate)", epoch, batch, loss)

    # ------------------------------------------------------------------ inference
    def evaluate(self, X, y, batch_size: int = 1024) -> dict[str, float]:
        """Mean loss and every compiled metric over (X, y), from one forward pass: `{"loss": ..., ...}`."""
        self._require_compiled("evaluate")
        batch_size = _check_positive_int("batch_size", batch_size)
        X, y = self._check_Xy(X, y)
        whole_pass = PassMetrics(self.metrics, self.loss, self.n_out, "evaluate")
        return self._evaluate(X, y, whole_pass, whole_pass.prepare(y), batch_size)

    def _evaluate(self, X, y, whole_pass: PassMetrics, truth, batch_size: int = 1024) -> dict[str, float]:
        """`evaluate` on checked data: loss and accuracy added up over batches, the rest from all the output."""
        count, labels = accuracy_counter(self.loss, y) if "accuracy" in self.metrics else (None, None)
        total_loss, correct, outputs = 0.0, 0, []
        for start in range(0, len(X), batch_size):
            rows = slice(start, start + batch_size)
            output = self.forward(X[rows])
            total_loss += self.loss.batch_loss(output, y[rows]) * len(output)
            if labels is not None:
                correct += count(output, labels[rows])
            if whole_pass.names:
                outputs.append(output)
        result = {"loss": total_loss / len(X)}
        if labels is not None:
            result["accuracy"] = correct / labels.size
        if whole_pass.names:
            result.update(whole_pass.compute(outputs[0] if len(outputs) == 1 else np.concatenate(outputs), truth))
        return result

    def predict(self, X, batch_size: int = 1024) -> np.ndarray:
        """Outputs for X: class probabilities for a classifier, values for a regressor."""
        if self.raw_input_warning:  # once: a loaded model whose inputs were preprocessed (see load_model)
            warnings.warn(self.raw_input_warning, UserWarning, stacklevel=2)
            self.raw_input_warning = None
        batch_size = _check_positive_int("batch_size", batch_size)
        X = self._check_X(X)
        transform = self.loss.output_transform if self.loss is not None else (lambda out: out)
        result = np.empty((len(X), self.n_out), dtype=self.dtype)
        for start in range(0, len(X), batch_size):
            result[start:start + batch_size] = transform(self.forward(X[start:start + batch_size]))
        return result

    # ------------------------------------------------------------------ weights
    def parameters(self) -> list[np.ndarray]:
        """Every trainable array, in layer order (the arrays themselves, not copies)."""
        return list(self._params)

    def buffers(self) -> list[np.ndarray]:
        """Every saved but untrained array (BatchNorm's running statistics), in layer order."""
        return [b for layer in self.layers for b in layer.buffers.values()]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every layer's parameters followed by its buffers, in layer order (`parameters()` when no
        layer has buffers): what restoring a model's state needs, as Keras' get_weights."""
        return [p.copy() for p in self._weights]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Write arrays (as from `get_weights`) into the parameters and buffers in place."""
        if len(weights) != len(self._weights):
            raise ValueError(f"set_weights: expected {len(self._weights)} arrays, got {len(weights)}")
        for i, (param, value) in enumerate(zip(self._weights, weights)):
            value = np.asarray(value)
            if value.shape != param.shape:
                raise ValueError(f"set_weights: array {i} must have shape {param.shape}, got {value.shape}")
            param[...] = value

    def count_params(self) -> int:
        """Number of trainable scalars."""
        return sum(p.size for p in self._params)

    def save(self, path) -> None:
        """Write the model (architecture, weights, loss, optimizer and its state) to one .npz file."""
        from .serialization import save_model
        save_model(self, path)

    # ------------------------------------------------------------------ display
    def summary(self) -> str:
        """A table of layers, output widths and parameter counts."""
        rows = [("Layer", "Output", "Params")]
        width = self.n_in
        for layer in self.layers:
            width = getattr(layer, "n_out", width)
            rows.append((repr(layer), f"(batch, {width})", f"{sum(p.size for p in layer.params.values()):,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows]
        rule = "-" * len(lines[0])
        footer = [f"Total params: {self.count_params():,} ({self.dtype})"]
        if self.loss is not None:
            footer.append(f"Loss: {self.loss!r}   Optimizer: {self.optimizer!r}")
        return "\n".join([lines[0], rule, *lines[1:], rule, *footer])

    def __repr__(self) -> str:
        return f"Model([{', '.join(map(repr, self.layers))}], params={self.count_params():,}, dtype={self.dtype})"


def mlp(sizes: Sequence[int], activation: str = "relu", dropout: float = 0.0, init: str | None = None,
        output_activation: str | None = None, seed: int | None = None, dtype: str = "float32",
        batchnorm: bool = False) -> Model:
    """Build a multi-layer perceptron, Nielsen-style: `mlp([784, 30, 10])`.

    Hidden layers are Dense, then BatchNorm if `batchnorm`, then `activation`, then Dropout when
    `dropout` > 0 (torch's usual Linear -> BatchNorm1d -> ReLU -> Dropout); the output layer gets
    `output_activation` (None = raw output, as SoftmaxCrossEntropy and MSE expect).
    `init` defaults to he for ReLU-like activations and xavier for sigmoid/tanh.
    """
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"mlp: sizes needs at least an input and an output width, got {sizes!r}")
    get_activation(activation)  # validate the name before building anything
    if init is None:
        init = "xavier" if activation in ("sigmoid", "tanh") else "he"
    layers: list[Layer] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        is_output = i == len(sizes) - 2
        layers.append(Dense(n_in, n_out, init=init))
        if not is_output:
            if batchnorm:
                layers.append(BatchNorm(n_out))
            layers.append(get_activation(activation))
            if dropout:
                layers.append(Dropout(dropout))
        elif output_activation is not None:
            layers.append(get_activation(output_activation))
    return Model(layers, seed=seed, dtype=dtype)
