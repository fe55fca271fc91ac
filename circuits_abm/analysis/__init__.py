"""Analysis of trajectories and scenarios: ``classification`` names the regime a run's
records show; ``theory`` predicts it from the scenario alone.  Depends on the engine only."""
