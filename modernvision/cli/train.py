"""``modernvision train``, ``eval`` and ``predict``: one set of commands for every task.

The model's registry task picks the job (classification, detection, ...). ``train``'s flags are
the fields of the jobs' configs (:mod:`modernvision.engine.jobs.configs`, torch-free); a flag
that the chosen model's job does not read is refused rather than ignored.
"""

from __future__ import annotations

import argparse
import json
import typing


def _flag_type(annotation: str) -> type | None:
    """argparse type of a config field from its (string) annotation; None for booleans."""
    base = annotation.replace(" | None", "").strip()
    return {"int": int, "float": float, "str": str, "bool": None}[base]


def _train_fields() -> dict[str, dict]:
    """Every job's CLI fields by name: annotation, help, and the default of each job."""
    from modernvision.engine.jobs.configs import CONFIGS

    fields: dict[str, dict] = {}
    for job, cls in CONFIGS.items():
        for f in cls.cli_fields():
            entry = fields.setdefault(f.name, {"type": f.type, "help": f.metadata["help"],
                                               "defaults": {}})
            if entry["type"] != f.type:  # one flag, one type: a config bug, not a user's
                raise TypeError(f"config field {f.name!r} is {entry['type']} in one job and "
                                f"{f.type} in {job}; rename one")
            entry["defaults"][job] = f.default
    return fields


def _default_text(defaults: dict[str, typing.Any], jobs: int) -> str:
    if len(set(map(repr, defaults.values()))) == 1:
        return f"default {next(iter(defaults.values()))}"
    return "default " + ", ".join(f"{v} for {j}" for j, v in defaults.items())


def register(sub: argparse._SubParsersAction) -> None:
    from modernvision.engine.jobs.configs import CONFIGS

    p = sub.add_parser(
        "train", help="train a model (classifier, detector, ...) on a data set",
        description="Train a registered model. The model's task picks the job; flags another "
                    "task's job reads are refused. Writes a run folder: config.json, "
                    "metrics.jsonl, checkpoints (atomic, every epoch), plots, test metrics. "
                    "Runs under torchrun for several processes.")
    groups: dict[tuple[str, ...], argparse._ArgumentGroup] = {}
    for name, entry in _train_fields().items():
        jobs = tuple(entry["defaults"])
        if jobs not in groups:
            title = ("options for every task" if len(jobs) == len(CONFIGS)
                     else f"{', '.join(jobs)} options")
            groups[jobs] = p.add_argument_group(title)
        group = groups[jobs]
        text = entry["help"]
        if "default" not in text:
            text += f" ({_default_text(entry['defaults'], len(CONFIGS))})"
        kind = _flag_type(entry["type"])
        flag = "--" + name.replace("_", "-")
        if kind is None:  # booleans: --x / --no-x
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                               default=None, help=text)
        else:
            metavar = {int: "N", float: "X"}.get(kind, name.upper())
            group.add_argument(flag, dest=name, type=kind, default=None, help=text,
                               metavar=metavar)
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra keyword for the model's builder (VALUE parsed as JSON, else "
                        "a string); repeatable")
    p.add_argument("--resume", metavar="RUN",
                   help="continue the interrupted run in this folder to its configured end")
    p.add_argument("--extend-epochs", type=int, metavar="N",
                   help="with --resume: train a finished run N more epochs on a new schedule "
                        "over those epochs")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --run-dir (default: refuse)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: only when stderr is a terminal)")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate a run's model on a split",
                       description="Score a run's trained model; prints the job's metrics as "
                                   "JSON with the number of images scored.")
    p.add_argument("run", help="run folder")
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="default test")
    p.add_argument("--data", help="another data spec of the same kind (default: the run's)")
    p.add_argument("--full", action="store_true",
                   help="score the whole split, not the run's --eval-subset")
    p.add_argument("--device", default="cpu", help="default cpu")
    p.set_defaults(func=_eval)

    p = sub.add_parser("predict", help="run a trained model on image files or folders",
                       description="Predict with a run's model on images (folders are "
                                   "expanded to their image files).")
    p.add_argument("run", help="run folder")
    p.add_argument("images", nargs="+", help="image files or folders of images")
    p.add_argument("--topk", type=int, help="classification: the k best classes (default 3)")
    p.add_argument("--out", help="write the drawn predictions to this folder "
                                 "(tasks that draw)")
    p.add_argument("--score-thresh", type=float,
                   help="detection: the least score drawn and printed (default 0.5)")
    p.add_argument("--device", default="cpu", help="default cpu")
    p.set_defaults(func=_predict)


def _model_kwargs(items: list[str]) -> dict:
    from modernvision._errors import InvalidArgumentError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise InvalidArgumentError(f"--model-arg must be KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _train(args: argparse.Namespace) -> int:
    from modernvision._errors import InvalidArgumentError
    from modernvision.engine import distributed as dist_utils
    from modernvision.engine import jobs
    from modernvision.engine.jobs.configs import RunConfig, config_class_for_model

    fields = _train_fields()
    given = {name: getattr(args, name) for name in fields if getattr(args, name) is not None}
    model_kwargs = _model_kwargs(args.model_arg)
    if args.resume:
        if args.overwrite:
            raise InvalidArgumentError("--overwrite and --resume contradict each other")
        if model_kwargs:
            given["model_kwargs"] = model_kwargs
        result = jobs.resume(args.resume, extend_epochs=args.extend_epochs, overrides=given,
                             progress=args.progress)
    else:
        if args.extend_epochs is not None:
            raise InvalidArgumentError("--extend-epochs needs --resume RUN (the finished run "
                                       "to train further)")
        model = given.get("model", RunConfig.model)
        cls = config_class_for_model(model)
        foreign = sorted(set(given) - {f.name for f in cls.cli_fields()})
        if foreign:
            names = ", ".join("--" + n.replace("_", "-") for n in foreign)
            raise InvalidArgumentError(f"{names} does not apply to {model}, a {cls.job} model")
        cfg = cls(**given, model_kwargs=model_kwargs)
        result = jobs.train(cfg, overwrite=args.overwrite, progress=args.progress)
    if dist_utils.is_main_process():
        if result.get("already_finished"):
            return 0
        job = jobs.job_for_model(result.get("model") or _run_model(result["run_dir"]))
        print(f"{job.summary_line(result)} ({result['epochs_run']} epochs, "
              f"{result['train_seconds']:.0f} s); run folder {result['run_dir']}")
    return 0


def _run_model(run_dir: str) -> str:
    from modernvision.engine.jobs.configs import read_config_json

    return read_config_json(f"{run_dir}/config.json")["model"]


def _eval(args: argparse.Namespace) -> int:
    from modernvision.engine.jobs import evaluate_run

    out = evaluate_run(args.run, split=args.split, data=args.data, full=args.full,
                       device=args.device)
    out.pop("evaluator")
    print(json.dumps(out, indent=2))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from modernvision.engine.jobs import predict_run

    options = {"topk": args.topk, "out": args.out, "score_thresh": args.score_thresh}
    for r in predict_run(args.run, args.images, options=options, device=args.device):
        print(r["text"])
    return 0
