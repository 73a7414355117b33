import sys

from captioning_common.kafka.topics import main

sys.exit(main())
