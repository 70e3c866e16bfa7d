"""An exponential moving average of the generator's weights (`train.ema`), kept on the device.

`torch.optim.swa_utils.AveragedModel` reads its update counter on the host at every update (to
copy the weights the first time), which makes the host wait for the device each step. Here the
average starts as a copy of the generator and every update is one `_foreach_lerp_` with a Python
number: nothing to read back. (The first update of AveragedModel would have copied the weights
after step 1 instead; the two averages differ by the weight `decay ** steps` on one step.)

Only the parameters are averaged. BatchNorm's running statistics describe the activations of the
weights that gathered them; averaged along with the weights they do not fit the average, and the
model drawn with them is wrong (issue 11's Twemoji set, 18 epochs of real-icons with `train.ema:
0.999`: 11.81 dB held-out; the same average with its statistics recomputed: 18.93 dB). So, as for
SWA, they are recomputed for the averaged weights (`torch.optim.swa_utils.update_bn`) from training
rows whenever the average is used: sampled, validated, checkpointed or exported.

Checkpoints hold it as `ema.safetensors` beside Accelerate's files, so export finds it by name.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch
from safetensors.torch import load_file, save_file

from colorgan.errors import ColorganError
from colorgan.hardware import generators_restored

FILE = "ema.safetensors"


class EMA:
    """`module` holds the average of `model`'s parameters; its buffers (normalisation statistics)
    are left to `fit_norm_statistics`.

    The pairs of tensors are found once: training updates the model's parameters in place
    (optimizer steps, `load_state_dict` on resume), so the step only runs the arithmetic."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).requires_grad_(False)
        self.decay = decay
        self._averaged = [p.detach() for p in self.module.parameters()]
        self._current = [p.detach() for p in model.parameters()]
        self._fitted_at: int | None = None

    @torch.no_grad()
    def update(self) -> None:
        """average <- decay * average + (1 - decay) * model, on the device, without a host read."""
        torch._foreach_lerp_(self._averaged, self._current, 1.0 - self.decay)
        self._fitted_at = None

    def fit_norm_statistics(self, step: int, batches: Callable[[], Iterable[Mapping[str, torch.Tensor]]]) -> None:
        """Recompute the average's BatchNorm statistics from `batches()` (training batches: their
        "sketch" and "cond" are what the generator draws from), once per `step`: sampling,
        validation and a checkpoint at one step share it."""
        if self._fitted_at == step:
            return
        # The pass draws dropout masks in training mode: restored, training's stream is left as it
        # was, however often a run samples or validates.
        with generators_restored(next(self.module.parameters()).device):
            torch.optim.swa_utils.update_bn(batches(), _Drawing(self.module))
        self._fitted_at = step

    def save(self, folder: Path) -> None:
        save_file({k: v.contiguous() for k, v in self.module.state_dict().items()}, str(folder / FILE))

    def load(self, folder: Path) -> None:
        """The average a checkpoint saved; a one-line error when it holds none."""
        if not (folder / FILE).is_file():
            raise ColorganError(f"{folder}: no {FILE}: this checkpoint was saved without train.ema (or by a colorgan "
                                "that kept the EMA in Accelerate's custom_checkpoint_*.pkl); resume it without train.ema")
        self.module.load_state_dict(load_file(str(folder / FILE), device=str(next(self.module.parameters()).device)))


class _Drawing(torch.nn.Module):
    """The generator drawing a training batch, for `update_bn`, which hands its model each batch as
    one argument (a mapping: a tuple would be cut to its first element)."""

    def __init__(self, generator: torch.nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.generator(batch["sketch"], batch["cond"])
