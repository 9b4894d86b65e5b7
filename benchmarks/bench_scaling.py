"""Scaling benchmark: worker memory on MNIST-sized data, and trials per second by backend.

    python benchmarks/bench_scaling.py [--out FILE.json] [--repeats 3] [--skip-memory] [--skip-speed]

1. Memory: a 60,000 x 784 float32 classification dataset (random class prototypes plus noise,
   written to an .npz in a temporary folder) is searched with n_jobs=2 (4 learning rates,
   2 epochs, 64 hidden units). Each backend runs in a fresh Python process; a thread samples
   every process under it every 50 ms (psutil: RSS, PSS, USS per pid, the max kept) and, where
   the workers are still alive at the end, reads their true peak RSS (VmHWM). The sum of the
   workers' peaks is compared with the data's size; the process running the search (which
   loads, splits and scales the data, then refits the best configuration) is reported apart.
   RSS counts every resident page a process maps, so pages of the shared memory-mapped data
   count once per worker; PSS divides shared pages among the processes mapping them (the sum
   over processes is the memory really used); USS is each process's private memory only.
2. Speed: the default digits grid (27 configurations x 2 repeats, 30 epochs) dispatched at
   n_jobs=1 (in this process), n_jobs=2 with loky, on a running 2-worker Dask LocalCluster
   (scheduler address; the data scattered once), and with an empty scheduler (a LocalCluster
   started and closed by the run, its start-up included). Best of --repeats after a warm-up;
   every backend's records must equal n_jobs=1's (timing fields aside).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuning.config import load_experiment  # noqa: E402
from tuning.dask_cluster import DaskCluster  # noqa: E402
from tuning.executor import LocalPool  # noqa: E402
from tuning.prepare import prepare  # noqa: E402
from tuning.runner import run_experiment  # noqa: E402
from tuning.trial_data import TrialData  # noqa: E402

MiB = 2**20
ROWS, FEATURES, CLASSES = 60_000, 784, 10
MEMORY_SEARCH = ["train.epochs=2", "train.hidden_units=64", "train.batch_size=128", "search.repeats=1",
                 "search.n_jobs=2", "search.space={lr = [0.01, 0.05, 0.1, 0.2]}"]
MEMORY_MODES = {
    "loky": [],
    "dask_local_cluster": ["search.backend=\"dask\""],  # empty scheduler: workers map the data files
    "dask_scheduler": ["search.backend=\"dask\""],  # given an address: the arrays are scattered to workers
}


def make_dataset(path: Path, rows: int = ROWS, seed: int = 0) -> dict:
    """An MNIST-shaped float32 dataset in [0, 1]: 10 random prototypes blurred by noise; returns its sizes."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((CLASSES, FEATURES), dtype=np.float32)
    y = rng.integers(0, CLASSES, rows).astype(np.int64)
    X = np.empty((rows, FEATURES), dtype=np.float32)
    for start in range(0, rows, 10_000):  # in chunks: no float64 temporaries of the whole array
        part = slice(start, start + 10_000)
        X[part] = 0.5 * prototypes[y[part]] + 0.5 * rng.random((len(y[part]), FEATURES), dtype=np.float32)
    np.savez(path, X=X, y=y)
    # What one task carries to a loky worker: the memory-mapped TrialData pickles as file paths.
    with tempfile.TemporaryDirectory() as scratch:
        shared = TrialData(X[:1000], y[:1000], X[1000:1100], y[1000:1100], "classification", CLASSES)
        per_task = len(pickle.dumps(shared.share(Path(scratch))))
    return {"rows": rows, "features": FEATURES, "X_bytes": X.nbytes, "y_bytes": y.nbytes,
            "npz_bytes": path.stat().st_size, "pickled_shared_trialdata_bytes": per_task}


