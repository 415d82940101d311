"""Trainable branches inside FusionClassifier: frozen (cached) or trained end to end, whole or the
last n blocks, with their own learning rate and schedule.

The pretrained checkpoints are tiny offline stand-ins; their tests skip without transformers
or torchvision.
"""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.cache import get_cache
from skmm.fusion.training import WarmupCosine
from skmm.testing import save_tiny_bert

WORDS = ["red", "blue", "green", "a", "thing", "object", "photo", "of", "the", "small", "big", "new", "painted",
         "this", "piece", "is", "on", "table", "window", "next", "to", "taken", "last", "week", "something"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer, 32-wide BERT and its tokenizer saved like a real checkpoint."""
    pytest.importorskip("transformers")
    return save_tiny_bert(tmp_path_factory.mktemp("bert"), words=WORDS)


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory):
    """resnet18 'pretrained' weights: random, saved as a state-dict file like a real download."""
    torchvision = pytest.importorskip("torchvision")
    path = tmp_path_factory.mktemp("tv") / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return str(path)


def _clf(**params):
    defaults = dict(max_epochs=2, dim=16, hidden_dim=16, batch_size=16, random_state=0, device="cpu")
    defaults.update(params)
    return FusionClassifier(**defaults)


def test_trainable_backbone_learns_end_to_end(shapes_df):
    df = shapes_df
    clf = FusionClassifier(
        image=ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}), text="gru",
        max_epochs=2, dim=16, hidden_dim=16, random_state=0, device="cpu",
    ).fit(df, df["label"])
    enc = clf.encoders_["image"]
    assert enc.is_trainable_
    names = [n for n, _ in clf.net_.module_.named_parameters()]
    assert any(n.startswith("encoders.image.") for n in names) and any(n.startswith("encoders.text.") for n in names)
    # the encoder the classifier keeps is the trained one: its features moved away from the seed's
    fresh = clone(enc).set_params(random_state=enc.random_state).fit(df["image_path"])
    assert not np.allclose(fresh.transform(df["image_path"]), enc.transform(df["image_path"]))


def test_frozen_pretrained_text_is_cached_and_untouched(shapes_df, tiny_bert):
    df = shapes_df
    text = TextEncoder(f"hf:{tiny_bert}", max_length=16)
    clf = _clf(image="pixels", text=text).fit(df, df["label"])
    enc = clf.encoders_["text"]
    assert not enc.is_trainable_  # pretrained weights stay frozen by default
    assert not any(n.startswith("encoders.text") for n, p in clf.net_.module_.named_parameters() if p.requires_grad)
    before = {k: v.clone() for k, v in enc.backbone_.module.state_dict().items()}
    cache = get_cache(None)
    misses = cache.misses
    clf.predict(df)  # same texts again: served from the cache
    assert cache.misses == misses
    for k, v in enc.backbone_.module.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_finetune_text_backbone_end_to_end_with_its_own_lr(shapes_df, tiny_bert):
    df = shapes_df
    text = TextEncoder(f"hf:{tiny_bert}", max_length=16, trainable=True)
    clf = _clf(image="pixels", text=text, lr=1e-3, backbone_lr=1e-5, grad_clip=1.0, warmup_epochs=1)
    initial = {k: v.clone() for k, v in TextEncoder(f"hf:{tiny_bert}").fit(["x"]).backbone_.module.state_dict().items()}
    clf.fit(df, df["label"])
    enc = clf.encoders_["text"]
    assert enc.is_trainable_
    groups = clf.net_.optimizer_.param_groups
    assert sorted({g["initial_lr"] for g in groups}) == [1e-5, 1e-3]
    moved = [k for k, v in enc.backbone_.module.state_dict().items() if not torch.equal(v, initial[k])]
    assert moved  # the BERT weights were trained
    assert "grad_clip" in dict(clf.net_.callbacks_)


def test_last_n_blocks_of_a_small_cnn(shapes_df):
    df = shapes_df
    clf = FusionClassifier(
        image=ImageEncoder("cnn", image_size=16, trainable="last:1", backbone_kwargs={"channels": (4, 8, 8)}),
        text="tfidf", max_epochs=1, dim=16, hidden_dim=16, random_state=0, device="cpu",
    ).fit(df, df["label"])
    cnn = clf.encoders_["image"].backbone_.module
    flags = [all(p.requires_grad for p in block.parameters()) for block in cnn.blocks]
    assert flags == [False, False, True]


def test_last_n_blocks_of_a_torchvision_backbone(shapes_df, resnet_weights):
    df = shapes_df.iloc[:32]
    image = ImageEncoder("torchvision:resnet18", weights=resnet_weights, image_size=32, trainable="last:1")
    clf = _clf(image=image, text="tfidf", max_epochs=1).fit(df, df["label"])
    model = clf.encoders_["image"].backbone_.module
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"layer4"}
    frozen_before = torch.load(resnet_weights, weights_only=True)["layer1.0.conv1.weight"]
    torch.testing.assert_close(model.layer1[0].conv1.weight.detach().cpu(), frozen_before)
    assert not torch.equal(model.layer4[1].conv2.weight.detach().cpu(),
                           torch.load(resnet_weights, weights_only=True)["layer4.1.conv2.weight"])


def test_warmup_cosine_schedule():
    schedule = WarmupCosine(2, 6)
    factors = [schedule(e) for e in range(6)]
    assert factors[:2] == [0.5, 1.0]
    assert factors[2] == 1.0 and factors[-1] < factors[2]
    assert all(a >= b for a, b in zip(factors[2:], factors[3:]))
    with pytest.raises(ValueError, match="warmup_epochs"):
        _clf(warmup_epochs=5, max_epochs=3).fit(np.zeros((4, 2)), [0, 1, 0, 1])
