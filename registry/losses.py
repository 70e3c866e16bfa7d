"""GAN losses: `vanilla`, `lsgan`, `hinge`.

Each takes the discriminator's logits as one tensor or, for a multiscale discriminator, a list of
tensors (one per scale): the loss is computed per scale and averaged over the list. Logits are
cast to float32 first, so bf16 / fp16 discriminators give float32 losses.

`d_loss` is the SUM of the real and the fake term (pix2pix halves it; with Adam a constant factor
makes next to no difference). The L1 term and its weight are the recipe's, not the loss's.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F

from colorgan.registry import LOSSES

Logits = Union[torch.Tensor, Sequence[torch.Tensor]]


def _as_list(logits: Logits, what: str) -> list[torch.Tensor]:
    if isinstance(logits, torch.Tensor):
        return [logits]
    items = list(logits)
    if not items or not all(isinstance(t, torch.Tensor) for t in items):
        raise ValueError(f"{what}: expected a tensor or a non-empty list of tensors")
    return items


class GANLoss:
    """Base: subclasses give the per-tensor terms `_d(real, fake)` and `_g(fake)` (float32 inputs)."""

    def d_loss(self, real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
        """Discriminator loss: real logits should say real, fake ones fake."""
        real = _as_list(real_logits, "real_logits")
        fake = _as_list(fake_logits, "fake_logits")
        if len(real) != len(fake):
            raise ValueError(f"d_loss: {len(real)} real logit maps but {len(fake)} fake ones")
        return _mean([self._d(r.float(), f.float()) for r, f in zip(real, fake)])

    def g_loss(self, fake_logits: Logits) -> torch.Tensor:
        """Generator (adversarial) loss: fake logits should say real."""
        return _mean([self._g(f.float()) for f in _as_list(fake_logits, "fake_logits")])

    def _d(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _g(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _mean(terms: list[torch.Tensor]) -> torch.Tensor:
    return terms[0] if len(terms) == 1 else torch.stack(terms).mean()


def _target(fn: Callable[..., torch.Tensor], logits: torch.Tensor, value: float) -> torch.Tensor:
    return fn(logits, torch.full_like(logits, value))


@LOSSES.register("vanilla")
class VanillaLoss(GANLoss):
    """Original GAN loss, binary cross-entropy on logits (pix2pix's default).

    D: BCE(real, 1) + BCE(fake, 0). G: BCE(fake, 1) (the non-saturating form). No options.
    """

    def __init__(self) -> None:
        pass

    def _d(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits
        return _target(bce, real, 1.0) + _target(bce, fake, 0.0)

    def _g(self, fake: torch.Tensor) -> torch.Tensor:
        return _target(F.binary_cross_entropy_with_logits, fake, 1.0)


@LOSSES.register("lsgan")
class LSGANLoss(GANLoss):
    """Least-squares GAN loss (Mao et al. 2017): mean squared error to 1 (real) and 0 (fake).

    D: MSE(real, 1) + MSE(fake, 0). G: MSE(fake, 1). No options.
    """

    def __init__(self) -> None:
        pass

    def _d(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return _target(F.mse_loss, real, 1.0) + _target(F.mse_loss, fake, 0.0)

    def _g(self, fake: torch.Tensor) -> torch.Tensor:
        return _target(F.mse_loss, fake, 1.0)


@LOSSES.register("hinge")
class HingeLoss(GANLoss):
    """Hinge GAN loss (SAGAN / BigGAN; pairs well with spectral norm and `projection`).

    D: mean(relu(1 - real)) + mean(relu(1 + fake)). G: -mean(fake). No options.
    """

    def __init__(self) -> None:
        pass

    def _d(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def _g(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()
