"""Definitions packs shipped with the project, one folder each (`demo`), read with importlib.resources.

Why a package: a pack named on the command line or in a nightly config (`definitions: demo`) must be
found from a wheel, from the `--py-files` zip on a cluster and from a checkout alike; a folder beside
the code is only found from a checkout. Packs imported from published tables (`drg definitions import`)
are plain folders and are named by path instead.
"""
