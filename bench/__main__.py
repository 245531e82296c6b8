"""``python -m bench [--quick | --scale district]``: the district benchmark (issue 6)."""

from bench.district import main

main()
