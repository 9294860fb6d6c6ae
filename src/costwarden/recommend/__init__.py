"""Savings recommenders: a registry of recommenders, one module each, and the engine.

Importing this package registers every recommender in ``RECOMMENDERS``.
"""

from costwarden.recommend import (
    commitments,
    gpu,
    idle,
    loadbalancers,
    nodepool,
    requests,
    schedule,
    spot,
    storage,
)
from costwarden.recommend.engine import RecommendationReport, RecommendEngine, rank, summarise
from costwarden.recommend.inputs import PoolRef, RecommendInput, load_input, pools_from_nodes
from costwarden.recommend.registry import RECOMMENDERS, Recommender, RecommenderRegistry

del commitments, gpu, idle, loadbalancers, nodepool, requests, schedule, spot, storage

__all__ = [
    "RECOMMENDERS",
    "PoolRef",
    "RecommendEngine",
    "RecommendInput",
    "Recommender",
    "RecommenderRegistry",
    "RecommendationReport",
    "load_input",
    "pools_from_nodes",
    "rank",
    "summarise",
]
