"""The generated benchmark corpus: items with known truth (emotion distribution, valence and
arousal, intensity, sub-class factors, domain), rendered as faces or speech, rated by simulated
raters.

- ``truth``: :class:`ItemTruth`, ``CATEGORIES``, ``CIRCUMPLEX``
- ``corpus``: ``generate_corpus`` (one dataset directory, SPEC §7), ``ensure_default_corpora``,
  ``sample_truths``, ``corpus_tables`` (the tables without media)
- ``aggregation``: each crowd aggregator's soft labels scored against the known truth
- ``raters``: the simulated rater pool and its ratings
- ``face`` / ``speech``: the renderers

Modules are imported on use, so ``import affectlab.data.synth`` stays cheap.
"""
