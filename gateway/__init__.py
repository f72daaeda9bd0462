"""Outbound doors shared by the API and the worker: today the Temporal client gateway."""

from gateway.temporal import TemporalGateway, connect_temporal

__all__ = ["TemporalGateway", "connect_temporal"]
