"""Pretrained backbone families: torchvision, timm, hf, clip, st.

Nothing here downloads: every model is tiny, built with random weights, saved to
tmp_path and loaded back through the code path real pretrained weights take.
"""

import json
import os
import pickle
import sys

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from skmm import testing  # noqa: E402
from skmm.backbones import IMAGENET_MEAN, IMAGENET_STD, ImageBackbone, TextBackbone  # noqa: E402
from skmm.backbones.optional import import_optional, seeded_weights  # noqa: E402

WORDS = "the a cat dog red blue shirt shoe big small photo of".split()


@pytest.fixture(autouse=True)
def _seeded_single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def _images(n=2, size=32, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _embed(module, x):
    module.eval()
    with torch.inference_mode():
        return module(x)


def _check_image_backbone(bb, size):
    assert isinstance(bb, ImageBackbone)
    out = _embed(bb.module, _images(2, size))
    assert out.shape == (2, bb.out_dim)
    assert torch.isfinite(out).all()
    assert bb.image_size == size
    assert len(bb.mean) == len(bb.std) == 3
    assert isinstance(bb.blocks, list) and bb.blocks
    registered = {id(m) for m in bb.module.modules()}  # estimators map blocks to names when pickling
    assert all(id(b) in registered for b in bb.blocks)
    return out


# --- optional imports ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "family", "extra"),
    [
        ("timm", "timm", "timm"),
        ("torchvision", "torchvision", "vision"),
        ("transformers", "hf", "hf"),
        ("open_clip", "clip", "clip"),
    ],
)
def test_missing_library_names_the_extra(monkeypatch, module, family, extra):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    if module == "torchvision":
        monkeypatch.setitem(sys.modules, "torchvision.models", None)
    factory = __import__(f"skmm.backbones.{family}", fromlist=["image_backbone"]).image_backbone
    spec = "ViT-B-32" if family == "clip" else "whatever"
    with pytest.raises(ImportError, match=rf'pip install "skmm\[{extra}\]"'):
        factory(spec)


def test_missing_sentence_transformers_names_the_extra(monkeypatch):
    from skmm.backbones import sentence_transformers as st_family

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ImportError, match=r'pip install "skmm\[st\]"'):
        st_family.text_backbone("all-MiniLM-L6-v2")


def test_import_optional_returns_module():
    assert import_optional("json", "none") is json


def test_seeding_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with seeded_weights(7) as token:
        torch.rand(10)
    assert token == "random,seed=7"
    assert torch.equal(torch.rand(3), expected)
    # Weights that cannot be drawn again have no token: they are never cached.
    for random_state in (None, np.random.RandomState(0), np.random.default_rng(0)):
        with seeded_weights(random_state) as token:
            pass
        assert token is None


# --- torchvision --------------------------------------------------------------------------


def test_torchvision_random_resnet18_is_trainable_and_seeded():
    from skmm.backbones.torchvision import image_backbone

    bb = image_backbone("resnet18", image_size=32, random_state=0)
    out = _check_image_backbone(bb, 32)
    assert bb.out_dim == 512
    assert (bb.mean, bb.std) == (IMAGENET_MEAN, IMAGENET_STD)
    assert bb.trainable and bb.channels_last
    assert len(bb.blocks) == 4  # layer1..layer4
    again = image_backbone("resnet18", image_size=32, random_state=0)
    assert torch.equal(_embed(again.module, _images(2, 32)), out)
    assert again.fingerprint() == bb.fingerprint()
    other = image_backbone("resnet18", image_size=32, random_state=1)
    assert not torch.equal(_embed(other.module, _images(2, 32)), out)
    assert other.fingerprint() != bb.fingerprint()
    # Unseeded random weights are never cached.
    assert image_backbone("resnet18").fingerprint() is None
    assert image_backbone("resnet18").image_size == 224  # the builder's default crop


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_torchvision_state_dict_file_round_trip(tmp_path, suffix):
    import torchvision
    from skmm.backbones.torchvision import image_backbone

    torch.manual_seed(3)
    full = torchvision.models.resnet18(weights=None, num_classes=10)  # a fine-tuned classifier, say
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(full.state_dict(), str(path))
    else:
        torch.save(full.state_dict(), path)

    bb = image_backbone("resnet18", image_size=32, weights=str(path))
    out = _check_image_backbone(bb, 32)
    full.fc = torch.nn.Identity()
    assert torch.allclose(out, _embed(full, _images(2, 32)))
    assert not bb.trainable  # weights from a file: a frozen extractor by default
    assert str(path.resolve()) in bb.fingerprint()

    torch.save(bb.module.state_dict(), tmp_path / "headless.pt")  # the headless module loads too
    again = image_backbone("resnet18", image_size=32, weights=tmp_path / "headless.pt")
    assert torch.equal(_embed(again.module, _images(2, 32)), out)


