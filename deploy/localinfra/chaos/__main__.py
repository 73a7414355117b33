import sys

from localinfra.chaos.run import main

sys.exit(main())
