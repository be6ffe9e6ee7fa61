"""``modernvision gallery enrol | query | list | remove``: an identity database from the command
line (the embeddings of a trained embedding run, searched by nearest neighbours)."""

from __future__ import annotations

import argparse
from pathlib import Path

from modernvision.cli._types import positive_int

_BACKENDS = ("exact", "faiss-flat", "faiss-ivf", "faiss-hnsw")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gallery", help="enrol identities and query them by nearest neighbours",
                       description="A persistent gallery of identities: images embedded by a "
                       "trained embedding run (`modernvision train --model embedding_net`), "
                       "queried by nearest neighbours. Every write is atomic.")
    gsub = p.add_subparsers(dest="gallery_command", metavar="COMMAND", required=True)

    e = gsub.add_parser("enrol", help="embed IMAGES_DIR/<identity>/<image> and add them")
    e.add_argument("images_dir", type=Path, metavar="IMAGES_DIR",
                   help="one sub-folder per identity, holding its images")
    e.add_argument("--db", type=Path, required=True, help="the gallery file (created if "
                                                          "missing), e.g. faces.npz")
    e.add_argument("--model", required=True, metavar="RUN", help="the embedding run folder")
    e.add_argument("--detect", default=None, metavar="CASCADE",
                   help="crop each image to its largest face first: opencv:frontalface_default"
                        ", ours:lfw_24 or a cascade file (default: whole images)")
    e.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    e.set_defaults(func=_enrol)

    q = gsub.add_parser("query", help="the nearest enrolled identities of images")
    q.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    q.add_argument("--db", type=Path, required=True, help="the gallery file")
    q.add_argument("-k", type=positive_int, default=5,
                   help="neighbours per image (default: %(default)s)")
    q.add_argument("--index", choices=_BACKENDS, default="exact",
                   help="search backend (default: %(default)s)")
    q.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    q.set_defaults(func=_query)

    ls = gsub.add_parser("list", help="the enrolled identities and their image counts")
    ls.add_argument("--db", type=Path, required=True, help="the gallery file")
    ls.set_defaults(func=_list)

    rm = gsub.add_parser("remove", help="delete an identity from the gallery")
    rm.add_argument("identity", help="the identity to remove")
    rm.add_argument("--db", type=Path, required=True, help="the gallery file")
    rm.set_defaults(func=_remove)


def _enrol(args: argparse.Namespace) -> int:
    from modernvision.retrieval.gallery import enrol

    gallery, added = enrol(args.db, args.model, args.images_dir, detect=args.detect,
                           device=args.device)
    for name, n in added.items():
        print(f"enrolled {name}: {n} image{'s' if n != 1 else ''}")
    print(f"{args.db}: {len(gallery.counts())} identities, {len(gallery)} images")
    return 0


def _query(args: argparse.Namespace) -> int:
    from modernvision._errors import InvalidArgumentError
    from modernvision.engine.jobs.base import expand_images
    from modernvision.retrieval.gallery import Gallery, ImageEmbedder, vote

    gallery = Gallery.load(args.db)
    if not len(gallery):
        raise InvalidArgumentError(f"gallery {args.db} is empty: enrol identities first "
                                   "(`modernvision gallery enrol`)")
    paths = expand_images(args.images)
    embed = ImageEmbedder(gallery.model_run, detect=gallery.detect, device=args.device)
    gallery.check_model(gallery.model_run, embed.embedding_dim)
    for path, matches in zip(paths, gallery.search(embed(paths), args.k, backend=args.index)):
        near = "; ".join(f"{m.identity} {m.distance:.3f} ({Path(m.source).name})"
                         for m in matches)
        print(f"{path}: {vote(matches)} | {near}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from modernvision.retrieval.gallery import Gallery

    gallery = Gallery.load(args.db)
    print(f"{args.db}: {len(gallery.counts())} identities, {len(gallery)} images, model "
          f"{gallery.model_run}, {gallery.embedding_dim}-d, detect {gallery.detect or '-'}")
    for name, n in gallery.counts().items():
        print(f"{name}\t{n}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from modernvision.retrieval.gallery import Gallery

    gallery = Gallery.load(args.db).remove(args.identity)
    gallery.save(args.db)
    print(f"removed {args.identity}; {args.db}: {len(gallery.counts())} identities, "
          f"{len(gallery)} images")
    return 0
