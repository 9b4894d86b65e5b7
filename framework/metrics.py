"""Metrics: accuracy counted batch by batch, and the others from the output of one whole pass.

`accuracy` adds up hits over batches (the training hot path does it for free). Every other
metric needs the whole pass at once (a confusion matrix, a ranking, column sums), is computed
in float64 and equals scikit-learn's on the same values:

  balanced_accuracy   balanced_accuracy_score: mean recall over the classes present in y_true
  f1                  f1_score(average="macro", zero_division=0) over the classes in y_true or y_pred
  roc_auc             roc_auc_score on the positive class's score, two classes only, ties counted
                      half; NaN where sklearn raises: y_true holds one class only (or a score is NaN)
  mse, rmse, mae, r2  mean_squared_error, root_mean_squared_error, mean_absolute_error and r2_score
                      (force_finite; NaN for a single row, as sklearn), averaged over the outputs

The loss says how classes are read from the output, as for accuracy: the argmax of each row
when `loss.threshold` is None, `output > loss.threshold` for a binary loss. ROC AUC ranks the
single output itself (a probability, or a logit for BCEWithLogits) or, for two outputs, the
second column of `loss.output_transform(output)`, the probabilities `predict` returns.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .losses import LOSSES


def true_classes(y: np.ndarray) -> np.ndarray:
    """Class indices from integer labels (n,) or one-hot / probability rows (n, k)."""
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    return y.reshape(len(y)).astype(np.int64, copy=False)


def correct_count(output: np.ndarray, labels: np.ndarray) -> int:
    """How many rows of `output` have their largest entry at their integer label."""
    return int(np.count_nonzero(output.argmax(axis=1) == labels))


def accuracy_counter(loss, y: np.ndarray) -> tuple[Callable[[np.ndarray, np.ndarray], int], np.ndarray]:
    """`(count, targets)` for the accuracy of `loss` on prepared targets `y`.

    `count(output, targets[rows])` is the number of hits in a batch, and accuracy is the
    total over `targets.size`: rows for an argmax loss (softmax, categorical), elements
    for a binary one (Keras' binary accuracy, `output > loss.threshold` against 0/1 targets).
    """
    threshold = loss.threshold
    if threshold is None:
        return correct_count, true_classes(y)

    def count(output: np.ndarray, targets: np.ndarray) -> int:
        return int(np.count_nonzero((output > threshold) == targets))

    return count, y


# ---------------------------------------------------------------------------------------------- classification
def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes) of integer classes in [0, n_classes): rows true, columns predicted."""
    cells = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return cells.reshape(n_classes, n_classes)


def _mean(values: np.ndarray, axis: int | None = None):
    """`np.mean`, bit for bit (the same sum, divided by the count), without its per-call overhead."""
    return np.add.reduce(values, axis=axis) / (values.size if axis is None else values.shape[axis])


def balanced_accuracy(confusion: np.ndarray) -> float:
    """Mean recall over the classes present in y_true; classes only predicted are ignored, as sklearn does."""
    true = np.add.reduce(confusion, axis=1)
    present = true > 0
    return float(_mean(confusion.diagonal()[present] / true[present]))


def f1(confusion: np.ndarray) -> float:
    """Macro F1 over the classes in y_true or y_pred: 2 tp / (true + predicted) each, as sklearn writes it."""
    support = np.add.reduce(confusion, axis=1) + np.add.reduce(confusion, axis=0)
    present = support > 0
    return float(_mean(2.0 * confusion.diagonal()[present] / support[present]))


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Chance that a positive (y_true 1) scores above a negative, ties counted half; NaN for one class.

    The Mann-Whitney U from ranks: each positive's rank among the sorted negatives, from below and
    from above (a tie counts half), added up in integers, so one division is the only rounding.
    """
    positive = np.asarray(y_true) != 0
    n_pos = int(np.count_nonzero(positive))
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0 or np.isnan(score).any():
        return math.nan
    negatives = np.sort(score[~positive])
    scores = score[positive]
    below, not_above = np.searchsorted(negatives, scores, "left"), np.searchsorted(negatives, scores, "right")
    return int(np.add.reduce(below + not_above)) / (2 * n_pos * n_neg)


# ---------------------------------------------------------------------------------------------- regression
def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean squared error of each output (column), averaged over the outputs."""
    return float(_mean(_mean(np.square(y_true - y_pred), axis=0)))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root of each output's mean squared error, averaged over the outputs (sklearn's, not the root of mse)."""
    return float(_mean(np.sqrt(_mean(np.square(y_true - y_pred), axis=0))))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error of each output, averaged over the outputs."""
    return float(_mean(_mean(np.abs(y_pred - y_true), axis=0)))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination of each output, averaged; NaN for fewer than two rows, as sklearn.

    A constant target (zero total sum of squares) scores 1 if predicted exactly and 0 otherwise,
    sklearn's `force_finite`, instead of the NaN or -inf of the plain ratio.
    """
    if len(y_true) < 2:
        return math.nan
    residual = np.add.reduce(np.square(y_true - y_pred), axis=0)
    total = np.add.reduce(np.square(y_true - _mean(y_true, axis=0)), axis=0)
    with np.errstate(over="ignore"):  # a near-constant target's tiny total makes -inf, as sklearn's does
        if total.all():
            return float(_mean(1 - residual / total))
        constant = total == 0
        scores = np.where(residual == 0, 1.0, 0.0)
        scores[~constant] = 1 - residual[~constant] / total[~constant]
        return float(_mean(scores))


# ---------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Metric:
    """How to compute a metric: `fn`, called with what `needs` names, its direction and its kind of loss.

    needs  "batches"    fn(loss, y) -> (count, targets), hits added up batch by batch
           "confusion"  fn(confusion matrix (k, k), rows true, columns predicted)
           "scores"     fn(y_true 0/1, score of the positive class)
           "values"     fn(y_true, y_pred), float64 arrays (n, outputs)
    task   "classification" (a loss with is_classifier) or "regression"
    """

    fn: Callable
    needs: str
    higher_is_better: bool
    task: str


METRICS = {
    "accuracy": Metric(accuracy_counter, "batches", True, "classification"),
    "balanced_accuracy": Metric(balanced_accuracy, "confusion", True, "classification"),
    "f1": Metric(f1, "confusion", True, "classification"),
    "roc_auc": Metric(roc_auc, "scores", True, "classification"),
    "mse": Metric(mse, "values", False, "regression"),
    "rmse": Metric(rmse, "values", False, "regression"),
    "mae": Metric(mae, "values", False, "regression"),
    "r2": Metric(r2, "values", True, "regression"),
}


def compiled_metrics(names: Sequence[str] | None, loss) -> list[str]:
    """`names` checked against the registry and `loss`, repeats dropped; None: accuracy for a classifier."""
    if names is None:
        return ["accuracy"] if loss.is_classifier else []
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"compile: metrics must be a list of names, got {reprlib.repr(names)}")
    regression_losses = ", ".join(cls.__name__ for cls in LOSSES.values() if not cls.is_classifier)
    for name in names:
        if not isinstance(name, str) or name not in METRICS:
            # reprlib: a name read from a damaged model file may be megabytes long
            raise ValueError(f"compile: unknown metric {reprlib.repr(name)}; expected one of {', '.join(METRICS)}")
        if METRICS[name].task == "classification" and not loss.is_classifier:
            raise ValueError(f"compile: metric {name!r} needs a classification loss, got {loss.name}")
        if METRICS[name].task == "regression" and loss.is_classifier:
            raise ValueError(f"compile: metric {name!r} needs a regression loss ({regression_losses}), "
                             f"got {loss.name}")
    return list(dict.fromkeys(names))


class PassMetrics:
    """The compiled metrics that need a whole pass (all but accuracy), checked against one network.

    `prepare(y)` reads targets once (fit: the validation targets, for every epoch), then
    `compute(output, truth)` gives `{name: value}`, in compile's order, for one pass's output.
    """

    def __init__(self, names: Sequence[str], loss, n_out: int, where: str) -> None:
        self.names = [name for name in names if METRICS[name].needs != "batches"]
        self.loss, self.where = loss, where
        self.n_classes = 2 if loss.threshold is not None else n_out
        for name in self.names:
            if METRICS[name].task != "classification":
                continue
            if loss.threshold is not None and n_out > 1:
                raise ValueError(f"{where}: metric {name!r} needs one class per row, but {loss.name} on {n_out} "
                                 f"outputs reads multi-label targets (only accuracy, element-wise, applies)")
            if name == "roc_auc" and self.n_classes != 2:
                raise ValueError(f"{where}: metric 'roc_auc' needs two classes (one binary output or two "
                                 f"softmax outputs), but the network has {n_out} outputs")

    def prepare(self, y: np.ndarray, name: str = "y") -> np.ndarray | None:
        """What `compute` compares with: classes (int64) for a classifier, float64 targets for a regressor."""
        if not self.names:
            return None
        if not self.loss.is_classifier:
            return y.astype(np.float64)
        if self.loss.threshold is None:
            return true_classes(y)
        column = y[:, 0]
        if not np.all((column == 0) | (column == 1)):
            names = self.names
            which = f"metric {names[0]!r} needs" if len(names) == 1 else f"metrics {', '.join(names)} need"
            raise ValueError(f"{self.where}: {which} 0/1 targets, got values strictly between 0 and 1 in {name}")
        return column.astype(np.int64)

    def _inputs(self, needs: str, output: np.ndarray, truth: np.ndarray) -> tuple:
        """The arguments of the metrics that need `needs` (see `Metric`)."""
        loss = self.loss
        if needs == "values":
            return truth, output.astype(np.float64)
        if needs == "scores":
            score = output[:, 0] if output.shape[1] == 1 else loss.output_transform(output)[:, 1]
            return truth, score
        predicted = output.argmax(axis=1) if loss.threshold is None else output[:, 0] > loss.threshold
        return (confusion_matrix(truth, predicted, self.n_classes),)

    def compute(self, output: np.ndarray, truth: np.ndarray) -> dict[str, float]:
        """Every metric of `self.names` on one pass's `output` against `prepare`d targets."""
        inputs: dict[str, tuple] = {}
        results = {}
        for name in self.names:
            metric = METRICS[name]
            if metric.needs not in inputs:  # balanced_accuracy and f1 share one confusion matrix
                inputs[metric.needs] = self._inputs(metric.needs, output, truth)
            results[name] = metric.fn(*inputs[metric.needs])
        return results
