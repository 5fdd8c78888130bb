"""`drg demo`: generate a demo region and run the nightly job on it, night after night.

Why this exists: a new user (or CI) should see the whole pipeline work on a fresh machine with one
command. The generator writes every night's batch up front; each simulated night then "delivers" one
batch folder into the landing zone and runs exactly what production runs: `nightly` with a YAML config.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from jobs.config import builtin
from jobs.definitions import BUILTIN_PACKS
from jobs.nightly import load_config, nightly
from jobs.spark import get_spark, parse_conf
from jobs.synth import DEFAULT_PACK, add_scheme_arguments, generate
from jobs.synth.write import write_batches


def write_config(out: Path, region: str, definitions: str, methods: tuple[str, ...] = ("drg", "dip"),
                 policy: str | None = None) -> Path:
    """The nightly config a data team would write for this landing zone (paths relative to it; a shipped
    pack by its name, so the config also runs where the project is installed differently, e.g. a cluster;
    no `policy`: the shipped default)."""
    config = {
        "lake": "lake",
        "definitions": definitions if builtin(BUILTIN_PACKS, definitions) else str(Path(definitions).resolve()),
        "inputs": [{"region": region, "path": f"landing/{region}", "layout": "canonical"}],
        "release": {"k": 10},
        # both payment methods by default, as most provincial teams run them (DIP from the demo's 3 years)
        "methods": list(methods),
        **({"policy": policy} if policy else {}),
    }
    path = out / "nightly.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def demo(
    spark, out: Path, cases: int, hospitals: int, nights: int, seed: int, definitions: str = DEFAULT_PACK,
    methods: tuple[str, ...] = ("drg", "dip"), policy: str | None = None,
) -> list:
    generated = out / "generated"
    cases_df, truth_df, errors_df = generate(spark, cases, 1, hospitals, seed, definitions, batches=nights)
    folders = sorted(write_batches(spark, cases_df, truth_df, errors_df, str(generated)))
    region = folders[0].split("/")[0]
    config_path = write_config(out, region, definitions, methods, policy)
    cfg = load_config(config_path)
    results = []
    for folder in folders:
        target = out / "landing" / folder
        if not target.exists():  # the night's delivery arrives
            shutil.copytree(generated / folder, target)
        results.append(nightly(spark, cfg))
    return results


def register(sub) -> None:
    parser = sub.add_parser("demo", help="generate a demo region and run the nightly job on it")
    parser.add_argument("--out", default="demo", help="demo folder (landing zone, lake, config)")
    parser.add_argument("--cases", type=int, default=50_000, help="cases in total (default 50,000)")
    parser.add_argument("--hospitals", type=int, default=20, help="hospitals in the region (default 20)")
    parser.add_argument("--nights", type=int, default=2, help="nightly batches (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    add_scheme_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    spark = get_spark("drg-demo", parse_conf(args.conf))
    results = demo(spark, out, args.cases, args.hospitals, args.nights, args.seed, args.definitions or args.scheme)
    lake = out / "lake"
    print(f"\ndemo finished: {len(results)} night(s) in {out}")
    for r in results:
        rel = r.release or {}
        settled = rel.get("run_id") not in (None, r.run_id)  # the policy's weights stay for the payment period
        print(f"  run {r.run_id}: {len(r.ingested)} batch(es) ingested, "
              f"{'settled at' if settled else 'published'} release {rel.get('release_id', '-')}")
        if rel.get("report"):
            print(f"    report: {rel['report']}")
    print(f"  lake: {lake}  (quality Data Docs: {lake}/quality/data_docs/index.html)")
    published = list(dict.fromkeys(r.release["release_id"] for r in results if r.release))
    # two releases to compare only when a night recalibrated (the shipped policy keeps a year's weights)
    compare = f"   |   drg publish --lake {lake} --compare {' '.join(published[-2:])}" if len(published) > 1 else ""
    print(f"  explore: drg stats --lake {lake} --by drg{compare}")
    return 0
