"""``affectlab bench``: each line of the benchmark in its own module (training steps, corpus
generation, the rating store and page, the live paths, the Explore map), above every layer it
times."""
