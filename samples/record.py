"""Record real socket failures in network namespaces (issue 3). See samples/record/."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from record.cli import main

if __name__ == "__main__":
    sys.exit(main())
