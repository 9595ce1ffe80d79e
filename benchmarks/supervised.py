"""The estimators with their defaults against scikit-learn's usual peers, 5-fold CV.

Every contender is ``make_pipeline(StandardScaler(), estimator)`` scored by 5-fold
cross-validation (``KFold`` / ``StratifiedKFold``, shuffled, ``random_state=0``: the unshuffled
folds of digits split it by writer) on scikit-learn's bundled data (diabetes R², breast cancer
and digits accuracy and log-loss) and synthetic sets (Friedman #1, two moons, a p > n linear
regression).  Peers: ``MLPRegressor`` / ``MLPClassifier`` (``max_iter=2000``: with the default 200
the regressor does not converge on diabetes, R² ≈ −1), ``RBFSampler(gamma=1/d, 1000
components) + RidgeCV`` (``RidgeClassifierCV``, no probabilities), ``HistGradientBoosting*``
and ``swimnetworks`` 0.0.2 (512 tanh neurons, ``rcond=1e-10``; skipped with a line if it is not
installed).  Each contender runs in its own process, first fits once on 100 rows (one-time
costs), then reports the mean wall and CPU seconds per fit (CPU: all threads of the process;
the peers use every BLAS/OpenMP thread, the estimators one) and the mean ± std of the fold
scores.  The machine is shared: compare the ratios of one run; the load average before and
after is recorded.  ``--overhead`` measures the fixed cost of one small fit (500 × 10).

The SWIM paper (Bolager et al., NeurIPS 2023) benchmarks classification on OpenML-CC18; no
figure of it for these data sets and metrics was found, so none is quoted (``swim_paper``).

    python benchmarks/supervised.py [--only diabetes digits] [--overhead]
    python benchmarks/supervised.py --readme      # the README table, from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _harness import RESULTS, entry, markdown_table, run_isolated, write_results  # noqa: E402

DATASETS = {
    "diabetes": "regression", "breast_cancer": "classification", "digits": "classification",
    "friedman1": "regression", "two_moons": "classification", "high_dim": "regression",
}
CONTENDERS = ["ours", "mlp", "rbf_ridge", "hist_gb", "swimnetworks"]
LABELS = {"ours": "ours (defaults)", "mlp": "MLP", "rbf_ridge": "RBFSampler + RidgeCV",
          "hist_gb": "HistGradientBoosting", "swimnetworks": "swimnetworks 0.0.2"}


def load(name: str):
    from sklearn import datasets

    if name == "diabetes":
        return datasets.load_diabetes(return_X_y=True)
    if name == "breast_cancer":
        return datasets.load_breast_cancer(return_X_y=True)
    if name == "digits":
        return datasets.load_digits(return_X_y=True)
    if name == "friedman1":
        return datasets.make_friedman1(n_samples=2000, n_features=10, noise=1.0, random_state=0)
    if name == "two_moons":
        return datasets.make_moons(n_samples=2000, noise=0.3, random_state=0)
    if name == "high_dim":
        return datasets.make_regression(n_samples=500, n_features=1000, n_informative=50, noise=10.0,
                                        random_state=0)
    raise ValueError(name)


def make(contender: str, task: str, n_features: int):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    regression = task == "regression"
    if contender == "ours":
        from pipeline import SampledNetworkClassifier, SampledNetworkRegressor

        est = (SampledNetworkRegressor if regression else SampledNetworkClassifier)(random_state=0)
    elif contender == "mlp":
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        est = (MLPRegressor if regression else MLPClassifier)(max_iter=2000, random_state=0)
    elif contender == "rbf_ridge":
        from sklearn.kernel_approximation import RBFSampler
        from sklearn.linear_model import RidgeClassifierCV, RidgeCV

        alphas = np.logspace(-4, 4, 17)
        est = make_pipeline(RBFSampler(gamma=1.0 / n_features, n_components=1000, random_state=0),
                            RidgeCV(alphas=alphas) if regression else RidgeClassifierCV(alphas=alphas))
    elif contender == "hist_gb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        est = (HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier)(random_state=0)
    elif contender == "swimnetworks":
        from sklearn.pipeline import Pipeline
        from swimnetworks import Dense, Linear

        est = Pipeline([
            ("dense", Dense(layer_width=512, activation="tanh", parameter_sampler="tanh", random_seed=0,
                            is_classifier=not regression)),
            ("linear", Linear(regularization_scale=1e-10, is_classifier=not regression)),
        ])
    else:
        raise ValueError(contender)
    return make_pipeline(StandardScaler(), est)


def run_contender(spec: dict) -> dict:
    from sklearn.metrics import accuracy_score, log_loss, r2_score
    from sklearn.model_selection import KFold, StratifiedKFold

    warnings.filterwarnings("ignore")
    if spec["contender"] == "swimnetworks":
        try:
            import swimnetworks  # noqa: F401
        except ImportError:
            return {**spec, "skipped": "swimnetworks is not installed"}
    x, y = load(spec["dataset"])
    task = DATASETS[spec["dataset"]]
    folds = (KFold if task == "regression" else StratifiedKFold)(spec["folds"], shuffle=True, random_state=0)
    make(spec["contender"], task, x.shape[1]).fit(x[:100], y[:100])  # one-time costs: imports, thread pools
    scores, losses, walls, cpus = [], [], [], []
    for train, test in folds.split(x, y):
        model = make(spec["contender"], task, x.shape[1])
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(x[train], y[train])
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        pred = np.asarray(model.predict(x[test])).ravel()
        scores.append(r2_score(y[test], pred) if task == "regression" else accuracy_score(y[test], pred))
        if task == "classification" and hasattr(model, "predict_proba"):
            proba = model.predict_proba(x[test])
            assert np.allclose(proba.sum(axis=1), 1.0)
            losses.append(log_loss(y[test], proba, labels=np.unique(y)))
    out = {**spec, "metric": "r2" if task == "regression" else "accuracy",
           "score_mean": float(np.mean(scores)), "score_std": float(np.std(scores)),
           "fit_wall_s": float(np.mean(walls)), "fit_cpu_s": float(np.mean(cpus))}
    if losses:
        out["log_loss_mean"] = float(np.mean(losses))
    return out


def overhead(spec: dict) -> dict:
    """Fixed cost of one small fit: 500 × 10 data, in-process and through the Dask graph."""
    from pipeline import SampledNetworkRegressor
    from pipeline.models import fitting

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(500, 10))
    y = np.sin(x @ rng.standard_normal(10))
    out = {**spec}
    for label, width, graph in (("default", (512,), False), ("width_8", 8, False), ("default_graph", (512,), True),
                                ("width_8_graph", 8, True)):
        saved = fitting.SMALL_FIT_BYTES
        fitting.SMALL_FIT_BYTES = -1 if graph else saved
        try:
            SampledNetworkRegressor(width, random_state=0).fit(x, y)
            walls, cpus = [], []
            for _ in range(spec["repeats"]):
                wall, cpu = time.perf_counter(), time.process_time()
                SampledNetworkRegressor(width, random_state=0).fit(x, y)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
        finally:
            fitting.SMALL_FIT_BYTES = saved
        out[label] = {"wall_median_s": float(np.median(walls)), "wall_min_s": float(np.min(walls)),
                      "cpu_median_s": float(np.median(cpus))}
    out["neurons_default"] = SampledNetworkRegressor(random_state=0).fit(x, y).networks_[0].width
    return out


def _child(spec: dict) -> dict:
    return overhead(spec) if spec.get("kind") == "overhead" else run_contender(spec)


def _ratios(rows: dict) -> dict:
    ours, mlp = rows.get("ours"), rows.get("mlp")
    if not ours or not mlp or "fit_wall_s" not in ours or "fit_wall_s" not in mlp:
        return {}
    return {"mlp_over_ours_fit_wall": mlp["fit_wall_s"] / ours["fit_wall_s"],
            "mlp_over_ours_fit_cpu": mlp["fit_cpu_s"] / ours["fit_cpu_s"]}


def readme_table(payload: dict) -> str:
    """The README's estimator table, from the JSON."""
    lines = ["| data (metric) | ours, defaults | MLP | RBFSampler + RidgeCV | HistGradientBoosting | swimnetworks "
             "| fit: MLP's CPU s over ours |", "|---|---|---|---|---|---|---|"]
    for name, d in payload["datasets"].items():
        rows = d["contenders"]

        def cell(key):
            r = rows.get(key, {})
            if "score_mean" not in r:
                return "—"
            text = f"{r['score_mean']:.3f}"
            if "log_loss_mean" in r:
                text += f" / {r['log_loss_mean']:.3f}"
            return text
        metric = "R²" if DATASETS[name] == "regression" else "acc. / log-loss"
        ratio = d.get("ratios", {})
        fit = "—"
        if ratio:
            fit = (f"{ratio['mlp_over_ours_fit_cpu']:.0f}× ({rows['ours']['fit_cpu_s']:.3f} s vs "
                   f"{rows['mlp']['fit_cpu_s']:.2f} s)")
        cells = " | ".join(cell(k) for k in CONTENDERS)
        lines.append(f"| {name.replace('_', ' ')} ({metric}) | {cells} | {fit} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--overhead", action="store_true", help="only the fixed cost of a small fit")
    parser.add_argument("--readme", action="store_true", help="print the README table from the JSON and exit")
    args = parser.parse_args()
    path = RESULTS / "supervised.json"
    if args.readme:
        print(readme_table(json.loads(path.read_text())))
        return
    previous = json.loads(path.read_text()) if path.exists() else {}
    load_before = os.getloadavg()
    payload = {"cv": f"{args.folds}-fold, shuffled, random_state=0", "load_before": list(load_before)}
    payload["overhead"] = run_isolated(__file__, {"kind": "overhead", "repeats": 50})
    o = payload["overhead"]
    print(f"fixed overhead of a 500 × 10 fit: width 8 {1e3 * o['width_8']['wall_median_s']:.1f} ms "
          f"(graph path {1e3 * o['width_8_graph']['wall_median_s']:.1f} ms); default ({o['neurons_default']} "
          f"neurons) {1e3 * o['default']['wall_median_s']:.1f} ms (graph path "
          f"{1e3 * o['default_graph']['wall_median_s']:.1f} ms)")
    datasets = dict(previous.get("datasets", {})) if args.overhead else {}
    for name in ([] if args.overhead else args.only):
        x, y = load(name)
        rows = {}
        for contender in CONTENDERS:
            r = run_isolated(__file__, {"dataset": name, "contender": contender, "folds": args.folds})
            if "skipped" in r:
                print(f"  {name}: {LABELS[contender]} skipped ({r['skipped']})")
            else:
                print(f"  {name}: {LABELS[contender]}: {r['score_mean']:.4f} ± {r['score_std']:.4f}"
                      + (f", log-loss {r['log_loss_mean']:.4f}" if "log_loss_mean" in r else "")
                      + f", {r['fit_wall_s']:.3f} s wall / {r['fit_cpu_s']:.3f} CPU-s per fit", file=sys.stderr)
            rows[contender] = r
        datasets[name] = {"task": DATASETS[name], "n_samples": int(x.shape[0]), "n_features": int(x.shape[1]),
                          "contenders": rows, "ratios": _ratios(rows), "swim_paper": None}
    payload["datasets"] = datasets
    payload["load_after"] = list(os.getloadavg())
    written = write_results("supervised", payload)
    table = []
    for name, d in datasets.items():
        for key, r in d["contenders"].items():
            table.append({"data": name, "contender": LABELS[key], **r})
    print()
    print(markdown_table(table, [
        ("data", "data", ""), ("contender", "contender", ""), ("metric", "metric", ""),
        ("score_mean", "score", ".4f"), ("score_std", "± std", ".4f"), ("log_loss_mean", "log-loss", ".4f"),
        ("fit_wall_s", "fit wall s", ".3f"), ("fit_cpu_s", "fit CPU s", ".3f"),
    ]))
    print()
    print(readme_table(payload))
    print(f"\nload average before {load_before[0]:.2f}, after {payload['load_after'][0]:.2f}; written to {written}")


if __name__ == "__main__":
    entry(_child, main)
