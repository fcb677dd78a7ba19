"""Face tracks across video frames, with smoothed five-point landmarks.

A detector's landmarks jitter by a pixel or two from frame to frame even on a still face; each aligned crop
follows them, so a face restored frame by frame shimmers. :class:`FaceTracker` links each frame's detections
to the faces of the previous frames and smooths every face's five landmarks over time with a One-Euro filter
(Casiez, Roussel, Vogel, CHI 2012): a low-pass filter whose cutoff rises with the face's speed, so a still face
is smoothed strongly and a moving one followed without lag.

- Association is greedy: the (track, detection) pairs are taken best first by box IoU (then by centre
  distance); a pair counts when the IoU is at least ``min_iou`` or the centres are closer than
  ``max_centre_shift`` times the track's face size. No Hungarian assignment: faces of a video rarely cross.
- A detection no track takes starts a new track (new id, filter reset to its landmarks).
- A track not seen in a frame is kept for ``max_missed`` frames (its filter continues when the face comes
  back), then ends. Only the faces detected in a frame are returned for it: a track is never drawn where no
  face was found.
- Speeds are measured in face sizes per second (the landmarks' RMS radius), so the filter behaves the same on
  a small and a large face.

The whole state is plain JSON (:meth:`FaceTracker.state_dict` / :meth:`FaceTracker.load_state_dict`), so an
interrupted video run can continue smoothing where it stopped (:mod:`facesr_kd.video`).
"""

import math

import numpy as np


def box_iou(a, b):
    """Intersection over union of two [x1, y1, x2, y2] boxes (0 when either is empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def landmarks_box(landmarks5):
    """The bounding box [x1, y1, x2, y2] of (5, 2) landmarks (for detections given without a box)."""
    pts = np.asarray(landmarks5, dtype=np.float64).reshape(5, 2)
    return np.concatenate([pts.min(0), pts.max(0)])


def landmarks_scale(landmarks5):
    """Size of a face: the RMS distance of its five landmarks from their centroid, in pixels (at least 1)."""
    pts = np.asarray(landmarks5, dtype=np.float64).reshape(5, 2)
    return max(float(np.sqrt(((pts - pts.mean(0)) ** 2).sum(1).mean())), 1.0)


def _alpha(cutoff, dt):
    """Smoothing factor of a first-order low-pass filter at ``cutoff`` Hz for a step of ``dt`` seconds."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter of a vector signal (Casiez et al. 2012), speed measured in units of ``scale`` per second.

    Args:
        min_cutoff (float): Cutoff in Hz at rest; lower smooths a still face more.
        beta (float): Cutoff increase per unit of speed (scales per second); higher follows motion faster.
        d_cutoff (float): Cutoff in Hz of the speed estimate.
    """

    def __init__(self, min_cutoff=1.0, beta=2.0, d_cutoff=1.0):
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.x = self.dx = self.t = None

    def reset(self, x, t):
        """Start from ``x`` at time ``t`` (seconds), at rest."""
        self.x = np.asarray(x, dtype=np.float64).copy()
        self.dx = np.zeros_like(self.x)
        self.t = float(t)
        return self.x.copy()

    def __call__(self, x, t, scale=1.0):
        """Filter the value ``x`` observed at time ``t`` (seconds); return the smoothed value."""
        x = np.asarray(x, dtype=np.float64)
        if self.x is None:
            return self.reset(x, t)
        dt = float(t) - self.t
        if dt <= 0:  # the same instant again (or time going back): start over rather than divide by zero
            return self.reset(x, t)
        dx = (x - self.x) / dt
        self.dx = self.dx + _alpha(self.d_cutoff, dt) * (dx - self.dx)
        speed = float(np.sqrt((self.dx.reshape(-1, 2) ** 2).sum(1)).max()) / max(float(scale), 1e-6)
        cutoff = self.min_cutoff + self.beta * speed
        self.x = self.x + _alpha(cutoff, dt) * (x - self.x)
        self.t = float(t)
        return self.x.copy()

    def state_dict(self):
        """The filter's state as JSON-able lists (None before the first value)."""
        if self.x is None:
            return None
        return {'x': self.x.tolist(), 'dx': self.dx.tolist(), 't': self.t}

    def load_state_dict(self, state):
        """Restore a state from :meth:`state_dict`."""
        if state is None:
            self.x = self.dx = self.t = None
            return
        self.x = np.asarray(state['x'], dtype=np.float64)
        self.dx = np.asarray(state['dx'], dtype=np.float64)
        self.t = float(state['t'])


