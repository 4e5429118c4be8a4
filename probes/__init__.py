"""Observations, as Chaos Toolkit Python activities (`chaoskit.probes`)."""
