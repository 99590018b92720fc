"""The scale cost model (``minimaxvl_tools.distributed.cost``): sums checked by hand, inputs required."""

from __future__ import annotations

import pytest

from minimaxvl_tools.distributed.cost import estimate, main


def test_million_pages_from_token_rates() -> None:
    est = estimate(
        pages=1_000_000,
        replicas=4,
        prefill_tokens_per_s=60_000,
        decode_tokens_per_s=4_000,
        image_tokens_per_page=7858,
        text_tokens_per_request=210,
        decode_tokens_per_page=1142,
        client_cpu_ms_per_page=21.2,
    )
    per_page = 8068 / 60_000 + 1142 / 4_000  # 0.41997 s of a replica
    assert est.replica_pages_per_s == pytest.approx(1 / per_page)
    assert est.prefill_tokens == pytest.approx(8_068_000_000)
    assert est.decode_tokens == pytest.approx(1_142_000_000)
    assert est.wall_hours == pytest.approx(1_000_000 * per_page / 4 / 3600)  # 29.2 h
    assert est.gpu_hours == pytest.approx(est.wall_hours * 32)
    assert est.client_cores == pytest.approx(4 / per_page * 0.0212)
    assert est.client_machines == 1
    assert "GPU-hours" in est.table() and "29.2 h" in est.table()


def test_client_machines_grow_with_replicas() -> None:
    # 64 replicas at 50 pages/s = 3,200 pages/s x 21.2 ms = 67.8 cores -> 6 machines of 16 cores at 75%
    est = estimate(replicas=64, replica_pages_per_s=50)
    assert est.client_cores == pytest.approx(67.84)
    assert est.client_machines == 6
    assert est.requests == 1_000_000


def test_throughput_is_required_and_checked() -> None:
    with pytest.raises(ValueError, match="measured speed"):
        estimate(replicas=2)
    with pytest.raises(ValueError):
        estimate(replicas=0, replica_pages_per_s=1)


def test_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--replicas", "2", "--replica-pages-per-s", "10", "--small-print"]) == 0
    out = capsys.readouterr().out
    assert "| requests" in out and "1,777,778" in out and "13.9 h" in out
