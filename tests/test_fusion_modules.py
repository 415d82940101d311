"""Tests of the built-in fusion modules (skmm/fusion/modules.py) and their registry entries."""

import pickle

import pytest
import torch
from torch import nn

import skmm.fusion  # noqa: F401  (registers the built-in fusions)
from skmm.fusion import find_modality
from skmm.registry import UnknownNameError, fusions

DIM = 8
N_CLASSES = 3
ABLATIONS = {"image", "text"}
ALL = fusions.names()
MODALITY_SETS = {
    1: ["image"],
    2: ["image", "text"],
    3: ["imageencoder", "textencoder", "numeric"],
}


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def build(name, modalities, dim=DIM, n_classes=N_CLASSES, **options):
    return fusions.get(name)(modalities, dim, n_classes, **options)


def applicable(name, modalities):
    return name not in ABLATIONS or find_modality(modalities, name) is not None


def inputs(n_modalities, n=5, dim=DIM, requires_grad=False):
    return [torch.randn(n, dim, requires_grad=requires_grad) for _ in range(n_modalities)]


def test_builtins_registered():
    expected = {"concat", "sum", "gated", "attention", "bilinear", "tensor", "film", "late", "image", "text"}
    assert expected <= set(ALL)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("n_modalities", sorted(MODALITY_SETS))
def test_output_shape(name, n_modalities):
    modalities = MODALITY_SETS[n_modalities]
    if not applicable(name, modalities):
        with pytest.raises(ValueError, match=rf"fusion='{name}' needs an? {name} modality; got \['image'\]"):
            build(name, modalities)
        return
    fusion = build(name, modalities)
    assert isinstance(fusion, nn.Module)
    out = fusion(inputs(n_modalities))
    assert out.shape == (5, fusion.out_dim)
    assert torch.isfinite(out).all()
    assert fusion.produces_logits is (name == "late")


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablation_without_its_modality_names_the_fusion(name):
    with pytest.raises(ValueError, match=rf"fusion='{name}' needs an? {name} modality; got \['numeric'\]"):
        build(name, ["numeric"])


@pytest.mark.parametrize(
    "name, modalities, index",
    [
        ("image", ["textencoder", "imageencoder"], 1),
        ("text", ["textencoder", "imageencoder"], 0),
        ("image", ["image_extra", "image"], 1),  # an exact name wins over a substring
        ("text", ["numeric", "Text"], 1),
    ],
)
def test_ablation_selects_its_modality(name, modalities, index):
    fusion = build(name, modalities)
    zs = inputs(len(modalities))
    assert fusion(zs) is zs[index]


@pytest.mark.parametrize(
    "n_modalities, out_dim",
    [(1, 17), (2, 17**2), (3, 17**3), (4, 8**4)],
)
def test_tensor_default_rank_keeps_output_small(n_modalities, out_dim):
    fusion = build("tensor", [f"m{i}" for i in range(n_modalities)])
    assert fusion.out_dim == out_dim <= 5000


def test_tensor_rank_per_modality():
    fusion = build("tensor", ["image", "text"], rank=[3, 4])
    assert fusion.out_dim == 4 * 5
    assert fusion(inputs(2)).shape == (5, 20)


def test_film_modulates_the_image_modality():
    fusion = build("film", ["text", "image"])
    assert fusion.target == 1 and fusion.out_dim == 2 * DIM
    assert build("film", ["text", "image"], concat_condition=False).out_dim == DIM
    assert build("film", ["a", "b"]).target == 0  # no image: the first modality


def test_attention_falls_back_to_one_head():
    with pytest.warns(UserWarning, match="not divisible"):
        fusion = build("attention", ["image", "text"], dim=6, n_heads=4)
    assert fusion.n_heads == 1
    assert fusion(inputs(2, dim=6)).shape == (5, 6)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("n_modalities", [2, 3])
def test_gradients_reach_inputs(name, n_modalities):
    modalities = MODALITY_SETS[n_modalities]
    fusion = build(name, modalities)
    zs = inputs(n_modalities, requires_grad=True)
    out = fusion(zs)
    # A random projection: a plain sum can be constant (LayerNorm, L2 norm) and hide gradients.
    (out * torch.randn_like(out)).sum().backward()
    selected = [find_modality(modalities, name)] if name in ABLATIONS else range(n_modalities)
    for i, z in enumerate(zs):
        if i in selected:
            assert z.grad is not None and z.grad.abs().sum() > 0, f"no gradient reaches {modalities[i]!r}"
        else:
            assert z.grad is None or not z.grad.any()
    for pname, p in fusion.named_parameters():
        assert p.grad is not None, f"parameter {pname} gets no gradient"


@pytest.mark.parametrize("name", ALL)
def test_deterministic_given_seed(name):
    outs = []
    for _ in range(2):
        torch.manual_seed(42)
        fusion = build(name, MODALITY_SETS[2])
        zs = inputs(2)
        outs.append(fusion(zs))  # train mode: dropout draws from the seeded generator too
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


@pytest.mark.parametrize("name", ALL)
def test_eval_mode_batch_of_one(name):
    fusion = build(name, MODALITY_SETS[2]).eval()
    zs = inputs(2, n=1)
    with torch.no_grad():
        out = fusion(zs)
        again = fusion(zs)
    assert out.shape == (1, fusion.out_dim)
    torch.testing.assert_close(out, again)  # no dropout in eval mode


