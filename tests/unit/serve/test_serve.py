"""minimaxvl_tools.serve: commands, multi-node script, checks (with fakes) and launch (nothing runs)."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from minimaxvl_tools import serve
from minimaxvl_tools.serve import (
    REMOVED_REASON,
    XGRAMMAR_COMPACT,
    Check,
    Inspect,
    ServePlan,
    build_command,
    check_context,
    check_gpu_count,
    check_gpu_memory,
    check_parallel_layout,
    check_ray,
    check_structured_outputs,
    check_transformers,
    check_vllm,
    estimate_memory,
    format_command,
    launch,
    parse_nvidia_smi,
    parse_version,
    plan_for,
    render_multinode,
    run_checks,
    weight_bytes,
)

H100 = ("NVIDIA H100 80GB HBM3", 81559 / 1024)  # nvidia-smi: 81559 MiB
H200 = ("NVIDIA H200", 143771 / 1024)


def fake(versions: dict[str, str] | None = None, gpus: list[tuple[str, float]] | None = None) -> Inspect:
    """An Inspect that reports the given package versions and GPUs (None = cannot detect)."""
    table = {"vllm": "0.23.0", "transformers": "4.57.6", "ray": "2.49.0"} if versions is None else versions
    return Inspect(package_version=table.get, gpus=lambda: gpus)


def flags(argv: list[str]) -> dict[str, str | None]:
    """``--flag value`` pairs of an argv after ``vllm serve MODEL`` (value None for switches)."""
    out: dict[str, str | None] = {}
    rest = argv[3:]
    for i, tok in enumerate(rest):
        if tok.startswith("--"):
            nxt = rest[i + 1] if i + 1 < len(rest) else None
            out[tok] = None if nxt is None or nxt.startswith("--") else nxt
    return out


# ---------------------------------------------------------------- commands
def test_default_plan_is_the_documented_starting_point() -> None:
    assert build_command(ServePlan()) == [
        "vllm", "serve", "MiniMaxAI/MiniMax-VL-01",
        "--tensor-parallel-size", "8",
        "--trust-remote-code",
        "--quantization", "experts_int8",
        "--dtype", "bfloat16",
        "--max-model-len", "32768",
        "--limit-mm-per-prompt", '{"image": 4}',
        "--gpu-memory-utilization", "0.9",
        "--port", "8000",
    ]  # fmt: skip


@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_single_node_commands_flag_by_flag(tp: int) -> None:
    plan = plan_for(tp, 80)
    argv = build_command(plan)
    f = flags(argv)
    assert argv[:3] == ["vllm", "serve", "MiniMaxAI/MiniMax-VL-01"]
    assert f["--tensor-parallel-size"] == str(tp)
    assert "--pipeline-parallel-size" not in f
    assert "--distributed-executor-backend" not in f
    assert "--trust-remote-code" in f and f["--trust-remote-code"] is None
    assert f["--quantization"] == "experts_int8"  # bf16 never fits 80 GB GPUs on one node
    assert f["--dtype"] == "bfloat16"
    # 4 images x 11088 + 1024 = 45376 -> next multiple of 4096 above 32768
    assert f["--max-model-len"] == "49152"
    assert json.loads(f["--limit-mm-per-prompt"] or "") == {"image": 4}
    assert f["--gpu-memory-utilization"] == "0.9"
    assert f["--port"] == "8000"
    assert "--enforce-eager" not in f and "--max-num-seqs" not in f


def test_plan_for_keeps_bf16_where_it_fits_and_quantizes_where_not() -> None:
    assert plan_for(8, H200[1]).quantization is None  # ~106.8 of 126.4 GiB usable
    assert plan_for(8, H100[1]).quantization == "experts_int8"
    assert plan_for(8, H100[1], quantization=None).quantization is None  # explicit choice wins
    assert plan_for(8, 80, images_per_prompt=1).max_model_len == 32768
    assert plan_for(8, 80, max_model_len=65536).max_model_len == 65536


def test_optional_flags() -> None:
    plan = ServePlan(
        served_model_name="minimax-vl",
        host="0.0.0.0",
        port=9000,
        enforce_eager=True,
        max_num_seqs=16,
        structured_outputs=XGRAMMAR_COMPACT,
        extra_args=["--seed", "0"],
        quantization=None,
        images_per_prompt=2,
    )
    argv = build_command(plan)
    f = flags(argv)
    assert "--quantization" not in f
    assert f["--served-model-name"] == "minimax-vl"
    assert f["--host"] == "0.0.0.0" and f["--port"] == "9000"
    assert "--enforce-eager" in f and f["--max-num-seqs"] == "16"
    assert json.loads(f["--structured-outputs-config"] or "") == {
        "backend": "xgrammar",
        "disable_any_whitespace": True,
    }
    assert json.loads(f["--limit-mm-per-prompt"] or "") == {"image": 2}
    assert argv[-2:] == ["--seed", "0"]


def test_format_command_round_trips_and_puts_one_flag_per_line() -> None:
    plan = ServePlan(env={"NCCL_NVLS_ENABLE": "0", "VLLM_USE_FLASHINFER_SAMPLER": "0"})
    argv = build_command(plan)
    text = format_command(argv, plan.env)
    lines = text.split(" \\\n")
    assert lines[0] == "NCCL_NVLS_ENABLE=0" and lines[1] == "VLLM_USE_FLASHINFER_SAMPLER=0"
    assert lines[2] == "vllm serve MiniMaxAI/MiniMax-VL-01"
    assert all(line.startswith("  --") for line in lines[3:])
    assert "  --limit-mm-per-prompt '{\"image\": 4}'" in lines
    assert shlex.split(text.replace("\\\n", " ")) == [
        "NCCL_NVLS_ENABLE=0",
        "VLLM_USE_FLASHINFER_SAMPLER=0",
        *argv,
    ]


def test_multinode_plan_and_script() -> None:
    plan = plan_for(8, 80, nodes=2, env={"NCCL_NVLS_ENABLE": "0"})
    assert (plan.tensor_parallel_size, plan.pipeline_parallel_size, plan.nodes) == (8, 2, 2)
    assert plan.quantization is None  # 16 x 80 GB: ~53.7 GiB bf16 per GPU
    f = flags(build_command(plan))
    assert f["--tensor-parallel-size"] == "8"
    assert f["--pipeline-parallel-size"] == "2"
    assert f["--distributed-executor-backend"] == "ray"
    assert "--quantization" not in f
    script = render_multinode(plan, head_address="10.0.0.1")
    assert "export NCCL_NVLS_ENABLE=0" in script
    head = script.index("ray start --head --port=6379")
    worker = script.index("ray start --address=10.0.0.1:6379")
    serve_at = script.index("vllm serve MiniMaxAI/MiniMax-VL-01")
    assert script.index("export NCCL_NVLS_ENABLE=0") < head < worker < serve_at
    assert "16 GPUs" in script
    assert "--distributed-executor-backend ray" in script


def test_plan_layout_validation() -> None:
    with pytest.raises(ValidationError, match="hold only"):
        ServePlan(tensor_parallel_size=8, pipeline_parallel_size=2, nodes=1, gpus_per_node=8)
    with pytest.raises(ValidationError, match="ray"):
        ServePlan(pipeline_parallel_size=2, nodes=2, distributed_executor_backend="mp")
    with pytest.raises(ValidationError):
        ServePlan(trust_remote_code=False)  # type: ignore[arg-type]
    assert ServePlan(pipeline_parallel_size=2, nodes=2).gpus_per_node == 8


# ---------------------------------------------------------------- version checks
@pytest.mark.parametrize("version", ["0.23.0", "0.10.2", "0.23.0+cu128"])
def test_vllm_in_window_ok(version: str) -> None:
    c = check_vllm(ServePlan(), fake({"vllm": version}))
    assert c.ok and c.level == "info"


@pytest.mark.parametrize("version", ["0.24.0", "0.24.0rc1", "0.25.1"])
def test_vllm_024_refused_with_reason(version: str) -> None:
    c = check_vllm(ServePlan(), fake({"vllm": version}))
    assert not c.ok and c.level == "error"
    assert REMOVED_REASON in c.message
    assert "vllm>=0.10.2,<0.24" in c.message


@pytest.mark.parametrize("version", ["0.9.0", "0.10.1.1"])
def test_vllm_early_versions_warn_about_v0_engine(version: str) -> None:
    c = check_vllm(ServePlan(), fake({"vllm": version}))
    assert not c.ok and c.level == "warning"
    assert "VLLM_USE_V1=0" in c.message and "not set in the plan" in c.message
    c2 = check_vllm(ServePlan(env={"VLLM_USE_V1": "0"}), fake({"vllm": version}))
    assert "(set in the plan)" in c2.message


def test_vllm_missing_too_old_and_dev_build() -> None:
    missing = check_vllm(ServePlan(), fake({}))
    assert (missing.ok, missing.level) == (False, "error") and "not installed" in missing.message
    old = check_vllm(ServePlan(), fake({"vllm": "0.8.5"}))
    assert (old.ok, old.level) == (False, "error") and "0.9.0" in old.message
    dev = check_vllm(ServePlan(), fake({"vllm": "0.23.1.dev12+gabc"}))
    assert (dev.ok, dev.level) == (False, "warning")


def test_parse_version() -> None:
    assert parse_version("0.23.0+cu128") == ((0, 23, 0), False)
    assert parse_version("0.23.1.dev5+g1") == ((0, 23, 1), True)
    assert parse_version("5.17") == ((5, 17, 0), False)
    with pytest.raises(ValueError):
        parse_version("latest")


def test_transformers_pin() -> None:
    bad = check_transformers(ServePlan(), fake({"vllm": "0.23.0", "transformers": "5.17.0"}))
    assert (bad.ok, bad.level) == (False, "error")
    assert "transformers<5.17" in bad.message and "5.17.0" in bad.message
    for ok_version in ("5.16.1", "4.57.6"):
        assert check_transformers(ServePlan(), fake({"vllm": "0.23.0", "transformers": ok_version})).ok
    absent = check_transformers(ServePlan(), fake({"vllm": "0.23.0"}))
    assert (absent.ok, absent.level) == (False, "error")
    assert check_transformers(ServePlan(), fake({})).ok  # nothing to pair with: skipped


def test_structured_outputs_flag_needs_vllm_011() -> None:
    plan = ServePlan(structured_outputs=XGRAMMAR_COMPACT)
    old = check_structured_outputs(plan, fake({"vllm": "0.10.2"}))
    assert (old.ok, old.level) == (False, "error") and "0.11.0" in old.message
    assert check_structured_outputs(plan, fake({"vllm": "0.23.0"})).ok
    assert check_structured_outputs(ServePlan(), fake({"vllm": "0.10.2"})).ok


# ---------------------------------------------------------------- GPU checks
def test_too_few_gpus() -> None:
    c = check_gpu_count(ServePlan(), fake(gpus=[H100] * 4))
    assert (c.ok, c.level) == (False, "error") and "4 GPU(s) found" in c.message and "needs 8" in c.message
    assert check_gpu_count(ServePlan(), fake(gpus=[H100] * 8)).ok
    unknown = check_gpu_count(ServePlan(), fake(gpus=None))
    assert (unknown.ok, unknown.level) == (False, "warning")


def test_multinode_gpu_count_is_per_node() -> None:
    plan = plan_for(8, 80, nodes=2)
    assert check_gpu_count(plan, fake(gpus=[H100] * 8)).ok
    assert not check_gpu_count(plan, fake(gpus=[H100] * 4)).ok


def test_too_little_memory() -> None:
    bf16_on_h100 = check_gpu_memory(ServePlan(quantization=None), fake(gpus=[H100] * 8))
    assert (bf16_on_h100.ok, bf16_on_h100.level) == (False, "error")
    assert "does not fit" in bf16_on_h100.message and "experts_int8" in bf16_on_h100.message
    int8_on_4 = check_gpu_memory(ServePlan(tensor_parallel_size=4), fake(gpus=[H100] * 4))
    assert (int8_on_4.ok, int8_on_4.level) == (False, "error")
    assert check_gpu_memory(ServePlan(), fake(gpus=[H100] * 8)).ok
    assert check_gpu_memory(ServePlan(quantization=None), fake(gpus=[H200] * 8)).ok


def test_tight_memory_warns_and_smallest_gpu_counts() -> None:
    # experts_int8 on 8 GPUs: ~56.2 GiB per GPU; 0.9 x 68 = 61.2 GiB usable -> ~5 GiB headroom (< 8)
    c = check_gpu_memory(ServePlan(), fake(gpus=[("X", 68.0)] * 8))
    assert (c.ok, c.level) == (False, "warning") and "tight" in c.message
    mixed = check_gpu_memory(ServePlan(), fake(gpus=[H100] * 7 + [("small", 40.0)]))
    assert (mixed.ok, mixed.level) == (False, "error")


def test_memory_estimates() -> None:
    assert weight_bytes(None) == pytest.approx(912e9)
    assert weight_bytes("experts_int8") == pytest.approx(477.4e9, rel=0.005)
    assert weight_bytes("awq") is None
    est = estimate_memory(ServePlan(), H100[1])
    assert est.per_gpu_gib == pytest.approx(56.2, abs=0.2)
    assert est.headroom_gib == pytest.approx(0.9 * H100[1] - 56.2, abs=0.2)
    unknown = check_gpu_memory(ServePlan(quantization="awq"), fake(gpus=[H100] * 8))
    assert unknown.ok and "no weight estimate" in unknown.message


def test_parse_nvidia_smi() -> None:
    text = "NVIDIA H100 80GB HBM3, 81559 MiB\nNVIDIA H200, 143771 MiB\ngarbage\n"
    gpus = parse_nvidia_smi(text)
    assert [g[0] for g in gpus] == ["NVIDIA H100 80GB HBM3", "NVIDIA H200"]
    assert gpus[0][1] == pytest.approx(79.65, abs=0.01)
    assert gpus[1][1] == pytest.approx(140.4, abs=0.1)


# ---------------------------------------------------------------- other checks
def test_max_model_len_too_small_warns_with_numbers() -> None:
    c = check_context(ServePlan(max_model_len=32768, images_per_prompt=4))
    assert (c.ok, c.level) == (False, "warning")
    assert "45376" in c.message and "11088" in c.message and "1024" in c.message
    assert check_context(ServePlan(max_model_len=49152)).ok
    tiny = check_context(ServePlan(max_model_len=2048))
    assert (tiny.ok, tiny.level) == (False, "error")


def test_parallel_layout() -> None:
    bad = check_parallel_layout(ServePlan(tensor_parallel_size=3))
    assert (bad.ok, bad.level) == (False, "error")
    assert check_parallel_layout(ServePlan()).ok
    pp = check_parallel_layout(plan_for(8, 80, nodes=2))
    assert (pp.ok, pp.level) == (False, "warning")


def test_ray_needed_only_across_nodes() -> None:
    multi = plan_for(8, 80, nodes=2)
    missing = check_ray(multi, fake({"vllm": "0.23.0"}))
    assert (missing.ok, missing.level) == (False, "error")
    assert check_ray(multi, fake()).ok
    assert check_ray(ServePlan(), fake({})).ok


def test_run_checks_probes_once_and_all_pass_on_a_good_machine() -> None:
    calls: list[int] = []

    def gpus() -> list[tuple[str, float]]:
        calls.append(1)
        return [H100] * 8

    insp = Inspect(package_version={"vllm": "0.23.0", "transformers": "4.57.6"}.get, gpus=gpus)
    checks = run_checks(plan_for(8, 80), insp)
    assert len(checks) == len(serve.CHECKS)
    assert all(c.ok for c in checks), [str(c) for c in checks]
    assert calls == [1]


# ---------------------------------------------------------------- launch
@pytest.fixture
def no_subprocess(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []

    def boom(*args: Any, **kwargs: Any) -> None:
        calls.append((args, kwargs))
        raise AssertionError("subprocess.run must not be called")

    monkeypatch.setattr(subprocess, "run", boom)
    return calls


def _echo() -> tuple[list[str], Callable[[str], None]]:
    out: list[str] = []
    return out, out.append


def test_launch_dry_run_prints_and_runs_nothing(no_subprocess: list[Any]) -> None:
    out, echo = _echo()
    rc = launch(ServePlan(), dry_run=True, inspect=fake(versions={}, gpus=[]), echo=echo)
    assert rc == 0 and no_subprocess == []
    text = "\n".join(out)
    assert text.startswith("vllm serve MiniMaxAI/MiniMax-VL-01 \\")
    assert "# [ERROR] vllm: vLLM is not installed" in text


def test_launch_dry_run_multinode_prints_ray_script(no_subprocess: list[Any]) -> None:
    out, echo = _echo()
    assert launch(plan_for(8, 80, nodes=2), dry_run=True, check=False, echo=echo) == 0
    assert "ray start --head --port=6379" in out[0] and no_subprocess == []


def test_launch_refuses_on_error_checks(no_subprocess: list[Any]) -> None:
    out, echo = _echo()
    rc = launch(ServePlan(), inspect=fake({"vllm": "0.24.0"}, gpus=[H100] * 8), echo=echo)
    assert rc == 2 and no_subprocess == []
    assert any(REMOVED_REASON in line for line in out)
    assert "refusing to launch" in out[-1]


def test_launch_runs_vllm_with_env_when_checks_pass_or_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []

    def run(argv: list[str], *, env: dict[str, str], check: bool) -> subprocess.CompletedProcess[str]:
        seen.append((argv, env))
        return subprocess.CompletedProcess(argv, 3)

    monkeypatch.setattr(subprocess, "run", run)
    plan = plan_for(8, 80, env={"NCCL_NVLS_ENABLE": "0"})
    _, echo = _echo()
    assert launch(plan, inspect=fake(gpus=[H100] * 8), echo=echo) == 3
    assert seen[0][0] == build_command(plan) and seen[0][1]["NCCL_NVLS_ENABLE"] == "0"
    assert launch(plan, inspect=fake({}, gpus=[]), force=True, echo=echo) == 3
    assert len(seen) == 2


def test_launch_missing_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: Any, **kwargs: Any) -> None:
        raise FileNotFoundError("vllm")

    monkeypatch.setattr(subprocess, "run", run)
    out, echo = _echo()
    assert launch(ServePlan(), check=False, echo=echo) == 127
    assert "not found on PATH" in out[-1]


def test_memory_check_skips_other_checkpoints() -> None:
    """A tiny same-family test checkpoint must not be refused by MiniMax-VL-01's 456B arithmetic."""
    plan = serve.ServePlan(model="/models/tiny-llava-next-mm28", tensor_parallel_size=1, quantization=None)
    fake = serve.Inspect(package_version=lambda n: None, gpus=lambda: [("NVIDIA H100", 79.6)])
    chk = serve.check_gpu_memory(plan, fake)
    assert chk.ok and chk.level == "info" and "not MiniMax-VL-01" in chk.message
    big = serve.ServePlan(tensor_parallel_size=1, quantization=None)
    assert serve.check_gpu_memory(big, fake).level == "error"


