"""A local web page (Gradio) to restore the faces of photos with a facesr_kd checkpoint.

The ``facesr-kd-demo`` console script; see :mod:`facesr_kd.cli.demo`.
"""

import sys

from facesr_kd.cli.demo import main

if __name__ == '__main__':
    sys.exit(main())
