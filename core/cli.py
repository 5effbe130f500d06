"""The ``affectlab`` command. Sub-commands import their modules lazily so ``--help`` is instant."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

app = typer.Typer(
    name="affectlab",
    help="Emotion recognition with soft labels: data, training, evaluation, benchmarks.",
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(help="Generate the benchmark corpus or import a real one.", no_args_is_help=True)
app.add_typer(data_app, name="data")


class Modality(str, Enum):
    face = "face"
    speech = "speech"


@data_app.command("synth")
def data_synth(
    modality: Modality = typer.Option(Modality.face, help="face (64×64 PNG) or speech (16 kHz WAV)"),
    n: int = typer.Option(2000, min=10, help="number of items"),
    seed: int = typer.Option(0, help="random seed; the same seed gives byte-identical output"),
    domains: int = typer.Option(2, min=1, max=4, help="number of recording/rendering domains"),
    flip_rate: float = typer.Option(0.1, min=0.0, max=0.9, help="fraction of dataset labels flipped"),
    out: Path = typer.Option(..., help="output dataset directory"),
    overwrite: bool = typer.Option(False, help="replace an existing directory"),
) -> None:
    """Generate a corpus with known truth (emotion distribution, valence/arousal, sub-classes)."""
    from core.data.synth.corpus import generate_corpus

    ds = generate_corpus(modality=modality.value, n=n, seed=seed, n_domains=domains,
                         flip_rate=flip_rate, out=out, overwrite=overwrite, progress=True)
    typer.echo(f"wrote {len(ds.items)} {modality.value} items and {len(ds.ratings)} ratings to {ds.root}")


@data_app.command("import")
def data_import(
    fmt: str = typer.Argument(..., metavar="FORMAT",
                              help="ferplus | rafdb | affectnet | cremad | ravdess | iemocap | msp | folder"),
    src: Path = typer.Argument(..., help="the corpus as published (never modified)"),
    out: Path = typer.Option(..., help="output dataset directory"),
    skip_bad: bool = typer.Option(False, help="skip malformed rows (and count them) instead of aborting"),
    overwrite: bool = typer.Option(False, help="replace an existing directory"),
) -> None:
    """Import a real corpus into the dataset contract."""
    from core.data.importers import ImportError_, import_corpus

    try:
        report = import_corpus(fmt, src, out, skip_bad=skip_bad, overwrite=overwrite)
    except ImportError_ as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(report.summary())


@data_app.command("ensure-defaults")
def data_ensure_defaults() -> None:
    """Generate the small default corpora (faces-default, speech-default) if they are missing."""
    from core.data.synth.corpus import ensure_default_corpora

    for path in ensure_default_corpora(progress=True):
        typer.echo(f"default corpus ready: {path}")


def _not_yet(feature: str) -> None:
    typer.echo(f"'{feature}' arrives with the training engine; it is not available in this version.",
               err=True)
    raise typer.Exit(2)


@app.command()
def train(config: Path = typer.Argument(None, help="run config (YAML or JSON)")) -> None:
    """Train a model with a chosen method (not yet available)."""
    _not_yet("train")


@app.command("eval")
def evaluate(run: Path = typer.Argument(..., help="run directory")) -> None:
    """Evaluate a run on a dataset (not yet available)."""
    _not_yet("eval")


@app.command()
def runs() -> None:
    """List runs with their headline metrics (not yet available)."""
    _not_yet("runs")


@app.command()
def bench() -> None:
    """Time every method against cross-entropy (not yet available)."""
    _not_yet("bench")


@app.command()
def predict(files: list[Path] = typer.Argument(..., help="images or WAV files")) -> None:
    """Print each file's predicted distribution as JSON (not yet available)."""
    _not_yet("predict")


@app.command()
def losses() -> None:
    """List the registered losses with their parameters and defaults."""
    from core.losses import available

    for spec in available():
        params = ", ".join(f"{k}={v!r}" for k, v in spec.params.items())
        typer.echo(f"{spec.name:<22} {spec.description}" + (f"  [{params}]" if params else ""))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
