"""Pricing policies shipped with the project (`chs-default.yaml`; DIP: `dip-default.yaml`), read with
importlib.resources.

Why a package: `drg price` and `drg nightly` without a policy use the shipped default, which must be
found wherever the code runs (wheel, `--py-files` zip on a cluster, checkout). A policy is named by its
file name without `.yaml` (`chs-default`) or given as a path to a file of one's own.
"""
