"""Use a final model on new inputs: rows of a .csv / .npy / DataFrame (read by `inputs`), or an image of a digit.

Inputs are raw (as in the dataset); the preprocessing stored in the model's metadata is applied
here, so the model sees exactly what it saw in training. A model trained on named columns takes
them by name (a header, or a DataFrame's columns); one trained on unnamed features, by position.
Every value must stay finite through the preprocessing and the network: an error names the cell,
never a NaN prediction.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framework import Model, load_model

from .errors import UserError
from .inputs import IMAGE_SUFFIXES, Rows, read_rows, read_table, select_columns
from .model_file import RunnerMetadata, read_metadata
from .preprocess import Preprocessor, TargetScale, is_table
from .store import MODEL_FILE

SHADES = " .:-=+*#%@"  # dark to bright, one character per intensity step
# Larger images are scaled down first: the grid is a few dozen pixels, and the square canvas the
# digit is centred on (side x side float64) would otherwise take side**2 * 8 bytes for a long thin image.
MAX_IMAGE_SIDE = 1024
# What Pillow raises on damaged or truncated image bytes (UnidentifiedImageError is an OSError).
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error)


@dataclass
class Predictor:
    """A loaded model with what it was trained with: its preprocessing, task, classes, image shape."""

    model: Model
    meta: RunnerMetadata

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        """From a model.npz, or an experiment folder holding one."""
        path = Path(path)
        if path.is_dir():
            if not (path / MODEL_FILE).is_file():
                raise UserError(f"{path}: no {MODEL_FILE} in this folder (the experiment has not finished, or this "
                                "is not an experiment folder); pass an experiment folder or its model.npz")
            path = path / MODEL_FILE
        try:
            model = load_model(path)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        model.raw_input_warning = None  # this predictor applies the preprocessing the warning is about
        return cls(model, read_metadata(model, path))

    @property
    def task(self) -> str:
        return self.meta.task

    @property
    def classes(self) -> list[str]:
        return self.meta.classes

    @property
    def preprocessor(self) -> Preprocessor:
        return self.meta.preprocessor

    @property
    def target_scale(self) -> TargetScale | None:
        return self.meta.target_scale

    @property
    def columns(self) -> list[str] | None:
        """The named input columns of a model trained on a table (None: unnamed features, by position)."""
        return None if self.preprocessor.columns is None else [c.name for c in self.preprocessor.columns]

    @property
    def n_features(self) -> int:
        """Raw values per row: a table's columns, or an array's features."""
        return self.preprocessor.n_inputs

    def read(self, path: Path) -> tuple[np.ndarray | None, object]:
        """The rows of a file: an image (and its grid, as the model sees it), or a .csv / .npy of rows; a model of
        named columns takes a .csv whose header names them."""
        if not path.is_file():
            raise UserError(f"predict: no such file {str(path)!r}")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return image_rows(self, path)
        if self.columns is None:
            return None, read_rows(path, self.n_features)
        if path.suffix.lower() != ".csv":  # a model of named columns: a CSV with a header, matched by name
            raise UserError(f"predict: this model was trained on named columns; give a .csv with a header naming "
                            f"them, not {path.suffix or 'a file without a type'}")
        return None, read_table(path, self.columns)

    def predict(self, rows) -> np.ndarray:
        """Class probabilities (classification) or values in the target's units (regression), for `rows`: a
        DataFrame for a model of named columns (matched by name), an array for unnamed features, or the path of
        an image or of a .csv / .npy of rows."""
        if isinstance(rows, str | Path):
            rows = self.read(Path(rows))[1]
        rows = self._rows(rows)
        with np.errstate(all="ignore"):  # an overflow is reported below, as an error, not as a warning
            features = self.preprocessor.transform(rows if self.columns else rows.values, rows_source(rows))
            if not np.isfinite(features).all():
                self._overflow(rows, features)
            output = self.model.predict(features)
            output = self.target_scale.invert(output[:, 0]) if self.target_scale else output
        finite = np.isfinite(output.reshape(len(output), -1)).all(axis=1)
        if not finite.all():
            raise UserError(f"predict: the model's output for {_row(rows, int(np.argmin(finite)))} is not finite: "
                            "its values overflow inside the network; expected inputs in the range of the training data")
        return output

    def _rows(self, rows):
        if self.columns is not None:
            if not is_table(rows):
                raise UserError(f"predict: this model was trained on named columns ({', '.join(self.columns[:5])}"
                                f"{', ...' if len(self.columns) > 5 else ''}); give rows with a header, or a DataFrame")
            return rows if list(rows.columns) == self.columns else select_columns(rows, self.columns,
                                                                                  rows_source(rows))
        if is_table(rows):
            rows = rows.to_numpy()
        rows = rows if isinstance(rows, Rows) else Rows(np.asarray(rows, dtype=np.float64), "input")
        if rows.values.ndim != 2 or rows.values.shape[1] != self.n_features:
            raise UserError(f"predict: the model expects rows of {self.n_features} features, got shape "
                            f"{tuple(rows.values.shape)}")
        return rows

    def _overflow(self, rows, features: np.ndarray):
        i, j = (int(k) for k in np.argwhere(~np.isfinite(features))[0])
        if isinstance(rows, Rows):  # unnamed features: feature j is the input's column j
            scale = self.preprocessor.scale
            raise UserError(f"predict: {rows.cell(i, j)}: {rows.values[i, j]:g} becomes {features[i, j]} after the "
                            f"model's scaling (x * {scale.mul[j]:g} + {scale.add[j]:g}, in float32); "
                            "expected a value whose scaled form is a finite float32")
        column = self.preprocessor.input_column(j)
        raise UserError(f"predict: {_row(rows, i)}, column {column!r}: {rows[column].iloc[i]!r} becomes "
                        f"{features[i, j]} after the model's scaling (in float32); expected a value whose scaled "
                        "form is a finite float32")


def rows_source(rows) -> str:
    """The file the rows came from, for messages ("rows" for rows handed in from Python)."""
    return rows.source if isinstance(rows, Rows) else rows.attrs.get("source", "rows")


def _row(rows, i: int) -> str:
    if isinstance(rows, Rows):
        return rows.row(i)
    return f"{rows.index.name or 'row'} {rows.index[i]}"


# ---------------------------------------------------------------------------------------------- images
def image_rows(predictor: Predictor, path: Path) -> tuple[np.ndarray, Rows]:
    """An image as the model's grid, and as the one row of raw pixel values the model was trained on."""
    if predictor.meta.image_shape is None:
        raise UserError(f"predict: this model was trained on {predictor.n_features} features, not images; "
                        "give a .csv or .npy of feature rows")
    grid = image_to_grid(path, predictor.meta.image_shape)
    low, high = predictor.meta.feature_range
    return grid, Rows((low + grid * (high - low)).reshape(1, -1), str(path))  # the pixel range of the training data


