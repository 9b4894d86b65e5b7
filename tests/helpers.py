"""What the tests share: the CLI as a subprocess, quick experiments, CSV comparisons, waiting, made-up data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TIMING = {"runs.csv": "fit_seconds", "rungs.csv": "fit_seconds", "history.csv": "seconds"}

# A small, quick experiment: iris, 2 x 2 grid, 2 repeats, 8 epochs.
QUICK = [
    "data.dataset=iris",
    "train.epochs=8",
    "search.repeats=2",
    "search.n_jobs=1",
    "search.space={lr = [0.05, 0.2], hidden_units = [8, 16]}",
]


# --- the command line ------------------------------------------------------------------------------


def cli(*args, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """`python main.py ARGS` from the repository root, output captured as text."""
    return subprocess.run([sys.executable, "main.py", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def main(*args) -> subprocess.CompletedProcess:
    """The CLI's `main(ARGS)` in this process (no interpreter start-up), its exit code and output captured.

    What a subprocess adds (interpreter exit, signals, a closed pipe) is tested with `cli`.
    """
    import contextlib
    import io

    from tuning import cli as command_line

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = command_line.main([str(a) for a in args])
        except SystemExit as exc:  # argparse's usage errors and --help
            code = exc.code
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def sets(overrides: list[str]) -> list[str]:
    """`--set` flags for config overrides."""
    return [arg for override in overrides for arg in ("--set", override)]


def assert_one_line_error(result: subprocess.CompletedProcess, message: str, code: int = 2) -> None:
    """The promise for bad input: exit code `code`, one line on stderr naming the problem, no traceback."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr, result.stderr


# Runs the CLI and stops it dead at a chosen point: after the N-th row is stored, the process says
# so on stdout and waits to be killed (workers and all), so a kill lands exactly there.
_STOP_AFTER = """
import sys, threading
from tuning import cli, store
n, real = int(sys.argv[1]), store.ExperimentStore.append
def append(self, *args):
    real(self, *args)
    if len(self.stored_ids) - self.initial == n:
        print("STORED", flush=True)
        threading.Event().wait()
def open_(self, *args, real_open=store.ExperimentStore.open, **kwargs):
    ids = real_open(self, *args, **kwargs)
    self.initial = len(ids)
    return ids
store.ExperimentStore.append, store.ExperimentStore.open = append, open_
sys.exit(cli.main(sys.argv[2:]))
"""


def kill_after_rows(n_rows: int, *args, timeout: float = 60, group: bool = True) -> list[int]:
    """Run `python main.py ARGS` and SIGKILL it once `n_rows` rows are stored: its whole process group,
    or (`group=False`) the parent alone; returns the pids of the processes it had started."""
    import select

    import psutil

    process = subprocess.Popen([sys.executable, "-c", _STOP_AFTER, str(n_rows), *map(str, args)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    children = []
    try:
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline() if ready else ""
        assert line.startswith("STORED"), f"the run did not reach {n_rows} stored rows within {timeout} s: {line!r}"
        children = [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
    finally:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait()
        process.stdout.close()
    return children


# --- experiments -----------------------------------------------------------------------------------


def run_quick(folder: Path, overrides: list[str] = QUICK, render: bool = False, **kwargs):
    """`run_experiment` on the overrides into `folder` (plots and report only when `render`)."""
    from tuning.config import load_experiment
    from tuning.runner import run_experiment

    return run_experiment(load_experiment(None, overrides), out=folder, render_report=render, **kwargs)


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV as its exact text cells (no NaN guessing), trial ids as strings."""
    return pd.read_csv(path, keep_default_na=False, dtype={"trial_id": str})


def assert_same_csvs(one: Path, two: Path, names: tuple[str, ...] = ("runs.csv", "history.csv")) -> None:
    """The folders' CSVs are equal cell for cell but for their timing columns."""
    for name in names:
        a, b = (read_csv(folder / name).drop(columns=TIMING[name]) for folder in (one, two))
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def file_bytes(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` by relative path, to show nothing changed (but the lock's note of its
    last holder, which each run that takes the lock rewrites)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- data the tests make themselves --------------------------------------------------------------


def write_idx(path, array) -> None:
    """Write an unsigned-byte array as an MNIST IDX file (gzipped when the name ends in .gz)."""
    import gzip
    import struct

    import numpy as np

    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def digit_images_28():
    """scikit-learn's digits upscaled from 8x8 to 28x28 pixels in 0..255 (MNIST's format), and their labels."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images, np.ones((3, 3)))  # 24x24
    return np.pad(images, ((0, 0), (2, 2), (2, 2))) * (255 / 16), digits.target


def make_mnist_folder(folder: Path) -> Path:
    """A tiny MNIST-format folder (the four IDX files) made from digits: 1500 train, 297 test images."""
    images, labels = digit_images_28()
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", images[:1500])
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels[:1500])
    write_idx(folder / "t10k-images-idx3-ubyte", images[1500:])
    write_idx(folder / "t10k-labels-idx1-ubyte", labels[1500:])
    return folder


# --- faults ------------------------------------------------------------------------------------------


def failing_writes(monkeypatch, folder: Path, error: int, after: int = 0) -> list[str]:
    """Make every file opened for writing below `folder` fail as a full disk (ENOSPC) or a read-only
    folder (EACCES) would, after `after` such opens have succeeded; returns the paths that failed."""
    import builtins
    import errno as errnos

    real_open, failed, opened = builtins.open, [], []
    folder = str(Path(folder).resolve())

    def faulty_open(file, mode="r", *args, **kwargs):
        writing = isinstance(file, str | Path) and any(c in mode for c in "wax+")
        if writing and str(Path(file).resolve()).startswith(folder):
            opened.append(str(file))
            if len(opened) > after:
                failed.append(str(file))
                if error == errnos.EACCES:  # a read-only folder refuses the open itself
                    raise PermissionError(error, "Permission denied", str(file))
                return _FullDisk(real_open(file, mode, *args, **kwargs))  # the open works, writes fail
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", faulty_open)
    return failed


class _FullDisk:
    """A file on a full disk: every write fails with ENOSPC and, as the OS reports it, no file name."""

    def __init__(self, f) -> None:
        self._f = f

    def write(self, *args):
        import errno

        raise OSError(errno.ENOSPC, "No space left on device")

    writelines = write

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def penguins_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A table like the Palmer penguins: a text label, two text features, numbers, and gaps in both kinds."""
    import numpy as np

    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], n)
    code = np.searchsorted(["Adelie", "Chinstrap", "Gentoo"], species)
    island = np.where(rng.random(n) < 0.7, np.array(["Torgersen", "Dream", "Biscoe"])[code],
                      rng.choice(["Torgersen", "Dream", "Biscoe"], n))
    frame = pd.DataFrame({
        "species": species,
        "island": island,
        "bill_length_mm": 38 + 6 * code + rng.normal(0, 1.5, n),
        "flipper_length_mm": 190 + 12 * (code == 2) + rng.normal(0, 4, n),
        "body_mass_g": (3700 + 1400 * (code == 2) + rng.normal(0, 300, n)).round(),
        "sex": rng.choice(["male", "female"], n),
    })
    frame.loc[rng.choice(n, 8, replace=False), "bill_length_mm"] = np.nan
    frame.loc[rng.choice(n, 6, replace=False), "sex"] = None
    frame.loc[rng.choice(n, 3, replace=False), "island"] = None
    return frame
