"""The study's report: ``report.md`` (the table of claims, then one section and one PNG per
claim) from ``results.json``.

Plots are drawn with matplotlib's Agg backend (no display, no browser): for each claim the
per-seed values of the baseline and the method side by side, one line per seed joining the
pair (the paired comparison the test makes), the means marked.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from affectlab.fileio import atomic_write
from affectlab.study.results import NOT_RUN, read_results
from affectlab.study.stats import ALPHA, TEST_NAME

__all__ = ["PLOTS_DIR", "REPORT_FILE", "format_table", "plot_claim", "plot_path",
           "results_frame", "write_report"]

REPORT_FILE = "report.md"
PLOTS_DIR = "plots"


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _p(value: Any) -> str:
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _mean(values: list[Any]) -> float:
    vals = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else float("nan")


def _metric(r: dict[str, Any]) -> str:
    better = "↑" if r.get("direction") == "higher" else "↓"
    metric = r["metric"] if not r.get("baseline_metric") else \
        f"{r['metric']} (baseline: {r['baseline_metric']})"
    return f"{r.get('split', 'test')} {metric} {better}"


def format_table(results: list[dict[str, Any]]) -> str:
    """The markdown table of every claim: seeds, baseline and method means, mean difference
    with its 95 % CI, p and the verdict."""
    lines = ["| claim | paper | baseline → method | metric | seeds | baseline | method | "
             "mean diff [95 % CI] | p | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        vals = r.get("values") or {}
        ci = r.get("ci95") or [None, None]
        diff = (f"{_num(r.get('mean_diff'))} [{_num(ci[0])}, {_num(ci[1])}]"
                if r.get("verdict") != NOT_RUN else "–")
        verdict = r.get("verdict", "")
        verdict = f"**{verdict}**" if verdict in ("holds", "reversed") else verdict
        lines.append(f"| {r['claim']} | {r.get('paper', '')} | {r['baseline']} → {r['method']} "
                     f"| {_metric(r)} | {len(r.get('seeds', []))} | "
                     f"{_num(_mean(vals.get('baseline', [])))} | "
                     f"{_num(_mean(vals.get('method', [])))} | {diff} | {_p(r.get('p_value'))} "
                     f"| {verdict} |")
    return "\n".join(lines)


def results_frame(results: list[dict[str, Any]]):
    """The records as a table for display: one row per claim (means, difference, CI, p,
    verdict)."""
    import pandas as pd

    rows = []
    for r in results:
        vals, ci = r.get("values") or {}, r.get("ci95") or [None, None]
        rows.append({"claim": r["claim"], "paper": r.get("paper", ""),
                     "comparison": f"{r['baseline']} → {r['method']}", "metric": _metric(r),
                     "seeds": len(r.get("seeds", [])),
                     "baseline": _mean(vals.get("baseline", [])),
                     "method": _mean(vals.get("method", [])), "mean diff": r.get("mean_diff"),
                     "ci low": ci[0], "ci high": ci[1], "p": r.get("p_value"),
                     "verdict": r.get("verdict", "")})
    return pd.DataFrame(rows)


def plot_path(out: Path, claim_id: str) -> Path:
    return Path(out) / PLOTS_DIR / f"{claim_id}.png"


def plot_claim(r: dict[str, Any], path: Path) -> Path | None:
    """The claim's PNG at ``path`` (None when it has no values)."""
    vals = r.get("values") or {}
    base, meth = vals.get("baseline") or [], vals.get("method") or []
    if not base or not meth:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.2), dpi=110)
    try:
        for seed, b, m in zip(r.get("seeds", range(len(base))), base, meth, strict=False):
            if b is None or m is None:
                continue
            ax.plot([0, 1], [b, m], "-o", color="0.6", lw=1, ms=4)
            ax.annotate(f"s{seed}", (1, m), xytext=(4, 0), textcoords="offset points",
                        fontsize=7, va="center", color="0.4")
        for x, side in ((0, base), (1, meth)):
            ax.plot([x - 0.15, x + 0.15], [_mean(side)] * 2, color="tab:red", lw=2.5)
        ax.set_xticks([0, 1], [r["baseline"], r["method"]])
        ax.set_xlim(-0.5, 1.6)
        name = (r["metric"] if not r.get("baseline_metric") else
                f"{r['baseline_metric']} / {r['metric']}")
        better = "higher" if r.get("direction") == "higher" else "lower"
        ax.set_ylabel(f"{r.get('split', 'test')} {name} ({better} is better)", fontsize=8)
        ax.set_title(f"{r['claim']}: {r.get('verdict', '')} (p {_p(r.get('p_value'))})",
                     fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def _section(r: dict[str, Any], plot: Path | None) -> list[str]:
    lines = [f"### {r['claim']} ({r.get('paper', '')})", "", r.get("what", ""), ""]
    if r.get("error"):
        return [*lines, f"Not run: {r['error']}", ""]
    vals = r.get("values") or {}
    lines.append("| seed | " + r["baseline"] + " | " + r["method"] + " |")
    lines.append("|---|---|---|")
    for seed, b, m in zip(r.get("seeds", []), vals.get("baseline", []), vals.get("method", []),
                          strict=False):
        lines.append(f"| {seed} | {_num(b, 4)} | {_num(m, 4)} |")
    lines += ["", f"Metric: {_metric(r)}. Mean difference (method − baseline) "
              f"{_num(r.get('mean_diff'), 4)}, p = {_p(r.get('p_value'))}: "
              f"**{r.get('verdict', '')}**.", ""]
    lines += [f"{n}." for n in r.get("notes") or []]
    if plot is not None:
        lines += ["", f"![{r['claim']}]({PLOTS_DIR}/{plot.name})", ""]
    return lines


def write_report(out: Path) -> Path:
    """``report.md`` and ``plots/<claim>.png`` from ``out``'s results.json."""
    out = Path(out)
    results = read_results(out)
    sizes = sorted({r.get("size", "") for r in results} - {""})
    lines = ["# Study: the seed papers' claims on the truth-known benchmark", "",
             f"Size: {', '.join(sizes) or '?'}. Each claim compares a method with its "
             "baseline on the same generated corpus, seed by seed (same data, same training "
             f"seed, same model and schedule). Test: {TEST_NAME}; a claim *holds* when the "
             f"mean difference is in the claimed direction with p < {ALPHA}, is *reversed* "
             "when it is in the other direction with p < 0.05, and is *not shown* otherwise.",
             "", format_table(results), ""]
    for r in results:
        plot = plot_claim(r, plot_path(out, r["claim"]))
        lines += _section(r, plot)
    text = "\n".join(lines).rstrip() + "\n"
    path = out / REPORT_FILE
    atomic_write(path, lambda f: f.write(text.encode()))
    return path
