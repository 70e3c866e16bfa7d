"""An exponential moving average of the generator's weights (`train.ema`), kept on the device.

`torch.optim.swa_utils.AveragedModel` reads its update counter on the host at every update (to
copy the weights the first time), which makes the host wait for the device each step. Here the
average starts as a copy of the generator and every update is one `_foreach_lerp_` with a Python
number: nothing to read back. (The first update of AveragedModel would have copied the weights
after step 1 instead; the two averages differ by the weight `decay ** steps` on one step.)

Checkpoints hold it as `ema.safetensors` beside Accelerate's files, so export finds it by name.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from colorgan.errors import ColorganError

FILE = "ema.safetensors"


class EMA:
    """`module` holds the average of `model` (parameters and floating-point buffers, such as
    BatchNorm's running statistics); integer buffers are copied.

    The pairs of tensors are found once: training updates the model's tensors in place (optimizer
    steps, BatchNorm, `load_state_dict` on resume), so the step only runs the arithmetic."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).requires_grad_(False)
        self.decay = decay
        mine, theirs = self.module.state_dict(), model.state_dict()
        floats = [k for k, v in mine.items() if v.is_floating_point()]
        self._averaged, self._current = [mine[k] for k in floats], [theirs[k] for k in floats]
        self._copied = [(mine[k], theirs[k]) for k in mine if not mine[k].is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        """average <- decay * average + (1 - decay) * model, on the device, without a host read."""
        torch._foreach_lerp_(self._averaged, self._current, 1.0 - self.decay)
        for mine, theirs in self._copied:
            mine.copy_(theirs)

    def save(self, folder: Path) -> None:
        save_file({k: v.contiguous() for k, v in self.module.state_dict().items()}, str(folder / FILE))

    def load(self, folder: Path) -> None:
        """The average a checkpoint saved; a one-line error when it holds none."""
        if not (folder / FILE).is_file():
            raise ColorganError(f"{folder}: no {FILE}: this checkpoint was saved without train.ema (or by a colorgan "
                                "that kept the EMA in Accelerate's custom_checkpoint_*.pkl); resume it without train.ema")
        self.module.load_state_dict(load_file(str(folder / FILE), device=str(next(self.module.parameters()).device)))
