"""The old design's pure parts: its derivatives, its rows and its part of BENCHMARKS.md."""

import io

from PIL import Image

from bench import alternatives, inputs
from bench.old_design import records, summary
from bench.old_design.derivatives import old_derivatives


def test_the_old_derivatives_are_the_three_sizes_with_the_compressed_at_quality_60():
    data = inputs.photo_like_jpeg(2400, 1600, seed=1)
    resized, compressed, thumbnail = old_derivatives(data)
    assert [Image.open(io.BytesIO(blob)).size for blob in (resized, compressed, thumbnail)] == [
        (1024, 683), (2400, 1600), (300, 200)]
    assert compressed == alternatives.jpeg_bytes(Image.open(io.BytesIO(data)).convert("RGB"), 60)


def test_a_row_is_final_with_its_completion_time_only_once_completed_or_failed(tmp_path):
    path = str(tmp_path / "old.db")
    records.create_schema(path)
    database = records.connect(path)
    records.insert(database, "a", "photo.jpg", "image/jpeg", 10)
    records.insert(database, "b", "photo.jpg", "image/jpeg", 10)
    records.set_status(database, "a", "processing")
    assert records.find(database, "a")["completed_at"] is None
    assert records.final_rows(database, ["a", "b"]) == {}
    records.set_status(database, "a", "completed")
    records.set_status(database, "b", "failed", "OSError: broken")
    final = records.final_rows(database, ["a", "b"])
    assert {key: row["status"] for key, row in final.items()} == {"a": "completed", "b": "failed"}
    assert final["a"]["completed_at"] >= final["a"]["created_at"]
    assert final["b"]["error"] == "OSError: broken"
    assert records.find(database, "c") is None


def design(p50, rate, cpu):
    return {"idle": {"p50_ms": p50, "p95_ms": p50 + 1, "upload_requests_p50_ms": 3.0}, "idle_12mp": {"p50_ms": p50 * 4},
            "burst": {"images_per_s": rate, "whole_call_images_per_s": rate - 1, "cpu_ms_per_image": cpu,
                      "cpu_ms_per_image_total": round(sum(cpu.values()), 1)},
            "derivation_cpu_ms": 40.0, "worker_cpu_ms_beyond_derivation": round(cpu["worker"] - 40.0, 1)}


def test_the_table_has_a_row_per_design_and_nothing_without_a_run():
    assert summary.lines({}) == []
    run = {"imgpipe": design(50.0, 30.0, {"minio": 10.0, "relay": 1.0, "worker": 45.0}),
           "old": design(90.0, 18.0, {"minio": 12.0, "api": 8.0, "worker": 70.0}),
           "p50_ratio": 1.8, "p50_ratio_12mp": 2.5, "burst_ratio": 1.67, "whole_call_burst_ratio": 1.6,
           "cpu_ratio": 1.94, "old_task_io_cpu_ms": 8.5, "uploads": 8, "uploads_12mp": 3,
           "burst_uploads": 30, "workers": 2, "mode": "quick", "measured_at": "2026-12-02 04:00 UTC",
           "background_cpu_busy": {"before": 0.5, "after": 0.4}}
    lines = summary.lines({"old_design": run})
    assert "{" not in lines[1] and "8 single 1 MP uploads on each (and 3 at 12 MP)" in lines[1]
    assert "bursts of 30 on 2 workers each" in lines[1]
    rows = [line for line in lines if line.startswith("| imgpipe") or line.startswith("| the replaced")]
    assert rows[0].split(" | ")[1:7] == ["50.0", "51.0", "3.0", "200.0", "30.0", "29.0"]
    # CPU columns minio, relay, worker, api: a process a design does not have is left empty
    assert rows[1].split(" | ")[7:13] == ["12.0", "", "70.0", "8.0", "90.0", "40.0 |"]
    assert "30.0 ms in the old worker, of which its task's row and store requests timed alone 8.5 ms" in lines[-3]
    assert "; 5.0 ms in imgpipe's" in lines[-3]
    assert "p50 × 1.8 (× 2.5 at 12 MP)" in lines[-1] and "× 1.67" in lines[-1]
