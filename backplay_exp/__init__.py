"""backplay_exp: config-driven experiments on self-correction in diffusion language models."""
