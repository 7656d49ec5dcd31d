"""The ``skseg`` command: demo, fit, verify, evaluate and benchmark.

Models are written and read by file extension: ``.safetensors`` (the default,
safe to load, see :mod:`skseg.io`) or ``.joblib`` (a pickle: load only files
you trust).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import expit

EXIT_ERROR = 1


def _load_model(path):
    import joblib

    from .io import load

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    if path.suffix == ".joblib":
        return joblib.load(path)
    return load(path)


def _save_model(model, path):
    import joblib

    from .io import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".joblib":
        joblib.dump(model, path)
    else:
        save(model, path)


def _as_pipeline(model):
    """A model that takes image paths: add a matching preprocessor to a bare verifier."""
    from sklearn.pipeline import Pipeline

    from .preprocessing import SignaturePreprocessor

    if isinstance(model, Pipeline):
        return model
    prep = SignaturePreprocessor(canvas_size=model.canvas_shape_,
                                 stroke_masks=model.patch_weight_ > 0)
    return Pipeline([("prep", prep), ("clf", model)])


def _training_params(args):
    """The verifier parameters the training options give (those left out: None)."""
    params = {"random_state": args.seed, "device": args.device}
    for name in ("backbone", "loss", "margin", "local_weight", "size_weight", "stroke_weight",
                 "patch_weight", "max_epochs", "lr", "validation_fraction", "mixed_precision"):
        value = getattr(args, name, None)
        if value is not None:
            params[name] = value
    return params


def _wants_masks(args):
    """Whether ``--patch-weight`` asks for the patch term, whose network needs each
    scan's stroke-scale mask from the preprocessor."""
    return getattr(args, "patch_weight", None) not in (None, 0.0)


def _verifier(args, **overrides):
    from .verifier import SiameseVerifier

    return SiameseVerifier(**{**_training_params(args), **overrides})


def _print_rates(label, y, decision):
    from sklearn.metrics import roc_auc_score

    from .metrics import equal_error_rate, far_frr

    eer, _ = equal_error_rate(y, decision)
    far, frr = far_frr(y, decision, 0.0)
    print(f"{label}: EER {eer:.2%}  AUC {roc_auc_score(y, decision):.3f}  "
          f"at the model's threshold: FAR {far:.2%}  FRR {frr:.2%}  ({len(y)} pairs)")
    return eer


