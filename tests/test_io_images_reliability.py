"""skmm.io.images under stress: threads and forks, pipes and devices, huge images, Path columns.

Anything that could hang runs in a child interpreter with a timeout, so that a
regression fails the test instead of freezing the run.
"""

import multiprocessing
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from skmm.io.images import ImageLoadError, load_image, load_images, load_images_parallel

posix_only = pytest.mark.skipif(os.name != "posix", reason="named pipes, sockets and fork are POSIX")


def _run(code, timeout=120):
    """Run ``code`` in a fresh interpreter; fail (rather than hang) if it does not finish in time.

    The child gets its own process group so that, on a timeout, its hung
    DataLoader workers are killed with it instead of outliving the test.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        pytest.fail(f"did not finish within {timeout} s (a deadlock?)")
    assert child.returncode == 0, stderr[-3000:]
    return stdout


def _save(img, path, **kwargs):
    img.save(path, **kwargs)
    return str(path)


@pytest.fixture
def good(tmp_path):
    return _save(Image.new("RGB", (6, 6), "red"), tmp_path / "good.png")


# ------------------------------------------------------------ threads and forked workers


@posix_only
def test_threads_loading_with_workers_at_once_do_not_deadlock(tmp_path):
    """Workers forked by one thread while others open files: each fork must get usable locks."""
    out = _run(
        f"""
        from concurrent.futures import ThreadPoolExecutor
        from skmm.datasets import make_shapes
        from skmm.io.images import load_images

        paths = list(make_shapes(200, random_state=0, directory={str(tmp_path)!r})["image_path"])
        with ThreadPoolExecutor(4) as ex:
            results = list(ex.map(lambda _: load_images(paths, 16, num_workers=2), range(8)))
        print(sum(int(present.all()) for _, present in results))
        """
    )
    assert out.split()[-1] == "8"


@posix_only
def test_worker_forked_while_another_thread_opens_a_file(tmp_path):
    """Deterministic version: a thread is stopped inside Image.open while workers are forked.

    The workers must neither wait for that thread nor inherit the lifted
    Pillow limit: they see the limit the user set.
    """
    out = _run(
        f"""
        import multiprocessing, threading
        from PIL import Image
        from skmm.io.images import ImageFolderDataset, load_image, load_images

        Image.MAX_IMAGE_PIXELS = 123_456_789
        paths = []
        for i in range(8):
            paths.append({str(tmp_path)!r} + f"/{{i}}.png")
            Image.new("RGB", (10, 10), (30 * i, 0, 0)).save(paths[-1])

        real_open, inside, release = Image.open, threading.Event(), threading.Event()

        def stalled_open(fp, *args, **kwargs):
            if threading.current_thread().name == "stalled":
                inside.set()
                release.wait()
            return real_open(fp, *args, **kwargs)

        Image.open = stalled_open
        stalled = threading.Thread(target=load_image, args=(paths[0], 8), name="stalled")
        stalled.start()
        inside.wait()
        assert Image.MAX_IMAGE_PIXELS is None  # lifted while the stalled thread opens

        seen = multiprocessing.Array("q", len(paths))
        getitem = ImageFolderDataset.__getitem__

        def recording(self, i):
            seen[i] = Image.MAX_IMAGE_PIXELS or -1
            return getitem(self, i)

        ImageFolderDataset.__getitem__ = recording
        pixels, present = load_images(paths, 8, num_workers=2)
        release.set()
        stalled.join()
        assert present.all() and pixels[3, 0, 4, 4] == 90
        assert set(seen[:]) == {{123_456_789}}, seen[:]
        assert Image.MAX_IMAGE_PIXELS == 123_456_789
        print("ok")
        """,
        timeout=90,
    )
    assert out.split()[-1] == "ok"


def _new_children(before):
    """Child processes started since ``before`` (other tests may leave joblib's loky workers)."""
    return [p for p in multiprocessing.active_children() if p.pid not in before]


def _worker_paths(tmp_path, n=40):
    paths = [_save(Image.new("RGB", (8, 8), "blue"), tmp_path / f"{i}.png") for i in range(n)]
    paths[30] = str(tmp_path / "gone.png")
    return paths


@posix_only
def test_workers_stop_when_the_stream_raises(tmp_path):
    paths = _worker_paths(tmp_path)
    before = {p.pid for p in multiprocessing.active_children()}
    with pytest.raises(ImageLoadError, match="row 30") as info:
        for _ in load_images_parallel(paths, 8, num_workers=2, batch_size=4):
            assert _new_children(before)
    # The traceback still holds the generator's frame: the workers must be gone anyway.
    assert info.value.row == 30
    assert not _new_children(before)


@posix_only
def test_workers_stop_when_the_stream_is_closed(tmp_path):
    paths = _worker_paths(tmp_path)
    before = {p.pid for p in multiprocessing.active_children()}
    stream = load_images_parallel(paths, 8, num_workers=2, batch_size=4, on_error="ignore")
    next(stream)
    assert _new_children(before)
    stream.close()
    assert not _new_children(before)


# ------------------------------------------------------------ not regular files


@posix_only
def test_fifo_is_refused_without_blocking(tmp_path, good):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    out = _run(
        f"""
        import warnings
        from skmm.io.images import ImageLoadError, load_image, load_images

        good, fifo = {good!r}, {str(fifo)!r}
        try:
            load_image(fifo, 8)
        except ImageLoadError as err:
            print("single:", err.reason)
        for workers in (0, 2):
            _, present = load_images([good, fifo, good], 8, on_error="ignore", num_workers=workers)
            print("ignore:", present.tolist())
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                load_images([good, fifo], 8, on_error="warn", num_workers=workers)
            print("warn:", len(caught), str(caught[0].message))
            try:
                load_images([good, fifo], 8, column="image", index=["a", "b"], num_workers=workers)
            except ImageLoadError as err:
                print("raise:", err)
        """,
        timeout=60,
    )
    assert "single: is a named pipe (FIFO), not a regular file" in out
    assert out.count("ignore: [True, False, True]") == 2
    assert out.count("warn: 1 1 image could not be loaded") == 2
    raised = f"raise: Could not load image in row 'b', column 'image': {str(fifo)!r}: is a named pipe"
    assert out.count(raised) == 2


@posix_only
def test_socket_is_refused(good):
    directory = tempfile.mkdtemp()  # AF_UNIX paths must be short
    path = os.path.join(directory, "s.png")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(path)
        with pytest.raises(ImageLoadError, match="is a socket, not a regular file"):
            load_image(path, 8)
        _, present = load_images([good, path], 8, on_error="ignore")
        assert present.tolist() == [True, False]
    finally:
        server.close()
        os.unlink(path)
        os.rmdir(directory)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_character_device_is_refused():
    assert stat.S_ISCHR(os.stat("/dev/zero").st_mode)
    with pytest.raises(ImageLoadError, match="is a character device, not a regular file") as info:
        load_image("/dev/zero", 8)
    assert info.value.path == "/dev/zero"
    _, present = load_images(["/dev/zero"], 8, on_error="ignore")
    assert not present.any()


def test_directory_and_bad_parent_are_refused(tmp_path, good):
    with pytest.raises(ImageLoadError, match="is a directory, not a file"):
        load_image(tmp_path, 8)
    with pytest.raises(ImageLoadError, match=r"cannot open the file \(Not a directory\)"):
        load_image(os.path.join(good, "x.png"), 8)


def test_symlink_to_an_image_loads(tmp_path, good):
    link = tmp_path / "link.png"
    link.symlink_to(good)
    assert load_image(link, 4)[:, 2, 2].tolist() == [255, 0, 0]


# ------------------------------------------------------------ huge images


@pytest.mark.parametrize(
    "mode, size, image_size, resize",
    [
        ("1", (6000, 6000), 8, "pad"),  # factor 375 per side
        ("L", (4000, 4000), 4, "pad"),  # factor 500
        ("L", (20000, 300), 2, "stretch"),  # factors 5000 x 75
        ("RGBA", (3000, 3000), 4, "crop"),  # factor 375, premultiplied
    ],
)
def test_huge_white_image_stays_white(tmp_path, mode, size, image_size, resize):
    white = {"1": 1, "L": 255, "RGBA": (255, 255, 255, 255)}[mode]
    path = _save(Image.new(mode, size, white), tmp_path / "white.png")
    pixels = load_image(path, image_size, resize=resize)
    assert pixels.min() == 255


@pytest.mark.parametrize("grey", [1, 77, 254])
def test_huge_grey_image_keeps_its_grey(tmp_path, grey):
    path = _save(Image.new("L", (3000, 3000), grey), tmp_path / "grey.png")
    assert set(load_image(path, 4).ravel().tolist()) == {grey}  # factor 375


# ------------------------------------------------------------ Path objects


def test_a_column_of_path_objects_loads(tmp_path, good):
    column = pd.Series(
        [Path(good), None, tmp_path / "gone.png", Path(good)], index=["w", "x", "y", "z"], name="image"
    )
    for workers in (0, 2):
        pixels, present = load_images(column, 4, on_error="ignore", num_workers=workers)
        assert present.tolist() == [True, False, False, True]
        assert pixels[0, :, 2, 2].tolist() == [255, 0, 0]
        message = r"row 'y', column 'image': '.*gone\.png': file not found"
        with pytest.raises(ImageLoadError, match=message) as info:
            load_images(column, 4, column="image", index=column.index, num_workers=workers)
        assert info.value.path == str(tmp_path / "gone.png")
