"""``facemonitor cnn …``: the 3D-CNN's research side: synthetic subjects, datasets of aligned face clips,
k-fold training, evaluation, landmark baselines and ONNX export for the engine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monitor.cli.common import fraction, min_folds, non_negative_float, non_negative_int, positive_float, positive_int
from monitor.errors import UsageError
from monitor.lab.cnn.labels import read_labels
from monitor.report.numbers import fmt


def add_parser(sub) -> None:
    c = sub.add_parser("cnn", help="the 3D-CNN: build datasets, train, evaluate, export (research use)")
    cs = c.add_subparsers(dest="action", required=True)

    sy = cs.add_parser("synthetic", help="synthetic subjects with a planted lid signal, from real face media")
    sy.add_argument("--out", type=Path, required=True, help="new folder for the subjects' videos and labels.csv")
    sy.add_argument("--subjects", type=positive_int, default=12, help="subjects, half with the planted signal (default 12)")
    sy.add_argument("--videos", type=positive_int, default=3, help="videos per subject (default 3)")
    sy.add_argument("--frames-per-video", type=positive_int, default=64, help="frames per video (default 64)")
    sy.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sy.set_defaults(run=run_synthetic)

    d = cs.add_parser("dataset", help="cut aligned face clips from logged sessions or a folder of videos")
    d.add_argument("--out", type=Path, required=True, help="new folder for the dataset")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--videos", type=Path, help="folder of videos: <subject>/*.mp4 or <subject>_*.mp4")
    src.add_argument("--from-store", action="store_true", help="complete logged sessions that kept their video")
    d.add_argument("--labels", type=Path, required=True, help="CSV: subject, diagnosis (MG|control), qmg, eface_*")
    d.add_argument("--frames", type=positive_int, default=64, help="frames per clip (default 64)")
    d.add_argument("--size", type=positive_int, default=112, help="crop size in pixels (default 112)")
    d.add_argument("--trim", type=non_negative_int, default=15, help="frames left out at the start of each step (default 15)")
    d.add_argument("--store", type=Path, help="store for --from-store (default: FACEMONITOR_STORE or user data dir)")
    d.set_defaults(run=run_dataset)

    t = cs.add_parser("train", help="k-fold cross-validation grouped by subject, then the final model + card")
    t.add_argument("--dataset", type=Path, required=True, help="dataset folder (cnn dataset or cnn synthetic)")
    t.add_argument("--out", type=Path, required=True, help="checkpoint path (card and ROC plot go beside it)")
    t.add_argument("--arch", default="r3d18", choices=("r3d18", "r3d34", "r3d50"),
                   help="3D ResNet depth (default r3d18)")
    t.add_argument("--task", default="diagnosis", choices=("diagnosis", "severity"),
                   help="MG vs control, or QMG mild vs moderate–severe (default diagnosis)")
    t.add_argument("--folds", type=min_folds, help="default 3 for diagnosis, 4 for severity")
    t.add_argument("--epochs", type=positive_int, default=30, help="epochs per fold (default 30)")
    t.add_argument("--batch", type=positive_int, default=8, help="clips per batch (default 8)")
    t.add_argument("--accumulate", type=positive_int, default=1, help="batches per optimiser step (default 1)")
    t.add_argument("--lr", type=positive_float, default=0.01, help="SGD learning rate (default 0.01)")
    t.add_argument("--momentum", type=fraction, default=0.9, help="SGD momentum (default 0.9)")
    t.add_argument("--weight-decay", type=non_negative_float, default=1e-4, help="SGD weight decay (default 1e-4)")
    t.add_argument("--seed", type=int, default=0, help="random seed for folds and weights (default 0)")
    t.add_argument("--threads", type=positive_int, help="PyTorch CPU threads")
    t.add_argument("--inflate", type=Path, help="start from a torchvision-style 2D ResNet state dict (I3D inflation)")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.set_defaults(run=run_train)

    e = cs.add_parser("eval", help="evaluate a checkpoint (.pt) or exported model (.onnx) on a dataset")
    e.add_argument("--model", type=Path, required=True, help="checkpoint (.pt) or exported model (.onnx)")
    e.add_argument("--dataset", type=Path, required=True, help="dataset folder to evaluate on")
    e.add_argument("--roc", type=Path, help="write the ROC plot here")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(run=run_eval)

    b = cs.add_parser("baselines", help="random forest, SVM, MLP on landmark features; ε-SVR for eFace")
    b.add_argument("--dataset", type=Path, required=True, help="dataset folder")
    b.add_argument("--task", default="diagnosis", choices=("diagnosis", "severity"),
                   help="MG vs control, or QMG mild vs moderate–severe (default diagnosis)")
    b.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(run=run_baselines_command)

    x = cs.add_parser("export", help="write ONNX for the engine (untrained weights without --checkpoint)")
    x.add_argument("--arch", default="r3d18", choices=("r3d18", "r3d34", "r3d50"),
                   help="3D ResNet depth (default r3d18)")
    x.add_argument("--frames", type=positive_int, default=64, help="frames per clip (default 64)")
    x.add_argument("--size", type=positive_int, default=112, help="crop size in pixels (default 112)")
    x.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    x.add_argument("--checkpoint", type=Path, help="trained checkpoint (its card is copied beside the ONNX)")
    x.set_defaults(run=run_export)



def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _metrics_line(m: dict) -> str:
    """Patient-level metrics on one line: AUC with its 95% interval, sensitivity, specificity, accuracy."""

    ci = m.get("auc_ci95")
    auc = fmt(m.get("auc"), digits=2) + (f" (95% CI {fmt(ci[0], digits=2)}–{fmt(ci[1], digits=2)})" if ci else "")
    rates = ", ".join(f"{name} {fmt(m.get(name), digits=2)}" for name in ("sensitivity", "specificity", "accuracy"))
    return f"AUC {auc}, {rates}, {m.get('n')} subjects"


def run_synthetic(args: argparse.Namespace) -> int:
    from monitor.lab.cnn.synthetic import make_synthetic  # lazy: cv2

    meta = make_synthetic(args.out, args.subjects, args.videos, args.frames_per_video, args.seed, log=_log)
    print(f"wrote {meta['subjects']} synthetic subjects to {args.out} (labels: {args.out / 'labels.csv'})")
    return 0


def run_dataset(args: argparse.Namespace) -> int:
    from monitor.lab.cnn.dataset import build_dataset, items_from_folder, items_from_store  # lazy: cv2

    if args.frames < 8 or args.size < 16 or args.trim < 0:
        raise UsageError("--frames must be at least 8, --size at least 16, --trim at least 0")
    labels = read_labels(args.labels)
    synthetic = False
    if args.videos:
        items = items_from_folder(args.videos, labels)
        sources = [str(args.videos.resolve())]
        synthetic = (args.videos / "synthetic.json").is_file() or (args.videos.parent / "synthetic.json").is_file()
    else:
        from monitor.store.db import Store  # lazy: pyarrow, numba (the store reads summaries and series)

        with Store(args.store) as store:
            items, passed = items_from_store(store, labels)
            sources = [str(store.root)]
            if passed:
                _log(f"{passed} sessions of labelled people kept no video and were passed over")
    meta = build_dataset(items, labels, args.out, args.frames, args.size, args.trim, sources, synthetic, log=_log)
    print(f"wrote {meta['clips']} clips of {meta['subjects']} subjects to {args.out}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from monitor.lab.cnn.train import TrainConfig, train  # lazy: torch, cv2

    cfg = TrainConfig(args.arch, args.task, args.folds, args.epochs, args.batch, args.accumulate, args.lr,
                      args.momentum, args.weight_decay, args.seed, args.threads,
                      str(args.inflate) if args.inflate else None)
    r = train(args.dataset, args.out, cfg, log=_log)
    if args.json:
        print(json.dumps(r))
        return 0
    v = r["validation"]
    print(f"{cfg.k}-fold cross-validation, patient level: {_metrics_line(v)}")
    print(f"random forest on landmark features, same folds: {_metrics_line(v['baselines']['random_forest'])}")
    print(f"checkpoint {r['checkpoint']}, card {r['card']}, ROC {r['roc_plot']}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from monitor.lab.cnn.evaluate import evaluate_model  # lazy: cv2 (torch or onnxruntime when it runs)

    r = evaluate_model(args.model, args.dataset, args.roc)
    print(json.dumps(r) if args.json else f"{r['task']}, patient level: {_metrics_line(r['metrics'])}")
    return 0


def run_baselines_command(args: argparse.Namespace) -> int:
    from monitor.lab.cnn.baselines import run_baselines  # lazy: cv2 (sklearn when it runs)
    from monitor.lab.cnn.dataset import Dataset  # lazy: cv2

    r = run_baselines(Dataset.open(args.dataset), args.task, args.seed)
    if args.json:
        print(json.dumps(r))
        return 0
    for name, m in r["classifiers"].items():
        print(f"{name:<14} leave-one-subject-out, patient level: {_metrics_line(m)}")
    for key, m in r["eface_svr"].items():
        print(f"eFace {key:<10} ε-SVR: MAE {m['mae']} points, r {m['pearson_r']}, {m['subjects']} subjects")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from monitor.lab.cnn.checkpoint import export_onnx  # lazy: torch

    r = export_onnx(args.out, args.arch, args.frames, args.size, args.checkpoint)
    note = "" if r["trained"] else " (untrained weights: for benchmarks only, never shown as a result)"
    print(f"wrote {r['onnx']}{note}" + (f"; card {r['card']}" if r["card"] else ""))
    return 0
