"""The local web demo (``facesr-kd-demo``), on Gradio (the optional ``[demo]`` extra).

See :mod:`facesr_kd.demo.app`. Importing this package does not import Gradio: :func:`build_demo` does, and says
how to install it when it is missing.
"""

from facesr_kd.demo.app import (
    CONCURRENCY,
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_QUEUE,
    UPSCALES,
    DemoApp,
    Refused,
    build_demo,
    build_restorer,
    launch,
    set_offline_env,
)

__all__ = [
    'CONCURRENCY',
    'MAX_FILE_BYTES',
    'MAX_FILES',
    'MAX_QUEUE',
    'UPSCALES',
    'DemoApp',
    'Refused',
    'build_demo',
    'build_restorer',
    'launch',
    'set_offline_env',
]
