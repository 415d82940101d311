"""GPU throughput of skmm's pretrained backbones: run by hand on a CUDA machine.

    python benchmarks/gpu.py [--batch 256] [--image-size 224] [--steps 20] [--out BENCHMARKS.md]

Measures, side by side in one run:

1. encoding throughput (images/s) of torchvision ResNet-18 built through
   ``skmm.backbones.torchvision`` with *random* weights (speed does not depend on
   the weights, and nothing is downloaded): fp32, fp32 + channels_last, bf16
   autocast, bf16 autocast + channels_last;
2. one fine-tuning epoch on synthetic data of ResNet-18 + a small BERT (a random
   config built locally) joined by a linear head, fp32 vs bf16 autocast +
   channels_last;
3. skmm's public API end to end on the device, checking the CUDA paths as it
   goes: ``ImageEncoder("torchvision:resnet18", device=...)`` encoding PNG files
   (DataLoader workers, pinned memory, channels_last) with ``precision="auto"``
   (bf16 autocast on CUDA) vs ``"float32"``; a ``FusionClassifier`` fine-tuning
   ResNet-18 + the small BERT end to end (``trainable=True``, ``backbone_lr``),
   seconds per epoch; and a joblib round trip of the fitted classifier.  It
   asserts that the convolutions really ran in bf16 on NHWC input, that the
   trained net lives on the device and that the reloaded model predicts the same.

Without CUDA it prints "skipped: no CUDA" and exits 0 (``--device cpu`` runs
part 3 alone on the CPU, as a smoke test of the script).  With ``--out`` it
appends the table and the command that made it to that file.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))


def _sync():
    torch.cuda.synchronize()


def encode_throughput(backbone, batch, steps, bf16, channels_last):
    from skmm.backbones import Normalize

    module = nn.Sequential(Normalize(backbone.mean, backbone.std), backbone.module).cuda().eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    module = module.to(memory_format=fmt)
    size = backbone.image_size
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8).cuda()
    x = x.contiguous(memory_format=fmt)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(3):  # warm-up: cuDNN autotuning, allocator
            module(x)
        _sync()
        start = time.perf_counter()
        for _ in range(steps):
            module(x)
        _sync()
    return batch * steps / (time.perf_counter() - start)


class _Fusion(nn.Module):
    def __init__(self, image, text, image_dim, text_dim, n_classes):
        super().__init__()
        self.image, self.text = image, text
        self.head = nn.Linear(image_dim + text_dim, n_classes)

    def forward(self, images, tokens):
        return self.head(torch.cat([self.image(images), self.text(tokens)], dim=1))


def _tiny_bert_dir(root):
    """A 4-layer, 256-wide BERT over 2,000 words (w0 ... w1999), saved to ``root``."""
    from skmm.testing import save_tiny_bert

    return save_tiny_bert(root, words=[f"w{i}" for i in range(2000)], hidden_size=256, num_hidden_layers=4,
                          num_attention_heads=4, intermediate_size=1024)


def finetune_epoch(n_samples, batch, image_size, bf16, channels_last, bert_dir):
    from skmm.backbones import Normalize
    from skmm.backbones.hf import text_backbone
    from skmm.backbones.torchvision import image_backbone

    image = image_backbone("resnet18", image_size=image_size, random_state=0)
    text = text_backbone(bert_dir, max_length=64, weights="random", random_state=0)
    model = _Fusion(nn.Sequential(Normalize(image.mean, image.std), image.module), text.module,
                    image.out_dim, text.out_dim, 10).cuda().train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    words = [" ".join(f"w{j}" for j in torch.randint(0, 2000, (40,), generator=gen).tolist()) for _ in range(n_samples)]
    tokens = torch.as_tensor(text.prepare(words))
    images = torch.randint(0, 256, (n_samples, 3, image_size, image_size), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (n_samples,), generator=gen)

    def run_epoch():
        for i in range(0, n_samples, batch):
            x = images[i : i + batch].cuda(non_blocking=True).contiguous(memory_format=fmt)
            t = tokens[i : i + batch].cuda(non_blocking=True)
            y = labels[i : i + batch].cuda(non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                loss = nn.functional.cross_entropy(model(x, t), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    images = images.pin_memory()
    run_epoch()  # warm-up epoch
    _sync()
    start = time.perf_counter()
    run_epoch()
    _sync()
    return time.perf_counter() - start


class _ConvProbe:
    """Records the dtype and memory format of the first convolution's input and output."""

    def __init__(self, module):
        conv = next(m for m in module.modules() if isinstance(m, nn.Conv2d))
        self.seen = []
        self.handle = conv.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        x = args[0]
        self.seen.append((x.device.type, output.dtype, x.is_contiguous(memory_format=torch.channels_last)))

    def take(self):
        seen, self.seen = set(self.seen), []
        return seen


