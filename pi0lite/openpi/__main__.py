"""``python -m pi0lite.openpi check REF.npz`` (see :mod:`pi0lite.openpi.check`)."""

import sys

from pi0lite.openpi.check import main

sys.exit(main())