class Sampler(threading.Thread):
    """Every `interval` s: RSS, PSS and USS of every process under this one; the max per pid."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        import psutil

        self.psutil, self.interval, self.stop = psutil, interval, threading.Event()
        self.peaks: dict[int, dict] = {}
        self.peak_total = dict.fromkeys(("rss", "pss", "uss"), 0)

    def run(self) -> None:
        me = self.psutil.Process()
        while not self.stop.is_set():
            self.sample(me)
            time.sleep(self.interval)

    def sample(self, me) -> None:
        total = dict.fromkeys(("rss", "pss", "uss"), 0)
        for proc in me.children(recursive=True):
            try:
                info = proc.memory_full_info()
                peak = self.peaks.setdefault(proc.pid, {"cmdline": " ".join(proc.cmdline())[:200], "rss": 0,
                                                        "pss": 0, "uss": 0, "samples": 0})
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied, self.psutil.ZombieProcess):
                continue
            peak["samples"] += 1
            for key in total:
                peak[key] = max(peak[key], getattr(info, key))
                if _is_worker(peak["cmdline"]):
                    total[key] += getattr(info, key)
        # The workers' memory at one moment, summed: a page first read by one worker is private to it
        # (in its USS and wholly in its PSS) until the second maps it, so per-pid peaks overstate the total.
        for key, value in total.items():
            self.peak_total[key] = max(self.peak_total[key], value)

    def high_water_marks(self) -> None:
        """VmHWM (the kernel's exact peak RSS) of the processes still alive."""
        for pid, peak in self.peaks.items():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), None)
            if kib is not None:
                peak["vmhwm"] = kib * 1024


def _is_worker(cmdline: str) -> bool:
    """loky workers (popen_loky_posix) and Dask worker processes (multiprocessing spawn), not trackers."""
    return ("popen_loky" in cmdline or "spawn_main" in cmdline) and "resource_tracker" not in cmdline


def memory_child(npz: str, mode: str, out: str) -> None:
    """Run the memory search in this (fresh) process and write what the sampler saw to `out`."""
    import psutil

    overrides = [f"data.dataset=\"{npz}\"", *MEMORY_SEARCH, *MEMORY_MODES[mode]]
    sampler = Sampler()
    cluster = None
    if mode == "dask_scheduler":
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
        overrides.append(f"search.scheduler=\"{cluster.scheduler_address}\"")
    sampler.start()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        result = run_experiment(load_experiment(None, overrides), out=Path(folder) / "exp", render_report=False)
    seconds = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    sampler.sample(psutil.Process())
    sampler.high_water_marks()  # loky's workers outlive the run (reusable pool); a scheduler's too
    if cluster is not None:
        cluster.close()
    status = Path("/proc/self/status").read_text()
    parent_hwm = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:"))
    Path(out).write_text(json.dumps({
        "mode": mode, "seconds": seconds, "trials": result.n_trials, "workers_used": result.n_workers,
        "test_accuracy": result.best["test_accuracy"], "parent_peak_rss": parent_hwm,
        "processes": {str(pid): peak for pid, peak in sampler.peaks.items()}, "workers_peak_total": sampler.peak_total,
    }))


def measure_memory(npz: Path, sizes: dict) -> dict:
    figures = {}
    data_bytes = sizes["X_bytes"] + sizes["y_bytes"]
    rows = sizes["rows"]
    # What the workers map: the train and validation rows (test 20%, then validation 20% of the rest).
    trial_rows = rows - int(round(rows * 0.2))
    trial_bytes = trial_rows * (FEATURES * 4 + 8)
    for mode in MEMORY_MODES:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run([sys.executable, __file__, "--memory-child", str(npz), mode, out.name], check=True)
            seen = json.loads(Path(out.name).read_text())
        workers = {pid: p for pid, p in seen["processes"].items() if _is_worker(p["cmdline"])}
        others = {pid: p for pid, p in seen["processes"].items() if pid not in workers}
        peak_rss = [max(p["rss"], p.get("vmhwm", 0)) for p in workers.values()]
        figures[mode] = {
            "seconds": seen["seconds"], "trials": seen["trials"], "worker_processes": len(workers),
            "test_accuracy": seen["test_accuracy"],
            # the brief's measure: each worker's peak RSS (VmHWM when readable), summed
            "workers_peak_rss_sum": sum(peak_rss), "workers_peak_rss": peak_rss,
            "workers_vmhwm_read": all("vmhwm" in p for p in workers.values()),
            # the peak over time of the workers' summed RSS / PSS / USS (sampled every 50 ms)
            "workers_total_peak": seen["workers_peak_total"],
            "workers_peak_pss": [p["pss"] for p in workers.values()],
            "workers_peak_uss": [p["uss"] for p in workers.values()],
            "parent_peak_rss": seen["parent_peak_rss"],
            "other_children_peak_rss_sum": sum(p["rss"] for p in others.values()),
            "ratio_rss_sum_to_data": sum(peak_rss) / data_bytes,
            **{f"ratio_total_{k}_to_data": v / data_bytes for k, v in seen["workers_peak_total"].items()},
        }
    return {"data_bytes": data_bytes, "trialdata_bytes": trial_bytes, **sizes, "modes": figures}


