"""Atomic file writes: a run killed mid-write, or a full disk, never leaves half a file under the real name.

Every file the package writes (checkpoints, training states, dictionaries, box files, images, JSON summaries,
journals' companions) goes through :func:`atomic_write`: the data go to a temporary file in the same folder,
which is renamed over the target only once it is complete, and removed if writing fails.
"""

import contextlib
import json
import os


@contextlib.contextmanager
def atomic_write(path, mode='wb'):
    """Open a temporary file beside ``path`` and rename it to ``path`` when the block ends without error.

    Args:
        path (str): The file to write; its folder is created if needed.
        mode (str): ``'wb'`` or ``'w'``.

    Yields:
        file: The open temporary file.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        with open(tmp, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def check_writable(path, what):
    """Raise unless the folder of ``path`` exists or can be created, and is writable (checked before any work).

    Args:
        path (str): A file to be written.
        what (str): How the message names it (e.g. ``'-o out.pth'``).

    Raises:
        NotADirectoryError: A file is where the folder (or one above it) should be.
        PermissionError: The nearest existing folder is not writable.
    """
    probe = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise NotADirectoryError(f'{what} cannot be written: {probe} is a file, not a folder')
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f'{what} cannot be written: {probe} is not writable')


def write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically."""
    with atomic_write(path, 'wb') as f:
        f.write(data)


def write_text(path, text, skip_same=False):
    """Write ``text`` to ``path`` atomically; with ``skip_same``, an identical file is left untouched."""
    if skip_same and os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return
    with atomic_write(path, 'w') as f:
        f.write(text)


def write_json(path, data, **kwargs):
    """Write ``data`` as JSON to ``path`` atomically (``kwargs`` go to :func:`json.dump`)."""
    with atomic_write(path, 'w') as f:
        json.dump(data, f, **kwargs)


def torch_save(obj, path):
    """``torch.save(obj, path)``, atomically."""
    import torch

    with atomic_write(path, 'wb') as f:
        torch.save(obj, f)
