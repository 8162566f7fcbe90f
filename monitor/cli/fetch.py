"""``facemonitor fetch``: download and verify the landmark model and the sample media now, printing
where they are."""

from __future__ import annotations

import argparse

from engines import assets


def add_parser(sub) -> None:
    f = sub.add_parser("fetch", help="download and verify the model and sample media now")
    f.add_argument("--all-samples", action="store_true",
                   help="every sample file (photos, clips without a face…), not only the demo video")
    f.set_defaults(run=run_fetch)


def run_fetch(args: argparse.Namespace) -> int:
    print(f"model: {assets.model_path()}")
    names = sorted(assets.SAMPLES) if args.all_samples else [assets.SAMPLE_VIDEO]
    for name in names:
        print(f"sample: {assets.sample_path(name)}")
    return 0
