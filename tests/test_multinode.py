"""Two machines on one: multi-node training, a node lost, a rank stuck, an elastic restart.

Each host is a Linux network namespace holding one end of a veth pair, named `cg` on both sides
(10.77.0.1 and 10.77.0.2), so every byte between the nodes crosses a real network interface. Both
see this machine's filesystem, as cluster nodes see shared storage, so the run folder is shared.
Needs root and `ip netns` (skipped otherwise); every process in a test's namespaces is killed and
the namespaces deleted when it ends, passed or failed. Runs are compared with one process training
the same global batch (instance norm, as in tests/test_distributed.py).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file

from colorgan import recipe as recipes
from colorgan.errors import ColorganError
from colorgan.run_state import checkpoint_dirs
from colorgan.train import train
from hardening_helpers import child_env, logged_steps

ROOT = Path(__file__).resolve().parent.parent
ADDRS = ("10.77.0.1", "10.77.0.2")  # exist only inside the namespaces
_tags = itertools.count()

FAULT_PLUGIN = '''
"""Test plugin: with CG_FAULT="hang|exit RANK AT", that rank hangs (after writing the file
CG_FAULT_MARKER) or exits at its AT-th discriminator loss (step AT), in a torchrun agent's first
attempt only: the workers it restarts run clean. The loss itself is LSGAN's, unchanged."""
import os
import time
from pathlib import Path

from colorgan.registry.losses import LSGANLoss

action, rank, at = os.environ.get("CG_FAULT", "none -1 0").split()
if os.environ.get("RANK") == rank and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
    _d_loss, _calls = LSGANLoss.d_loss, [0]

    def d_loss(self, real, fake):
        _calls[0] += 1
        if _calls[0] == int(at):
            if action == "exit":
                os._exit(1)
            Path(os.environ["CG_FAULT_MARKER"]).write_text("hanging")
            while True:
                time.sleep(1)
        return _d_loss(self, real, fake)

    LSGANLoss.d_loss = d_loss