def test_torchvision_errors(tmp_path):
    from skmm.backbones.torchvision import image_backbone

    with pytest.raises(ValueError, match="resnet18"):
        image_backbone("resnet81")
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        image_backbone("resnet18", weights="NOT_A_TAG")
    with pytest.raises(TypeError, match="bogus"):
        image_backbone("resnet18", bogus=1)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="does not fit"):
        image_backbone("resnet18", weights=tmp_path / "bad.pt")


def test_torchvision_weights_tag_gives_its_preprocessing(monkeypatch):
    import torchvision
    from skmm.backbones.torchvision import image_backbone

    # Load no weights: the tag's meta and transforms are what is under test.
    def no_download(self, *args, **kwargs):
        return torchvision.models.resnet18(weights=None).state_dict()

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", no_download)
    bb = image_backbone("resnet18", weights="IMAGENET1K_V1")
    assert bb.image_size == 224 and not bb.trainable
    assert "ResNet18_Weights.IMAGENET1K_V1" in bb.fingerprint()
    assert image_backbone("resnet18", weights="DEFAULT", image_size=48).image_size == 48


# --- the backbone contract and its fingerprints -------------------------------------------


def test_image_backbone_contract():
    bb = ImageBackbone(torch.nn.Flatten(), 12, 2, mean=(0, 0, 0), std=(1, 1, 1))
    assert bb.fingerprint() is None  # no fingerprint: never cached
    assert bb.blocks == [] and bb.trainable and not bb.channels_last
    assert bb.mean == (0.0, 0.0, 0.0) and "out_dim=12" in repr(bb)
    assert ImageBackbone(torch.nn.Flatten(), 12, 2, fingerprint="flat").fingerprint() == "flat"
    assert TextBackbone().fit(["a"]).blocks == ()


def test_fingerprints_have_one_format_and_separate_every_setting(tmp_path):
    from skmm.backbones.cnn import cnn
    from skmm.backbones.torchvision import image_backbone

    def fp(**kwargs):
        return image_backbone("resnet18", **{"image_size": 32, "random_state": 0, **kwargs}).fingerprint()

    base = fp()
    assert base.startswith("torchvision:resnet18|weights=random,seed=0|size=32|mean=")
    assert cnn(image_size=32, random_state=0).fingerprint().startswith("cnn|weights=random,seed=0|size=32|mean=")
    variants = [fp(random_state=1), fp(image_size=48), fp(zero_init_residual=True)]
    torch.save(image_backbone("resnet18", random_state=0).module.state_dict(), tmp_path / "w.pt")
    variants.append(fp(weights=tmp_path / "w.pt"))
    torch.save(image_backbone("resnet18", random_state=1).module.state_dict(), tmp_path / "w.pt")
    variants.append(fp(weights=tmp_path / "w.pt"))  # same path, other file
    assert len({base, *variants}) == 1 + len(variants)
    assert len({cnn(random_state=0).fingerprint(), cnn(random_state=0, channels=(8,)).fingerprint()}) == 2

    def built(**kwargs):
        settings = dict(family="f", name="m", weights="w", image_size=8, mean=(0.5,) * 3, std=(0.5,) * 3, out_dim=1,
                        trainable=False)
        return ImageBackbone.from_model(torch.nn.Flatten(), **{**settings, **kwargs}).fingerprint()

    assert len({built(), built(mean=(0.4,) * 3), built(std=(0.4,) * 3), built(options={"pooling": "cls"})}) == 4
    assert built(weights=None) is None


def test_unseeded_random_weights_are_never_cached():
    from skmm.backbones.cnn import cnn

    assert cnn(random_state=None).fingerprint() is None
    assert cnn(random_state=np.random.RandomState(0)).fingerprint() is None
    assert cnn(random_state=3).fingerprint() == cnn(random_state=3).fingerprint()


# --- timm ---------------------------------------------------------------------------------


def test_timm_random_and_file_round_trip(tmp_path):
    timm = pytest.importorskip("timm")
    from skmm.backbones.timm import image_backbone

    bb = image_backbone("test_resnet", image_size=32, random_state=0)
    out = _check_image_backbone(bb, 32)
    assert bb.out_dim == 96 and bb.trainable
    assert (bb.mean, bb.std) == (IMAGENET_MEAN, IMAGENET_STD)  # random weights: ImageNet statistics
    assert torch.equal(_embed(image_backbone("test_resnet", image_size=32, random_state=0).module, _images(2, 32)), out)
    assert image_backbone("test_resnet").image_size == 160  # the model's data config

    torch.manual_seed(5)
    full = timm.create_model("test_resnet")  # with its 1000-class head
    torch.save(full.state_dict(), tmp_path / "test_resnet.pth")
    loaded = image_backbone("test_resnet", image_size=32, weights=tmp_path / "test_resnet.pth")
    full.reset_classifier(0)
    assert torch.allclose(_embed(loaded.module, _images(2, 32)), _embed(full, _images(2, 32)))
    assert not loaded.trainable
    assert loaded.mean == (0.5, 0.5, 0.5)  # test_resnet's pretrained data config


