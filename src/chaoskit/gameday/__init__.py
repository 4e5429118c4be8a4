"""Game days: suites of experiments held in order, on a schedule, one at a time on a
target, with live progress and a summary (`chaoskit.gameday`)."""
