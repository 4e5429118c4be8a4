"""The kit's Chaos Toolkit control and what it decides with: guardrails before the run,
expectations, recovery, the timeline and the verdict after it (`chaoskit.verification`)."""
