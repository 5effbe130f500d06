"""Background study process: ``python -m affectlab.study.worker --out DIR [--size S]
[--seeds N] [--threads T] CLAIM...`` (started by :func:`affectlab.study.jobs.launch_study`). Writes
``progress.json`` after every run and its final state (finished, or failed with the message)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m affectlab.study.worker")
    parser.add_argument("claims", nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", default="small")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    from affectlab.study.jobs import write_progress
    from affectlab.study.results import run_study

    def on_run(label: str, done: int, total: int) -> None:
        write_progress(args.out, state="running", done=done, total=total, current=label)

    try:
        results = run_study(args.claims, args.seeds, args.size, args.out, progress=False,
                            on_run=on_run, threads=args.threads)
    except Exception as exc:  # noqa: BLE001 - reported to the app, then re-raised to the log
        write_progress(args.out, state="failed", message=f"{type(exc).__name__}: {exc}")
        raise
    write_progress(args.out, state="finished", current="",
                   message=f"{len(results)} claim(s) written to results.json and report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
