"""SplitsGate: stops an SSD run right after ingestion when its unlabelled split is empty."""
