"""Export a student, RCAN or SRFBN checkpoint to ONNX with a dynamic batch.

The ``facesr-kd-export-onnx`` console script; see :mod:`facesr_kd.cli.export_onnx`.
"""

import sys

from facesr_kd.cli.export_onnx import main

if __name__ == '__main__':
    sys.exit(main())
