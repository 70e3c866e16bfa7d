"""Generator objective terms: `gan`, `l1`, `l2`, `region`, `feature_matching`, `lab`. A recipe's
`objective` is a weighted list of them.

A term sees everything one step knows (`ObjectiveInputs`): the generated and the real image, the
sketch, the condition vector, the frozen discriminator's logits on the fake, the recipe's
adversarial loss, the pixels the conditions colour, and the frozen discriminator's activations on
any image. So a plugin can add a perceptual, feature-matching or colour-region term with
`@OBJECTIVES.register("name")` and use it from a recipe without touching the training step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from colorgan.colour import srgb_to_lab
from colorgan.registry import OBJECTIVES


@dataclass
class ObjectiveInputs:
    fake: torch.Tensor        # (B, C, H, W) generator output in [-1, 1]
    target: torch.Tensor      # (B, C, H, W) ground truth in [-1, 1]
    sketch: torch.Tensor      # (B, S, H, W)
    cond: torch.Tensor        # (B, D) the condition vector the generator saw
    d_fake: Any               # the frozen discriminator's logits on (fake, sketch, cond); None when no
                              # term reads the discriminator (`needs_discriminator`)
    adversarial: Any          # the recipe's `loss` component (`g_loss(logits)`)
    region: torch.Tensor | None = None  # (B, 1, H, W): 1 where the character's colours follow its conditions
                                        # (given when a term of the objective has `needs_region = True`)
    features: Callable[[torch.Tensor], list[torch.Tensor]] | None = None  # image -> the frozen D's activations


def discriminator_features(discriminator: torch.nn.Module, sketch: torch.Tensor,
                           cond: torch.Tensor) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    """image -> the output of every LeakyReLU of `discriminator` on (image, sketch, cond), in order:
    the features a matching term compares (the built-in discriminators' trunks end each layer with
    one). Read through forward hooks, so a discriminator needs no API of its own for it."""

    def features(image: torch.Tensor) -> list[torch.Tensor]:
        found: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda module, args, out: found.append(out))
                 for m in discriminator.modules() if isinstance(m, torch.nn.LeakyReLU)]
        try:
            discriminator(image, sketch, cond)
        finally:
            for hook in hooks:
                hook.remove()
        if not found:
            raise ValueError(f"{type(discriminator).__name__} has no LeakyReLU layers whose features could be matched")
        return found

    return features


class Term:
    """A term without options: an explicit constructor, so a recipe's unknown option is refused
    (a term with options takes them as keywords of its own `__init__`)."""

    log_key: str

    def __init__(self) -> None:
        super().__init__()


@OBJECTIVES.register("gan")
class AdversarialTerm(Term):
    """The recipe's adversarial loss on the frozen discriminator's view of the fake (logged as g_gan)."""

    log_key = "g_gan"

    def __call__(self, x: ObjectiveInputs) -> torch.Tensor:
        return x.adversarial.g_loss(x.d_fake)


@OBJECTIVES.register("l1")
class L1Term(Term):
    """Mean absolute difference to the target in [-1, 1] RGB: pix2pix's reconstruction term."""

    log_key = "l1"
    needs_discriminator = False  # a term that does not say so is assumed to read it

    def __call__(self, x: ObjectiveInputs) -> torch.Tensor:
        return (x.fake.float() - x.target.float()).abs().mean()


@OBJECTIVES.register("l2")
class L2Term(Term):
    """Mean squared difference to the target in [-1, 1] RGB. Where the sketch cannot say a colour (an
    unseen character's clothes), L1 is least for the median guess and L2 for the mean, which is the
    guess PSNR scores best."""

    log_key = "l2"
    needs_discriminator = False

    def __call__(self, x: ObjectiveInputs) -> torch.Tensor:
        return (x.fake.float() - x.target.float()).square().mean()


@OBJECTIVES.register("region")
class RegionTerm(Term):
    """Mean absolute difference over the pixels whose colour the conditions set (`region`: where a
    training character's variants differ). The colours asked for are a small part of an image; in
    a whole-image L1 the rest (an unseen character's clothes) outweighs them."""

    log_key = "region_l1"
    needs_region = True  # training batches carry the regions only for a term that says so
    needs_discriminator = False

    def __call__(self, x: ObjectiveInputs) -> torch.Tensor:
        if x.region is None:
            raise ValueError("the region term needs the batch's condition regions (training batches carry them)")
        error = (x.fake.float() - x.target.float()).abs().mean(dim=1, keepdim=True) * x.region
        return error.sum() / x.region.sum().clamp_min(1.0)


@OBJECTIVES.register("feature_matching")
class FeatureMatchingTerm(Term):
    """pix2pixHD's feature matching (Wang et al. 2018): the mean L1 between the frozen discriminator's
    activations on the fake and on the real image, layer by layer — the fake should look like the
    real one at every depth of the discriminator, not only in its verdict. Costs two more
    discriminator passes per step."""

    log_key = "fm"

    def __call__(self, x: ObjectiveInputs) -> torch.Tensor:
        if x.features is None:
            raise ValueError("the feature_matching term needs the discriminator's features (training steps give them)")
        with torch.no_grad():
            real = x.features(x.target)
        fake = x.features(x.fake)
        return sum((f.float() - r.float()).abs().mean() for f, r in zip(fake, real)) / len(real)


@OBJECTIVES.register("lab")
class LabTerm(Term):
    """Mean absolute CIELAB difference to the target, in units of 100 (L's range): colour error as the
    eye sees it, so a wrong skin or hair tone costs what it looks like, not what RGB says."""

    log_key = "lab"
    needs_discriminator = False

    def __call__(self, x: ObjectiveInputs) -> torch.Tensor:
        def lab(image: torch.Tensor) -> torch.Tensor:
            rgb = ((image[:, :3].float() + 1) / 2).clamp(0, 1).movedim(1, -1)
            return srgb_to_lab(rgb)

        return (lab(x.fake) - lab(x.target)).abs().mean() / 100.0