def test_timm_vit_blocks_and_errors():
    pytest.importorskip("timm")
    from skmm.backbones.timm import image_backbone

    bb = image_backbone("test_vit", random_state=0)
    _check_image_backbone(bb, 160)
    assert len(bb.blocks) == 6 and not bb.channels_last
    with pytest.raises(ValueError, match="unknown timm model"):
        image_backbone("not_a_model_xyz")
    with pytest.raises(TypeError, match="bogus"):
        image_backbone("test_resnet", bogus=1)


# --- transformers: tiny models saved to tmp_path ------------------------------------------


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("hf")
    testing.save_tiny_bert(root / "bert", words=WORDS)
    testing.save_tiny_vit(root / "vit", image_mean=[0.1, 0.2, 0.3], image_std=[0.5, 0.6, 0.7])
    # A classifier checkpoint: AutoModel finds no pooler weights in it.
    testing.save_tiny_vit(root / "vit-classifier", num_labels=3)
    testing.save_tiny_convnext(root / "convnext", random_state=1)  # not what weights="random" seeded 0 gives
    testing.save_tiny_clip(root / "clip")
    return root


def test_hf_vit_preprocessing_comes_from_the_image_processor(hf_dirs):
    from skmm.backbones.hf import image_backbone

    bb = image_backbone(str(hf_dirs / "vit"))
    _check_image_backbone(bb, 32)
    assert bb.out_dim == 32 and not bb.trainable and not bb.channels_last
    assert bb.mean == pytest.approx((0.1, 0.2, 0.3)) and bb.std == pytest.approx((0.5, 0.6, 0.7))
    assert bb.module.pooling == "pooler"
    assert len(bb.blocks) == 2

    import transformers

    reference = transformers.ViTModel.from_pretrained(hf_dirs / "vit").eval()
    with torch.inference_mode():
        expected = reference(pixel_values=_images(2, 32)).pooler_output
    assert torch.allclose(_embed(bb.module, _images(2, 32)), expected, atol=1e-6)

    wider = image_backbone(str(hf_dirs / "vit"), image_size=48)  # the user's size wins
    _check_image_backbone(wider, 48)
    assert wider.fingerprint() != bb.fingerprint()


def test_hf_missing_pooler_falls_back_to_mean(hf_dirs):
    from skmm.backbones.hf import image_backbone

    bb = image_backbone(str(hf_dirs / "vit-classifier"))
    assert bb.module.pooling == "mean"
    _check_image_backbone(bb, 32)
    assert (bb.mean, bb.std) == (IMAGENET_MEAN, IMAGENET_STD)  # no image processor saved


def test_hf_convnext_and_random_weights(hf_dirs):
    from skmm.backbones.hf import image_backbone

    bb = image_backbone(str(hf_dirs / "convnext"))
    out = _check_image_backbone(bb, 32)
    assert bb.out_dim == 16 and bb.channels_last
    rand = image_backbone(str(hf_dirs / "convnext"), weights="random", random_state=0)
    assert rand.trainable and not torch.allclose(_embed(rand.module, _images(2, 32)), out)
    again = image_backbone(str(hf_dirs / "convnext"), weights="random", random_state=0)
    assert torch.equal(_embed(rand.module, _images(2, 32)), _embed(again.module, _images(2, 32)))
    assert rand.fingerprint() == again.fingerprint() != bb.fingerprint()
    assert image_backbone(str(hf_dirs / "convnext"), weights="random").fingerprint() is None
    with pytest.raises(TypeError, match="bogus"):
        image_backbone(str(hf_dirs / "convnext"), bogus=1)
    with pytest.raises(ValueError, match="weights"):
        image_backbone(str(hf_dirs / "convnext"), weights="IMAGENET1K_V1")


