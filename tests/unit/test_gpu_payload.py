"""The GPU suite's payload scripts: the split that lets the run reach the GPU machine in two device calls.

`scripts/gpu_pack.sh` must split the compressed vLLM tree so that each call carries at most its limit
(repository copy included) and the parts join back to the original bytes; `run_on_device.sh stage` must move
what call 1 carries out of the repository copy, and call 2 must stop with a clear message when a part is
missing. Run here on fake payloads (no GPU, no network).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("git") is None, reason="bash/git"
)


def _fake_repo(tmp_path: Path, *, vllm_bytes: int, wheel_bytes: int) -> Path:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "tests" / "gpu").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "gpu_pack.sh", repo / "scripts" / "gpu_pack.sh")
    shutil.copy(ROOT / "tests" / "gpu" / "run_on_device.sh", repo / "tests" / "gpu" / "run_on_device.sh")
    (repo / "README.md").write_bytes(os.urandom(50_000))  # the repository copy counts against each call
    gpu = repo / ".gpu"
    model = gpu / "tools" / "model" / "tiny-llava-next-mm28"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"architectures": ["LlavaNextForConditionalGeneration"]}')
    (gpu / "tools" / "weights.bin").write_bytes(os.urandom(30_000))
    (gpu / "wheels").mkdir()
    (gpu / "wheels" / "pkg-1.0-py3-none-any.whl").write_bytes(os.urandom(wheel_bytes))
    (gpu / "wheels" / "zstandard-0.25.0-cp312-cp312-manylinux2014_x86_64.whl").write_bytes(b"x" * 1000)
    (gpu / "site.tar.xz").write_bytes(os.urandom(vllm_bytes))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".git" / "info" / "exclude").write_text("/.gpu/\n")
    return repo


def _pack(repo: Path, limit_mib: float) -> subprocess.CompletedProcess[str]:
    script = (repo / "scripts" / "gpu_pack.sh").read_text()
    script = script.replace("LIMIT=$((64 * 1024 * 1024))", f"LIMIT={int(limit_mib * 1024 * 1024)}")
    (repo / "scripts" / "gpu_pack.sh").write_text(script)
    return subprocess.run(["bash", "scripts/gpu_pack.sh"], cwd=repo, capture_output=True, text=True)


def _carried(repo: Path, *paths: str) -> int:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    total = sum((repo / f).stat().st_size for f in tracked)
    for p in paths:
        total += sum(f.stat().st_size for f in (repo / p).rglob("*") if f.is_file())
    return total


def test_split_fits_both_calls_and_joins_back(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path, vllm_bytes=1_400_000, wheel_bytes=120_000)
    proc = _pack(repo, limit_mib=1.0)
    assert proc.returncode == 0, proc.stderr
    limit = 1024 * 1024
    call1 = _carried(repo, ".gpu/parts/p0", ".gpu/tools")
    call2 = _carried(repo, ".gpu/parts/p1", ".gpu/wheels")
    assert call1 <= limit and call2 <= limit
    assert abs(call1 - call2) < 4096  # balanced: equal room left in both calls
    assert not list((repo / ".gpu" / "wheels").glob("zstandard-*"))  # dropped: tracing is off there
    joined = (repo / ".gpu/parts/p0/site.tar.xz.part0").read_bytes()
    joined += (repo / ".gpu/parts/p1/site.tar.xz.part1").read_bytes()
    assert joined == (repo / ".gpu" / "site.tar.xz").read_bytes()
    digest = hashlib.sha256(joined).hexdigest()
    assert (repo / ".gpu/parts/p0/site.tar.xz.sha256").read_text().split()[0] == digest
    assert "call 1" in proc.stdout and "call 2" in proc.stdout


def test_split_refuses_a_payload_that_cannot_fit(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path, vllm_bytes=2_200_000, wheel_bytes=120_000)
    proc = _pack(repo, limit_mib=1.0)
    assert proc.returncode == 1
    assert "a device call carries" in proc.stderr
    assert "call 1 carries" in proc.stderr or "call 2 carries" in proc.stderr


def test_stage_call_moves_part_and_checkpoint_out_of_the_copy(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path, vllm_bytes=1_400_000, wheel_bytes=120_000)
    assert _pack(repo, limit_mib=1.0).returncode == 0
    stage, out = tmp_path / "stage", tmp_path / "out"
    env = {**os.environ, "STAGE": str(stage), "OUT": str(out)}
    shutil.rmtree(repo / ".gpu" / "parts" / "p1")  # call 1 carries p0 and the tools only
    shutil.rmtree(repo / ".gpu" / "wheels")
    proc = subprocess.run(
        ["bash", "tests/gpu/run_on_device.sh", "stage"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (stage / "site.tar.xz.part0").stat().st_size == (
        repo / ".gpu/parts/p0/site.tar.xz.part0"
    ).stat().st_size
    assert (stage / "site.tar.xz.sha256").exists()
    assert (stage / "model" / "tiny-llava-next-mm28" / "config.json").exists()
    # call 2 without its part: the joined parts fail their checksum and the run stops before any server
    shutil.rmtree(repo / ".gpu")
    proc = subprocess.run(
        ["bash", "tests/gpu/run_on_device.sh"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 3
    assert "missing part" in proc.stdout
    assert not (out / "server.log").exists()


def test_run_without_stage_call_names_the_missing_step(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path, vllm_bytes=10_000, wheel_bytes=1_000)
    shutil.rmtree(repo / ".gpu")
    env = {**os.environ, "STAGE": str(tmp_path / "stage"), "OUT": str(tmp_path / "out")}
    proc = subprocess.run(
        ["bash", "tests/gpu/run_on_device.sh"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 3
    assert "run the stage call first" in proc.stdout
