"""`python -m multiid_tools.tiny_models OUT_DIR`: a scratch ComfyUI base directory on tiny models."""

import argparse
from pathlib import Path

from . import __doc__ as about
from . import base_dir, sample_photos


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=about, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, help="a ComfyUI base directory; files go under OUT_DIR/models/")
    args = parser.parse_args(argv)
    base_dir(args.out_dir, sample_photos())
    print(f"Tiny models, this pack (custom_nodes/) and sample photos (input/) are in {args.out_dir}.")
    print(f"Start ComfyUI with: python main.py --cpu --base-directory {args.out_dir}")


main()
