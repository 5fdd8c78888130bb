"""`drg synth`: realistic synthetic discharge abstracts with known ground truth, generated in Spark.

The stage is a package because it has several parts, imported one way (cli -> cases -> pack -> config):
- `cases`: the Spark generator (`generate`), every random draw a hash of (seed, tag, case id);
- `pack`: a definitions pack (format 1 or 2) turned into the generator's small lookup tables;
- `scheme`: a rule-by-rule sampler of format-2 packs for the differential tests (driver side);
- `config`: the generator's parameters (`config.yaml`, validated at load);
- `write`: the cases written as regions deliver them, and the ground truth beside them.
"""

from __future__ import annotations

from jobs.spark import get_spark, parse_conf
from jobs.synth.cases import DEFAULT_BATCH_DATE, DEFAULT_PACK, ERROR_TYPES, SCHEMES, generate
from jobs.synth.config import SynthConfig, load_config
from jobs.synth.write import write_batches

__all__ = ["DEFAULT_BATCH_DATE", "DEFAULT_PACK", "ERROR_TYPES", "SCHEMES", "add_scheme_arguments", "generate",
           "register", "run"]


def _with_years(config: SynthConfig, years: int | None) -> SynthConfig:
    return config if years is None else SynthConfig.model_validate({**config.model_dump(), "discharge_years": years})


def add_scheme_arguments(parser) -> None:
    """`--scheme` (a national scheme shipped with the project) or `--definitions` (any pack), for the
    commands that generate cases."""
    parser.add_argument(
        "--scheme", default=SCHEMES[0], choices=SCHEMES, help=f"national scheme to draw for (default {SCHEMES[0]})"
    )
    parser.add_argument("--definitions", help="any definitions pack folder or shipped pack name (overrides --scheme)")


def register(sub) -> None:
    parser = sub.add_parser("synth", help="generate synthetic discharge batches with ground truth")
    parser.add_argument("--out", required=True, help="output folder: <out>/<region>/<batch>/ and <out>/_truth/")
    parser.add_argument("--cases", type=int, required=True, help="number of cases (before duplicates)")
    parser.add_argument("--regions", type=int, default=1, help="number of regions (default 1)")
    parser.add_argument("--hospitals", type=int, default=20, help="hospitals per region (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="random seed: same seed, same data (default 1)")
    add_scheme_arguments(parser)
    parser.add_argument("--error-rate", type=float, default=0.02, help="share of cases with an injected error")
    parser.add_argument("--malformed-rate", type=float, default=0.0, help="share of rows that break CSV parsing")
    parser.add_argument("--layout", help="built-in layout name or YAML path (default: canonical)")
    parser.add_argument("--format", default="csv", choices=("csv", "parquet"), help="file format (default csv)")
    parser.add_argument("--batches", type=int, default=1, help="nightly batches per region (default 1)")
    parser.add_argument("--batch-date", default=DEFAULT_BATCH_DATE, help="date of the last batch (YYYY-MM-DD)")
    parser.add_argument("--config", help="generator parameters YAML (default: jobs/synth/config.yaml)")
    parser.add_argument("--years", type=int, help="discharge years to spread cases over (default: the config's)")
    parser.set_defaults(func=run)


def run(args) -> int:
    spark = get_spark("drg-synth", parse_conf(args.conf))
    cases_df, truth_df, errors_df = generate(
        spark, args.cases, args.regions, args.hospitals, args.seed, args.definitions or args.scheme, args.error_rate,
        config=_with_years(load_config(args.config), args.years), batches=args.batches, batch_date=args.batch_date,
        malformed_rate=args.malformed_rate,
    )
    folders = write_batches(spark, cases_df, truth_df, errors_df, args.out, args.layout, args.format)
    print(f"wrote {len(folders)} batch folder(s) under {args.out} and ground truth in {args.out}/_truth")
    return 0
