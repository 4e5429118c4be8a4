"""The ground floor every room stands on: the registry of running perturbations,
load-target safety and secret redaction, atomic writes, statistics, failure causes,
processes and the console (`chaoskit.kit`)."""
