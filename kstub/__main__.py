import sys

from kstub.cli import main

sys.exit(main())
