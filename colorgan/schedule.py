"""When a run logs, samples, validates and checkpoints: the one place to change or add an event.

The training loop asks `Schedule.due(step, ending)` after every optimizer step and runs the events
it names, in the order of `EVENTS`. At the run's end (its step budget or time limit) every event
happens, so the final sample sheet, metrics and checkpoint describe the weights the run leaves
behind; at a pause (`--stop-at`, SIGINT/SIGTERM) it logs and checkpoints, and leaves quickly.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENTS = ("log", "sample", "validate", "checkpoint")


@dataclass(frozen=True)
class Schedule:
    log_every: int
    sample_every: int
    eval_every: int
    checkpoint_every: int
    validates: bool = True  # False when there is no held-out split

    @classmethod
    def from_recipe(cls, train_cfg, validates: bool) -> "Schedule":
        return cls(train_cfg.log_every, train_cfg.sample_every, train_cfg.eval_every,
                   train_cfg.checkpoint_every, validates)

    def due(self, step: int, ending: str | None = None) -> list[str]:
        """The events of `step`, in order; `ending` is None, "end" or "pause"."""
        every = {"log": self.log_every, "sample": self.sample_every,
                 "validate": self.eval_every if self.validates else 0,
                 "checkpoint": self.checkpoint_every}
        forced = set(EVENTS) if ending == "end" else {"log", "checkpoint"} if ending == "pause" else set()
        return [e for e in EVENTS if every[e] and (e in forced or step % every[e] == 0)]
