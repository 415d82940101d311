"""skmm.report and ``skmm evaluate``'s report.html: its content, parsed, and how it renders in headless Chromium.

The browser test uses Debian's ``chromium`` and ``chromium-driver`` through Selenium. When
they are missing, a session fixture installs them with apt-get (as root); the test is
skipped, saying why, only when that cannot be done.
"""

import base64
import io
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import joblib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from skmm import FusionClassifier, ImageEncoder
from skmm.cli import main
from skmm.report import write_report

pytest.importorskip("matplotlib", reason="skmm.report needs matplotlib (the 'plot' extra)")

SECTIONS = ["metrics", "learning-curves", "confusion-matrix", "modality-importance", "modality-weights", "mistakes"]
INJECTION = '<script>alert("caption")</script>'
ODD_LABEL = "<red&circle>"  # a label that is markup, too
N_MISTAKES = 5


class Page(HTMLParser):
    """What the tests look at in a report: sections, images, gallery cards, scripts, links, texts."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.sections, self.images, self.cards, self.tags = [], [], [], []
        self.urls = []
        self._field = None  # (card, dd class) while inside a gallery <dd>
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        for name in ("src", "href"):
            if attrs.get(name):
                self.urls.append(attrs[name])
        if "mistake" in classes:
            self.cards.append({"texts": [], "images": 0, "weights": False})
        if self.cards and tag == "dd":
            self._field = classes[0] if classes else None
        if self.cards and tag == "img":
            self.cards[-1]["images"] += 1
        if self.cards and "weights" in classes:
            self.cards[-1]["weights"] = True
        if self.cards and "text" in classes:
            self._field = "text"

    def handle_endtag(self, tag):
        if tag in ("dd", "p"):
            self._field = None

    def handle_data(self, data):
        if self._field == "text":
            self.cards[-1]["texts"].append(data)
        elif self._field:
            self.cards[-1][self._field] = self.cards[-1].get(self._field, "") + data


def png_size(uri):
    """The (width, height) of a data: URI that must hold a valid PNG."""
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix), uri[:60]
    data = base64.b64decode(uri[len(prefix) :], validate=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as img:
        img.verify()
    with Image.open(io.BytesIO(data)) as img:
        return img.size


@pytest.fixture(scope="module")
def gated(shapes_df):
    """A gated fusion fitted briefly on clean shapes (so it makes mistakes), one label renamed to markup."""
    X = shapes_df[["image_path", "caption"]]
    y = shapes_df["label"].replace({"red-circle": ODD_LABEL})
    clf = FusionClassifier(image=ImageEncoder("pixels", image_size=16), text="tfidf", fusion="gated", max_epochs=3,
                           dim=16, hidden_dim=16, random_state=0, device="cpu")  # fmt: skip
    return clf.fit(X, y), X, y


@pytest.fixture(scope="module")
def report(gated, tmp_path_factory):
    """The report on the training rows, whose captions all end in a <script> (unknown words to tf-idf)."""
    clf, X, y = gated
    X = X.assign(caption=X["caption"] + " " + INJECTION)
    directory = tmp_path_factory.mktemp("report")
    path = write_report(clf, X, y, directory, n_mistakes=N_MISTAKES, n_repeats=2, random_state=0)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return path, text, clf, X, y


def test_sections_and_inlined_pngs(report):
    path, text, clf, X, y = report
    assert os.path.basename(path) == "report.html" and os.listdir(os.path.dirname(path)) == ["report.html"]
    page = Page(text)
    assert page.sections == SECTIONS
    # 4 plots (curves, confusion, importance, weights) and one thumbnail per gallery card
    assert len(page.images) == 4 + len(page.cards)
    sizes = [png_size(src) for src in page.images]
    assert all(w >= 300 and h >= 100 for w, h in sizes[:4])
    assert all(max(w, h) <= 96 for w, h in sizes[4:])
    assert all(url.startswith("data:") for url in page.urls)  # nothing fetched from elsewhere
    assert "script" not in page.tags
    assert "gated" in text and "image, text" in text and f"<td>{len(y)}</td>" in text


def test_metrics_are_those_of_the_predictions(report):
    _, text, clf, X, y = report
    accuracy = accuracy_score(y, clf.predict(X))
    assert f"<td>{accuracy:.3f}</td>" in text
    for column in ("accuracy", "macro-F1", "log-loss", "precision", "recall", "support"):
        assert f"<th>{column}</th>" in text
    assert "<td>macro avg</td>" in text and "<td>blue-square</td>" in text


def test_gallery_shows_the_most_confident_mistakes(report):
    _, text, clf, X, y = report
    proba = clf.predict_proba(X)
    pred = clf.classes_[proba.argmax(axis=1)]
    wrong = np.flatnonzero(pred != y.to_numpy())
    assert len(wrong) > N_MISTAKES  # three epochs: plenty of mistakes
    cards = Page(text).cards
    assert len(cards) == N_MISTAKES
    expected = wrong[np.argsort(-proba[wrong].max(axis=1), kind="stable")][:N_MISTAKES]
    assert [int(card["row"]) for card in cards] == [int(i) for i in X.index[expected]]
    confidences = [float(card["confidence"]) for card in cards]
    assert confidences == sorted(confidences, reverse=True)
    for card, i in zip(cards, expected):
        assert card["true"] == str(y.iloc[i]) and card["predicted"] == str(pred[i]) != card["true"]
        assert card["images"] == 1 and card["weights"]  # a thumbnail and the gated fusion's weights
        assert "".join(card["texts"]) == X["caption"].iloc[i]  # the caption, its <script> as text


def test_user_strings_are_escaped(report):
    _, text, _, _, _ = report
    assert re.search(r"<script", text, re.IGNORECASE) is None
    assert "&lt;script&gt;alert(&quot;caption&quot;)&lt;/script&gt;" in text
    assert "&lt;red&amp;circle&gt;" in text and ODD_LABEL not in text


def test_rewrite_is_atomic_and_leaves_no_temporary_file(gated, tmp_path):
    clf, X, y = gated
    (tmp_path / "report.html").write_text("old")
    path = write_report(clf, X.iloc[:20], y.iloc[:20], tmp_path, n_mistakes=0, n_repeats=1)
    assert os.listdir(tmp_path) == ["report.html"] and open(path).read().startswith("<!DOCTYPE html>")
    assert Page(open(path).read()).cards == []
    with pytest.raises(ValueError, match="n_mistakes"):
        write_report(clf, X, y, tmp_path, n_mistakes=-1)
    with pytest.raises(ValueError, match="rows"):
        write_report(clf, X, y.iloc[:3], tmp_path)


def test_any_classifier_gets_a_report_without_the_fusion_sections(tmp_path):
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"a": rng.randn(60), "b": rng.randn(60)})
    y = np.where(X["a"] + 0.8 * rng.randn(60) > 0, "pos", "neg")
    clf = LogisticRegression().fit(X, y)
    text = open(write_report(clf, X, y, tmp_path)).read()
    page = Page(text)
    assert page.sections == SECTIONS and len(page.images) == 1  # the confusion matrix; no thumbnails
    assert "needs a FusionClassifier" in text and "no training history" in text
    assert page.cards and all(card["images"] == 0 for card in page.cards) and "no image" in text


def test_evaluate_command_writes_the_report(gated, shapes_df, tmp_path, capsys):
    clf, X, y = gated
    model = tmp_path / "model.joblib"
    joblib.dump(clf, model)
    data = tmp_path / "data.csv"
    X.assign(label=y).to_csv(data, index=False)
    out = tmp_path / "out"
    assert main(["evaluate", str(model), str(data), "--target", "label", "-q", "-o", str(out), "--n-mistakes", "3"]) == 0
    assert sorted(os.listdir(out)) == ["metrics.json", "predictions.csv", "report.html"]
    assert "out: metrics.json, predictions.csv, report.html" in capsys.readouterr().out
    page = Page((out / "report.html").read_text())
    assert page.sections == SECTIONS and len(page.cards) == 3
    plain = tmp_path / "plain"
    assert main(["evaluate", str(model), str(data), "--target", "label", "-q", "-o", str(plain), "--no-report"]) == 0
    assert sorted(os.listdir(plain)) == ["metrics.json", "predictions.csv"]


# ----------------------------------------------------------------------- in Chromium

APT_TIMEOUT = 900


def _browser_paths():
    return shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="session")
def chromium():
    """(chromium, chromedriver) paths, Debian's packages installed with apt-get when missing."""
    browser, driver = _browser_paths()
    if browser and driver:
        return browser, driver
    if not shutil.which("apt-get"):
        pytest.skip("chromium/chromium-driver are missing and there is no apt-get to install them")
    if os.geteuid() != 0:
        pytest.skip("chromium/chromium-driver are missing; installing them needs root: "
                    "apt-get install chromium chromium-driver")  # fmt: skip
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"]):
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT,
                                  stdin=subprocess.DEVNULL)  # fmt: skip
            if done.returncode != 0:
                tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-2:])
                pytest.skip(f"could not install chromium with {' '.join(command)}: {tail}")
    except subprocess.TimeoutExpired:
        pytest.skip(f"installing chromium with apt-get took over {APT_TIMEOUT} s")
    browser, driver = _browser_paths()
    if not (browser and driver):
        pytest.skip("apt-get installed chromium but chromium/chromedriver are not on PATH")
    return browser, driver


