"""Training on the CPU keeps freed tensor memory for the next step (colorgan/cpu_memory.py): counted
in page faults of a real convolution step, in fresh processes (the setting is process-wide)."""

import json
import subprocess
import sys

import pytest

from colorgan.cpu_memory import glibc
from hardening_helpers import child_env

# Asked without setting anything: this process's allocator stays as it is.
pytestmark = pytest.mark.skipif(glibc() is None, reason="glibc's mallopt is not available here")

# Faults of the median step of forward + backward of one convolution on 8 x 32 x 64 x 64 (4 MiB
# activations), after `SETUP` has run. Without fixed thresholds glibc unmaps and faults most of it
# again every step. With them most steps fault nothing; now and then one still faults a 4 MiB block
# back in (1 to 3 steps of 20 here), which made a mean over the steps flaky, so the median is taken.
PROBE = """
import json, resource, statistics, sys, torch
{setup}
conv = torch.nn.Conv2d(32, 32, 3, padding=1)
x = torch.randn(8, 32, 64, 64)
for _ in range(3):
    conv(x).relu().sum().backward()
faults = []
for _ in range(21):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    conv(x).relu().sum().backward()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(statistics.median(faults)))
"""

TRAIN = """
from pathlib import Path
from colorgan.recipe import from_dict
from colorgan.train import train
train(from_dict(json.loads(sys.argv[1])), out=Path(sys.argv[2]), device="cpu")
"""


def faults_per_step(setup: str, *args: str) -> float:
    done = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup), *args], env=child_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def without():
    """Faults of the median step in a process that never fixed the thresholds."""
    return faults_per_step("")


def test_keeping_freed_memory_ends_the_page_faults_of_a_training_step(without):
    kept = faults_per_step("from colorgan.cpu_memory import keep_freed_memory; assert keep_freed_memory()")
    print(f"page faults per step: {without:.0f} without, {kept:.0f} with")
    assert without > 500  # the problem is real here: 4 MiB activations faulted back in every step
    assert kept < without / 10


def test_train_on_the_cpu_keeps_freed_memory(tmp_path, tiny_recipe, without):
    tiny_recipe["train"]["max_steps"] = 2
    after_training = faults_per_step(TRAIN, json.dumps(tiny_recipe), str(tmp_path / "run"))
    assert (tmp_path / "run" / "model.safetensors").exists()
    assert after_training < without / 10
