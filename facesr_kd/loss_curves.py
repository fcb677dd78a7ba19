"""Plot the training losses BasicSR logged (``experiments/<name>/train_<name>_*.log``) against the iteration.

Usage::

    facesr-kd-plot-losses runs/table1_small/experiments/train_teacher_vggface2 \\
        runs/table1_small/experiments/distill_vggface2 -o docs/losses_small.png
"""

import glob
import os
import re

_LINE = re.compile(r'iter:\s*([\d,]+),.*?\]\s+\[eta.*?\]\s+(.*)$')
_VALUE = re.compile(r'(l_[a-z_]+|out_d_[a-z]+): ([-+\d.eE]+)')


def read_losses(experiment_dir):
    """Loss values per iteration from the newest training log of an experiment.

    Returns:
        dict[str, list[tuple[int, float]]]: Loss key to (iteration, value) pairs.
    """
    logs = sorted(glob.glob(os.path.join(experiment_dir, 'train_*.log')))
    if not logs:
        raise FileNotFoundError(f'no train_*.log in {experiment_dir}')
    losses = {}
    for log in logs:  # resumed runs write a log each; later ones continue the curve
        with open(log) as f:
            for line in f:
                match = _LINE.search(line)
                if not match:
                    continue
                it = int(match.group(1).replace(',', ''))
                for key, value in _VALUE.findall(match.group(2)):
                    losses.setdefault(key, {})[it] = float(value)
    return {k: sorted(v.items()) for k, v in losses.items()}


def plot(experiments, out_path, keys=None):
    """One panel per experiment, one curve per loss key (``out_d_*`` left out unless asked)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(experiments), figsize=(5 * len(experiments), 3.6), squeeze=False)
    for ax, exp in zip(axes[0], experiments):
        for key, points in read_losses(exp).items():
            if (keys and key not in keys) or (not keys and key.startswith('out_d')):
                continue
            ax.plot([p[0] for p in points], [p[1] for p in points], label=key)
        ax.set_yscale('log')
        ax.set_xlabel('iteration')
        ax.set_title(os.path.basename(os.path.normpath(exp)), fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    fig.savefig(out_path, dpi=110)
    return out_path
