import sys

from kiosk.runtime.cli import main

sys.exit(main())
