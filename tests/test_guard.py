"""The device-side non-finite guard: a flagged step leaves fused Adam's state untouched, and the host
learns of it only when it reads the guard."""

import math

import torch

from colorgan.guard import NonFiniteGuard, apply_guard


def adam_after_two_steps(fused: bool, second_is_bad: bool):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1, fused=fused)
    guard = NonFiniteGuard()
    applied = []
    for step, bad in ((1, False), (2, second_is_bad)):
        loss = model(torch.randn(3, 4)).pow(2).mean() * (math.nan if bad else 1.0)
        loss.backward()
        guard.observe(torch.stack([loss.detach(), loss.detach(), loss.detach(), loss.detach()]))
        found = guard.close_window(step)
        if apply_guard(opt, found):
            opt.step()
            applied.append(step)
        opt.zero_grad(set_to_none=True)
    state = opt.state[model.weight]
    return model.weight.detach().clone(), state["exp_avg"].clone(), float(state["step"]), guard, applied


def test_fused_adam_skips_a_flagged_step_on_the_device():
    w1, m1, step1, _, _ = adam_after_two_steps(fused=True, second_is_bad=False)
    # One good step only, for reference.
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)
    model(torch.randn(3, 4)).pow(2).mean().backward()
    opt.step()
    w_one, m_one = model.weight.detach().clone(), opt.state[model.weight]["exp_avg"].clone()

    w2, m2, step2, guard, applied = adam_after_two_steps(fused=True, second_is_bad=True)
    assert applied == [1, 2]  # the host never looked: the device decided
    assert step1 == 2.0 and step2 == 1.0
    assert torch.equal(w2, w_one) and torch.equal(m2, m_one) and not torch.equal(w1, w2)
    bad = guard.read()
    assert [s for s, _ in bad] == [2] and math.isnan(bad[0][1]["d_loss"])
    assert guard.read() == []  # read once


def test_a_non_fused_optimizer_is_skipped_by_the_host():
    w2, _, step2, guard, applied = adam_after_two_steps(fused=False, second_is_bad=True)
    assert applied == [1] and step2 == 1.0 and torch.isfinite(w2).all()
    assert [s for s, _ in guard.read()] == [2]


def test_the_losses_up_to_g_loss_are_judged_with_a_discriminator_or_without():
    """With a discriminator d_loss and g_loss are judged; without one (no d_loss) g_loss alone. A
    term after them is not (g_loss sums the weighted terms: a term that matters makes it NaN too)."""
    nan = math.nan
    for names, losses, bad in [(("d_loss", "g_loss", "l1"), [nan, 1.0, 1.0], True),
                               (("d_loss", "g_loss", "l1"), [1.0, 1.0, nan], False),
                               (("g_loss", "l1"), [nan, 1.0], True),
                               (("g_loss", "l1"), [1.0, nan], False)]:
        guard = NonFiniteGuard(names)
        guard.observe(torch.tensor(losses))
        assert bool(guard.close_window(1)) == bad, (names, losses)
