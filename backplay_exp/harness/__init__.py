"""The project's decoding model in EleutherAI's lm-evaluation-harness (`task=lm_eval`).

Importing `backplay_exp.harness.model` registers the model as lm-eval's `backplay`.
"""
