"""The signatures that name cached stages and reusable eval jobs, pinned to their values.

A signature hashes the resolved config a stage (or an eval job) depends on; its value names the
cache directory (`cache/<kind>/<signature>`) and the eval job a later identical job copies
(`task.reuse`). These values were computed before the stages became registry entries
(tasks/registry.py): a change here means every cached stage of that config is trained again and
every finished eval job decoded again. If that is intended, update the pin and say why.
"""

import pytest

from backplay_exp.tasks.registry import STAGES, stage_dir
from backplay_exp.tasks.results import job_signature

# overrides -> the signatures of its eval job and of its sft, head, joint and t2t stages
PINS = [
    (
        "+experiment=quickstart remask=confidence sampler.tokens_per_step=4",
        "ab43665a489c ebc42a049493 4494df017a9f 4186eb0d1cba 315e531114a9",
    ),
    (
        "+experiment=quickstart remask=backplay_toy sampler.tokens_per_step=4",
        "46ded436b04c ebc42a049493 4494df017a9f 4186eb0d1cba 315e531114a9",
    ),
    (
        "+experiment=toy_table1 model=joint remask=backplay_toy sampler.tokens_per_step=2 seed=1",
        "8f8bbc58e848 e35469227b3b 66fa08b449c6 cc1240e4127e ba83ac8b8187",
    ),
    (
        "+experiment=toy_t2t artifact=draft remask=t2t_s seed=2",
        "3b7a38735ec3 7aa603edde29 f0ae5d067e2e fbefab4c82ca 3fe2adaac1d0",
    ),
    (
        "+experiment=toy_t2t artifact=random_vocab remask=t2t_q",
        "86e14c9cf7b9 ebc42a049493 d160a0dae129 38979e73034e b2dda24d0147",
    ),
    (
        "+experiment=toy_artifacts artifact=uniform remask=backplay_toy sampler.tokens_per_step=4",
        "ad9f0ce03213 ebc42a049493 0f14bd112c52 798d6179d312 78421d7eb9ec",
    ),
    (
        "+experiment=toy_random_remask remask=random_toy sampler.tokens_per_step=4",
        "8b38f541f46d ebc42a049493 4494df017a9f 4186eb0d1cba 315e531114a9",
    ),
    (
        "+experiment=mbpp_tokens_sweep remask=backplay sampler.tokens_per_step=2",
        "2f81d155c082 bf436bbb053f f533f1e59944 d88de7075694 5b4d55cbcc17",
    ),
    (
        "+experiment=table1_smdm_gsm8k model=joint remask=backplay",
        "018ff7470914 d06ff982309f a1844c556cce 9dd0bf965bf1 1901b765a9ca",
    ),
    (
        "task=lm_eval remask=backplay_toy sampler.tokens_per_step=2",
        "dbb1d698bdc5 ebc42a049493 4494df017a9f 4186eb0d1cba 315e531114a9",
    ),
    (
        "task=head trainer@head_train.trainer=ddp",
        "f037bdf86b84 ebc42a049493 a2f83cad277c 4186eb0d1cba 315e531114a9",
    ),
    (
        "+experiment=gsm8k_tokens_sweep sft.checkpoint=pretrained remask=backplay",
        "960481cd42fa 6896661c927a 8afe1b38316e 07bde00f6dfc 4c9363759d01",
    ),
]
FIELDS = ("job", *STAGES)


@pytest.mark.parametrize(("overrides", "signatures"), PINS)
def test_signatures_are_pinned(compose_cfg, overrides, signatures):
    cfg = compose_cfg(*overrides.split(), tiny=False)
    found = [job_signature(cfg), *(stage_dir(cfg, kind).name for kind in STAGES)]
    pinned = signatures.split()
    assert dict(zip(FIELDS, found, strict=True)) == dict(zip(FIELDS, pinned, strict=True)), (
        "a signature changed: the cached stages and eval jobs of this config are not reused"
    )
