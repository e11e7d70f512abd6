"""The one transformer stack of the project: every backbone it runs and the correction head.

`rotary.py` (rotary positions), `block.py` (RMSNorm, the pre-norm block), `model.py` (embedding,
blocks, LM head) and `kv_cache.py` (the decoding cache the blocks read and record). LLaDA, Dream,
SMDM and `tiny` are configs of `model.DLMTransformer`; the correction head stacks `block.Block`s.
"""
