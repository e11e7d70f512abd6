"""Artifacts on the toy get their own toy preset, whatever experiment selects them."""

import pytest
from hydra.utils import instantiate

from backplay_exp.artifacts import lbc, uniform

EXPECTED = {  # artifact -> (class, the toy preset's values, keys of another artifact)
    "lbc": (lbc.LbcArtifact, {"t_max": 0.4, "delta_min": 0.6, "rho_min": 1.0}, set()),
    "onestep": (lbc.OneStepArtifact, {"t_max": 0.4, "rho_min": 1.0}, {"delta_min", "delta_max"}),
    "uniform": (uniform.UniformArtifact, {"t_max": 0.4, "rho_max": 0.2}, {"delta_min"}),
}


@pytest.mark.parametrize("experiment", ["quickstart", "fast_decoding", None])
@pytest.mark.parametrize("artifact", sorted(EXPECTED))
def test_toy_experiments_compose_each_artifacts_own_preset(compose_cfg, experiment, artifact):
    extra = [f"+experiment={experiment}"] if experiment else []
    cfg = compose_cfg(*extra, f"artifact={artifact}", tiny=False)
    cls, values, foreign = EXPECTED[artifact]
    assert {k: cfg.artifact[k] for k in values} == values
    assert not foreign & set(cfg.artifact)  # no keys of another artifact
    assert isinstance(instantiate(cfg.artifact), cls)


def test_real_benchmarks_keep_the_general_defaults(compose_cfg):
    cfg = compose_cfg("benchmark=gsm8k", "artifact=lbc", tiny=False)
    assert (cfg.artifact.t_max, cfg.artifact.delta_min, cfg.artifact.rho_min) == (0.9, 0.1, 0.5)