@pytest.fixture(scope="module")
def browser(chromium):
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    binary, driver = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)  # the driver given: nothing downloaded
    yield session
    session.quit()


def _severe(session):
    return [entry for entry in session.get_log("browser") if entry["level"] == "SEVERE"]


def test_report_renders_in_chromium(report, browser, tmp_path):
    path, text, _, _, _ = report
    # The check below can fail: a page with a missing image logs a SEVERE entry.
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head>'
                      '<body><img src="missing.png" alt="x"></body></html>')  # fmt: skip
    browser.get(broken.as_uri())
    assert _severe(browser), "a missing image should have logged an error"

    browser.get("file://" + os.path.abspath(path))
    assert browser.execute_script("return document.readyState") == "complete"
    assert browser.title == "skmm evaluation report"
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(images) == len(Page(text).images) >= 4 + N_MISTAKES
    assert all(complete and w > 0 and h > 0 for complete, w, h in images), images
    assert _severe(browser) == []
    ids = browser.execute_script("return Array.from(document.querySelectorAll('section')).map(s => s.id)")
    assert ids == SECTIONS
    assert browser.execute_script("return document.querySelectorAll('.mistake').length") == N_MISTAKES

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, min(height + 40, 8000))
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    with Image.open(shot) as img:
        assert img.width >= 1000 and img.height >= 1500
