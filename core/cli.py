"""The ``affectlab`` command. Sub-commands import their modules lazily so ``--help`` is instant."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from affectlab.errors import UserDataError

# a user's data or config that cannot be used: one line on stderr, exit status 2, no traceback
USER_ERRORS = (UserDataError, FileNotFoundError, FileExistsError)

app = typer.Typer(
    name="affectlab",
    help="Emotion recognition with soft labels: data, training, evaluation, benchmarks.",
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(help="Generate the benchmark corpus or import a real one.", no_args_is_help=True)
app.add_typer(data_app, name="data")


OUT_HELP = ("output {kind} directory: a bare NAME is <data>/{root}/NAME (letters, digits, "
            ". _ - +); a path with a / (data/{root}/x, ./x, /big/disk/x) is used as given")
OVERWRITE_HELP = ("replace an existing directory (only one affectlab created: it holds the "
                  ".affectlab-created marker)")


class Modality(str, Enum):
    face = "face"
    speech = "speech"


@data_app.command("synth")
def data_synth(
    modality: Modality = typer.Option(Modality.face, help="face (64×64 PNG) or speech (16 kHz WAV)"),
    n: int = typer.Option(2000, min=10, help="number of items"),
    seed: int = typer.Option(0, help="random seed; the same seed gives byte-identical output"),
    domains: int = typer.Option(2, min=1, max=2, help="number of recording/rendering domains (corpora)"),
    flip_rate: float = typer.Option(0.1, min=0.0, max=0.9, help="fraction of dataset labels flipped"),
    out: Path = typer.Option(..., help=OUT_HELP.format(kind="dataset", root="datasets")),
    overwrite: bool = typer.Option(False, help=OVERWRITE_HELP),
) -> None:
    """Generate a corpus with known truth (emotion distribution, valence/arousal, sub-classes)."""
    from affectlab.data.synth.corpus import generate_corpus
    from affectlab.paths import cli_out_path, datasets_dir

    try:
        out = cli_out_path(out, datasets_dir())
        ds = generate_corpus(modality=modality.value, n=n, seed=seed, n_domains=domains,
                             flip_rate=flip_rate, out=out, overwrite=overwrite, progress=True)
    except (ValueError, FileExistsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"wrote {len(ds.items)} {modality.value} items and {len(ds.ratings)} ratings to {ds.root}")


@data_app.command("import")
def data_import(
    fmt: str = typer.Argument(..., metavar="FORMAT",
                              help="ferplus | rafdb | affectnet | cremad | ravdess | emodb | "
                                   "iemocap | msp | folder"),
    src: Path = typer.Argument(..., help="the corpus as published (never modified)"),
    out: Path = typer.Option(..., help=OUT_HELP.format(kind="dataset", root="datasets")),
    skip_bad: bool = typer.Option(False, help="skip malformed rows (and count them) instead of aborting"),
    overwrite: bool = typer.Option(False, help=OVERWRITE_HELP),
    link: bool = typer.Option(False, help="hard-link media instead of copying them (saves space; "
                              "the output's media then share their bytes with the source)"),
    follow_symlinks: bool = typer.Option(False, help="accept media and label files that are "
                                         "symbolic links to outside the corpus (a corpus laid "
                                         "out as a symlink farm); default: reported as bad"),
    encoding: str = typer.Option("utf-8", help="text encoding of the label files (e.g. latin-1, "
                                 "cp1252)"),
) -> None:
    """Import a real corpus into the dataset contract."""
    from affectlab.data.importers import import_corpus
    from affectlab.paths import cli_out_path, datasets_dir

    try:
        out = cli_out_path(out, datasets_dir())
        report = import_corpus(fmt, src, out, skip_bad=skip_bad, overwrite=overwrite, link=link,
                               follow_symlinks=follow_symlinks, encoding=encoding)
    except USER_ERRORS as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(report.summary())


@data_app.command("aggregators")
def data_aggregators(
    seeds: list[int] = typer.Option([0, 1, 2], "--seed", help="corpus seeds (repeatable)"),
    n: int = typer.Option(2000, min=10, help="items per generated corpus"),
    spammers: int = typer.Option(3, min=0, help="spammers among the raters"),
    raters: int = typer.Option(60, min=10, help="raters in the pool"),
    dataset: Path = typer.Option(None, help="score a generated dataset directory instead"),
) -> None:
    """How well each crowd aggregator recovers the generated corpus's true distributions:
    accuracy of the argmax, mean KL(truth ‖ soft label), mean TV, paired tests against votes."""
    from affectlab.data.synth.aggregation import aggregator_report

    try:
        text = aggregator_report(seeds, n, n_spammers=spammers, n_raters=raters,
                                 dataset=dataset)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(text)


@data_app.command("ensure-defaults")
def data_ensure_defaults() -> None:
    """Generate the small default corpora (faces-default, speech-default) if they are missing."""
    from affectlab.data.synth.corpus import ensure_default_corpora

    for path in ensure_default_corpora(progress=True):
        typer.echo(f"default corpus ready: {path}")


@app.command()
def train(
    config: Path = typer.Argument(None, help="run config (YAML or JSON); options override it"),
    dataset: Path = typer.Option(None, help="dataset directory"),
    model: str = typer.Option(None, help="model registry name (e.g. resnet18, convpool)"),
    method: str = typer.Option(None, help="method registry name (e.g. ce, ce+fspl-kl, dmue)"),
    epochs: int = typer.Option(None, min=1, help="number of epochs"),
    out: Path = typer.Option(None, help=OUT_HELP.format(kind="run", root="runs")
                             + " (default: <data>/runs/<name>)"),
    name: str = typer.Option(None, help="run name"),
    set_: list[str] = typer.Option(None, "--set", help="extra field, key=value (repeatable; "
                                   "dotted keys reach into model_params/method_params)"),
    background: bool = typer.Option(False, help="start a background worker and return"),
    resume: bool = typer.Option(False, help="continue the run from its last checkpoint"),
    prepare: bool = typer.Option(False, help="only write the run directory and its config, and "
                                 "print the torchrun command for several GPUs"),
    pretrained: bool = typer.Option(False, "--pretrained", help="start from the model's shipped "
                                    "weights (mini_xception: FER2013) on this dataset's classes: "
                                    "those that match by name keep their head rows, the rest "
                                    "start fresh"),
    init_from: Path = typer.Option(None, help="start from a trained run's weights instead (the "
                                   "same model; classes mapped by name)"),
    class_map: list[str] = typer.Option(None, "--class-map", help="read a class name as another "
                                        "when mapping by name, old=new (e.g. calm=neutral; "
                                        "repeatable), or a YAML/JSON file of such pairs"),
) -> None:
    """Train a model with a chosen method (foreground with progress, or --background)."""
    from affectlab.engine.config import load_config, parse_overrides, validate_config
    from affectlab.labelmap import parse_class_map
    from affectlab.paths import cli_out_path, runs_dir

    try:
        out = None if out is None else cli_out_path(out, runs_dir())
    except USER_ERRORS as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        overrides = {k: v for k, v in {"dataset": dataset, "model": model, "method": method,
                                       "epochs": epochs, "out": out, "name": name,
                                       "init_from": init_from,
                                       "pretrained": True if pretrained else None}.items()
                     if v is not None}
        overrides = {k: str(v) if isinstance(v, Path) else v for k, v in overrides.items()}
        if class_map:
            overrides["class_map"] = parse_class_map(class_map)
        overrides.update(parse_overrides(set_ or []))
        if config is not None:
            cfg = load_config(config, overrides)
        else:
            from affectlab.engine.config import apply_overrides

            cfg = validate_config(apply_overrides({}, overrides), source="command line")
    except USER_ERRORS as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    from affectlab.engine.rundir import CheckpointError, RunDir

    run = RunDir(cfg.run_dir())
    if prepare:
        _prepare_run(run, cfg, resume)
        return
    if background:
        from affectlab.engine.jobs import launch_background

        launch_background(cfg, resume=resume)
        typer.echo(f"started {run.path} (log: {run.log_path})")
        return
    from affectlab.engine.trainer import train as run_training

    try:
        result = run_training(cfg, progress=True, resume=resume)
    except (*USER_ERRORS, CheckpointError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    test = result.metrics.get("test", {})
    summary = ", ".join(f"{k}={test[k]:.4f}" for k in ("uar", "accuracy", "macro_f1") if k in test)
    typer.echo(f"{result.status}: {result.run_dir} after {result.epochs_done} epoch(s)"
               + (f"; test {summary}" if summary else ""))


def _prepare_run(run, cfg, resume: bool) -> None:
    """``train --prepare``: write the run directory and its config for torchrun."""
    if run.config_path.exists() and not resume:
        typer.echo(f"error: {run.path} already holds a run (use --resume to continue it)", err=True)
        raise typer.Exit(2)
    run.make_dir()
    run.write_config(cfg)
    typer.echo(f"wrote {run.config_path}; on N GPUs run:\n"
               f"  torchrun --standalone --nproc_per_node=N -m affectlab.engine.worker {run.path}")


@app.command("eval")
def evaluate(
    run: Path = typer.Argument(..., help="run directory"),
    dataset: Path = typer.Option(..., help="dataset directory to evaluate on"),
    split: str = typer.Option("test", help="train | val | test | all"),
    weights: str = typer.Option("last", help="last | best"),
    class_map: list[str] = typer.Option(None, "--class-map", help="read a class name as another "
                                        "when matching the label sets, old=new (repeatable), or "
                                        "a YAML/JSON file of such pairs"),
    domain: list[str] = typer.Option(None, "--domain", help="evaluate on this domain's items "
                                     "only (repeatable; default: the run's test_domains when "
                                     "the dataset has them, else every domain)"),
) -> None:
    """Evaluate a run on a dataset (cross-corpus evaluation); prints the metrics as JSON.

    When the dataset's classes differ from the run's, they are matched by name (the synonym
    table of affectlab.labelmap, then --class-map) and the metrics are computed on the shared
    classes; which were kept and dropped is printed on stderr and kept in the JSON."""
    import json

    from affectlab.engine.runs import evaluate_run
    from affectlab.labelmap import parse_class_map

    try:
        result = evaluate_run(run, dataset, split=None if split == "all" else split,
                              weights=weights, class_map=parse_class_map(class_map),
                              domains=domain or None)
    except (*USER_ERRORS, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    classes = result.get("classes")
    if classes:
        typer.echo(classes["summary"], err=True)
    typer.echo(json.dumps(result, indent=2))


@app.command()
def runs(root: Path = typer.Option(None, help="runs directory (default: <data>/runs)")) -> None:
    """List runs with their headline metrics."""
    import pandas as pd

    from affectlab.engine.runs import runs_table

    table = runs_table(root)
    if table.empty:
        typer.echo("no runs yet")
        return
    shown = table.drop(columns=["path"])
    with pd.option_context("display.max_columns", None, "display.width", 200,
                           "display.float_format", "{:.3f}".format):
        typer.echo(shown.to_string(index=False))


class BenchPart(str, Enum):
    methods = "methods"
    corpus = "corpus"
    annotate = "annotate"
    live = "live"
    explore = "explore"


@app.command()
def bench(
    what: list[BenchPart] = typer.Option([BenchPart.methods], "--what",
                                         help="what to time (repeatable): methods, corpus, "
                                              "annotate, live, explore"),
    modality: str = typer.Option("face", help="methods: face or speech"),
    steps: int = typer.Option(10, min=1, help="methods: timed steps per method (median)"),
    batch_size: int = typer.Option(32, min=2, help="methods: items per step"),
    device: str = typer.Option("auto", help="methods: auto, cpu or cuda"),
    method: list[str] = typer.Option(None, "--method", help="methods: time only these "
                                     "(repeatable; ce is always timed, as the reference)"),
    threads: int = typer.Option(None, min=1, help="methods: torch CPU threads (1 gives the steadiest "
                                "ratios on a shared machine); live: torch and OpenCV threads "
                                "(default 1)"),
    faces: int = typer.Option(10_000, min=0, help="corpus: faces to generate"),
    utterances: int = typer.Option(2_000, min=0, help="corpus: utterances to generate"),
    db_url: str = typer.Option(None, help="annotate: database URL (default: a temporary SQLite file)"),
    raters: int = typer.Option(50, min=1, help="annotate: concurrent simulated raters"),
    ratings_each: int = typer.Option(200, min=1, help="annotate: ratings per rater"),
    frames: int = typer.Option(100, min=10, help="live: frames of the moving-face clip"),
    explore_items: list[int] = typer.Option([10_000, 100_000], "--explore-items", min=4,
                                            help="explore: map sizes (repeatable)"),
    explore_dim: int = typer.Option(128, min=2, help="explore: embedding dimension"),
    umap: bool = typer.Option(True, "--umap/--no-umap", help="explore: also time the UMAP layout "
                              "(minutes at 100k items on 2 cores)"),
) -> None:
    """Time every method's training step against cross-entropy (ratios, samples/s); optionally
    corpus generation speed, the rating-store load test, the live face / microphone paths
    (against the naive pipeline in the same run) and the Explore map's time to first map and
    to UMAP."""
    if BenchPart.methods in what:
        from affectlab.bench.training import check_method_names, format_table, run_bench

        try:
            check_method_names(method or [])
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--method") from exc
        typer.echo(format_table(run_bench(modality, steps, batch_size, device=device,
                                          threads=threads, methods_filter=method or None)))
    if BenchPart.corpus in what:
        from affectlab.bench.corpus import bench_corpus

        typer.echo(bench_corpus(faces, utterances).to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    if BenchPart.annotate in what:
        from affectlab.bench.rating import bench_annotate

        typer.echo(bench_annotate(db_url, raters, ratings_each).to_string(
            index=False, float_format=lambda v: f"{v:.1f}"))
    if BenchPart.live in what:
        _bench_live(frames, threads or 1)
    if BenchPart.explore in what:
        from affectlab.bench.explore import bench_explore, explore_summary

        table = bench_explore(explore_items, explore_dim, umap=umap)
        typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        typer.echo(explore_summary(table))


def _bench_live(frames: int, threads: int) -> None:
    import pandas as pd

    from affectlab.bench.live import bench_live_audio, bench_live_face, live_summary

    face = bench_live_face(frames, threads=threads)
    with pd.option_context("display.max_columns", None, "display.width", 250):
        typer.echo(face.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        typer.echo(live_summary(face))
        typer.echo(bench_live_audio(threads=threads).to_string(
            index=False, float_format=lambda v: f"{v:.2f}"))


@app.command()
def predict(
    files: list[Path] = typer.Argument(..., help="images or WAV files"),
    model: str = typer.Option("mini_xception", help="run directory, or a model name with "
                              "shipped weights"),
    weights: str = typer.Option("last", help="for a run: last | best"),
    crop: bool = typer.Option(None, "--crop/--no-crop", help="images: take the whole image as "
                              "the face (--crop) or always detect (--no-crop); default: "
                              "images at most 128 px and about square are face crops"),
) -> None:
    """Print each file's predicted distribution as JSON (one line per file, good or bad: a bad
    one carries "error" and the exit status is 1); the note says how the face was found. A
    photo with several faces: the largest is the answer, and "faces"
    lists every face (box, distribution) largest first."""
    import json

    from affectlab.engine.inference import Predictor

    try:
        predictor = Predictor.from_name_or_run(model, weights=weights)
    except (*USER_ERRORS, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    from affectlab.engine.inference import FilePrediction

    failed = 0
    for path in files:  # one JSON line per file, printed as soon as it is known
        try:
            result = predictor.predict_file(path, crop=crop)
        except Exception as exc:  # noqa: BLE001 - one bad file never silences the batch
            result = FilePrediction(str(path), error=f"{type(exc).__name__}: {exc}")
        failed += result.error is not None
        typer.echo(json.dumps(result.to_dict()))
    if failed:
        raise typer.Exit(1)


@app.command("app")
def run_app(
    port: int = typer.Option(8501, min=1, max=65535, help="port to serve on"),
    address: str = typer.Option("127.0.0.1", help="address to bind: 127.0.0.1 (default) "
                                "keeps it to this machine; 0.0.0.0 serves every interface "
                                "(put HTTPS in front: see the README)"),
    defaults: bool = typer.Option(True, help="generate the small default corpora first when "
                                  "they are missing"),
    show_errors: bool = typer.Option(False, help="show uncaught exceptions' tracebacks in the "
                                     "browser (development only: raters would see them too)"),
) -> None:
    """Start the app (the Streamlit workbench and the rating page) from the installed package;
    prints a one-time sign-in link for the owner first."""
    from affectlab.appserver import run_app as serve

    if defaults:
        data_ensure_defaults()
    serve(port, address, show_errors)


@app.command()
def study(
    claims: list[str] = typer.Argument(None, metavar="CLAIM|all", help="claims to test (see "
                                       "--list), or all"),
    list_: bool = typer.Option(False, "--list", help="name each claim: id, seed paper, what "
                               "is compared, metric"),
    seeds: int = typer.Option(None, min=1, max=1000, help="seeds (paired runs) per claim "
                              "(default: the size's: tiny 2, small 3, paper 10)"),
    size: str = typer.Option("small", help="tiny (tests) | small (minutes a claim on a CPU) | "
                             "paper (the papers' sizes, for a GPU)"),
    out: Path = typer.Option(Path("study"), help="study directory (runs, results.json, "
                             "report.md); a second call reuses its finished runs"),
    threads: int = typer.Option(None, min=1, max=256, help="torch CPU threads (default: "
                                "torch's; 1 is often fastest on a shared machine)"),
) -> None:
    """Test the seed papers' claims on the benchmark: method vs its baseline, paired over
    seeds, with a paired t-test; writes results.json and report.md (one plot per claim)."""
    from affectlab.study.claims import CLAIMS

    if list_:
        for c in CLAIMS.values():
            typer.echo(c.line())
        return
    from affectlab.study.results import run_study

    try:
        results = run_study(claims or [], seeds, size, out, threads=threads)
    except (KeyError, ValueError) as exc:
        typer.echo(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", err=True)
        raise typer.Exit(2) from exc
    for r in results:
        p = "–" if r.p_value is None else f"{r.p_value:.3g}"
        diff = "–" if r.mean_diff is None else f"{r.mean_diff:+.4f}"
        typer.echo(f"{r.claim:<28} {r.verdict:<9} diff {diff} p {p}"
                   + (f"  ({r.error})" if r.error else ""))
    typer.echo(f"wrote {out / 'results.json'} and {out / 'report.md'}")


@app.command()
def losses() -> None:
    """List the registered losses with their parameters, defaults and allowed values."""
    from affectlab.losses import available

    for spec in available():
        params = ", ".join(map(str, spec.param_specs))
        typer.echo(f"{spec.name:<22} {spec.description}" + (f"  [{params}]" if params else ""))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
