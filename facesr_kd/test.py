"""Test with BasicSR's pipeline and facesr_kd's components; results go under ``./results``.

Usage: ``python -m facesr_kd.test -opt options/test/test_student_vggface2.yml`` (or ``facesr-kd-test``).
"""

from facesr_kd.utils.entry import run_pipeline


def main(argv=None):
    """Run BasicSR's ``test_pipeline`` with ``results/`` under the working directory."""
    run_pipeline('test', argv)


if __name__ == '__main__':
    main()
