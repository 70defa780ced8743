"""Asset checks: the data checks of core.checks run after the assets they judge."""
