"""Write a model package with seeded random weights (the default model until a trained one ships).

    python -m pixelsep_plugin.export.build_untrained --config small --out models/small-untrained
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pixelsep_plugin.config import MODEL_CONFIGS
from pixelsep_plugin.export.package import build_untrained


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pixelsep_plugin.export.build_untrained",
        description="Write a model package with seeded random weights (it separates nothing; for testing).",
    )
    parser.add_argument("--config", choices=sorted(MODEL_CONFIGS), default="small", help="model configuration")
    parser.add_argument("--out", type=Path, required=True, help="package folder to write (replaced if present)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    parser.add_argument("--id", dest="model_id", help="model id (default: CONFIG-untrained)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    path = build_untrained(args.config, args.out, seed=args.seed, model_id=args.model_id)
    print(f"wrote untrained {args.config} model (random weights, seed {args.seed}) to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
