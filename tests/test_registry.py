import importlib
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skmm import FusionClassifier
from skmm import registry
from skmm.registry import Registry, UnknownNameError, fusions, image_backbones, text_backbones


def test_decorator_registration_and_lookup():
    reg = Registry("thing", "skmm.test_things")

    @reg.register("double")
    def double(x):
        return 2 * x

    assert reg.get("double")(3) == 6
    assert "double" in reg and "triple" not in reg
    assert reg.names() == ["double"]


def test_unknown_name_lists_known_names():
    with pytest.raises(UnknownNameError) as err:
        fusions.get("no-such-fusion")
    message = str(err.value)
    assert "no-such-fusion" in message
    for name in ("concat", "gated", "attention", "late"):
        assert repr(name) in message
    assert isinstance(err.value, ValueError) and isinstance(err.value, KeyError)


def test_builtin_names():
    assert {"concat", "sum", "gated", "attention", "bilinear", "tensor", "film", "late", "image", "text"} <= set(
        fusions.names()
    )
    assert {"cnn", "pixels", "torchvision", "timm", "hf", "clip"} <= set(image_backbones.names())
    assert {"tfidf", "hashing", "embedding-bag", "gru", "lstm", "hf", "clip", "st"} <= set(text_backbones.names())


def test_former_registry_names_warn_and_still_work():
    with pytest.warns(DeprecationWarning, match="image_backbones"):
        assert registry.image_encoders is image_backbones
    with pytest.warns(DeprecationWarning, match="text_backbones"):
        from skmm.registry import text_encoders
    assert text_encoders is text_backbones
    with pytest.raises(AttributeError):
        registry.no_such_registry


def test_unregister():
    reg = Registry("thing", "skmm.test_things")
    reg.register("a", lambda: 1)
    reg.unregister("a")
    assert "a" not in reg
    with pytest.raises(UnknownNameError, match="'a'"):
        reg.unregister("a")


def test_lazy_imports_on_first_call(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    factory = registry.lazy("colorsys", "rgb_to_hsv")
    assert "colorsys" not in sys.modules
    assert factory(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)


def test_family_prefix_is_split():
    reg = Registry("thing", "skmm.test_things")
    reg.register("fam", lambda spec: spec)
    assert reg.split("fam:model/name") == ("fam", "model/name")
    family, spec = reg.split("fam:model/name")
    assert reg.get("fam:model/name")(spec) == "model/name"


def test_overwrite_warns_unless_asked():
    reg = Registry("thing", "skmm.test_things")
    reg.register("a", lambda: 1)
    with pytest.warns(UserWarning, match="registered already"):
        reg.register("a", lambda: 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.register("a", lambda: 3, overwrite=True)
    assert reg.get("a")() == 3


def test_bad_names_rejected():
    reg = Registry("thing", "skmm.test_things")
    with pytest.raises(ValueError, match="without ':'"):
        reg.register("a:b", lambda: 1)


def test_entry_points_are_read_lazily(monkeypatch):
    calls = []

    class FakeEP:
        name, value = "lazy-one", "mod:obj"

        def load(self):
            calls.append("load")
            return lambda: "loaded"

    reg = Registry("thing", "skmm.test_things")
    monkeypatch.setattr("skmm.registry.entry_points", lambda group: [FakeEP()] if group == "skmm.test_things" else [])
    assert calls == []
    assert reg.get("lazy-one")() == "loaded"
    assert calls == ["load"]
    reg.get("lazy-one")
    assert calls == ["load"]  # loaded once


def test_broken_plugin_names_itself(monkeypatch):
    class BrokenEP:
        name, value = "broken", "nowhere:thing"

        def load(self):
            raise ModuleNotFoundError("No module named 'nowhere'")

    reg = Registry("thing", "skmm.test_things")
    monkeypatch.setattr("skmm.registry.entry_points", lambda group: [BrokenEP()])
    with pytest.raises(ImportError, match="broken.*nowhere"):
        reg.get("broken")


def test_plugins_in_the_former_entry_point_groups_still_load(monkeypatch):
    class OldEP:
        name, value = "old-style", "old_plugin:make"

        def load(self):
            return lambda spec, **kwargs: "built"

    groups = []

    def fake_entry_points(group):
        groups.append(group)
        return [OldEP()] if group == "skmm.image_encoders" else []

    reg = Registry("image backbone", "skmm.image_backbones", legacy_groups=("skmm.image_encoders",))
    monkeypatch.setattr("skmm.registry.entry_points", fake_entry_points)
    with pytest.warns(DeprecationWarning, match="skmm.image_backbones"):
        assert reg.get("old-style:x")("x") == "built"
    assert groups[:2] == ["skmm.image_backbones", "skmm.image_encoders"]


def _install_plugin(tmp_path, monkeypatch):
    """A throwaway third-party package with a fusion entry point, on sys.path."""
    pkg = tmp_path / "skmm_demo_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            class MaxFusion(nn.Module):
                produces_logits = False

                def __init__(self, modalities, dim, n_classes):
                    super().__init__()
                    self.out_dim = dim

                def forward(self, zs):
                    return torch.stack(zs, 0).amax(0)

            def make_max_fusion(modalities, dim, n_classes, **kwargs):
                return MaxFusion(modalities, dim, n_classes)
            """
        )
    )
    dist = tmp_path / "skmm_demo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: skmm-demo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[skmm.fusions]\nelementwise-max = skmm_demo_plugin:make_max_fusion\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()


def test_plugin_fusion_from_entry_point_in_grid_search(tmp_path, monkeypatch, shapes_df):
    assert "elementwise-max" not in fusions.names()
    _install_plugin(tmp_path, monkeypatch)
    fusions.refresh()
    assert "elementwise-max" in fusions.names()
    df = shapes_df
    clf = FusionClassifier(
        image="pixels", text="tfidf", image_col="image_path", text_col="caption",
        max_epochs=3, random_state=0, dim=16, hidden_dim=16,
    )
    search = GridSearchCV(clf, {"fusion": ["concat", "elementwise-max"]}, cv=2).fit(df, df["label"])
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 2 and np.all(np.isfinite(scores))
    fitted = FusionClassifier(
        image="pixels", text="tfidf", image_col="image_path", text_col="caption", fusion="elementwise-max",
        max_epochs=2, random_state=0, dim=16, hidden_dim=16,
    ).fit(df, df["label"])
    assert type(fitted.net_.module_.fusion).__name__ == "MaxFusion"
    fusions.unregister("elementwise-max")
