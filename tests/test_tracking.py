"""Face tracks across video frames (facesr_kd.face.tracking): smoothing, ids, ends, state round trip.

Synthetic landmark sequences only (no detector, no data): a face of five points moved along a known path, with
Gaussian detector-like jitter added.
"""

import json

from facesr_kd.face.tracking import FaceTracker, OneEuroFilter, box_iou, landmarks_box

import numpy as np
import pytest

FACE = np.array([[40, 50], [70, 50], [55, 65], [43, 80], [67, 80]], dtype=np.float64)


def path(n, start=(0.0, 0.0), velocity=(0.0, 0.0), fps=25.0):
    """(n, 5, 2) landmarks of FACE moving from ``start`` at ``velocity`` pixels per second."""
    t = np.arange(n)[:, None, None] / fps
    return FACE[None] + np.asarray(start)[None, None] + t * np.asarray(velocity)[None, None]


def jitter(seq, sigma=1.0, seed=0):
    return seq + np.random.default_rng(seed).normal(0, sigma, seq.shape)


def smooth(seq, fps=25.0, **kwargs):
    tracker = FaceTracker(fps=fps, **kwargs)
    out = []
    for lm in seq:
        (det,) = tracker.update([{'landmarks5': lm}])
        out.append(det['landmarks5'])
    return np.array(out), tracker


@pytest.mark.parametrize('velocity', [(0.0, 0.0), (40.0, -20.0)])
def test_jittered_landmarks_come_out_steadier(velocity):
    """Frame-to-frame variance of the jitter drops, and a moving face is followed (no lag worth a pixel)."""
    truth = path(75, velocity=velocity)
    raw = jitter(truth)
    out, tracker = smooth(raw)
    raw_var = np.diff(raw - truth, axis=0).var()
    out_var = np.diff(out - truth, axis=0).var()
    assert out_var < 0.5 * raw_var, (out_var, raw_var)
    settled = slice(25, None)  # after the first second
    assert np.abs(out - truth)[settled].mean() < np.abs(raw - truth)[settled].mean() + 0.25
    assert tracker.active_ids == [0] and tracker.next_id == 1


def test_new_track_starts_at_its_detection():
    """A new track's filter is reset: its first landmarks are the detected ones, however far the last face was."""
    tracker = FaceTracker(fps=25)
    (first,) = tracker.update([{'landmarks5': FACE}])
    np.testing.assert_array_equal(first['landmarks5'], FACE)
    assert first['new_track'] and first['track_id'] == 0
    far = FACE + [300, 0]
    _, second = tracker.update([{'landmarks5': FACE + 0.5}, {'landmarks5': far}])
    assert second['new_track'] and second['track_id'] == 1
    np.testing.assert_array_equal(second['landmarks5'], far)


def test_two_faces_keep_their_ids():
    """Two faces moving side by side (not crossing), detections listed in a changing order: ids never swap."""
    a = jitter(path(40, start=(0, 0), velocity=(30, 5)), seed=1)
    b = jitter(path(40, start=(150, 20), velocity=(-20, 10)), seed=2)
    tracker = FaceTracker(fps=25)
    ids = {'a': set(), 'b': set()}
    for i in range(40):
        dets = [('a', a[i]), ('b', b[i])]
        if i % 2:
            dets.reverse()
        out = tracker.update([{'landmarks5': lm, 'who': who} for who, lm in dets])
        for det in out:
            ids[det['who']].add(det['track_id'])
    assert ids == {'a': {0}, 'b': {1}}
    assert tracker.active_ids == [0, 1]


def test_a_face_that_disappears_ends_its_track():
    """Undetected for up to max_missed frames a track lives on (the face comes back with its id); then it ends."""
    a, b = path(40), path(40, start=(150, 0))
    tracker = FaceTracker(fps=25, max_missed=3)
    for i in range(5):
        tracker.update([{'landmarks5': a[i]}, {'landmarks5': b[i]}])
    for i in range(5, 8):  # b missing for 3 frames: still alive
        tracker.update([{'landmarks5': a[i]}])
    assert tracker.active_ids == [0, 1]
    _, back = tracker.update([{'landmarks5': a[8]}, {'landmarks5': b[8]}])
    assert back['track_id'] == 1 and not back['new_track']
    for i in range(9, 13):  # b missing for 4 frames: ended after the 4th
        tracker.update([{'landmarks5': a[i]}])
    assert tracker.active_ids == [0] and tracker.ended == [1]
    _, again = tracker.update([{'landmarks5': a[13]}, {'landmarks5': b[13]}])
    assert again['new_track'] and again['track_id'] == 2
    tracker.update([], frame=30)  # nothing seen for long: every track ends
    assert tracker.active_ids == [] and tracker.ended == [1, 0, 2]


def test_state_round_trip_continues_exactly():
    """A tracker rebuilt from its JSON state (as a resumed video run does) gives the same landmarks."""
    raw = jitter(path(30, velocity=(25, 0)))
    whole, _ = smooth(raw)
    tracker = FaceTracker(fps=25)
    for lm in raw[:12]:
        tracker.update([{'landmarks5': lm}])
    state = json.loads(json.dumps(tracker.state_dict()))
    resumed = FaceTracker.from_state_dict(state)
    rest = [resumed.update([{'landmarks5': lm}])[0]['landmarks5'] for lm in raw[12:]]
    np.testing.assert_array_equal(np.array(rest), whole[12:])


def test_boxes_and_filter_edge_cases():
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
    np.testing.assert_array_equal(landmarks_box(FACE), [40, 50, 70, 80])
    flt = OneEuroFilter()
    np.testing.assert_array_equal(flt(np.ones(4), 0.0), np.ones(4))
    np.testing.assert_array_equal(flt(np.zeros(4), 0.0), np.zeros(4))  # the same instant again: start over
    assert OneEuroFilter().state_dict() is None
    with pytest.raises(ValueError, match='fps must be positive'):
        FaceTracker(fps=0)
