import sys

from benchmarks.onsale.driver import main

sys.exit(main())