def _outcome(record) -> dict:
    history = [{k: v for k, v in row.items() if k != "seconds"} for row in record.history]
    return {**{k: v for k, v in record.outcome().items() if k != "fit_seconds"}, "history": history}


def measure_speed(repeats: int) -> dict:
    from distributed import LocalCluster

    prep = prepare(load_experiment(), out=Path(tempfile.gettempdir()) / "bench-scaling-unused")
    specs, n = prep.specs, len(prep.specs)
    figures: dict[str, dict] = {}
    reference: dict[str, dict] = {}

    def timed(name: str, workers: int, executor) -> None:
        """`executor()` opens the executor anew for every timed run (a pool, a client, a local cluster)."""
        best = None
        for attempt in range(repeats + 1):  # attempt 0 warms up (pool start, imports on the workers)
            start = time.perf_counter()
            with executor() as opened:
                records = list(opened.run(specs, prep.data))
            seconds = time.perf_counter() - start
            outcomes = {r.trial_id: _outcome(r) for r in records}
            if not reference:
                reference.update(outcomes)
            assert len(records) == n and outcomes == reference, f"{name}: records differ from n_jobs=1"
            if attempt and (best is None or seconds < best):
                best = seconds
        figures[name] = {"workers": workers, "trials": n, "seconds": best, "trials_per_second": n / best}

    timed("n_jobs=1", 1, lambda: LocalPool(1))
    timed("loky n_jobs=2", 2, lambda: LocalPool(2))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster:
        timed("dask scheduler, 2 workers", 2, lambda: DaskCluster(cluster.scheduler_address))
    timed("dask local cluster per run, 2 workers", 2, lambda: DaskCluster("", n_workers=2))
    one = figures["n_jobs=1"]["trials_per_second"]
    for row in figures.values():
        row["speedup_vs_n_jobs_1"] = row["trials_per_second"] / one
    return {"experiment": "digits, 27 configs x 2 repeats, 30 epochs", "identical_results": True, "rows": figures}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        memory_child(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per backend (best is kept)")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of the memory benchmark's dataset")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    figures: dict[str, dict] = {"cpus": os.cpu_count()}

    if not args.skip_memory:
        with tempfile.TemporaryDirectory(prefix="bench-scaling-") as folder:
            npz = Path(folder) / "synthetic_mnist.npz"
            sizes = make_dataset(npz, args.rows)
            memory = figures["memory"] = measure_memory(npz, sizes)
        print(f"memory: {args.rows} x {FEATURES} float32 data {memory['data_bytes'] / MiB:.1f} MiB "
              f"(train+val, what the workers map: {memory['trialdata_bytes'] / MiB:.1f} MiB); "
              f"one task's pickled data argument under loky: {memory['pickled_shared_trialdata_bytes']} bytes")
        print("workers' memory (n_jobs=2): sum of each worker's peak RSS; peak over time of the workers' summed "
              "RSS, PSS, USS; x = / data size")
        print(f"{'backend':<20}{'workers':>8}{'sum peak RSS':>16}{'total RSS':>16}{'total PSS':>16}"
              f"{'total USS':>16}{'parent peak RSS':>17}{'seconds':>9}")
        for mode, m in memory["modes"].items():
            total = m["workers_total_peak"]
            cells = [(m["workers_peak_rss_sum"], m["ratio_rss_sum_to_data"])]
            cells += [(total[k], m[f"ratio_total_{k}_to_data"]) for k in ("rss", "pss", "uss")]
            print(f"{mode:<20}{m['worker_processes']:>8}"
                  + "".join(f"{b / MiB:>7.0f} MiB {r:>4.2f}x" for b, r in cells)
                  + f"{m['parent_peak_rss'] / MiB:>13.0f} MiB{m['seconds']:>9.1f}")

    if not args.skip_speed:
        speed = figures["speed"] = measure_speed(args.repeats)
        print(f"\nspeed: {speed['experiment']}; results identical across backends: {speed['identical_results']}")
        print(f"{'backend':<40}{'workers':>8}{'seconds':>9}{'trials/s':>10}{'vs n_jobs=1':>13}")
        for name, row in speed["rows"].items():
            print(f"{name:<40}{row['workers']:>8}{row['seconds']:>9.2f}{row['trials_per_second']:>10.1f}"
                  f"{row['speedup_vs_n_jobs_1']:>12.2f}x")

    text = json.dumps(figures, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"\nfigures written to {args.out}")


if __name__ == "__main__":
    main()
