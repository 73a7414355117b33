import sys

from localinfra.cli import main

sys.exit(main())
