"""The web demo's Gradio page, driven in headless Chromium with Playwright: upload, results, download, messages.

Needs the system Chromium (``apt-get install chromium``), the ``playwright`` package (no Playwright browser
download: the system one is launched) and Gradio (``pip install "facesr_kd[demo]"``). Without them the test
skips, naming what to install, unless ``FACESR_KD_REQUIRE_BROWSER=1`` (CI), which makes it fail instead. It
also reads a staged photo and the detector weights in ``../shared/data``. The network is the tiny RANDOM-weight
test student (``conftest.student_ckpt``): its faces mean nothing; the page and the pipeline are real.

The page must be offline: every request the browser makes to anywhere but the demo's own address is recorded
(and aborted) and the test fails if there is one. The test writes ``docs/demo_screenshot.png``, the page with a
result (committed; it is rewritten only when ``FACESR_KD_SCREENSHOT=1``).
"""

import importlib.util
import os
import sys
from pathlib import Path

import cv2
import pytest

from .conftest import FACEXLIB_WEIGHTS, README_COUNTS, REPO_ROOT, SHARED_DATA
from .test_demo import REQUIRE_BROWSER, DemoProcess, require_gradio

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
]
PHOTO = SHARED_DATA / 'faces' / 'whole' / 'codeformer_00.jpg'
SCREENSHOT = REPO_ROOT / 'docs' / 'demo_screenshot.png'
NOTE = 'Test model: a tiny DFDNetStudent with RANDOM weights: its restored faces mean nothing; the pipeline is real.'


def _browser_missing():
    """Why the browser test cannot run here (what to install), or None."""
    missing = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing.append(f'{CHROMIUM} not found (apt-get install chromium)')
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append('the playwright package is missing (pip install playwright)')
    return '; '.join(missing) or None


@pytest.fixture(scope='module')
def browser():
    reason = _browser_missing()
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(f'{reason}; FACESR_KD_REQUIRE_BROWSER=1 forbids skipping the browser test')
        pytest.skip(reason)
    require_gradio()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope='module')
def served(tmp_path_factory, shared_data, student_ckpt):
    require_gradio()
    server = DemoProcess(tmp_path_factory.mktemp('demo_browser'), student_ckpt, '-q', '--note', NOTE)
    yield server
    server.close()


def _save_small_png(png, path):
    """Write a screenshot as a 256-colour PNG (a third of the size, commit-ready)."""
    import io

    from PIL import Image

    Image.open(io.BytesIO(png)).convert('RGB').quantize(256).save(path, optimize=True)


def _status(page):
    return page.inner_text('#status')


@pytest.mark.slow
def test_page_upload_result_download_and_message(browser, served, student_ckpt, tmp_path):
    from facesr_kd.inference import FaceSRRestorer

    restorer = FaceSRRestorer(
        model_path=student_ckpt, det_model='retinaface_mobile0.25', model_root=str(FACEXLIB_WEIGHTS),
        offline=True, device='cpu',
    )  # fmt: skip
    img = cv2.imread(str(PHOTO))
    h, w = img.shape[:2]
    expected = len(restorer.detect(img))  # what the restorer finds in this photo, asked directly
    assert expected == README_COUNTS[PHOTO.name]

    origin = served.url.rstrip('/')
    outside = []

    def route(r):
        url = r.request.url
        if url.startswith((origin + '/', 'data:', 'blob:')) or url == origin:
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    context = browser.new_context(accept_downloads=True, viewport={'width': 1280, 'height': 900})
    context.route('**/*', route)
    page = context.new_page()
    errors = []
    page.on('pageerror', lambda err: errors.append(str(err)))
    page.goto(served.url)
    page.wait_for_selector('#submit', timeout=30_000)
    assert 'DFDNetStudent x8 (32 -> 256 faces)' in page.inner_text('#model') and 'RANDOM' in page.inner_text('#model')
    if importlib.util.find_spec('skimage'):  # the example photo: scikit-image's astronaut
        assert page.get_by_text('astronaut.png').count() >= 1

    page.locator('#files input[type=file]').set_input_files(str(PHOTO))
    page.wait_for_selector(f'#files td.filename[aria-label="{PHOTO.name}"]', timeout=30_000)
    page.locator('#upscale label', has_text='2').click()
    page.click('#submit')
    page.wait_for_function("document.querySelector('#status').innerText.includes('restored')", timeout=120_000)
    status = _status(page)
    assert '1 of 1 restored' in status and f'{PHOTO.name}: {expected} faces found, result {2 * w}x{2 * h}' in status
    # The faces: network input and restored face of each, all decoded in the page.
    page.wait_for_function(
        f"document.querySelectorAll('#faces .thumbnail-item img').length === {2 * expected}", timeout=30_000
    )
    page.wait_for_function(
        "[...document.querySelectorAll('#faces .thumbnail-item img, #slider img')].every(i => i.complete && "
        'i.naturalWidth > 0)',
        timeout=30_000,
    )
    labels = page.eval_on_selector_all('#faces .thumbnail-item', 'els => els.map(e => e.getAttribute("aria-label"))')
    assert len(labels) == 2 * expected
    sizes = page.eval_on_selector_all('#slider img', 'imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])')
    assert len(sizes) == 2 and all(s == [2 * w, 2 * h] for s in sizes), sizes
    assert 'Traceback' not in page.content()

    if os.environ.get('FACESR_KD_SCREENSHOT') == '1' or not SCREENSHOT.exists():
        _save_small_png(page.screenshot(full_page=True), SCREENSHOT)

    link = page.locator('#downloads a[download]')
    assert link.count() == 1
    with page.expect_download(timeout=30_000) as info:
        link.click()
    download = info.value
    assert download.suggested_filename == 'codeformer_00_facesr_x2.png'
    saved = tmp_path / download.suggested_filename
    download.save_as(str(saved))
    result = cv2.imread(str(saved), cv2.IMREAD_UNCHANGED)
    assert result is not None and result.shape == (2 * h, 2 * w, 3)
    assert Path(saved).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

    # A file that is not an image: a message on the page, no stack trace; the old faces are gone.
    page.locator('#files button[aria-label="Clear"], #files button[title="Clear"]').first.click()
    page.locator('#files input[type=file]').set_input_files(
        files=[{'name': 'notes.txt', 'mimeType': 'text/plain', 'buffer': b'hello'}]
    )
    page.wait_for_selector('#files td.filename[aria-label="notes.txt"]', timeout=30_000)
    page.click('#submit')
    page.wait_for_function("document.querySelector('#status').innerText.includes('not restored')", timeout=60_000)
    status = _status(page)
    assert '0 of 1 restored, 1 not restored' in status and 'notes.txt: not an image:' in status, status
    assert 'Traceback' not in page.content() and str(served.root) not in status
    assert page.locator('#faces .thumbnail-item').count() == 0
    assert not outside, f'the page fetched from outside the demo: {outside}'
    assert not errors, errors
    context.close()


def test_skip_reason_names_what_to_install(monkeypatch):
    """Without Chromium and Playwright the skip message says what to install (faked here)."""
    monkeypatch.setattr(sys.modules[__name__], 'CHROMIUM', '/nonexistent/chromium')
    monkeypatch.setitem(sys.modules, 'playwright.sync_api', None)  # import fails
    reason = _browser_missing()
    assert 'apt-get install chromium' in reason and 'pip install playwright' in reason
