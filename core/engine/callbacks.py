"""What happens around the training loop, as callbacks (Lightning's hooks, composer's events).

The :class:`~affectlab.engine.trainer.Trainer` calls each hook of every callback in order;
hooks receive the trainer (its config, run directory, method, epoch, history, ...). The loop
itself only trains and evaluates; these do the rest:

- :class:`EventLog`: the run's event log the app follows (start / step / epoch / end | error
  | cancelled; see :mod:`affectlab.engine.events`)
- :class:`ProgressBar`: a tqdm bar per epoch in the foreground (and, first, which classes a
  fine-tuned head mapped)
- :class:`Checkpointer`: the best checkpoint at each better validation UAR, the last one (the
  one before kept as the previous checkpoint) every ``checkpoint_every`` epochs and at the end
- :class:`TruthMeasures`: on generated data, how close the predictions come to the true
  distributions and, on the training split, how well the uncertainty for the trained label
  finds the flipped labels
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from affectlab.engine.checkpoint import resumable_state, weights_state
from affectlab.engine.evaluate import SplitPredictions
from affectlab.engine.truth import truth_measures

if TYPE_CHECKING:
    from affectlab.engine.trainer import Trainer

__all__ = ["SELECT_METRIC", "Callback", "Checkpointer", "EventLog", "ProgressBar", "StepInfo",
           "TruthMeasures", "default_callbacks"]

SELECT_METRIC = "uar"  # validation metric that picks the best checkpoint
STEP_EVENTS_PER_EPOCH = 20  # step events are thinned to about this many per epoch


@dataclass(frozen=True)
class StepInfo:
    """One finished training step: ``epoch`` and ``index`` 0-based, ``n_batches`` in the epoch,
    ``losses`` as floats, ``n_items`` in the batch."""

    epoch: int
    index: int
    n_batches: int
    losses: dict[str, float]
    n_items: int

    @property
    def last_of_epoch(self) -> bool:
        return self.index + 1 == self.n_batches


class Callback:
    """Base class: every hook does nothing. A callback that writes files should do so only on
    the main process (``trainer.dist.main``)."""

    def on_start(self, trainer: Trainer) -> None:
        """Set-up done (resumed, if resuming); before the first epoch."""

    def on_epoch_start(self, trainer: Trainer, epoch: int, n_batches: int) -> None:
        """Before the first step of ``epoch`` (0-based)."""

    def on_step_end(self, trainer: Trainer, step: StepInfo) -> None:
        """After each optimiser step."""

    def on_evaluate(self, trainer: Trainer, split: str, pred: SplitPredictions,
                    metrics: dict[str, float]) -> None:
        """After a prediction pass over ``split``; may add entries to ``metrics``."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """After an epoch's validation; ``record`` = {epoch (1-based), losses, val}, already in
        ``trainer.history``."""

    def on_end(self, trainer: Trainer, final: dict[str, Any]) -> None:
        """After the final evaluation and outputs; ``final`` is what the final metrics file holds."""

    def on_cancel(self, trainer: Trainer, message: str | None) -> None:
        """The run was stopped (a cancel request, or ``message="interrupted"``)."""

    def on_error(self, trainer: Trainer, exc: BaseException) -> None:
        """The run failed with ``exc`` (called inside the ``except`` block)."""


class EventLog(Callback):
    """Writes the event log the app follows (rank 0 only: the trainer's EventWriter is off on
    the other ranks)."""

    def on_start(self, trainer: Trainer) -> None:
        trainer.events.emit("start", epochs=trainer.config.epochs, start_epoch=trainer.start_epoch,
                            steps_per_epoch=trainer.steps_per_epoch, n_train=len(trainer.train_ds),
                            n_val=len(trainer.eval_sets.get("val", ())),
                            device=str(trainer.device), amp=trainer.amp,
                            world_size=trainer.dist.world, pid=trainer.pid,
                            threads=torch.get_num_threads())
        for message in trainer.data_notices:
            trainer.events.emit("notice", message=message)

    def on_step_end(self, trainer: Trainer, step: StepInfo) -> None:
        every = max(1, step.n_batches // STEP_EVENTS_PER_EPOCH)
        if (step.index + 1) % every == 0 or step.last_of_epoch:
            trainer.events.emit("step", epoch=step.epoch + 1, step=step.index + 1,
                                global_step=trainer.global_step, losses=step.losses,
                                samples_per_s=trainer.clock.samples_per_s(),
                                eta_s=trainer.clock.eta_s())

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        trainer.events.emit("epoch", epoch=record["epoch"], global_step=trainer.global_step,
                            losses=record["losses"], metrics=record["val"],
                            samples_per_s=trainer.clock.samples_per_s(),
                            eta_s=trainer.clock.eta_s())

    def on_end(self, trainer: Trainer, final: dict[str, Any]) -> None:
        trainer.events.emit("end", epoch=trainer.epoch,
                            metrics={"test": final.get("test", {}), "val": final.get("val", {})})

    def on_cancel(self, trainer: Trainer, message: str | None) -> None:
        fields = {"message": message} if message else {}
        trainer.events.emit("cancelled", epoch=trainer.epoch, **fields)

    def on_error(self, trainer: Trainer, exc: BaseException) -> None:
        trainer.events.emit("error", epoch=trainer.epoch, message=f"{type(exc).__name__}: {exc}",
                            traceback=traceback.format_exc())


class ProgressBar(Callback):
    """A tqdm bar per epoch with the running loss (main process only)."""

    def __init__(self) -> None:
        self.bar = None

    def on_start(self, trainer: Trainer) -> None:
        if not trainer.dist.main:
            return
        from tqdm import tqdm

        if trainer.head_init is not None:
            tqdm.write(trainer.head_init.summary())  # which classes a fine-tuned head mapped
        for message in trainer.data_notices:  # items left out, an empty val or test split
            tqdm.write(f"notice: {message}")

    def on_epoch_start(self, trainer: Trainer, epoch: int, n_batches: int) -> None:
        if not trainer.dist.main:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{trainer.config.epochs}",
                        leave=False, dynamic_ncols=True)

    def on_step_end(self, trainer: Trainer, step: StepInfo) -> None:
        if self.bar is None:
            return
        self.bar.set_postfix(loss=f"{step.losses['loss']:.4f}")
        self.bar.update(1)
        if step.last_of_epoch:
            self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_cancel(self, trainer: Trainer, message: str | None) -> None:
        self._close()

    def on_error(self, trainer: Trainer, exc: BaseException) -> None:
        self._close()


class Checkpointer(Callback):
    """The best checkpoint when the validation UAR improves (every epoch without a validation
    split), the last one every ``checkpoint_every`` epochs and at the last epoch, the replaced
    last kept as the previous one; a ``checkpoint`` event for each last (main process only)."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if not trainer.dist.main:
            return
        run, epoch = trainer.run, record["epoch"]
        value = record["val"].get(SELECT_METRIC)
        best = trainer.best
        improved = value is not None and (best["value"] is None or value > best["value"])
        if improved or "val" not in trainer.eval_sets:
            trainer.best = {"epoch": epoch, "metric": SELECT_METRIC, "value": value}
            run.save_checkpoint(weights_state(trainer.method, trainer.info, trainer.model_info,
                                              epoch), "best")
        if epoch % trainer.config.checkpoint_every == 0 or epoch == trainer.config.epochs:
            # after a resume from the previous checkpoint past a damaged last one, the damaged
            # file is replaced without becoming the previous one
            path = run.save_checkpoint(resumable_state(trainer), "last",
                                       keep_previous=trainer.rotate_last)
            trainer.rotate_last = True
            trainer.events.emit("checkpoint", epoch=epoch, path=str(path))


class TruthMeasures(Callback):
    """Adds the truth-known measures (:func:`affectlab.engine.truth.truth_measures`: kl_truth,
    kl_nonlabel_truth, the floor kl_ratings_truth, kl_latent_truth, nmi_truth, recall@K_truth;
    on the training split auroc_flipped and sub-class recovery) to every evaluation on
    generated data: validation after every epoch, every output split at the end."""

    def on_evaluate(self, trainer: Trainer, split: str, pred: SplitPredictions,
                    metrics: dict[str, float]) -> None:
        metrics.update(truth_measures(pred, trainer.config.seed))


def default_callbacks(progress: bool) -> list[Callback]:
    """The trainer's callbacks: truth measures, event log, checkpoints (and a progress bar)."""
    callbacks: list[Callback] = [TruthMeasures(), EventLog(), Checkpointer()]
    if progress:
        callbacks.append(ProgressBar())
    return callbacks
