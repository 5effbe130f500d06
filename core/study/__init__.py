"""``affectlab study``: the seed papers' claims, each tested on the benchmark over seeds."""
