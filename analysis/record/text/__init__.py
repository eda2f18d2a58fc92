"""Language models in memdash: text data, tokenizers, canary formats, causal LMs and their
scoring (the Secret Sharer's exposure, extractable memorization).

A sequence is one example: its tokens are a row of inputs.npy (int32, -1 padded), and every
model reads ``[BOS] + tokens[:-1]`` so that it predicts every token of the sequence.
"""
