"""Searches over specs, the static checker first: width scaling under a budget (`scale`), sweep files
(`sweepfile`), Optuna sweeps (`sweep`) and their reports (`report`)."""
