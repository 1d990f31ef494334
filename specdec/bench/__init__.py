"""`draftnas bench`'s machinery: every decoding method behind one runner interface, on the same
prompts, with tokens/s, tau, acceptance, time split, losslessness and peak memory per method.

- `methods`: vanilla (our decoder without a draft), a draft checkpoint in our decoder,
  transformers' assisted generation and prompt lookup decoding;
- `assistant`: the small distilled LM that assisted generation drafts with;
- `hf_forwards`: counts and times transformers' target forwards, so its baselines get tau too;
- `memory`: peak RSS per method; `summary`: one row per method; `report`: csv, md, png;
- `runner`: warm-up, timing loop, progress bar.
"""
