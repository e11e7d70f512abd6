"""Head training with the frozen backbone's passes in worker processes (`artifact_workers`)."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict
from safetensors.torch import load_file

from backplay_exp.artifacts.loader import ArtifactBatches, frozen_passes
from backplay_exp.heads.io import HEAD_WEIGHTS
from backplay_exp.tasks import train
from backplay_exp.tasks.registry import stage_dir
from backplay_exp.tasks.runner import run_task

SMALL_HEAD = [
    "head.d_head=16", "head.n_heads=2", "head.n_layers=1", "head.conv_kernel=5",
    "head_train.max_steps=6", "head_train.val_check_interval=3", "head_train.checkpoint_every=3",
]  # fmt: skip


def clean_batches(cfg, backbone, n):
    data = instantiate(cfg.data, tokenizer=backbone.tokenizer)
    data.setup("fit")
    loader = data.train_dataloader()
    return [batch for _, batch in zip(range(n), loader, strict=False)]


def test_worker_batches_are_the_frozen_passes_of_the_clean_batches_in_order(compose_cfg):
    cfg = compose_cfg(*SMALL_HEAD)
    backbone = instantiate(cfg.backbone).eval()
    artifact, eos_maskable = instantiate(cfg.artifact), cfg.sft.module.eos_maskable
    clean = clean_batches(cfg, backbone, 3)
    made = list(ArtifactBatches(clean, backbone, artifact, eos_maskable, None, seed=7))
    generator = torch.Generator().manual_seed(7)  # the one worker's generator: seed + 0
    for batch, got in zip(clean, made, strict=True):
        want = frozen_passes(backbone, artifact, batch, eos_maskable, None, generator)
        assert want.keys() == got.keys() == {"x", "labels", "scored", "hidden"}
        for key in want:
            assert torch.equal(want[key], got[key]), key
        assert got["hidden"].shape == (*batch["input_ids"].shape, backbone.hidden_size)
        with torch.no_grad():  # the hidden states the head reads are the backbone's on x~
            assert torch.equal(got["hidden"], backbone.hidden_states(got["x"]))


def test_bfloat16_frozen_passes_return_float32_hidden_states(compose_cfg):
    cfg = compose_cfg(*SMALL_HEAD)
    backbone = instantiate(cfg.backbone).eval()
    batch = clean_batches(cfg, backbone, 1)[0]
    out = frozen_passes(backbone, instantiate(cfg.artifact), batch, 16, torch.bfloat16)
    assert out["hidden"].dtype == torch.float32
    with torch.no_grad():
        exact = backbone.hidden_states(out["x"])
    assert (out["hidden"] - exact).abs().max() < 0.1 * exact.abs().max()  # bf16-close


@pytest.mark.slow
def test_head_stage_with_a_worker_repeats_exactly_and_restores_the_threads(compose_cfg, tmp_path):
    runs = []
    for name in ("a", "b"):
        cfg = compose_cfg("task=head", "head_train.artifact_workers=1", *SMALL_HEAD)
        with open_dict(cfg):
            cfg.paths.cache_dir = str(tmp_path / name)
        threads = torch.get_num_threads()
        metrics = run_task(cfg)
        assert torch.get_num_threads() == threads  # the main process got its threads back
        assert metrics["backbone_unchanged"] is True and metrics["steps"] == 6
        runs.append((metrics, load_file(str(stage_dir(cfg, "head") / "head" / HEAD_WEIGHTS))))
    (m_a, w_a), (m_b, w_b) = runs
    assert {k: v for k, v in m_a.items() if k != "train_s"} == {
        k: v for k, v in m_b.items() if k != "train_s"
    }
    assert w_a.keys() == w_b.keys() and all(torch.equal(w_a[k], w_b[k]) for k in w_a)


def test_artifact_workers_refuse_a_gpu_trainer(compose_cfg):
    cfg = compose_cfg(*SMALL_HEAD)
    with open_dict(cfg):
        cfg.trainer = OmegaConf.merge(cfg.trainer, {"accelerator": "gpu"})
    module = instantiate(
        cfg.head_train.module,
        backbone=(backbone := instantiate(cfg.backbone)),
        head=instantiate(cfg.head, d_in=backbone.hidden_size),
        artifact=instantiate(cfg.artifact),
    )
    with pytest.raises(ValueError, match="trainer=cpu"):
        train.frozen_artifact_data(cfg, module, instantiate(cfg.data, tokenizer=None), 1)
