"""Artifact distributions: corrupted training sequences for the correction head (METHOD.md s.4)."""

from backplay_exp.artifacts.base import Artifact, ArtifactDistribution
from backplay_exp.artifacts.draft import DraftArtifact, draft_corrupt
from backplay_exp.artifacts.lbc import LbcArtifact, OneStepArtifact, lbc_corrupt
from backplay_exp.artifacts.uniform import RandomVocabArtifact, UniformArtifact, uniform_corrupt

__all__ = [
    "Artifact",
    "ArtifactDistribution",
    "DraftArtifact",
    "LbcArtifact",
    "OneStepArtifact",
    "RandomVocabArtifact",
    "UniformArtifact",
    "draft_corrupt",
    "lbc_corrupt",
    "uniform_corrupt",
]
