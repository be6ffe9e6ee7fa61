"""``modernvision data list | fetch NAME`` (plus ``make-scenes``, ``make-strings`` and
``show``)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="the offline data sets: list, fetch, make-scenes, "
                                    "make-strings, show")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    dsub.required = True
    q = dsub.add_parser(
        "list", help="the data sets known by name, and whether each is cached",
        description="The data sets known by name. The status column says whether each is "
                    "ready offline: 'cached' (fetched into the cache folder), 'not cached' "
                    "(`modernvision data fetch NAME` fetches it through its package client), "
                    "or 'installed with PACKAGE' (shipped inside a Python package).")
    q.set_defaults(func=_list)
    q = dsub.add_parser("fetch", help="fetch a data set into the cache")
    q.add_argument("name", help="data set name (see `modernvision data list`), 'photos', or "
                                "'all'")
    q.set_defaults(func=_fetch)
    from modernvision.cli._data_strings import register_strings_command

    register_strings_command(dsub)
    try:
        from modernvision.cli._data_scenes import register_data_commands
    except ImportError:
        return
    register_data_commands(dsub)


def _list(args: argparse.Namespace) -> int:
    from modernvision.data import DATASETS, PHOTOS, data_dir
    from modernvision.data.datasets import photos_status

    print(f"cache: {data_dir()}")
    print(f"  {'name':<14} {'status':<28} {'what':<55} source")
    for d in DATASETS.values():
        print(f"  {d.name:<14} {d.cache_status():<28} {d.description:<55} {d.source}")
    print(f"  {'photos':<14} {photos_status():<28} {', '.join(PHOTOS)}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from modernvision._errors import unknown_name
    from modernvision.data import DATASETS, PHOTOS, load_arrays, load_photo

    names = list(DATASETS) + ["photos"] if args.name == "all" else [args.name]
    for name in names:
        if name == "photos":
            for p in PHOTOS:
                load_photo(p)
            print(f"photos: {len(PHOTOS)} ready")
            continue
        if name not in DATASETS:
            raise unknown_name("dataset", name, [*DATASETS, "photos", "all"])
        sizes = {s: len(load_arrays(name, s)) for s in ("train", "val", "test")}
        print(f"{name}: " + ", ".join(f"{s} {n}" for s, n in sizes.items()))
    return 0