'''


class Hosts:
    """Two namespace hosts; `launch` runs a command on each."""

    def __init__(self, logs: Path) -> None:
        tag = f"{os.getpid()}x{next(_tags)}"  # a crashed earlier run's names cannot collide
        self.names = [f"cgn{tag}a", f"cgn{tag}b"]
        self.veths = [f"cgv{tag}a", f"cgv{tag}b"]
        self.logs = logs
        self.procs: list[subprocess.Popen] = []

    def up(self) -> None:
        (a, b), (va, vb) = self.names, self.veths
        steps = [["netns", "add", a], ["netns", "add", b], ["link", "add", va, "type", "veth", "peer", "name", vb],
                 ["link", "set", va, "netns", a], ["link", "set", vb, "netns", b]]
        for ns, veth, addr in zip(self.names, self.veths, ADDRS):
            steps += [["-n", ns, "link", "set", veth, "name", "cg"],
                      ["-n", ns, "addr", "add", f"{addr}/24", "dev", "cg"],
                      ["-n", ns, "link", "set", "lo", "up"], ["-n", ns, "link", "set", "cg", "up"]]
        for step in steps:
            done = subprocess.run(["ip", *step], capture_output=True, text=True)
            if done.returncode:
                pytest.skip(f"two network namespace hosts are not possible here: ip {' '.join(step)}: "
                            f"{done.stderr.strip()}")

    def launch(self, command: Callable[[int], list[str]], name: str = "node", **env: str) -> list[subprocess.Popen]:
        """`command(node)` on node 0 and node 1, output to NAME0.log and NAME1.log."""
        procs = []
        for node, ns in enumerate(self.names):
            with open(self.logs / f"{name}{node}.log", "w") as log:
                proc = subprocess.Popen(["ip", "netns", "exec", ns, *command(node)], stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        env=dict(child_env(self.logs), GLOO_SOCKET_IFNAME="cg", **env))
            proc.log = Path(log.name)
            procs.append(proc)
        self.procs += procs
        return procs

    def kill(self, node: int) -> None:
        """SIGKILL every process on a host, as when the machine is lost. Its torchrun's process group
        is not all of them: torchrun starts each worker in a session of its own."""
        for _ in range(10):  # a process may start another while the first are killed
            listed = subprocess.run(["ip", "netns", "pids", self.names[node]], capture_output=True, text=True)
            pids = listed.stdout.split()
            if not pids:
                break
            for pid in pids:  # everything in our namespace was started by this test
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    def close(self) -> None:
        for node, ns in enumerate(self.names):
            self.kill(node)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for proc in self.procs:
            proc.wait()


@pytest.fixture
def hosts(tmp_path):
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("two network namespace hosts need root and iproute2's ip")
    (tmp_path / "cg_fault.py").write_text(FAULT_PLUGIN)
    made = Hosts(tmp_path)
    try:
        made.up()
        yield made
    finally:
        made.close()


def torchrun(node: int, nproc: int, *train_args, rdzv: str = "static", restarts: int = 0) -> list[str]:
    if rdzv == "static":
        where = ["--node-rank", str(node), "--master-addr", ADDRS[0], "--master-port", "29500"]
    else:  # c10d: this machine's name resolves to 127.0.0.1, so say who hosts the store and where each node is
        where = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"{ADDRS[0]}:29400", "--rdzv-id", "cg",
                 "--rdzv-conf", f"is_host={int(node == 0)}", "--local-addr", ADDRS[node],
                 "--max-restarts", str(restarts)]
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", str(nproc), *where,
            "-m", "colorgan", "train", *map(str, train_args)]


def accelerate_launch(node: int, nproc: int, *train_args) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch",
            "--config_file", str(ROOT / "launch" / "multi-node.yaml"), "--machine_rank", str(node),
            "--main_process_ip", ADDRS[0], "--num_processes", str(2 * nproc),
            "-m", "colorgan", "train", *map(str, train_args)]


def finish(procs: list[subprocess.Popen], timeout: float = 180) -> None:
    """Wait for every node; fail with their logs if one fails or outlives `timeout`."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            pytest.fail(f"a node still runs after {timeout} s:\n{logs(procs)}")
    assert all(p.returncode == 0 for p in procs), logs(procs)


def logs(procs: list[subprocess.Popen]) -> str:
    return "\n".join(f"--- {p.log.name} (exit {p.returncode}):\n{p.log.read_text()[-2500:]}" for p in procs)


def wait_for_hang(marker: Path, nodes: list[subprocess.Popen]) -> float:
    """Wait until the fault plugin's rank hangs (it writes `marker`); when it did (monotonic)."""
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert time.monotonic() < deadline and nodes[0].poll() is None, logs(nodes)
        time.sleep(0.1)
    return time.monotonic()


@pytest.fixture
def recipe(tiny_recipe, write_recipe):
    """The tiny recipe, 6 steps, a checkpoint every 2 (all kept), the fault plugin: its path and data."""
    tiny_recipe["train"].update(max_steps=6, log_every=1, checkpoint_every=2, keep_checkpoints=10,
                                sample_every=1000, eval_every=1000)
    tiny_recipe["plugins"] = ["cg_fault"]
    return write_recipe(tiny_recipe), tiny_recipe


_single: dict[int, dict[str, torch.Tensor]] = {}  # global batch -> one process's weights (one recipe here)


def assert_same_weights(run: Path, data: dict, batch: int, tmp_path: Path) -> None:
    """`run`'s model equals one process trained with the same global batch, within 1e-5."""
    if batch not in _single:
        data = dict(data, plugins=[], train=dict(data["train"], batch_size=batch))
        _single[batch] = load_file(str(train(recipes.from_dict(data), out=tmp_path / f"single-{batch}").model))
    model = load_file(str(run / "model.safetensors"))
    assert model.keys() == _single[batch].keys()
    for key in model:
        torch.testing.assert_close(model[key], _single[batch][key], atol=1e-5, rtol=1e-4, msg=key)


def assert_checkpoints(run: Path, steps: list[int], world: int) -> None:
    """One complete checkpoint per save, written once for all nodes (every rank's RNG state in it)."""
    assert [s for s, _ in checkpoint_dirs(run)] == steps
    assert not list((run / "checkpoints").glob(".tmp-*"))
    for _, folder in checkpoint_dirs(run):
        files = {p.name for p in folder.iterdir()}
        assert {"model.safetensors", "model_1.safetensors", "optimizer.bin", "optimizer_1.bin"} <= files, files
        assert {f for f in files if f.startswith("random_states_")} == {f"random_states_{r}.pkl" for r in range(world)}


@pytest.mark.multinode
@pytest.mark.parametrize("launcher,nproc", [("torchrun", 1), ("accelerate", 2)])
def test_two_hosts_train_as_one_job(hosts, recipe, tmp_path, launcher, nproc):
    """torchrun (static rendezvous) with one process per host; accelerate launch with
    launch/multi-node.yaml and two per host (4 ranks)."""
    path, data = recipe
    run, world = tmp_path / "run", 2 * nproc
    launch = torchrun if launcher == "torchrun" else accelerate_launch
    finish(hosts.launch(lambda node: launch(node, nproc, path, "--out", run)))
    assert json.loads((run / "run.json").read_text())["world_size"] == world
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["world_size"] for r in records if "d_loss" in r} == {world}
    assert logged_steps(run) == [1, 2, 3, 4, 5, 6], "each step logged once, not once per node"
    assert_checkpoints(run, [2, 4, 6], world)
    assert_same_weights(run, data, 4 * world, tmp_path)


@pytest.mark.multinode
def test_a_lost_node_stops_the_other_and_both_resume(hosts, recipe, tmp_path):
    """Rank 1 hangs in step 5 (after the checkpoint of step 4); its node is then killed outright."""
    path, data = recipe
    run, marker = tmp_path / "run", tmp_path / "hanging"
    nodes = hosts.launch(lambda node: torchrun(node, 1, path, "--out", run),
                         CG_FAULT="hang 1 5", CG_FAULT_MARKER=str(marker))
    killed = wait_for_hang(marker, nodes)
    hosts.kill(1)
    try:
        nodes[0].wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"node 0 still runs 60 s after node 1 was killed:\n{logs(nodes)}")
    print(f"node 0 exited {time.monotonic() - killed:.1f} s after node 1 was killed")
    assert nodes[0].returncode != 0
    assert "rank 0 of 2 stopped after step 4: another process died" in nodes[0].log.read_text(), logs(nodes)
    assert_checkpoints(run, [2, 4], 2)
    assert not (run / "model.safetensors").exists()

    finish(hosts.launch(lambda node: torchrun(node, 1, path, "--out", run, "--resume", "latest"), "resume"))
    assert_checkpoints(run, [2, 4, 6], 2)
    assert_same_weights(run, data, 8, tmp_path)


@pytest.mark.multinode
def test_a_stuck_rank_ends_the_run_after_dist_timeout(hosts, recipe, tmp_path):
    """Rank 1 sleeps forever in step 5; rank 0 gives up after train.dist_timeout, not gloo's 30 min."""
    path, _ = recipe
    run, marker, timeout = tmp_path / "run", tmp_path / "hanging", 10
    nodes = hosts.launch(lambda node: torchrun(node, 1, path, "--out", run, "-o", f"train.dist_timeout={timeout}"),
                         CG_FAULT="hang 1 5", CG_FAULT_MARKER=str(marker))
    stuck = wait_for_hang(marker, nodes)
    try:
        nodes[0].wait(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"node 0 still runs {timeout + 30} s after rank 1 got stuck:\n{logs(nodes)}")
    print(f"node 0 exited {time.monotonic() - stuck:.1f} s after rank 1 got stuck (dist_timeout {timeout} s)")
    text = nodes[0].log.read_text()
    assert f"rank 0 of 2 stopped after step 4: another process died, hung past train.dist_timeout ({timeout} s)" in text
    assert "Timed out" in text, logs(nodes)
    assert_checkpoints(run, [2, 4], 2)


@pytest.mark.multinode
def test_elastic_restart_continues_from_the_latest_checkpoint(hosts, recipe, tmp_path):
    """c10d rendezvous, --max-restarts 1, --resume auto: rank 1 exits in step 5 of the first attempt;
    both agents restart their workers, which continue from step 4 unasked.

    TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1: with the agents' store shared, a restarted worker may read
    the gloo address its dead predecessor left there and fail to connect (pytorch#135712; seen here
    when node 0's agent restarts for the waiting node before its own worker has failed)."""
    path, data = recipe
    run = tmp_path / "run"
    finish(hosts.launch(lambda node: torchrun(node, 1, path, "--out", run, "--resume", "auto", rdzv="c10d",
                                              restarts=1),
                        CG_FAULT="exit 1 5", TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1"))
    assert json.loads((run / "run.json").read_text())["resumed_from"] == str(run / "checkpoints" / "step-000004")
    assert logged_steps(run) == [1, 2, 3, 4, 5, 6]
    assert_checkpoints(run, [2, 4, 6], 2)
    assert_same_weights(run, data, 8, tmp_path)


def test_resume_auto_starts_fresh_then_continues(tiny_recipe, tmp_path):
    """--resume auto: a fresh run over what an attempt that never reached a checkpoint left (its
    metrics gone), then, once a checkpoint exists, a resume from it."""
    run = tmp_path / "run"
    run.mkdir()
    recipe = recipes.from_dict(tiny_recipe)
    (run / "recipe.yaml").write_text(recipe.to_yaml())
    (run / "metrics.jsonl").write_text('{"step": 99, "d_loss": 1.0}\n')
    assert train(recipe, out=run, resume="auto", stop_at=3).step == 3
    assert json.loads((run / "run.json").read_text())["resumed_from"] is None
    assert logged_steps(run) == [2, 3]
    assert train(recipe, out=run, resume="auto").step == 6
    assert json.loads((run / "run.json").read_text())["resumed_from"] == str(run / "checkpoints" / "step-000003")
    assert logged_steps(run) == [2, 3, 4, 6]


@pytest.mark.parametrize("value", ["0", "-5", ".inf"])
def test_dist_timeout_is_a_positive_finite_number(tiny_recipe, write_recipe, value):
    with pytest.raises(ColorganError, match="train.dist_timeout"):
        recipes.load_validated(write_recipe(tiny_recipe), [f"train.dist_timeout={value}"])