def test_plan_for_bf16_names_mean_no_quantization() -> None:
    for name in ("none", "bf16", "bfloat16"):
        plan = plan_for(8, H200[1], quantization=name)
        assert plan.quantization is None
        assert "--quantization" not in build_command(plan)


def test_plan_report_is_the_plan_command_and_verdicts() -> None:
    fake = Inspect(package_version={"vllm": "0.24.0", "transformers": "4.57.0"}.get, gpus=lambda: [H100] * 8)
    plan = plan_for(8, H100[1])
    report = serve.plan_report(plan, fake)
    assert json.loads(json.dumps(report)) == report  # JSON-ready as it is
    assert report["command"] == build_command(plan) and report["multinode_script"] is None
    assert [c["name"] for c in report["checks"]] == [c.name for c in run_checks(plan, fake)]
    assert report["errors"] == ["vllm"]  # 0.24.0 removed the model class: the one error-level failure
    two_nodes = serve.plan_report(plan_for(8, H100[1], nodes=2), fake)
    assert "ray start --head" in two_nodes["multinode_script"]


def test_check_verdict_constructors() -> None:
    assert Check.passed("x", "m") == Check(name="x", ok=True, level="info", message="m")
    assert Check.error("x", "m") == Check(name="x", ok=False, level="error", message="m")
    assert Check.warning("x", "m") == Check(name="x", ok=False, level="warning", message="m")
    assert str(Check.error("vllm", "gone")) == "[ERROR] vllm: gone"
