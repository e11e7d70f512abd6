"""Problem sets and their scorers: toy, GSM8K, MATH, MBPP, HumanEval (one module each)."""
