"""The reporting path: the table's arithmetic, and a saved JSON turned into a chart and a
markdown summary (what the committed results under bench/results/ are made with)."""

from __future__ import annotations

import json

from bench import _report, plot, summarize


def _bench(op: str, size: str, impl: str, role: str, median: float) -> dict:
    extra = {
        "op": op,
        "size": size,
        "dtype": "float32",
        "impl": impl,
        "role": role,
        "saved_bytes": 256,
        "peak_bytes": None,
    }
    return {"extra_info": extra, "stats": {"median": median}}


def _data() -> dict:
    return {
        "machine_info": {
            "gankernels": {
                "device": "cpu",
                "cpu_model": "test CPU",
                "cpu_cores": 2,
                "torch": "x",
                "fused_backends": ["cpu"],
                "date": "today",
            }
        },
        "benchmarks": [
            _bench("interpolation", "256x3x64x64", "eager", "baseline", 4e-3),
            _bench("interpolation", "256x3x64x64", "cpu", "", 2.5e-3),
            _bench("interpolation", "256x3x64x64", "copy", "floor", 1e-3),
            _bench("loss:hinge", "B=256", "eager", "baseline", 60e-6),
            _bench("loss:hinge", "B=256", "cpu", "", 10e-6),
        ],
    }


def test_speedup_and_floor_are_ratios_within_a_group() -> None:
    rows = _report.rows_from_json(_data())
    fused = next(r for r in rows if r.op == "interpolation" and r.impl == "cpu")
    assert abs(fused.speedup - 4e-3 / 2.5e-3) < 1e-12
    assert abs(fused.floor_pct - 100 * 1e-3 / 2.5e-3) < 1e-9
    loss = next(r for r in rows if r.op == "loss:hinge" and r.impl == "cpu")
    assert abs(loss.speedup - 6.0) < 1e-12 and loss.floor_pct is None  # no floor in its group
    assert [r.impl for r in rows[:3]] == ["eager", "cpu", "copy"]


def test_targets_say_met_or_missed_by_how_much() -> None:
    lines = {t.what: t.line() for t in _report.cpu_targets(_report.rows_from_json(_data()))}
    assert "MISSED by 11%" in lines["interpolation fwd+bwd at 256x3x64x64"]  # 1.6x of 1.8x
    assert lines["loss hinge fwd+bwd at B=256"].endswith("met")
    assert "not measured" in lines["norm_penalty fwd+bwd at 256x3x64x64"]


def test_json_to_png_and_markdown(tmp_path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_data()))
    assert plot.main([str(path), "-o", str(tmp_path / "chart.png")]) == 0
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summarize.main([str(path), "-o", str(tmp_path / "summary.md")]) == 0
    text = (tmp_path / "summary.md").read_text()
    assert "test CPU (2 cores" in text and "| interpolation | 256x3x64x64 | float32 | cpu |" in text
    assert "busy machine" not in text


def test_busy_machine_is_flagged() -> None:
    data = _data()
    data["machine_info"]["gankernels"].update(load_avg_start=6.5, load_avg_end=8.0)
    assert "Warning: measured on a busy machine" in summarize.summary(data)
    assert "Warning: measured on a busy machine" in summarize.readme(data)
