"""AnomaliesGate: stops the run on ExampleValidator's anomalies (data_validation_mode: fail)."""