def skmm_end_to_end(device, n_images, image_size, epochs, bert_dir, workdir):
    """Part 3: the public API on ``device``; returns table rows and the checks made."""
    import joblib
    import numpy as np

    from skmm import FusionClassifier, ImageEncoder, TextEncoder
    from skmm.utils.device import uses_bf16
    from skmm.datasets import make_shapes

    df = make_shapes(n_images, random_state=0, directory=os.path.join(workdir, "images"), image_size=image_size)
    rows, checks = [], []
    base, outputs = None, {}
    for precision in ("float32", "auto"):
        enc = ImageEncoder("torchvision:resnet18", image_size=image_size, device=device, precision=precision,
                           cache=False, random_state=0).fit(df["image_path"])
        probe = _ConvProbe(enc.backbone_.module)
        enc.transform(df["image_path"][:8])  # warm-up
        probe.take()
        start = time.perf_counter()
        outputs[precision] = enc.transform(df["image_path"])
        seconds = time.perf_counter() - start
        seen = probe.take()
        probe.handle.remove()
        bf16 = uses_bf16(enc.device_, precision)
        want = (torch.device(enc.device_).type, torch.bfloat16 if bf16 else torch.float32, enc.channels_last_)
        assert seen == {want}, f"precision={precision!r}: convolutions ran as {seen}, expected {want}"
        checks.append(f"ImageEncoder(precision={precision!r}) on {enc.device_}: first convolution "
                      f"{want[1]}, channels_last input {want[2]}")
        base = base or seconds
        rows.append((f"skmm ImageEncoder(torchvision:resnet18), {n_images} PNG files", f"precision={precision!r}",
                     f"{n_images / seconds:,.0f} images/s", f"{base / seconds:.2f}x"))
    a, b = outputs["float32"], outputs["auto"]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    checks.append(f"precision 'auto' vs 'float32' embeddings: min cosine similarity {cos.min():.5f}")

    clf = FusionClassifier(
        image=ImageEncoder("torchvision:resnet18", image_size=image_size, trainable=True),
        text=TextEncoder(f"hf:{bert_dir}", weights="random", trainable=True, max_length=32),
        fusion="concat", max_epochs=epochs, batch_size=64, lr=1e-3, backbone_lr=1e-4, warmup_epochs=1,
        grad_clip=1.0, device=device, random_state=0,
    )
    clf.fit(df, df["label"])
    on = {p.device.type for p in clf.net_.module_.parameters()}
    assert on == {torch.device(clf.device_).type}, f"net parameters on {on}, expected {clf.device_}"
    probe = _ConvProbe(clf.net_.module_)
    clf.predict_proba(df[:16])
    dtypes = {dtype for _, dtype, _ in probe.take()}
    probe.handle.remove()
    want = torch.bfloat16 if uses_bf16(clf.device_, "auto") else torch.float32
    assert dtypes == {want}, f"FusionClassifier's image branch ran in {dtypes}, expected {want}"
    durations = [row["dur"] for row in clf.net_.history]
    per_epoch = min(durations[1:] or durations)
    rows.append((f"skmm FusionClassifier fine-tuning ResNet-18 + BERT end to end, {n_images} rows",
                 f"precision='auto' ({'bf16' if uses_bf16(clf.device_, 'auto') else 'float32'})",
                 f"{per_epoch:.2f} s per epoch ({n_images / per_epoch:,.0f} rows/s)", "-"))
    checks.append(f"FusionClassifier: net on {clf.device_}, image branch convolutions in {want}, "
                  f"epochs {len(durations)}, train loss "
                  f"{clf.net_.history[0, 'train_loss']:.3f} -> {clf.net_.history[-1, 'train_loss']:.3f}")
    path = os.path.join(workdir, "model.joblib")
    joblib.dump(clf, path)
    loaded = joblib.load(path)
    np.testing.assert_allclose(loaded.predict_proba(df), clf.predict_proba(df), atol=1e-5)
    checks.append(f"joblib round trip: predict_proba equal to 1e-5, reloaded on {loaded.device_}")
    return rows, checks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--samples", type=int, default=2048, help="synthetic rows in the fine-tuning epoch")
    parser.add_argument("--e2e-images", type=int, default=1024, help="image files in part 3")
    parser.add_argument("--e2e-epochs", type=int, default=3, help="FusionClassifier epochs in part 3")
    parser.add_argument("--device", default="cuda",
                        help="cuda (all parts); cpu runs part 3 alone, as a smoke test of this script")
    parser.add_argument("--out", help="append the table to this Markdown file")
    args = parser.parse_args(argv)

    import tempfile

    if args.device == "cpu":
        with tempfile.TemporaryDirectory() as tmp:
            rows, checks = skmm_end_to_end("cpu", args.e2e_images, args.image_size, args.e2e_epochs,
                                           _tiny_bert_dir(os.path.join(tmp, "bert")), tmp)
        print("\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows))
        print("\n".join(f"- {c}" for c in checks))
        return 0
    if not torch.cuda.is_available():
        print("skipped: no CUDA device (run benchmarks/gpu.py on a GPU machine)")
        return 0
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 here
    torch.backends.cudnn.allow_tf32 = False

    from skmm.backbones.torchvision import image_backbone

    backbone = image_backbone("resnet18", image_size=args.image_size, random_state=0)
    rows = []
    base = None
    for bf16, cl in [(False, False), (False, True), (True, False), (True, True)]:
        ips = encode_throughput(backbone, args.batch, args.steps, bf16, cl)
        base = base or ips
        rows.append(("encode resnet18", f"{'bf16 autocast' if bf16 else 'fp32'}{' + channels_last' if cl else ''}",
                     f"{ips:,.0f} images/s", f"{ips / base:.2f}x"))

    with tempfile.TemporaryDirectory() as tmp:
        bert_dir = _tiny_bert_dir(os.path.join(tmp, "bert"))
        base = None
        for bf16, cl in [(False, False), (True, True)]:
            seconds = finetune_epoch(args.samples, min(args.batch, 128), args.image_size, bf16, cl, bert_dir)
            base = base or seconds
            rows.append((f"fine-tune epoch ({args.samples} rows)",
                         f"{'bf16 autocast + channels_last' if bf16 else 'fp32'}",
                         f"{seconds:.2f} s ({args.samples / seconds:,.0f} rows/s)", f"{base / seconds:.2f}x"))
        e2e_rows, checks = skmm_end_to_end("cuda", args.e2e_images, args.image_size, args.e2e_epochs, bert_dir, tmp)
        rows += e2e_rows

    device = torch.cuda.get_device_name()
    header = (f"GPU: {device}; torch {torch.__version__}; batch {args.batch}; image {args.image_size}px; "
              f"ResNet-18 and BERT (4 layers, 256 wide) with random weights")
    lines = [header, "", "| what | precision | speed | vs first row |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += ["", "Checks made on the way (each one an assertion):", ""] + [f"- {c}" for c in checks]
    table = "\n".join(lines)
    print(table)
    if args.out:
        from benchmarks.report import write_section

        command = "python benchmarks/gpu.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section("gpu", f"## GPU backbones\n\n`{command.strip()}`\n\n{table}", path=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