class FaceTracker:
    """Link per-frame face detections into tracks and smooth each track's five landmarks.

    Args:
        fps (float): Frames per second of the video (frame ``i`` is at ``i / fps`` seconds); used when
            :meth:`update` is given no time.
        min_iou (float): Least box IoU for a detection to continue a track.
        max_centre_shift (float): Or: largest centre distance, in face boxes' diagonals, for a detection to
            continue a track (a small face moving fast may not overlap its last box).
        max_missed (int): Frames a track may go undetected before it ends.
        min_cutoff (float): :class:`OneEuroFilter` cutoff at rest, Hz.
        beta (float): :class:`OneEuroFilter` speed coefficient (face sizes per second).
        d_cutoff (float): :class:`OneEuroFilter` speed cutoff, Hz.

    Attributes:
        tracks (list[dict]): The live tracks: ``id``, ``box``, ``missed``, ``age``, ``last_frame`` and the
            ``filter`` (:class:`OneEuroFilter`).
        ended (list[int]): Ids of the tracks that have ended, in the order they ended.
    """

    def __init__(
        self, fps=25.0, min_iou=0.3, max_centre_shift=0.5, max_missed=5, min_cutoff=1.0, beta=2.0, d_cutoff=1.0
    ):
        if not fps > 0:
            raise ValueError(f'fps must be positive, got {fps}')
        self.fps = float(fps)
        self.min_iou, self.max_centre_shift, self.max_missed = float(min_iou), float(max_centre_shift), int(max_missed)
        self.filter_args = {'min_cutoff': min_cutoff, 'beta': beta, 'd_cutoff': d_cutoff}
        self.tracks, self.ended = [], []
        self.next_id, self.frame = 0, -1

    def _match(self, boxes):
        """Greedy (track index, detection index) pairs, best first."""
        pairs = []
        for ti, track in enumerate(self.tracks):
            tb = track['box']
            diag = math.hypot(tb[2] - tb[0], tb[3] - tb[1])
            tc = np.array([(tb[0] + tb[2]) / 2, (tb[1] + tb[3]) / 2])
            for di, db in enumerate(boxes):
                iou = box_iou(tb, db)
                dist = float(np.linalg.norm(np.array([(db[0] + db[2]) / 2, (db[1] + db[3]) / 2]) - tc))
                if iou >= self.min_iou or dist <= self.max_centre_shift * diag:
                    pairs.append((-iou, dist, ti, di))
        pairs.sort()
        used_t, used_d, matches = set(), set(), []
        for _, _, ti, di in pairs:
            if ti not in used_t and di not in used_d:
                used_t.add(ti)
                used_d.add(di)
                matches.append((ti, di))
        return matches

    def update(self, detections, frame=None, t=None):
        """Add one frame's detections; return them with smoothed landmarks and their track ids.

        Args:
            detections (list[dict]): The frame's faces, each with ``landmarks5`` (5, 2) and, optionally, ``box``
                [x1, y1, x2, y2] (default: the landmarks' bounding box) and ``score`` (as
                :meth:`facesr_kd.inference.FaceSRRestorer.detect` gives them).
            frame (int | None): The frame's index (default: the one after the last).
            t (float | None): Its time in seconds (default: ``frame / fps``).

        Returns:
            list[dict]: One dict per detection, in the order given: the detection's keys, with ``landmarks5``
            the smoothed landmarks, ``raw_landmarks5`` the detected ones, ``track_id`` and ``new_track``.
        """
        frame = self.frame + 1 if frame is None else int(frame)
        t = frame / self.fps if t is None else float(t)
        self.frame = frame
        dets = [dict(d) for d in detections]
        for d in dets:
            d['raw_landmarks5'] = np.asarray(d['landmarks5'], dtype=np.float64).reshape(5, 2)
            d['box'] = np.asarray(d.get('box', landmarks_box(d['raw_landmarks5'])), dtype=np.float64)[:4]
        owner = {di: ti for ti, di in self._match([d['box'] for d in dets])}
        for i, d in enumerate(dets):
            raw = d['raw_landmarks5']
            if i in owner:
                track = self.tracks[owner[i]]
                smooth = track['filter'](raw.reshape(-1), t, landmarks_scale(raw))
                track.update(box=d['box'], age=track['age'] + 1, last_frame=frame)
                d['new_track'] = False
            else:
                track = {'id': self.next_id, 'box': d['box'], 'missed': 0, 'age': 1, 'last_frame': frame}
                track['filter'] = OneEuroFilter(**self.filter_args)
                smooth = track['filter'].reset(raw.reshape(-1), t)
                self.tracks.append(track)
                self.next_id += 1
                d['new_track'] = True
            d['track_id'] = track['id']
            d['landmarks5'] = smooth.reshape(5, 2)
        kept = []
        for track in self.tracks:
            track['missed'] = frame - track['last_frame']
            if track['missed'] > self.max_missed:
                self.ended.append(track['id'])
            else:
                kept.append(track)
        self.tracks = kept
        return dets

    @property
    def active_ids(self):
        """Ids of the live tracks (seen within the last ``max_missed`` frames)."""
        return [track['id'] for track in self.tracks]

    def state_dict(self):
        """The tracker's state as plain JSON data (settings included)."""
        return {
            'fps': self.fps,
            'min_iou': self.min_iou,
            'max_centre_shift': self.max_centre_shift,
            'max_missed': self.max_missed,
            'filter_args': dict(self.filter_args),
            'next_id': self.next_id,
            'frame': self.frame,
            'ended': list(self.ended),
            'tracks': [
                {
                    'id': tr['id'],
                    'box': [float(v) for v in tr['box']],
                    'missed': tr['missed'],
                    'age': tr['age'],
                    'last_frame': tr['last_frame'],
                    'filter': tr['filter'].state_dict(),
                }
                for tr in self.tracks
            ],
        }

    def load_state_dict(self, state):
        """Restore the state (and settings) saved by :meth:`state_dict`."""
        self.fps = float(state['fps'])
        self.min_iou, self.max_centre_shift = float(state['min_iou']), float(state['max_centre_shift'])
        self.max_missed = int(state['max_missed'])
        self.filter_args = dict(state['filter_args'])
        self.next_id, self.frame, self.ended = int(state['next_id']), int(state['frame']), list(state['ended'])
        self.tracks = []
        for tr in state['tracks']:
            flt = OneEuroFilter(**self.filter_args)
            flt.load_state_dict(tr['filter'])
            self.tracks.append(
                {
                    'id': int(tr['id']),
                    'box': np.asarray(tr['box'], dtype=np.float64),
                    'missed': int(tr['missed']),
                    'age': int(tr['age']),
                    'last_frame': int(tr['last_frame']),
                    'filter': flt,
                }
            )

    @classmethod
    def from_state_dict(cls, state):
        """A tracker continuing from :meth:`state_dict`'s output."""
        tracker = cls(fps=state['fps'])
        tracker.load_state_dict(state)
        return tracker
