"""The web demo's page, driven in headless Chromium with Playwright: upload, results, download, messages.

Needs the system Chromium (``apt-get install chromium``) and the ``playwright`` package (``pip install
playwright``; no Playwright browser download: the system one is launched). Without them the test skips, naming
what to install, unless ``FACESR_KD_REQUIRE_BROWSER=1`` (CI), which makes it fail instead. It also reads a staged
photo and the detector weights in ``../shared/data``.

``FACESR_KD_SCREENSHOT=1`` also writes ``docs/demo_screenshot.png``, the page with a result (made with the tiny
random-weight test student, which the page says); the suite leaves that committed file alone otherwise.
"""

import os
import sys
from pathlib import Path

from facesr_kd.demo import DemoApp
from facesr_kd.inference import FaceSRRestorer

import cv2
import pytest

from .conftest import README_COUNTS, REPO_ROOT, SHARED_DATA
from .test_demo import DET, start_server, stop_server

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
]
REQUIRE_BROWSER = os.environ.get('FACESR_KD_REQUIRE_BROWSER') == '1'
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
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope='module')
def demo(shared_data, student_ckpt):
    restorer = FaceSRRestorer(model_path=student_ckpt, **DET)
    server = start_server(DemoApp(restorer, note=NOTE))
    yield server, restorer
    stop_server(server)


def test_page_upload_result_download_and_message(browser, demo, tmp_path):
    server, restorer = demo
    img = cv2.imread(str(PHOTO))
    h, w = img.shape[:2]
    expected = len(restorer.detect(img))  # what the restorer finds in this photo, asked directly
    assert expected == README_COUNTS[PHOTO.name]

    context = browser.new_context(accept_downloads=True, viewport={'width': 1280, 'height': 900})
    page = context.new_page()
    errors = []
    page.on('pageerror', lambda err: errors.append(str(err)))
    page.goto(server.url)
    page.wait_for_selector('body[data-ready="1"]', timeout=15_000)
    assert 'DFDNetStudent' in page.inner_text('#model') and 'RANDOM' in page.inner_text('#note')

    page.set_input_files('#files', str(PHOTO))
    page.select_option('#upscale', '2')
    page.click('#submit')
    page.wait_for_selector('#results[data-done]', timeout=60_000)
    card = page.locator('.result[data-status="ok"]')
    assert card.count() == 1 and card.get_attribute('data-name') == PHOTO.name
    assert card.locator('.face').count() == expected == int(card.get_attribute('data-faces'))
    assert card.locator('.face-count').inner_text() == f'{expected} faces found'
    assert card.locator('.face img').count() == 2 * expected
    assert 'restored' in page.inner_text('#status') and 'Traceback' not in page.content()
    # Every image decoded in the page (input, result, each face).
    widths = page.eval_on_selector_all('.result img', 'imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)')
    assert len(widths) == 2 + 2 * expected and min(widths) > 0

    if os.environ.get('FACESR_KD_SCREENSHOT') == '1':
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    with page.expect_download(timeout=15_000) as info:
        card.locator('a.download').click()
    download = info.value
    assert download.suggested_filename == 'codeformer_00_facesr_x2.png'
    saved = tmp_path / download.suggested_filename
    download.save_as(str(saved))
    result = cv2.imread(str(saved), cv2.IMREAD_UNCHANGED)
    assert result is not None and result.shape == (2 * h, 2 * w, 3)
    assert Path(saved).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

    # A file that is not an image: a message on the page, no stack trace; the old results are gone.
    page.set_input_files('#files', files=[{'name': 'notes.txt', 'mimeType': 'text/plain', 'buffer': b'hello'}])
    page.click('#submit')
    page.wait_for_selector('#results[data-done] .result[data-status="error"]', timeout=30_000)
    assert page.locator('.result').count() == 1
    message = page.inner_text('.result[data-status="error"] .error-message')
    assert message.startswith('not an image:') and 'Traceback' not in page.content()
    assert 'notes.txt' in page.inner_text('.result[data-status="error"] h2')
    assert '1 not restored' in page.inner_text('#status')
    assert not errors, errors
    context.close()


def test_skip_reason_names_what_to_install(monkeypatch):
    """Without Chromium and Playwright the skip message says what to install (faked here)."""
    monkeypatch.setattr(sys.modules[__name__], 'CHROMIUM', '/nonexistent/chromium')
    monkeypatch.setitem(sys.modules, 'playwright.sync_api', None)  # import fails
    reason = _browser_missing()
    assert 'apt-get install chromium' in reason and 'pip install playwright' in reason