def cmd_demo(args):
    from sklearn.pipeline import Pipeline

    from .datasets import make_pairs, make_synthetic_signatures
    from .evaluation import write_report
    from .preprocessing import SignaturePreprocessor

    print(f"Generating {args.writers} synthetic writers "
          f"({args.genuine} genuine signatures and {args.genuine} skilled forgeries each)...")
    data = make_synthetic_signatures(args.writers, args.genuine, args.genuine,
                                     forgery_strength=args.forgery_strength,
                                     random_state=args.seed)
    pairs, y, groups = make_pairs(data, random_state=args.seed)
    writers = np.unique(groups)
    test = np.isin(groups, writers[: max(1, len(writers) // 4)])
    print(f"Training on {len(writers) - len(np.unique(groups[test]))} writers "
          f"({(~test).sum()} pairs), testing on {len(np.unique(groups[test]))} others.")
    model = Pipeline([("prep", SignaturePreprocessor()),
                      ("clf", _verifier(args, verbose=1))])
    start = time.perf_counter()
    model.fit(pairs[~test], y[~test])
    clf = model.named_steps["clf"]
    print(f"Trained in {time.perf_counter() - start:.0f} s on {clf.device_}; "
          f"threshold (distance) {clf.threshold_:.4f}, size weight {clf.size_weight_} and "
          f"stroke weight {clf.stroke_weight_:g}, "
          f"chosen by {clf.threshold_strategy!r} on held-out training writers.")
    if clf.stroke_weight_eers_:
        # Few held-out writers make a noisy choice: show how sharply they made it.
        eers = clf.stroke_weight_eers_
        print(f"Their EER: {eers[0.0]:.2%} without the stroke term, "
              f"{eers[clf.stroke_weight_]:.2%} with weight {clf.stroke_weight_:g}.")
    decision = model.decision_function(pairs[test])
    _print_rates("Held-out writers", y[test], decision)
    out = Path(args.output_dir)
    result = {"scores": [{"y": y[test], "kind": np.full(test.sum(), "skilled"),
                          "decision": decision}],
              "threshold": clf.threshold_}
    for path in write_report(result, out / "demo.json")[1:]:
        print(f"Wrote {path}")


def cmd_fit(args):
    from sklearn.pipeline import Pipeline

    from .datasets import load_signatures, make_pairs
    from .preprocessing import SignaturePreprocessor

    # The model first: a setting it refuses is named before the scans are read.
    if args.start_from:
        model = _fine_tuned_model(args)
    elif args.freeze:
        raise ValueError("--freeze keeps parameters of the --start-from model as they are; "
                         "without --start-from there is nothing to keep.")
    else:
        prep = SignaturePreprocessor(n_jobs=-1, ink_size_unit=args.ink_size_unit or "pixels",
                                     stroke_masks=_wants_masks(args))
        model = Pipeline([("prep", prep), ("clf", _verifier(args, verbose=2))])
    pairs, y = [], []
    for folder in args.data_dir:
        data = load_signatures(folder, layout=args.layout)
        # Pairs within each corpus: writer ids of two corpora may coincide.
        corpus_pairs, corpus_y, _ = make_pairs(data, random_forgeries=args.random_forgeries,
                                               random_state=args.seed)
        print(f"{folder}: {len(np.unique(data.writer))} writers, {len(data.paths)} images "
              f"({data.layout} layout), {len(corpus_y)} training pairs.")
        pairs.append(corpus_pairs)
        y.append(corpus_y)
    pairs, y = np.concatenate(pairs), np.concatenate(y)
    model.fit(pairs, y)
    _save_model(model, args.output)
    print(f"Saved to {args.output}")


def _fine_tuned_model(args):
    """The model of ``--start-from``, set to fine-tune from its weights (``warm_start``)
    with the training options given; its preprocessing is kept."""
    model = _as_pipeline(_load_model(args.start_from))
    prep, clf = model.steps[0][1], model.steps[-1][1]
    if args.ink_size_unit is not None and args.ink_size_unit != prep.ink_size_unit:
        raise ValueError(
            f"--ink-size-unit {args.ink_size_unit}, but {args.start_from} measures ink sizes in "
            f"{prep.ink_size_unit}: fine-tuning keeps the model's preprocessing; leave the "
            "option out."
        )
    prep.set_params(n_jobs=-1)
    if _wants_masks(args):
        prep.set_params(stroke_masks=True)
    # The threshold is chosen anew: on held-out writers, as a fresh fit does, even
    # where the saved model trained on every writer (validation_fraction=0).
    from .verifier import SiameseVerifier

    params = _training_params(args)
    params.setdefault("validation_fraction", SiameseVerifier().validation_fraction)
    if args.freeze:
        from .nn.net import freezer

        params["callbacks"] = [freezer(clf.net_, args.freeze)]
    clf.set_params(warm_start=True, verbose=2, **params)
    kept = f", keeping {' '.join(args.freeze)} as they are" if args.freeze else ""
    print(f"Fine-tuning {args.start_from} from its weights{kept}.")
    return model


def cmd_verify(args):
    model = _as_pipeline(_load_model(args.model))
    clf = model.steps[-1][1]
    pairs = np.empty((len(args.references), 2), dtype=object)
    pairs[:, 0] = [str(r) for r in args.references]
    pairs[:, 1] = str(args.questioned)
    decisions = model.decision_function(pairs)
    # Several references of the claimed writer: average their evidence.
    combined = float(np.mean(decisions))
    probability = float(expit(clf.proba_scale_ * combined))  # as predict_proba maps it
    verdict = "genuine" if combined >= 0 else "forged"
    if args.json:
        print(json.dumps({"verdict": verdict, "score": combined, "probability_genuine": probability,
                          "threshold": clf.threshold_, "per_reference": decisions.tolist()}))
        return
    for reference, decision in zip(args.references, decisions):
        print(f"  vs {reference}: score {decision:+.4f}")
    print(f"Verdict: {verdict}  (score {combined:+.4f}, P(genuine) {probability:.3f}; "
          f"score = threshold {clf.threshold_:.4f} - distance, > 0 means genuine)")


def cmd_evaluate(args):
    from .datasets import load_signatures, make_pairs

    model = _as_pipeline(_load_model(args.model))
    data = load_signatures(args.data_dir, layout=args.layout)
    pairs, y, _, kind = make_pairs(data, n_forgeries_per_genuine_pair=1e6, random_forgeries=1.0,
                                   return_kind=True, random_state=args.seed)
    y = np.where(y == 1, model.steps[-1][1].classes_[1], model.steps[-1][1].classes_[0])
    decision = model.decision_function(pairs)
    skilled, random = kind != "random", kind != "skilled"
    _print_rates("Skilled forgeries", y[skilled], decision[skilled])
    _print_rates("Random forgeries", y[random], decision[random])


def cmd_benchmark(args):
    from .datasets import load_signatures
    from .evaluation import (METRICS, _default_pretrain_verifier, cross_validate_writers,
                             write_report)

    if args.pretrain_epochs is not None and not args.pretrain_data:
        raise ValueError("--pretrain-epochs sets the pretraining on --pretrain-data DIR; "
                         "give that corpus too, or leave the option out.")
    data = load_signatures(args.data_dir, layout=args.layout)
    print(f"{len(np.unique(data.writer))} writers, {len(data.paths)} images "
          f"({data.layout} layout); "
          f"{args.folds}-fold writer-independent cross-validation.")
    extra = None
    if args.extra_training:
        extra = load_signatures(args.extra_training, layout=args.extra_layout)
        print(f"Every fold also trains on {len(np.unique(extra.writer))} writers, "
              f"{len(extra.paths)} images of {args.extra_training} ({extra.layout} layout).")
    pretrain = None
    if args.pretrain_data:
        pretrain = load_signatures(args.pretrain_data, layout=args.pretrain_layout)
        print(f"Pretraining once on {len(np.unique(pretrain.writer))} writers, "
              f"{len(pretrain.paths)} images of {args.pretrain_data} ({pretrain.layout} "
              "layout); every fold then fine-tunes from those weights.")
    from .preprocessing import SignaturePreprocessor

    verifier = _verifier(args, verbose=int(args.verbose))
    preprocessor = SignaturePreprocessor(n_jobs=-1, stroke_masks=_wants_masks(args))
    pretrain_verifier = None
    if args.pretrain_epochs is not None:
        pretrain_verifier = _default_pretrain_verifier(verifier).set_params(
            max_epochs=args.pretrain_epochs)
    result = cross_validate_writers(
        data, verifier, preprocessor=preprocessor, n_splits=args.folds,
        random_state=args.seed, progress=True, folds=args.only_folds, extra_training=extra,
        pretrain_data=pretrain, pretrain_verifier=pretrain_verifier,
    )
    if pretrain is not None:
        print(f"Pretrained in {result['settings']['pretraining']['seconds']:.0f} s "
              "(preprocessing included).")
    print(f"\n{'metric':<20}" + "".join(f"fold {f['fold']:<4}" for f in result["folds"])
          + "   mean +- std")
    for name in METRICS:
        cells = "".join(f"{f[name]:<9.4f}" for f in result["folds"])
        s = result["summary"][name]
        print(f"{name:<20}{cells}   {s['mean']:.4f} +- {s['std']:.4f}")
    env = result["environment"]
    simd = ", ".join(env["numpy_simd"] or ["unknown"])
    print(f"device {env['device']} ({env['device_name']}, {env['cpu_capability']}; numpy "
          f"{simd}), torch {env['torch']}")
    for path in write_report(result, args.output):
        print(f"Wrote {path}")
    if pretrain is not None:
        # Minutes of training, kept for skseg fit --start-from (and verify, evaluate).
        from sklearn.pipeline import Pipeline

        path = Path(args.output)
        path = path.with_name(f"{path.stem}_pretrained.safetensors")
        _save_model(Pipeline([("prep", preprocessor), ("clf", result["pretrained"])]), path)
        print(f"Wrote {path} (the pretrained model)")


def _auto_or_number(text):
    """``--size-weight``, ``--stroke-weight``, ``--patch-weight``: "auto" or a number
    (the verifier checks its range)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number, got {text!r}") from None


def _add_training_options(parser, epochs_default=None):
    parser.add_argument("--backbone", choices=["compact", "signet"], default=None,
                        help="embedding network (default: the verifier's default, compact)")
    parser.add_argument("--loss", choices=["contrastive", "triplet", "bce"], default=None)
    parser.add_argument("--margin", type=float, default=None,
                        help="margin of the contrastive or triplet loss (default: the "
                        "verifier's default, 0.5)")
    parser.add_argument("--local-weight", type=float, default=None,
                        help="weight in [0, 1] of the local match of the two feature maps in "
                        "a pair's distance (default: the verifier's, 0.5 where it applies)")
    parser.add_argument("--size-weight", type=_auto_or_number, default=None,
                        help="weight of the size ratio of a pair's two signatures: auto "
                        "(chosen on validation writers, the default) or a number >= 0; 0 "
                        "where references and questioned scans differ in resolution and "
                        "their files do not record it")
    parser.add_argument("--stroke-weight", type=_auto_or_number, default=None,
                        help="weight of what the two signatures' stroke descriptors tell: "
                        "auto (chosen on validation writers, the default) or a number >= 0; "
                        "0: the network (and size term) alone")
    parser.add_argument("--patch-weight", type=_auto_or_number, default=None,
                        help="weight of the patch network's distance (a second, small "
                        "network on windows of the ink at the stroke's scale; minutes more "
                        "training): auto (chosen on validation writers) or a number >= 0 "
                        "(default: the verifier's, 0: without it)")
    parser.add_argument("--epochs", dest="max_epochs", type=int, default=epochs_default,
                        help="training epochs (default: the verifier's default)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (default: the verifier's default, 1e-3; lower "
                        "suits fine-tuning with fit --start-from)")
    parser.add_argument("--validation-fraction", type=float, default=None,
                        help="fraction of the training writers held out to choose the "
                        "threshold (default: the verifier's, 0.2, also with --start-from; 0 "
                        "trains on every writer and chooses it on the training pairs, as for a "
                        "model to fine-tune later)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--mixed-precision", choices=["no", "bf16"], default=None,
                        help="bf16: the network's forward passes under bfloat16 autocast "
                        "(default: no, float32)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="skseg", description="Offline handwritten signature verification.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"skseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="train the default model on synthetic signatures",
                       description="Train the default model on synthetic signatures, print the "
                       "held-out writers' EER and the chosen threshold, write ROC and DET plots.")
    p.add_argument("--writers", type=int, default=24, help="synthetic writers (default: 24)")
    p.add_argument("--genuine", type=int, default=8,
                   help="genuine signatures and skilled forgeries per writer (default: 8)")
    p.add_argument("--forgery-strength", type=float, default=2.0,
                   help="how far forgeries deviate from the writer (default: 2.0)")
    p.add_argument("--output-dir", default="skseg-demo",
                   help="where plots go (default: skseg-demo)")
    _add_training_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("fit", help="train on folders of signatures and save the model",
                       description="Train a preprocessor + verifier on every writer of each "
                       "DATA_DIR (SigNet pairs within each folder) and save it, or "
                       "fine-tune a saved model on them (--start-from).")
    p.add_argument("data_dir", nargs="+",
                   help="CEDAR, Kaggle/SigComp, BHSig260 or <writer>/genuine|forged/; several "
                   "folders (other writers each) train one model")
    p.add_argument("-o", "--output", required=True,
                   help="model file: .safetensors (safe to load) or .joblib (pickle)")
    p.add_argument("--layout", default="auto")
    p.add_argument("--random-forgeries", type=float, default=0.0,
                   help="random-forgery pairs per genuine pair (default: 0)")
    p.add_argument("--ink-size-unit", choices=["pixels", "inches"], default=None,
                   help="measure each signature's size in inches, from the dpi its file "
                   "records, so that scans of different resolutions compare (default: pixels; "
                   "saved with the model)")
    p.add_argument("--start-from", metavar="MODEL", default=None,
                   help="fine-tune this saved model (.safetensors or .joblib) from its "
                   "weights instead of training from new ones; its preprocessing is kept, "
                   "and the training options given override its settings")
    p.add_argument("--freeze", nargs="+", default=[], metavar="PATTERN",
                   help="with --start-from: parameter names (fnmatch, e.g. "
                   "'backbone.features.[1-5].*', CompactNet's first two blocks) kept at the "
                   "saved model's values while the rest fine-tunes")
    _add_training_options(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("verify", help="is QUESTIONED by the writer of the references?",
                       description="Compare a questioned signature with one or more genuine "
                       "references of the claimed writer; the evidence of several references "
                       "is averaged.")
    p.add_argument("model")
    p.add_argument("questioned")
    p.add_argument("references", nargs="+", metavar="reference")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("evaluate", help="error rates of a saved model on a folder of signatures",
                       description="EER, AUC, FAR and FRR of MODEL on every pair of DATA_DIR: "
                       "all genuine and skilled-forgery pairs, and random forgeries.")
    p.add_argument("model")
    p.add_argument("data_dir")
    p.add_argument("--layout", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("benchmark", help="writer-independent k-fold cross-validation",
                       description="Writer-independent k-fold cross-validation of the verifier "
                       "on DATA_DIR; writes a JSON report with ROC and DET plots.")
    p.add_argument("data_dir")
    p.add_argument("-o", "--output", default="benchmark.json", help="JSON report path")
    p.add_argument("--folds", type=int, default=5, help="number of writer folds (default: 5)")
    p.add_argument("--only-folds", type=int, nargs="+", default=None, metavar="K",
                   help="run only these folds, numbered from 0 (default: all)")
    p.add_argument("--layout", default="auto")
    p.add_argument("--extra-training", metavar="DIR",
                   help="another corpus (other writers) added to every fold's training")
    p.add_argument("--extra-layout", default="auto", help="layout of --extra-training")
    p.add_argument("--pretrain-data", metavar="DIR",
                   help="another corpus (other writers) to pretrain on once, with the default "
                   "learning rate and --pretrain-epochs; every fold then fine-tunes from those "
                   "weights with the training options given (e.g. --lr 3e-4 --epochs 10); the "
                   "pretrained model is saved as <OUTPUT stem>_pretrained.safetensors")
    p.add_argument("--pretrain-layout", default="auto", help="layout of --pretrain-data")
    p.add_argument("--pretrain-epochs", type=int, default=None,
                   help="epochs of the pretraining (default: the verifier's default, 20)")
    p.add_argument("--verbose", type=int, default=0, help="1: epoch table, 2: progress bars")
    _add_training_options(p)
    p.set_defaults(func=cmd_benchmark)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (OSError, ValueError, TypeError) as err:
        print(f"skseg {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
