"""Entry point of ``python -m serdemo``."""

import sys

from serdemo.cli import main

if __name__ == "__main__":
    sys.exit(main())
