"""Detection debug view: every detection of a photo drawn on it, kept or not, with why.

:func:`draw_detections` takes the detections that :meth:`facesr_kd.inference.FaceSRRestorer.enhance` keeps in
``last_stats['detections']`` (with ``keep_rejected=True``): each a dict with ``box``, ``score``,
``landmarks5``, ``kept`` and, for a kept face, ``index`` (the ``<name>_<index>`` of its files), for another its
``label`` (a short reason). Restored faces are drawn green with their five landmarks and
``#<index> <score> <model>`` (the model that restored the face, when the detection names one); faces kept
unrestored because they are larger than the largest model input (``size_kept``) blue with ``kept <size>px``;
rejected ones orange, dashed, with their reason. Lines and text grow with the photo.
"""

import cv2
import numpy as np

KEPT_COLOUR = (0, 200, 0)  # BGR
REJECTED_COLOUR = (0, 140, 255)
SIZE_KEPT_COLOUR = (255, 128, 0)
# Left eye, right eye, nose, left and right mouth corner.
LANDMARK_COLOURS = ((255, 0, 0), (0, 0, 255), (0, 255, 255), (255, 0, 255), (255, 255, 0))


def line_width(shape):
    """Line thickness in pixels for an (H, W) photo: 1 up to 400 pixels on the short side, then 1 per 400."""
    return max(1, int(round(min(shape[:2]) / 400)))


def _dashed_rectangle(img, p0, p1, colour, thickness):
    (x0, y0), (x1, y1) = p0, p1
    dash = 4 * thickness + 4
    for a, b, fixed, horizontal in ((x0, x1, y0, True), (x0, x1, y1, True), (y0, y1, x0, False), (y0, y1, x1, False)):
        for s in range(a, b, 2 * dash):
            e = min(s + dash, b)
            q0, q1 = ((s, fixed), (e, fixed)) if horizontal else ((fixed, s), (fixed, e))
            cv2.line(img, q0, q1, colour, thickness, cv2.LINE_AA)


def _label(img, text, x, y, colour, thickness):
    """Text on a filled box of ``colour``, above (x, y), or below it at the top edge."""
    scale = 0.4 * thickness
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    y_top = y - th - base - 2 * thickness
    if y_top < 0:
        y_top = y + thickness
    x = int(np.clip(x, 0, max(img.shape[1] - tw - 2 * thickness, 0)))
    cv2.rectangle(img, (x, y_top), (x + tw + 2 * thickness, y_top + th + base + thickness), colour, cv2.FILLED)
    cv2.putText(
        img, text, (x + thickness, y_top + th + thickness), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness,
        cv2.LINE_AA,
    )  # fmt: skip


def draw_detections(img, detections):
    """The photo with every detection drawn on it (a copy; rejected ones first, so kept faces stay on top).

    Args:
        img (ndarray): (H, W, 3) uint8 BGR photo, in the pixels the detections are in.
        detections (list[dict]): ``box`` (4,), ``score``, ``landmarks5`` (5, 2), ``kept`` (bool), and ``index``
            and optionally ``model`` (kept) or ``label`` and optionally ``size_kept`` (not restored); see the
            module docstring.

    Returns:
        ndarray: (H, W, 3) uint8 BGR.
    """
    out = np.ascontiguousarray(img[..., :3], dtype=np.uint8).copy()
    t = line_width(out.shape)
    for det in sorted(detections, key=lambda d: bool(d['kept'])):
        x0, y0, x1, y1 = (int(round(v)) for v in det['box'])
        if det['kept']:
            colour = KEPT_COLOUR
            cv2.rectangle(out, (x0, y0), (x1, y1), colour, t, cv2.LINE_AA)
            text = f'#{det["index"]:02d} {det["score"]:.2f}' + (f' {det["model"]}' if det.get('model') else '')
        elif det.get('size_kept'):
            colour = SIZE_KEPT_COLOUR
            cv2.rectangle(out, (x0, y0), (x1, y1), colour, t, cv2.LINE_AA)
            text = det.get('label') or 'kept'
        else:
            colour = REJECTED_COLOUR
            _dashed_rectangle(out, (x0, y0), (x1, y1), colour, t)
            text = det.get('label') or 'rejected'
        radius = max(2, 2 * t)
        for (px, py), lm_colour in zip(np.asarray(det['landmarks5']), LANDMARK_COLOURS):
            centre = (int(round(px)), int(round(py)))
            cv2.circle(
                out,
                centre,
                radius,
                lm_colour if det['kept'] or det.get('size_kept') else colour,
                cv2.FILLED,
                cv2.LINE_AA,
            )
        _label(out, text, x0, y0, colour, t)
    return out
