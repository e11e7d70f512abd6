"""backplay_exp's Hydra launcher plugin (`launcher.py`)."""
