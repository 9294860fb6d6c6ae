"""Helpers shared by the simulator tests."""

from __future__ import annotations

import numpy as np

from costwarden.simulator.model import Cluster, Fleet, MachinePool
from costwarden.sources.prices import PriceCatalog


def daily_hourly_price(
    catalog: PriceCatalog, fleet: Fleet, cluster: Cluster, pool: MachinePool
) -> np.ndarray:
    """Return a pool's list price per hour for each day of the fleet.

    A pool that changed capacity type is priced at the old type before the change and at the
    new one after, so the day of the change mixes the two by the hours of each.
    """
    current = float(catalog.hourly_price(cluster.cloud_type, cluster.region, pool.instance_type))
    prices = np.full(fleet.days, current)
    if pool.capacity_type_before is None or pool.capacity_changed_at is None:
        return prices

    before = float(
        catalog.hourly_price(
            cluster.cloud_type, cluster.region, pool.instance_type, pool.capacity_type_before
        )
    )
    switch = (pool.capacity_changed_at - fleet.start).total_seconds() / 86_400
    after_share = np.clip(np.arange(fleet.days) + 1.0 - switch, 0.0, 1.0)
    return before + (current - before) * after_share
