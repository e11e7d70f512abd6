"""Every option of every config group composes, and every class option instantiates."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, InstantiationException
from hydra.utils import instantiate

CONF = Path(__file__).parents[2] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


# options whose weights, tokenizer or rows come from a hub: composed here, built offline from
# tiny stand-ins in tests/backbones and tests/benchmarks
HUB_BACKBONES = {"llada_8b", "llada_8b_instruct", "dream_7b", "hf_masked_lm", "smdm_1b"}
HUB_DATA = {"gsm8k_aug", "opencodeinstruct", "openmathinstruct2"}
REAL_BENCHMARKS = {"gsm8k", "math", "math500", "mbpp", "humaneval"}


def test_offline_lists_name_real_options():
    assert set(options("backbone")) >= HUB_BACKBONES
    assert set(options("data")) >= HUB_DATA
    assert set(options("benchmark")) >= REAL_BENCHMARKS


@pytest.mark.parametrize("option", options("backbone"))
def test_backbone_options_build(compose_cfg, option):
    if option in HUB_BACKBONES:
        cfg = compose_cfg(f"backbone={option}", tiny=False)
        assert cfg.backbone._target_.startswith("backplay_exp.backbones.")
        return
    cfg = compose_cfg(f"backbone={option}")
    backbone = instantiate(cfg.backbone)
    assert backbone.mask_id is not None
    assert backbone.hidden_size > 0


@pytest.mark.parametrize("option", options("remask"))
def test_remask_options_build_a_decoder(compose_cfg, option):
    cfg = compose_cfg(f"remask={option}")
    remasker = instantiate(cfg.remask)
    decoder = instantiate(cfg.sampler, remasker=remasker)
    assert decoder.remasker is remasker
    # backplay_toy: backplay with toy calibration; t2t_q: t2t_edit(Q); backplay_edit: backplay+edit
    assert decoder.name.startswith(option.split("_")[0])


@pytest.mark.parametrize("option", options("sampler"))
def test_sampler_options_build(compose_cfg, option):
    cfg = compose_cfg(f"sampler={option}")
    decoder = instantiate(cfg.sampler, remasker=instantiate(cfg.remask))
    assert decoder.gen_length == cfg.benchmark.gen_length


COMPONENTS = ("commit", "order", "editor", "cache", "stop")


@pytest.mark.parametrize(
    ("part", "option"), [(p, o) for p in COMPONENTS for o in options(f"sampler/{p}")]
)
def test_every_decoder_component_option_builds(compose_cfg, part, option):
    cfg = compose_cfg(f"sampler/{part}={option}")
    decoder = instantiate(cfg.sampler, remasker=instantiate(cfg.remask))
    described = decoder.describe()["decoder"][part]
    assert described["_target_"] == cfg.sampler[part]._target_
    # every scalar parameter of the option's node is recorded in results.json
    plain = {k: v for k, v in cfg.sampler[part].items() if k != "_target_"}
    assert {k: described[k] for k in plain} == plain


def test_remask_presets_select_their_components(compose_cfg):
    def built(*overrides):
        cfg = compose_cfg(*overrides)
        return instantiate(cfg.sampler, remasker=instantiate(cfg.remask))

    s_mode = built("remask=t2t_s", "sampler.tokens_per_step=2")
    assert (s_mode.commit.threshold, s_mode.commit.min_tokens) == (0.5, 2)
    assert (s_mode.editor.threshold, s_mode.name) == (0.5, "t2t_edit(S)")
    q_mode = built("remask=t2t_q")
    assert (type(q_mode.commit).__name__, q_mode.editor.threshold) == ("FixedK", 0.9)
    assert type(built("remask=random_order").order).__name__ == "RandomOrder"
    assert built("remask=backplay_edit").name == "backplay+edit"
    # the command line wins over a preset's choice
    assert type(built("remask=t2t_s", "sampler/commit=fixed_k").commit).__name__ == "FixedK"


def test_commit_rule_and_tokens_per_step_must_agree(compose_cfg):
    cfg = compose_cfg("sampler.tokens_per_step=2", "sampler.commit.k=3")
    with pytest.raises(InstantiationException, match=r"set sampler\.tokens_per_step"):
        instantiate(cfg.sampler, remasker=instantiate(cfg.remask))


@pytest.mark.parametrize("option", options("benchmark"))
def test_benchmark_options_build(compose_cfg, option):
    if option in REAL_BENCHMARKS:  # problems() reads the hub; tests/benchmarks builds them
        cfg = compose_cfg(f"benchmark={option}", tiny=False)
        assert instantiate(cfg.benchmark).gen_length == cfg.benchmark.gen_length
        return
    cfg = compose_cfg(f"benchmark={option}")
    bench = instantiate(cfg.benchmark)
    problems = bench.problems()
    assert len(problems) == cfg.benchmark.n_problems
    assert len({p.id for p in problems}) == len(problems)


@pytest.mark.parametrize("option", options("data"))
def test_data_options_build(compose_cfg, option):
    cfg = compose_cfg(f"data={option}")
    backbone = instantiate(cfg.backbone)
    dm = instantiate(cfg.data, tokenizer=backbone.tokenizer)
    if option in HUB_DATA:  # setup() would read the hub (tests/backbones/test_hf_sft.py)
        return
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == batch["response_mask"].shape


MOUNTS = {"sft": "sft", "head_only": "head_train", "joint": "joint", "edit": "t2t"}


@pytest.mark.parametrize("option", options("module"))
def test_module_options_build(compose_cfg, option):
    mount = MOUNTS[option]
    cfg = compose_cfg(f"module@{mount}.module={option}")
    backbone = instantiate(cfg.backbone)
    extra = {}
    if option == "edit":  # the T2T editor takes an artifact distribution, no head
        extra = {"artifact": instantiate(cfg.artifact)}
    elif option != "sft":  # correction modules also take a head and an artifact distribution
        head = instantiate(cfg.head, d_in=backbone.hidden_size)
        extra = {"head": head, "artifact": instantiate(cfg.artifact)}
    module = instantiate(cfg[mount].module, backbone=backbone, **extra)
    assert sum(p.numel() for p in module.parameters()) > 0


@pytest.mark.parametrize("option", options("head"))
def test_head_options_build(compose_cfg, option):
    import torch

    cfg = compose_cfg(f"head={option}")
    head = instantiate(cfg.head, d_in=32)
    assert head(torch.zeros(2, 5, 32)).shape == (2, 5)


@pytest.mark.parametrize("option", options("artifact"))
def test_artifact_options_build(compose_cfg, option):
    cfg = compose_cfg(f"artifact={option}")
    assert instantiate(cfg.artifact).name == option


@pytest.mark.parametrize("option", options("trainer"))
def test_trainer_options_compose(compose_cfg, option):
    cfg = compose_cfg(f"trainer={option}")
    assert cfg.trainer._target_.endswith("Trainer")


@pytest.mark.parametrize("option", options("logger"))
def test_logger_options_build(compose_cfg, option, tmp_path):
    from backplay_exp.utils.instantiate import instantiate_loggers

    cfg = compose_cfg(f"logger={option}")
    loggers = instantiate_loggers(cfg.logger, tmp_path)
    assert any(type(lg).__name__ == "CSVLogger" for lg in loggers)  # CSV always


@pytest.mark.parametrize("option", options("task"))
def test_task_options_point_at_functions(compose_cfg, option):
    from hydra.utils import get_method

    cfg = compose_cfg(f"task={option}")
    assert callable(get_method(cfg.task._target_))


@pytest.mark.parametrize("option", options("experiment"))
def test_experiments_compose_with_sweep_axes(compose_cfg, option):
    cfg = compose_cfg(f"+experiment={option}", tiny=False, hydra_cfg=True)
    assert cfg.hydra.mode.name == "MULTIRUN"
    assert cfg.hydra.sweeper.params


def test_unknown_option_names_the_group():
    from hydra import compose, initialize

    with (
        initialize(version_base="1.3", config_path="../../conf"),
        pytest.raises(ConfigCompositionException, match="remask"),
    ):
        compose("config", overrides=["remask=no_such_policy"])


def test_random_toy_is_backplay_toys_loop_with_random_scores(compose_cfg):
    """The quickstart's random control differs from backplay_toy only in the scores and τ."""
    head, rand = (
        instantiate(compose_cfg(f"remask={o}").remask) for o in ("backplay_toy", "random_toy")
    )
    loop = (
        "max_remask",
        "stride",
        "block_buffer",
        "memory_steps",
        "check_block_start",
        "final_check",
    )
    assert {k: getattr(rand, k) for k in loop} == {k: getattr(head, k) for k in loop}
    assert (head.uses_head, rand.uses_head) == (True, False)
