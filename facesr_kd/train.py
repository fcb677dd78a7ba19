"""Train with BasicSR's pipeline and facesr_kd's components; outputs go under the current directory.

Usage: ``python -m facesr_kd.train -opt options/distill_vggface2.yml [--auto_resume] [--debug]
[--force_yml k=v ...] [--launcher none|pytorch|slurm]`` (or the ``facesr-kd-train`` console script).
"""

from facesr_kd.utils.entry import run_pipeline


def main(argv=None):
    """Run BasicSR's ``train_pipeline`` with ``experiments/`` and ``tb_logger/`` under the working directory."""
    run_pipeline('train', argv)


if __name__ == '__main__':
    main()
