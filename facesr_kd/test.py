"""Test with BasicSR's pipeline and facesr_kd's components; results go under ``./results``.

Usage: ``python -m facesr_kd.test -opt options/test/test_student_vggface2.yml`` (or ``facesr-kd-test``).
Several ``-opt`` files are tested one after the other in one process, each with its own log.
"""

from facesr_kd.utils.entry import run_pipeline


def main(argv=None):
    """Run BasicSR's ``test_pipeline`` with ``results/`` under the working directory."""
    run_pipeline('test', argv)


if __name__ == '__main__':
    main()
