"""Record real socket failures in network namespaces (issue 3). See samples/record/."""

import sys

from record.cli import main

if __name__ == "__main__":
    sys.exit(main())
