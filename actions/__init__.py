"""Perturbations, as Chaos Toolkit Python activities (`chaoskit.actions`)."""
