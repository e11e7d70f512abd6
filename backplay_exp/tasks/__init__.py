"""The entry points behind `task=`: train stages, eval, the stage cache, the runner."""
