"""benchmarks/gpu.py is run by hand on a GPU machine; its skmm part runs here on the CPU
so that the script (and the checks it asserts there) stays working until then."""

import pytest

from helpers import load_benchmark

pytest.importorskip("torchvision")
pytest.importorskip("transformers")


def _gpu_script():
    return load_benchmark("gpu")


def test_end_to_end_part_runs_and_checks_on_cpu(tmp_path):
    gpu = _gpu_script()
    bert = gpu._tiny_bert_dir(str(tmp_path / "bert"))
    rows, checks = gpu.skmm_end_to_end("cpu", 24, 32, 2, bert, str(tmp_path))
    assert [r[1] for r in rows[:2]] == ["precision='float32'", "precision='auto'"]
    assert "images/s" in rows[0][2] and "s per epoch" in rows[2][2]
    assert any("first convolution torch.float32" in c for c in checks)
    assert any(c.startswith("joblib round trip") for c in checks)


def test_main_skips_without_cuda(capsys, monkeypatch):
    gpu = _gpu_script()
    monkeypatch.setattr(gpu.torch.cuda, "is_available", lambda: False)
    assert gpu.main([]) == 0
    assert "skipped: no CUDA" in capsys.readouterr().out
