"""Engine layer: scheduling, exactly-once output, journal, logs and progress of one job."""
