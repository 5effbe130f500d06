"""A study from end to end: claims → runs → one record per claim → results.json and report.md.

:func:`run_study` is what ``affectlab study`` and the app's Study view call. A record
(:class:`ClaimResult`, one per claim in ``results.json``) holds ``claim``, ``paper``, ``what``,
``baseline``, ``method``, ``metric`` (and ``baseline_metric`` where the baseline's counterpart
has another name), ``split``, ``direction``, ``seeds`` (the list), ``values`` (per-seed
``method`` and ``baseline`` values, in the order of ``seeds``), ``mean_diff`` (method −
baseline), ``ci95``, ``p_value``, ``test`` (which paired test) and ``verdict`` (holds / not
shown / reversed; :mod:`affectlab.study.stats`); ``error`` says why a claim could not be
measured (an optional package missing), with verdict "not run".
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from affectlab.fileio import atomic_write, json_safe
from affectlab.study.claims import SIZES, Claim, resolve_claims
from affectlab.study.runner import arm_runs, run_arms, seed_values
from affectlab.study.stats import TEST_NAME, paired_test, verdict

__all__ = ["NOT_RUN", "RESULTS_FILE", "ClaimResult", "claim_result", "read_results", "run_study",
           "write_results"]

RESULTS_FILE = "results.json"
NOT_RUN = "not run"


@dataclass
class ClaimResult:
    """One claim's paired result (module docstring)."""

    claim: str
    paper: str
    what: str
    baseline: str
    method: str
    metric: str
    split: str
    direction: str
    seeds: list[int]
    values: dict[str, list[float]]
    mean_diff: float | None
    ci95: list[float | None]
    p_value: float | None
    test: str
    verdict: str
    baseline_metric: str | None = None
    size: str = ""
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def mean(self, side: str) -> float:
        vals = [v for v in self.values.get(side, []) if v is not None and math.isfinite(v)]
        return sum(vals) / len(vals) if vals else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


def claim_result(c: Claim, seeds: list[int], method: list[float], baseline: list[float],
                 size: str, error: str | None = None) -> ClaimResult:
    """The record of claim ``c`` from its per-seed values."""
    common = dict(claim=c.id, paper=c.paper, what=c.what, baseline=c.baseline, method=c.method,
                  metric=c.metric, split=c.split, direction=c.direction, seeds=list(seeds),
                  test=TEST_NAME, baseline_metric=c.baseline_metric, size=size,
                  notes=list(c.notes))
    if error is not None:
        return ClaimResult(**common, values={"method": [], "baseline": []}, mean_diff=None,
                           ci95=[None, None], p_value=None, verdict=NOT_RUN, error=error)
    paired = paired_test(method, baseline)
    return ClaimResult(**common, values={"method": method, "baseline": baseline},
                       mean_diff=paired.mean_diff, ci95=list(paired.ci95),
                       p_value=paired.p_value, verdict=verdict(paired, c.direction))


def write_results(results: list[ClaimResult], out: Path) -> Path:
    """``results.json``: a list of the records, atomically (a record per claim run so far,
    earlier records of other claims kept), in the registry's order."""
    from affectlab.study.claims import CLAIMS

    path = Path(out) / RESULTS_FILE
    keep = {r["claim"]: r for r in read_results(out)}
    keep.update({r.claim: r.to_dict() for r in results})
    order = {claim_id: i for i, claim_id in enumerate(CLAIMS)}
    records = sorted(keep.values(), key=lambda r: order.get(r["claim"], len(order)))
    text = json.dumps(records, indent=2, ensure_ascii=False)
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def read_results(out: Path) -> list[dict[str, Any]]:
    """The records of ``out``'s results.json ([] when there is none or it is unreadable)."""
    path = Path(out) / RESULTS_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [r for r in data if isinstance(r, dict) and "claim" in r] if isinstance(data, list) \
        else []


def run_study(claim_ids: list[str], seeds: int | None = None, size: str = "small",
              out: Path | str = "study", progress: bool = True,
              on_run: Callable[[str, int, int], None] | None = None,
              threads: int | None = None) -> list[ClaimResult]:
    """Run the paired experiments of ``claim_ids`` (``all``: every claim) over ``seeds`` seeds
    (default: the size's), write results.json, report.md and the plots under ``out``, and
    return the records. Finished runs are reused, stopped ones resumed.
    ``on_run(label, done, total)``: called after each run (the app's progress).
    ``threads``: torch's CPU threads (None: torch's default; on a shared machine 1 is often
    much faster than 2, whose threads wait on each other)."""
    if threads is not None:
        import torch

        torch.set_num_threads(int(threads))
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    n_seeds = SIZES[size].seeds if seeds is None else int(seeds)
    if n_seeds < 1:
        raise ValueError(f"seeds must be ≥ 1, got {seeds}")
    out = Path(out)
    claims = resolve_claims(list(claim_ids))
    seed_list = list(range(n_seeds))
    jobs = arm_runs(claims, seed_list, out)
    done = [0]

    def after(job, metrics, error):
        done[0] += 1
        if on_run is not None:
            on_run(job.label, done[0], len(jobs))

    runs = run_arms(jobs, size, out, progress=progress, on_done=after)
    results = []
    for c in claims:
        method, baseline, error = seed_values(c, seed_list, runs)
        results.append(claim_result(c, seed_list, method, baseline, size, error))
    write_results(results, out)
    from affectlab.study.report import write_report

    write_report(out)
    return results
