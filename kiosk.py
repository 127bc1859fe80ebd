#!/usr/bin/env python3
"""``python kiosk.py [ARGS]`` does what the installed ``kiosk`` command does."""

import sys

from kiosk.runtime.entry import main

if __name__ == "__main__":
    sys.exit(main())
