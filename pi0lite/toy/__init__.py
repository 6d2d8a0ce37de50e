"""The toy world and everything that trains and evaluates policies in it.

* ``env``, ``expert``, ``render`` — the 2-D reach-the-square task, its scripted expert, images;
* ``data``, ``normalize``, ``text`` — the dataset, normalisation statistics, instruction tokenizer;
* ``grounding`` — the auxiliary grounding head (which square does the instruction mean?);
* ``train``, ``policy``, ``evaluate`` — training loop, a trained policy on disk, closed-loop evaluation;
* ``demo``, ``demo_worker`` — ``python -m pi0lite.demo`` (``make demo``).

Imports the model modules; nothing in the model imports from here.
"""