def _open_gray(path: Path) -> np.ndarray:
    """An image file in grayscale, values in [0, 1], at most MAX_IMAGE_SIDE pixels on a side."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Pillow only warns between its pixel limit and twice it: refuse both. It also warns of damage
            # it reads past (corrupt EXIF data, a truncated tag): a damaged image is refused, not guessed at.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.simplefilter("error", UserWarning)
            with Image.open(path) as image:
                gray = image.convert("L")
        if max(gray.size) > MAX_IMAGE_SIDE:
            gray.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
        return np.asarray(gray, dtype=np.float64) / 255.0
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UserError(f"predict: {path} is too large an image to read: {exc}") from None
    except (*IMAGE_ERRORS, UserWarning) as exc:
        raise UserError(f"predict: cannot read {path} as an image: {str(exc).strip()}") from None


def image_to_grid(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """An image file as the model's input grid, bright digit on dark, values in [0, 1].

    Grayscale; inverted when the background (the border) is light; cropped to the digit;
    centred on a square with MNIST's margin for 28x28 grids (a 20x20 box), resized.
    """
    from PIL import Image

    gray = _open_gray(path)

    def border(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])

    if border(gray).mean() > 0.5:  # dark ink on light paper: make the digit bright as in the data
        gray = 1.0 - gray
    gray = np.clip(gray - np.median(border(gray)), 0.0, None)  # the background becomes 0
    if gray.max() <= 0.05:
        raise UserError(f"predict: {path} looks blank; expected an image of a digit")
    ink_rows, ink_cols = np.nonzero(gray > 0.2 * gray.max())
    gray = gray[ink_rows.min():ink_rows.max() + 1, ink_cols.min():ink_cols.max() + 1]
    side = max(gray.shape)
    square = np.zeros((side, side))
    top, left = (side - gray.shape[0]) // 2, (side - gray.shape[1]) // 2
    square[top:top + gray.shape[0], left:left + gray.shape[1]] = gray
    height, width = shape
    # MNIST digits sit in a 20x20 box of their 28x28 grid; the box fits the shorter side of a grid that is not square
    box = min(round(side * 20 / 28) if side >= 16 else side for side in shape)
    resized = Image.fromarray((square * 255).astype(np.uint8)).resize((box, box), Image.Resampling.LANCZOS)
    grid = np.zeros(shape)
    top, left = (height - box) // 2, (width - box) // 2
    grid[top:top + box, left:left + box] = np.asarray(resized, dtype=np.float64) / 255.0
    if grid.max() <= 0:  # ink too faint to survive the resize
        raise UserError(f"predict: {path} looks blank at {height}x{width}; expected an image of a digit")
    return grid / grid.max()


def shade(grid: np.ndarray) -> str:
    """A small shaded picture of a grid in [0, 1], two characters per pixel (terminal cells are tall)."""
    steps = np.clip((grid * (len(SHADES) - 1)).round().astype(int), 0, len(SHADES) - 1)
    return "\n".join("".join(SHADES[v] * 2 for v in row) for row in steps)


def top_classes(probabilities: np.ndarray, classes: list[str], k: int) -> list[list[tuple[str, float]]]:
    """The k most probable (class, probability) pairs of each row, most probable first."""
    names = classes or [str(i) for i in range(probabilities.shape[1])]
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [[(names[j], float(row[j])) for j in idx] for row, idx in zip(probabilities, order)]
