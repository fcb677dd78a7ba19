"""The local web demo (``facesr-kd-demo``): a standard-library HTTP server and a static page.

See :mod:`facesr_kd.demo.server`.
"""

from facesr_kd.demo.server import (
    MAX_BODY_BYTES,
    UPSCALES,
    DemoApp,
    DemoServer,
    UploadError,
    build_restorer,
    make_server,
    parse_multipart,
    parse_options,
    serve,
)

__all__ = [
    'MAX_BODY_BYTES',
    'UPSCALES',
    'DemoApp',
    'DemoServer',
    'UploadError',
    'build_restorer',
    'make_server',
    'parse_multipart',
    'parse_options',
    'serve',
]