def test_hf_text_mean_pooling(hf_dirs):
    import transformers
    from skmm.backbones.hf import text_backbone

    tb = text_backbone(str(hf_dirs / "bert"), max_length=12)
    assert isinstance(tb, TextBackbone)
    texts = ["the cat", "a big red shirt and a small blue shoe", None]
    x = tb.fit(texts).prepare(texts)
    assert x.shape == (3, 2, 12) and x.dtype == np.int64
    assert set(np.unique(x[:, 1])) <= {0, 1} and x[0, 1].sum() == 4  # [CLS] the cat [SEP]
    out = _embed(tb.module, torch.as_tensor(x))
    assert out.shape == (3, tb.out_dim) and tb.out_dim == 32
    assert not tb.trainable and len(tb.blocks) == 2
    assert all(id(b) in {id(m) for m in tb.module.modules()} for b in tb.blocks)
    restored = pickle.loads(pickle.dumps(tb))
    assert np.array_equal(restored.prepare(texts), x)
    assert torch.equal(_embed(restored.module, torch.as_tensor(x)), out)

    model = transformers.AutoModel.from_pretrained(hf_dirs / "bert").eval()
    ids = torch.as_tensor(x[:1, 0, :4])
    with torch.inference_mode():
        expected = model(input_ids=ids).last_hidden_state.mean(dim=1)
    assert torch.allclose(out[:1], expected, atol=1e-5)
    assert tb.fingerprint() == text_backbone(str(hf_dirs / "bert"), max_length=12).fingerprint()
    assert tb.fingerprint() != text_backbone(str(hf_dirs / "bert"), max_length=8).fingerprint()
    assert tb.fingerprint() != text_backbone(str(hf_dirs / "bert"), max_length=12, pooling="cls").fingerprint()
    assert text_backbone(str(hf_dirs / "bert"), weights="random").fingerprint() is None
    assert text_backbone(str(hf_dirs / "bert"), max_length=10_000).max_length == 512  # position limit
    with pytest.raises(TypeError, match="bogus"):
        text_backbone(str(hf_dirs / "bert"), bogus=1)


# --- clip ---------------------------------------------------------------------------------


def test_clip_transformers_towers_match_get_features(hf_dirs):
    import transformers
    from skmm.backbones.clip import image_backbone, text_backbone

    reference = transformers.CLIPModel.from_pretrained(hf_dirs / "clip").eval()
    bb = image_backbone(str(hf_dirs / "clip"))
    out = _check_image_backbone(bb, 32)
    assert bb.out_dim == 24 and not bb.trainable
    assert bb.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    with torch.inference_mode():
        expected = reference.get_image_features(pixel_values=_images(2, 32))
    expected = expected if isinstance(expected, torch.Tensor) else expected.pooler_output
    assert torch.allclose(out, expected, atol=1e-6)

    tb = text_backbone(str(hf_dirs / "clip"))
    assert tb.max_length == 16  # capped at the context length
    texts = ["a cat", "dog dog cat a"]
    x = tb.prepare(texts)
    assert x.shape == (2, 2, 16)
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dirs / "clip")
    with torch.inference_mode():
        expected = reference.get_text_features(**tokenizer(texts, padding=True, return_tensors="pt"))
    expected = expected if isinstance(expected, torch.Tensor) else expected.pooler_output
    assert tb.out_dim == 24
    assert torch.allclose(_embed(tb.module, torch.as_tensor(x)), expected, atol=1e-5)


def test_clip_through_hf_family_uses_the_towers(hf_dirs):
    from skmm.backbones.hf import image_backbone, text_backbone

    assert image_backbone(str(hf_dirs / "clip")).out_dim == 32  # vision hidden size, no projection
    assert text_backbone(str(hf_dirs / "clip")).out_dim == 32


def test_open_clip_tiny_model(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    from skmm.backbones.clip import image_backbone, text_backbone

    config = {"embed_dim": 16,
              "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
              "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
    (tmp_path / "skmm-tiny-clip.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "skmm-tiny-clip.json")
    bb = image_backbone("skmm-tiny-clip", weights="random", random_state=0)
    _check_image_backbone(bb, 32)
    assert bb.out_dim == 16 and bb.trainable
    tb = text_backbone("skmm-tiny-clip", weights="random", random_state=0)
    x = tb.prepare(["a cat", "a dog"])
    assert x.shape == (2, 2, 16)
    assert _embed(tb.module, torch.as_tensor(x)).shape == (2, 16)


# --- sentence-transformers ----------------------------------------------------------------


def test_sentence_transformers_matches_encode(hf_dirs, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    from skmm.backbones.sentence_transformers import text_backbone

    path = testing.save_tiny_sentence_transformer(tmp_path / "st", bert=hf_dirs / "bert", max_seq_length=12)
    tb = text_backbone(path, max_length=64)
    texts = ["the cat", "a big red shirt"]
    x = tb.prepare(texts)
    assert x.shape == (2, 2, 12) and tb.out_dim == 32
    expected = st.SentenceTransformer(path, device="cpu").encode(texts, convert_to_tensor=True)
    assert torch.allclose(_embed(tb.module, torch.as_tensor(x)), expected, atol=1e-5)
    assert tb.fingerprint() == text_backbone(path, max_length=64).fingerprint()