def test_late_produces_weighted_logits():
    fusion = build("late", ["image", "text", "numeric"], hidden_dim=4)
    assert fusion.produces_logits and fusion.out_dim == N_CLASSES
    weights = fusion.weights_by_modality
    assert list(weights) == ["image", "text", "numeric"]
    assert sum(weights.values()) == pytest.approx(1.0)
    with torch.no_grad():
        fusion.weight_logits.copy_(torch.tensor([10.0, -10.0, -10.0]))
    assert fusion.weights_by_modality["image"] == pytest.approx(1.0, abs=1e-6)
    zs = inputs(3)
    torch.testing.assert_close(fusion(zs), fusion.heads[0](zs[0]), atol=1e-5, rtol=0)


def test_late_with_fixed_weights_keeps_them_equal():
    fusion = build("late", ["image", "text"], dim=16, n_classes=2, learn_weights=False)
    assert not fusion.weight_logits.requires_grad
    zs, y = xor_task()
    train_accuracy(fusion, zs, y, steps=20)  # the heads train ...
    assert fusion.weights_by_modality == {"image": 0.5, "text": 0.5}  # ... the weights do not
    learned = build("late", ["image", "text"], dim=16, n_classes=2)
    train_accuracy(learned, zs, y, steps=20)
    assert learned.weights_by_modality["image"] != 0.5
    # same parameters either way: a state dict loads into the other
    learned.load_state_dict(fusion.state_dict())
    with pytest.raises(TypeError, match="learn_weights must be a bool"):
        build("late", ["image", "text"], learn_weights="no")


def test_late_modality_logits_and_combine_make_forward():
    fusion = build("late", ["image", "text", "numeric"]).eval()
    zs = inputs(3)
    per = fusion.modality_logits(zs)
    assert per.shape == (5, 3, N_CLASSES)
    torch.testing.assert_close(per[:, 1], fusion.heads[1](zs[1]))
    torch.testing.assert_close(fusion.combine(per), fusion(zs))


@pytest.mark.parametrize("name", ALL)
def test_used_modalities(name):
    modalities = MODALITY_SETS[3] if name not in ABLATIONS else ["textencoder", "imageencoder", "numeric"]
    fusion = build(name, modalities)
    expected = [find_modality(modalities, name)] if name in ABLATIONS else [0, 1, 2]
    assert fusion.used_modalities == expected
    assert (fusion.modality_logits is not None) == (name == "late")


@pytest.mark.parametrize("name", ALL)
def test_unknown_option_is_a_type_error(name):
    with pytest.raises(TypeError, match="bogus_option"):
        build(name, MODALITY_SETS[2], bogus_option=1)


def test_unknown_fusion_lists_known_names():
    with pytest.raises(UnknownNameError, match="unknown fusion 'nope'.*'concat'.*'gated'"):
        fusions.get("nope")
    with pytest.raises(ValueError):
        fusions.get("nope")


def test_wrong_number_of_inputs():
    fusion = build("concat", ["image", "text"])
    with pytest.raises(ValueError, match="expected 2 inputs"):
        fusion(inputs(3))


def xor_task(n=128, dim=16):
    """Label = XOR of the signs of feature 0 in modality 0 and in modality 1.

    No model that adds a function of each modality can solve it: the fusion has
    to make the modalities interact.
    """
    g = torch.Generator().manual_seed(0)
    zs = [torch.randn(n, dim, generator=g) for _ in range(2)]
    signs = [torch.randint(0, 2, (n,), generator=g) for _ in range(2)]
    for z, s in zip(zs, signs):
        z[:, 0] = (2 * s - 1) * (0.5 + z[:, 0].abs())  # keep a margin around 0
    return zs, signs[0] ^ signs[1]


def train_accuracy(model, zs, y, steps=300):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(zs), y).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return (model(zs).argmax(1) == y).float().mean().item()


# concat only joins the modalities, so it is tested with an MLP head (as FusionNet
# has); the others must make the modalities interact by themselves, under a linear head.
@pytest.mark.parametrize("name", ["concat", "gated", "attention", "bilinear", "tensor", "film"])
def test_learns_xor_across_modalities(name):
    zs, y = xor_task()
    fusion = build(name, ["image", "text"], dim=16, n_classes=2)
    if name == "concat":
        head = nn.Sequential(nn.Linear(fusion.out_dim, 32), nn.ReLU(), nn.Linear(32, 2))
    else:
        head = nn.Linear(fusion.out_dim, 2)
    accuracy = train_accuracy(nn.Sequential(fusion, head), zs, y)
    assert accuracy > 0.9, f"{name}: train accuracy {accuracy:.2f}"


def test_xor_task_needs_interaction():
    # The control: late fusion adds per-modality logits and must fail where the others succeed.
    zs, y = xor_task()
    accuracy = train_accuracy(build("late", ["image", "text"], dim=16, n_classes=2), zs, y)
    assert accuracy < 0.85


@pytest.mark.parametrize("name", ALL)
def test_pickles(name):
    fusion = build(name, MODALITY_SETS[2]).eval()
    copy = pickle.loads(pickle.dumps(fusion))
    zs = inputs(2)
    with torch.no_grad():
        torch.testing.assert_close(copy(zs), fusion(zs))
