"""The command line: `python -m gankernels {info,variants,train,sample,evaluate,demo}`."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="gankernels", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="the build, the torch it runs on, and each op's backends")
    sub.add_parser("demo", help="a WGAN-GP penalty with the fused kernels, against eager")
    try:
        from .variants import add_variants_parser
    except ImportError:
        add_variants_parser = None
    if add_variants_parser is not None:
        add_variants_parser(sub)
    try:
        from .train.cli import add_train_parsers
    except ImportError:
        add_train_parsers = None
    if add_train_parsers is not None:
        add_train_parsers(sub)

    args = parser.parse_args(argv)
    if args.command == "info":
        from .info import format_info

        print(format_info())
        return 0
    if args.command == "demo":
        from .demo import run_demo

        return run_demo()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
