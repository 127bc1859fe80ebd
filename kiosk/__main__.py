import sys

from kiosk.runtime.entry import main

sys.exit(main())
