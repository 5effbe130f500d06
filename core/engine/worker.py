"""Background training process: ``python -m affectlab.engine.worker RUN_DIR [--resume]``.

Started by :func:`affectlab.engine.jobs.launch_background` (in its own session, output to
the run's worker log); also the entry point under ``torchrun`` for multi-process training.
Reads the run's config and trains. SIGTERM is turned into a cancel request, so the loop
stops at the next step with a ``cancelled`` event and the last checkpoint kept.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m affectlab.engine.worker")
    parser.add_argument("run_dir", type=Path, help="run directory holding its config")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    plugins = os.environ.get("AFFECTLAB_PLUGINS", "")
    for name in filter(None, (m.strip() for m in plugins.split(","))):
        importlib.import_module(name)

    from affectlab.engine.rundir import RunDir
    from affectlab.engine.trainer import train

    run = RunDir(args.run_dir.resolve())
    run_dir = run.path
    config = run.load_config()
    if config.run_dir() != run_dir:
        config = config.model_copy(update={"out": run_dir})
    terminated = {"flag": False}

    def on_term(signum, frame):  # noqa: ARG001 - signal handler signature
        terminated["flag"] = True

    signal.signal(signal.SIGTERM, on_term)
    result = train(config, progress=False, resume=args.resume,
                   should_stop=lambda: terminated["flag"] or run.cancel_requested(),
                   clear_cancel=False)
    print(f"run {run_dir}: {result.status} after {result.epochs_done} epoch(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
